/**
 * A hyper-parameter search space over config keys (anything `--set` takes), read from a JSON file:
 *
 *     { "phases.2.lr": { "log_uniform": [0.0003, 0.01] },
 *       "phases.2.batch_size": { "choice": [4, 8, 16] },
 *       "phases.2.max_shift": { "int": [0, 3] } }
 *
 * Kinds: `uniform` [lo, hi], `log_uniform` [lo, hi] (lo > 0), `int` [lo, hi] (inclusive),
 * `choice` [values...]. Samplers: `random`, and `tpe` (Bergstra et al., 2011, the Tree-structured
 * Parzen Estimator, per dimension): after `startup` random trials, observations are split at the
 * `gamma` quantile of their scores into good and bad; candidates are drawn from a Parzen (Gaussian
 * kernel) density over the good ones and the one maximizing l(x) / g(x) is proposed.
 */
import { z } from "zod";
import { Rng } from "../util/rng.ts";

const Pair = z.tuple([z.number(), z.number()]);
/** One dimension of a space file. */
export const DimSchema = z.union([
  z.strictObject({ uniform: Pair }),
  z.strictObject({ log_uniform: Pair }),
  z.strictObject({ int: z.tuple([z.number().int(), z.number().int()]) }),
  z.strictObject({ choice: z.array(z.union([z.number(), z.string(), z.boolean()])).min(1) }),
]);
export type Dim = z.infer<typeof DimSchema>;
const KEY = /^[a-z_0-9]+(\.[a-z_0-9]+)+$/;
export const SpaceSchema = z.record(z.string().regex(KEY, "a config key path such as phases.2.lr"), DimSchema);
export type Space = z.infer<typeof SpaceSchema>;
export type Params = Record<string, number | string | boolean>;

/** Parses a space (a space file's JSON); errors name `source` and the key. */
export function parseSpace(data: unknown, source: string): Space {
  if (typeof data === "object" && data !== null && !Array.isArray(data)) {
    for (const k of Object.keys(data)) {
      if (!KEY.test(k)) throw new Error(`${source}: ${k}: expected a config key path such as phases.2.lr`);
    }
  }
  const r = SpaceSchema.safeParse(data);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`${source}: ${i.path.join(".") || "(top)"}: ${i.message}`);
  }
  for (const [k, d] of Object.entries(r.data)) {
    const range = "uniform" in d ? d.uniform : "log_uniform" in d ? d.log_uniform : "int" in d ? d.int : undefined;
    if (range && !(range[0] <= range[1])) throw new Error(`${source}: ${k}: range [${range}] has lo > hi`);
    if ("log_uniform" in d && !(d.log_uniform[0] > 0)) throw new Error(`${source}: ${k}: log_uniform needs lo > 0`);
  }
  if (!Object.keys(r.data).length) throw new Error(`${source}: the space names no key`);
  return r.data;
}

/** A dimension as a number line: to and from [0, 1] (choices by index). */
function unit(d: Dim): { toUnit(v: number | string | boolean): number; fromUnit(u: number): number | string | boolean } {
  if ("uniform" in d) {
    const [lo, hi] = d.uniform;
    return { toUnit: (v) => (hi > lo ? ((v as number) - lo) / (hi - lo) : 0.5), fromUnit: (u) => lo + u * (hi - lo) };
  }
  if ("log_uniform" in d) {
    const [lo, hi] = d.log_uniform.map(Math.log);
    return {
      toUnit: (v) => (hi > lo ? (Math.log(v as number) - lo) / (hi - lo) : 0.5),
      fromUnit: (u) => Math.exp(lo + u * (hi - lo)),
    };
  }
  if ("int" in d) {
    const [lo, hi] = d.int;
    const n = hi - lo + 1;
    return { toUnit: (v) => ((v as number) - lo + 0.5) / n, fromUnit: (u) => Math.min(hi, lo + Math.floor(u * n)) };
  }
  const c = d.choice;
  return { toUnit: (v) => (c.indexOf(v) + 0.5) / c.length, fromUnit: (u) => c[Math.min(c.length - 1, Math.floor(u * c.length))] };
}

/** A uniformly random point of the space. */
export function sampleRandom(space: Space, rng: Rng): Params {
  return Object.fromEntries(Object.entries(space).map(([k, d]) => [k, unit(d).fromUnit(rng.next())]));
}

/** TPE settings. */
export interface TpeOptions {
  /** Random trials before TPE proposes (default 5). */
  startup?: number;
  /** Fraction of observations counted as good (default 0.25). */
  gamma?: number;
  /** Candidates drawn from l(x) per proposal (default 24). */
  candidates?: number;
}

/** u folded back into [0, 1] at both ends (a kernel draw past an end comes back inside, not piled on the end). */
function reflect(u: number): number {
  let x = Math.abs(u) % 2;
  if (x > 1) x = 2 - x;
  return x;
}

/** Parzen log-density at u of Gaussian kernels at `centres` (bandwidth from their spread), over [0, 1], with a uniform prior component. */
function logParzen(u: number, centres: number[]): number {
  const n = centres.length;
  const bw = Math.max(0.05, 1 / Math.sqrt(n + 1) * 0.5);
  let p = 1; // the prior: one uniform component of weight 1
  for (const c of centres) p += Math.exp(-0.5 * ((u - c) / bw) ** 2) / (bw * Math.sqrt(2 * Math.PI));
  return Math.log(p / (n + 1));
}

/**
 * The next point to try given `history` (params and scores, higher is better): random while
 * fewer than `startup` are known, else TPE per dimension (see the module comment).
 */
export function suggest(space: Space, history: readonly { params: Params; score: number }[], rng: Rng, o: TpeOptions = {}): Params {
  const startup = o.startup ?? 5, gamma = o.gamma ?? 0.25, nCand = o.candidates ?? 24;
  const done = history.filter((h) => Number.isFinite(h.score));
  if (done.length < startup) return sampleRandom(space, rng);
  const sorted = [...done].sort((a, b) => b.score - a.score);
  const nGood = Math.max(1, Math.ceil(gamma * sorted.length));
  const good = sorted.slice(0, nGood), bad = sorted.slice(nGood);
  const out: Params = {};
  for (const [k, d] of Object.entries(space)) {
    const u = unit(d);
    const gu = good.map((h) => u.toUnit(h.params[k])), bu = bad.map((h) => u.toUnit(h.params[k]));
    const bw = Math.max(0.05, 0.5 / Math.sqrt(gu.length + 1));
    let best = NaN, bestScore = -Infinity;
    for (let i = 0; i < nCand; i++) {
      // Draw from l(x): a good centre plus kernel noise, or (one time in n + 1) the uniform prior.
      const pick = rng.int(gu.length + 1);
      const x = pick === gu.length ? rng.next() : reflect(gu[pick] + bw * rng.normal());
      const s = logParzen(x, gu) - logParzen(x, bu);
      if (s > bestScore) [best, bestScore] = [x, s];
    }
    out[k] = u.fromUnit(Math.min(1 - 1e-9, Math.max(0, best)));
  }
  return out;
}
