/**
 * GrokFast gradient filters ("Grokfast: Accelerated Grokking by Amplifying Slow Gradients",
 * Lee et al., 2024): the slow (low-frequency) part of the gradient sequence is estimated
 * and added back with weight lambda.
 *
 * - EMA: mu <- alpha * mu + (1 - alpha) * g (mu starts at the first gradient), g <- g + lambda * mu.
 * - MA: the mean of the last `window` gradients, added with weight lambda once the window is full.
 *
 * The maths are pure functions of (gradients, state) -> (gradients, state); `makeGradFilter`
 * wraps one as the trainer's `gradFilter` hook, with its state kept between steps.
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { GradMap } from "./optim.ts";
import type { HostTensor } from "../nn/params.ts";
import type { GradFilter, PersistentGradFilter } from "./trainer.ts";

export interface GrokfastOptions {
  /** `ema` (exponential moving average) or `ma` (windowed moving average). */
  kind: "ema" | "ma";
  /** EMA decay (the paper's 0.98). */
  alpha: number;
  /** Amplification of the slow component (paper: 2 for EMA, 5 for MA). */
  lambda: number;
  /** MA window length in steps (paper: 100). */
  window: number;
  /** Steps before the filter starts amplifying (its state still accumulates from step 0). */
  warmup: number;
}

/** Checks options; the error names the field and the accepted range. */
export function validateGrokfast(o: GrokfastOptions): void {
  if (o.kind !== "ema" && o.kind !== "ma") throw new Error(`grokfast.kind = ${o.kind}: expected ema or ma`);
  if (!(o.alpha >= 0 && o.alpha < 1)) throw new Error(`grokfast.alpha = ${o.alpha}: expected in [0, 1)`);
  if (!(o.lambda >= 0)) throw new Error(`grokfast.lambda = ${o.lambda}: expected >= 0`);
  if (!Number.isInteger(o.window) || o.window < 1) throw new Error(`grokfast.window = ${o.window}: expected an integer >= 1`);
  if (!Number.isInteger(o.warmup) || o.warmup < 0) throw new Error(`grokfast.warmup = ${o.warmup}: expected an integer >= 0`);
}

/** EMA state: the running slow gradient per parameter (undefined before the first step). */
export type EmaState = Map<string, tf.Tensor> | undefined;

/**
 * One EMA step. Returns the filtered gradients (g + lambda * mu) and the new state; the
 * caller owns both and disposes the old state. With `amplify` false the state is updated
 * and the gradients pass through unchanged.
 */
export function emaStep(
  grads: GradMap,
  state: EmaState,
  alpha: number,
  lambda: number,
  amplify = true,
): { grads: GradMap; state: EmaState } {
  const mu = new Map<string, tf.Tensor>();
  const out: GradMap = new Map();
  for (const [name, g] of grads) {
    const prev = state?.get(name) ?? g; // mu_0 = g_0, as the reference implementation
    const m = tf.tidy(() => tf.add(tf.mul(prev, alpha), tf.mul(g, 1 - alpha)));
    mu.set(name, m);
    out.set(name, amplify ? tf.tidy(() => tf.add(g, tf.mul(m, lambda))) : tf.clone(g));
  }
  return { grads: out, state: mu };
}

/** MA state: the last gradients per parameter (oldest first), their running sum, and steps seen. */
export interface MaState {
  history: Map<string, tf.Tensor[]>;
  sum: Map<string, tf.Tensor>;
  count: number;
}

/**
 * One MA step: pushes g, drops the oldest beyond `window`, and once the window is full
 * returns g + lambda * mean(window). The running sum is recomputed from the window once
 * per `window` steps, so float error cannot accumulate. The old state's sums are the
 * caller's to dispose; its history tensors move into the new state.
 */
export function maStep(
  grads: GradMap,
  state: MaState | undefined,
  window: number,
  lambda: number,
  amplify = true,
): { grads: GradMap; state: MaState } {
  const count = (state?.count ?? 0) + 1;
  const next: MaState = { history: new Map(), sum: new Map(), count };
  const out: GradMap = new Map();
  for (const [name, g] of grads) {
    const hist = [...(state?.history.get(name) ?? []), tf.clone(g)];
    const dropped = hist.length > window ? hist.shift() : undefined;
    const prev = state?.sum.get(name);
    const sum = !prev ? tf.clone(g) : count % window === 0
      ? tf.addN(hist) // exact refresh
      : tf.tidy(() => (dropped ? tf.sub(tf.add(prev, g), dropped) : tf.add(prev, g)));
    dropped?.dispose();
    next.history.set(name, hist);
    next.sum.set(name, sum);
    const full = hist.length === window;
    out.set(name, tf.tidy(() => (amplify && full ? tf.add(g, tf.mul(sum, lambda / window)) : tf.clone(g))));
  }
  // Parameters without a gradient this step keep their window (and sum) unchanged.
  for (const [name, hist] of state?.history ?? []) {
    if (grads.has(name)) continue;
    next.history.set(name, hist);
    next.sum.set(name, tf.clone(state!.sum.get(name)!));
  }
  return { grads: out, state: next };
}

/** A trainer gradient filter with its state (saved in checkpoints); `dispose` frees the state. */
export interface StatefulGradFilter extends PersistentGradFilter {
  filter: GradFilter;
  /** Steps seen so far. */
  steps(): number;
  dispose(): void;
}

/** The trainer hook for `opts`: amplifies from step `warmup` on, keeping state between calls. */
export function makeGradFilter(opts: GrokfastOptions): StatefulGradFilter {
  validateGrokfast(opts);
  let ema: EmaState;
  let ma: MaState | undefined;
  let seen = 0;
  const filter: GradFilter = (grads, step) => {
    const amplify = step >= opts.warmup;
    seen += 1;
    if (opts.kind === "ema") {
      const r = emaStep(grads, ema, opts.alpha, opts.lambda, amplify);
      if (ema) tf.dispose([...ema.values()]);
      ema = r.state;
      return r.grads;
    }
    const r = maStep(grads, ma, opts.window, opts.lambda, amplify);
    if (ma) tf.dispose([...ma.sum.values()]); // history tensors carry over into r.state
    ma = r.state;
    return r.grads;
  };
  const host = async (t: tf.Tensor): Promise<HostTensor> => ({ shape: t.shape.slice(), data: (await t.data()) as Float32Array });
  return {
    filter,
    steps: () => seen,
    /** `ema.<param>`, or `ma.<param>.<i>` (oldest first) plus `ma.count`; and `seen`. */
    async toHost() {
      const out = new Map<string, HostTensor>([["seen", { shape: [1], data: Float32Array.of(seen) }]]);
      for (const [name, t] of ema ?? []) out.set(`ema.${name}`, await host(t));
      if (ma) {
        out.set("ma.count", { shape: [1], data: Float32Array.of(ma.count) });
        for (const [name, hist] of ma.history) for (const [i, t] of hist.entries()) out.set(`ma.${name}.${i}`, await host(t));
      }
      return out;
    },
    load(state) {
      this.dispose();
      seen = state.get("seen")?.data[0] ?? 0;
      const tensor = (h: HostTensor) => tf.tensor(h.data, h.shape, "float32");
      if (opts.kind === "ema") {
        ema = new Map();
        for (const [k, h] of state) if (k.startsWith("ema.")) ema.set(k.slice(4), tensor(h));
        if (!ema.size) ema = undefined;
        return;
      }
      const history = new Map<string, tf.Tensor[]>();
      for (const [k, h] of state) {
        const m = /^ma\.(.+)\.(\d+)$/.exec(k);
        if (!m) continue;
        const list = history.get(m[1]) ?? [];
        list[Number(m[2])] = tensor(h);
        history.set(m[1], list);
      }
      if (!history.size) return;
      const sum = new Map([...history].map(([name, hist]) => [name, tf.addN(hist)] as [string, tf.Tensor]));
      ma = { history, sum, count: state.get("ma.count")?.data[0] ?? 0 };
    },
    dispose() {
      if (ema) tf.dispose([...ema.values()]);
      if (ma) tf.dispose([...ma.sum.values(), ...[...ma.history.values()].flat()]);
      ema = undefined;
      ma = undefined;
    },
  };
}

/** The `training.grokfast` section's defaults (the paper's EMA: alpha 0.98, lambda 2), off. */
export const GROKFAST_SECTION_DEFAULTS = { enabled: false, kind: "ema", alpha: 0.98, lambda: 2, window: 100, warmup: 0 } as const;

/** A grokfast config section (`training.grokfast`, phase 3's `grokfast`) with its own defaults. */
export function grokfastSection(
  d: { enabled: boolean; kind: "ema" | "ma"; alpha: number; lambda: number; window: number; warmup: number },
) {
  return z.strictObject({
    enabled: z.boolean().default(d.enabled), // filter the gradients at all
    kind: z.enum(["ema", "ma"]).default(d.kind), // exponential or windowed moving average
    alpha: z.number().min(0).max(0.9999).default(d.alpha), // EMA decay
    lambda: z.number().min(0).default(d.lambda), // amplification of the slow gradient
    window: z.number().int().min(1).default(d.window), // MA window in steps
    warmup: z.number().int().min(0).default(d.warmup), // steps before the filter amplifies (its state still accumulates)
  });
}

/** The `training.grokfast` section of the pipeline config. */
export const GrokfastSection = grokfastSection(GROKFAST_SECTION_DEFAULTS);
export type GrokfastSection = z.infer<typeof GrokfastSection>;

/** The filter a config section asks for, or undefined when it is disabled: what phases pass to `train`. */
export function grokfastFromConfig(section: GrokfastSection): StatefulGradFilter | undefined {
  if (!section.enabled) return undefined;
  const { kind, alpha, lambda, window, warmup } = section;
  return makeGradFilter({ kind, alpha, lambda, window, warmup });
}
