/**
 * A hyper-parameter search over one phase: trials are configs (a point of the space, as `--set`
 * overrides) of phase N, run on copies of a base run directory whose phases 1..N-1 are done, at
 * an ASHA-chosen resource (a config key such as `phases.2.steps`). Higher is better. The
 * objective is, by default, the phase's stage metric on a validation context (the stage's own
 * evaluation of the trained model at another seed than its held-out set, lib/evolve/breed.ts),
 * so the search does not select on the held-out set the report shows; each rung also records the
 * result.json metric (`heldout`) beside it. `objective: "result"` scores result.json's metric
 * (`metric`, a dotted path) instead, for phases without a stage.
 *
 * The search directory holds `search.json` (the options and every finished rung, written
 * atomically after each), `trials/t<id>-r<rung>.json` (each rung's result.json) and, from
 * `searchReport`, `report.html`. A killed search resumes from `search.json`: finished rungs are
 * kept and an interrupted one runs again; samples come from per-trial seeds, so a resumed search
 * proposes what the uninterrupted one would.
 *
 * The default config (no overrides) at the largest resource is scored first, as the baseline.
 */
import { join } from "node:path";
import type { BackendRequest } from "../backend/mod.ts";
import { PHASES } from "../phases/mod.ts";
import type { PhaseSpec } from "../phases/spec.ts";
import { openRun, runPhase } from "../pipeline/session.ts";
import { exists, readJson, writeJsonAtomic } from "../util/fs.ts";
import { deriveSeed, Rng } from "../util/rng.ts";
import { MODEL_FILE } from "../util/run_dir.ts";
import { loadModel } from "../models/io.ts";
import { validationContext } from "../evolve/breed.ts";
import { type AshaOptions, nextJob, resourceSpent, rungResources, topResult, type TrialRecord } from "./asha.ts";
import { type Params, sampleRandom, type Space, suggest } from "./space.ts";

export interface SearchOptions {
  /** A run directory whose phases before `phase` completed (copied for every trial, never changed). */
  baseRun: string;
  phase: number;
  /** Dotted path into the phase's result metrics (default: the phase's stage metric). */
  metric?: string;
  /** `validation` (default for a phase with a stage): the stage's evaluation on a validation context; `result`: result.json's metric. */
  objective?: "validation" | "result";
  space: Space;
  /** The config key ASHA sets to each rung's resource (e.g. phases.2.steps). */
  resourceKey: string;
  asha: AshaOptions;
  sampler: "random" | "tpe";
  seed: number;
  /** The search directory. */
  out: string;
  backend?: BackendRequest;
  /** Phase registry (default PHASES; tests pass their own). */
  phases?: readonly PhaseSpec[];
  log?: (line: string) => void;
  /** Stop after this many rungs run in this call (a test's stand-in for a kill). */
  maxJobs?: number;
}

/** What search.json holds. */
export interface SearchState {
  version: 1;
  phase: number;
  metric: string;
  objective: "validation" | "result";
  space: Space;
  resourceKey: string;
  asha: AshaOptions;
  sampler: "random" | "tpe";
  seed: number;
  baseRun: string;
  /** The default config at the largest resource. */
  baseline?: { resource: number; score: number; heldout: number };
  trials: TrialRecord[];
  /** Rungs run, the baseline included. */
  jobs: number;
  done: boolean;
}

const STATE = "search.json";

/** The number at a dotted path of result metrics (NaN when absent or not a number). */
export function metricAt(metrics: Record<string, unknown>, path: string): number {
  let v: unknown = metrics;
  for (const k of path.split(".")) v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[k] : undefined;
  return typeof v === "number" ? v : NaN;
}

/** Runs (or resumes) the search in `o.out`; returns the state when the trial budget is spent or `maxJobs` rungs ran. */
export async function runSearch(o: SearchOptions): Promise<SearchState> {
  const log = o.log ?? ((l: string) => console.log(l));
  const phases = o.phases ?? PHASES;
  const spec = phases.find((p) => p.id === o.phase);
  if (!spec) throw new Error(`search: phase ${o.phase} is not registered`);
  const metric = o.metric ?? spec.stage?.metric;
  if (!metric) throw new Error(`search: phase ${o.phase} has no stage metric; give --metric`);
  const objective = o.objective ?? (spec.stage ? "validation" : "result");
  if (objective === "validation" && !spec.stage) {
    throw new Error(`search: phase ${o.phase} has no stage to evaluate on validation; use objective "result"`);
  }
  rungResources(o.asha); // validates
  const baseCfg = await readJson<{ run: { preset: string } }>(join(o.baseRun, "config.json"));
  const file = join(o.out, STATE);
  let state: SearchState;
  if (await exists(file)) {
    state = await readJson<SearchState>(file);
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    if (
      !same(state.space, o.space) || state.phase !== o.phase || state.metric !== metric || state.objective !== objective ||
      !same(state.asha, o.asha) || state.seed !== o.seed
    ) {
      throw new Error(`${file}: a search with other options is there (phase, metric, space, ASHA or seed differ); choose another --out`);
    }
    log(`search: resuming ${file} (${state.trials.length} trials, ${state.jobs} rungs run)`);
  } else {
    await Deno.mkdir(join(o.out, "trials"), { recursive: true });
    state = {
      version: 1,
      phase: o.phase,
      metric,
      objective,
      space: o.space,
      resourceKey: o.resourceKey,
      asha: o.asha,
      sampler: o.sampler,
      seed: o.seed,
      baseRun: o.baseRun,
      trials: [],
      jobs: 0,
      done: false,
    };
  }
  const save = () => writeJsonAtomic(file, state);

  /** Phase `o.phase` on a fresh copy of the base run with `sets`: its score (the objective) and result.json's metric. */
  const runTrial = async (name: string, sets: string[]): Promise<{ score: number; heldout: number }> => {
    const dir = join(o.out, "trials", name);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    const cp = await new Deno.Command("cp", { args: ["-r", o.baseRun, dir] }).output();
    if (!cp.success) throw new Error(`search: could not copy ${o.baseRun} to ${dir}: ${new TextDecoder().decode(cp.stderr)}`);
    const run = await openRun({ runDir: dir, preset: baseCfg.run.preset, sets, phases, backend: o.backend, log: () => {} });
    const r = await runPhase(run, o.phase, { rerun: true, live: false });
    await writeJsonAtomic(join(o.out, "trials", `${name}.json`), r);
    const heldout = metricAt(r.metrics, metric);
    let score = heldout;
    if (objective === "validation") {
      const file = r.artifacts.find((a) => a.endsWith(MODEL_FILE));
      if (!file) throw new Error(`search: phase ${o.phase}'s result lists no model file to evaluate on validation`);
      const { model } = await loadModel(join(dir, file));
      try {
        const rec = await spec.stage!.evaluate(model, validationContext(run.config, o.phase));
        if (!(metric in rec)) {
          throw new Error(
            `search: phase ${o.phase}'s stage evaluation reports ${Object.keys(rec).join(", ")}, not '${metric}'; ` +
              `use one of those, or --objective result to score result.json's '${metric}'`,
          );
        }
        score = rec[metric];
      } finally {
        model.dispose();
      }
    }
    await Deno.remove(dir, { recursive: true });
    return { score: Number.isFinite(score) ? score : -Infinity, heldout };
  };
  const setsOf = (p: Params, resource: number) => [...Object.entries(p).map(([k, v]) => `${k}=${v}`), `${o.resourceKey}=${resource}`];
  let ran = 0;
  const budget = () => o.maxJobs === undefined || ran < o.maxJobs;

  const top = o.asha.maxResource;
  if (!state.baseline && budget()) {
    const t0 = performance.now();
    const r = await runTrial("default", [`${o.resourceKey}=${top}`]);
    state.baseline = { resource: top, score: r.score, heldout: r.heldout };
    state.jobs++, ran++;
    await save();
    log(
      `search: default config at ${o.resourceKey}=${top}: ${objective} ${metric} ${state.baseline.score}, held-out ${state.baseline.heldout} (${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s)`,
    );
  }
  while (budget()) {
    const job = nextJob(state.trials, o.asha);
    if (!job) {
      state.done = true;
      await save();
      break;
    }
    let trial: TrialRecord;
    if (job.kind === "new") {
      const id = state.trials.length;
      const rng = new Rng(deriveSeed(o.seed, `trial-${id}`));
      const history = state.trials.map((t) => ({ params: t.params, score: t.results.find((x) => x.rung === 0)?.score ?? NaN }));
      const params = o.sampler === "tpe" ? suggest(o.space, history, rng) : sampleRandom(o.space, rng);
      trial = { id, params, results: [] };
    } else trial = state.trials[job.trial];
    const t0 = performance.now();
    const { score, heldout } = await runTrial(`t${trial.id}-r${job.rung}`, setsOf(trial.params, job.resource));
    if (job.kind === "new") state.trials.push(trial);
    trial.results.push({ rung: job.rung, resource: job.resource, score, heldout, seconds: (performance.now() - t0) / 1000 });
    state.jobs++, ran++;
    await save();
    log(
      `search: trial ${trial.id} rung ${job.rung} (${o.resourceKey}=${job.resource}): ${objective} ${metric} ${score}, held-out ${heldout} ${
        JSON.stringify(trial.params)
      }`,
    );
  }
  return state;
}

/** The best trial at the top rung (or the highest rung any reached) and what the search spent. */
export function searchSummary(s: SearchState): {
  best?: { id: number; params: Params; score: number; rung: number; heldout?: number };
  spent: number;
  everyTrialToTheEnd: number;
  baseline?: number;
  baselineHeldout?: number;
} {
  let best: { id: number; params: Params; score: number; rung: number; heldout?: number } | undefined;
  for (const t of s.trials) {
    const r = topResult(t);
    if (!r) continue;
    if (!best || r.rung > best.rung || (r.rung === best.rung && r.score > best.score)) {
      best = { id: t.id, params: t.params, score: r.score, rung: r.rung, heldout: r.heldout };
    }
  }
  return {
    best,
    spent: resourceSpent(s.trials),
    everyTrialToTheEnd: s.trials.length * s.asha.maxResource,
    baseline: s.baseline?.score,
    baselineHeldout: s.baseline?.heldout,
  };
}
