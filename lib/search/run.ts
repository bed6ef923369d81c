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
 *
 * Jobs run through an `Executor`: in this process by default, or on workers over a queue
 * (lib/search/queue.ts). Up to `parallel` jobs are in flight, and job n is decided on the results
 * of jobs 0..n-parallel only (all jobs before n when those give nothing to do), so the schedule,
 * trials and scores are a function of the options alone: the same whether one process or many
 * workers run it, and in whatever order the jobs finish.
 */
import { join, resolve } from "node:path";
import type { BackendRequest } from "../backend/mod.ts";
import { PHASES } from "../phases/mod.ts";
import type { PhaseSpec } from "../phases/spec.ts";
import { exists, readJson, writeJsonAtomic } from "../util/fs.ts";
import { deriveSeed, Rng } from "../util/rng.ts";
import { type AshaOptions, nextJob, resourceSpent, rungResources, topResult, type TrialRecord } from "./asha.ts";
import { type Params, sampleRandom, type Space, suggest } from "./space.ts";
import { runTrial, type TrialContext, type TrialJob, type TrialOutcome } from "./trial.ts";

/** Runs a search's jobs: `run` resolves with the job's outcome (lib/search/trial.ts). */
export interface Executor {
  run(c: TrialContext, job: TrialJob): Promise<TrialOutcome>;
  close?(): Promise<void>;
}

/** Runs jobs in this process, one at a time, in the order they are handed over. */
export function inProcess(opts: { phases: readonly PhaseSpec[]; backend?: BackendRequest }): Executor {
  let chain: Promise<unknown> = Promise.resolve();
  return {
    run(c, job) {
      const p = chain.then(() => runTrial(c, job, opts));
      chain = p.catch(() => {});
      return p;
    },
  };
}

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
  /** Jobs in flight at once (default 1); part of the search's identity, since it shapes the schedule. */
  parallel?: number;
  /** Where jobs run (default: in this process, `inProcess`). */
  executor?: Executor;
  backend?: BackendRequest;
  /** Phase registry (default PHASES; tests pass their own). */
  phases?: readonly PhaseSpec[];
  log?: (line: string) => void;
  /** Stop after this many rungs finish in this call (a test's stand-in for a kill). */
  maxJobs?: number;
}

/** A job the search handed out: job n, in the order decided. `trial` is absent for the baseline. */
export interface SearchJob extends TrialJob {
  n: number;
  trial?: number;
  rung: number;
  resource: number;
  done: boolean;
}

/** What search.json holds. */
export interface SearchState {
  version: 2;
  /** Made once, with the search: its jobs' ids on a queue (lib/search/queue.ts). */
  id: string;
  phase: number;
  metric: string;
  objective: "validation" | "result";
  space: Space;
  resourceKey: string;
  asha: AshaOptions;
  sampler: "random" | "tpe";
  seed: number;
  parallel: number;
  baseRun: string;
  /** The default config at the largest resource. */
  baseline?: { resource: number; score: number; heldout: number };
  trials: TrialRecord[];
  /** Every job handed out, in order; a killed search hands its unfinished ones out again. */
  queue: SearchJob[];
  /** Rungs finished, the baseline included. */
  jobs: number;
  done: boolean;
}

const STATE = "search.json";

/** The search's options and identity as search.json records them (for a new search, or to check a resumed one). */
function newState(o: SearchOptions, metric: string, objective: "validation" | "result", parallel: number): SearchState {
  return {
    version: 2,
    id: crypto.randomUUID(),
    phase: o.phase,
    metric,
    objective,
    space: o.space,
    resourceKey: o.resourceKey,
    asha: o.asha,
    sampler: o.sampler,
    seed: o.seed,
    parallel,
    baseRun: resolve(o.baseRun),
    trials: [],
    queue: [],
    jobs: 0,
    done: false,
  };
}

/** Runs (or resumes) the search in `o.out`; returns the state when the trial budget is spent or `maxJobs` rungs finished. */
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
  const parallel = o.parallel ?? 1;
  if (!Number.isInteger(parallel) || parallel < 1) throw new Error(`search: parallel = ${parallel}, expected an integer >= 1`);
  rungResources(o.asha); // validates
  const file = join(o.out, STATE);
  let state = newState(o, metric, objective, parallel);
  if (await exists(file)) {
    const stored = await readJson<SearchState>(file);
    if (stored.version !== 2) {
      throw new Error(`${file}: a search.json of version ${stored.version} (before parallel jobs); choose another --out`);
    }
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const keys = ["space", "phase", "metric", "objective", "asha", "seed", "sampler", "parallel", "resourceKey"] as const;
    const differ = keys.filter((k) => !same(stored[k], state[k]));
    if (differ.length) throw new Error(`${file}: a search with other options is there (${differ.join(", ")} differ); choose another --out`);
    state = stored;
    log(`search: resuming ${file} (${state.trials.length} trials, ${state.jobs} rungs finished)`);
  } else await Deno.mkdir(join(o.out, "trials"), { recursive: true });
  const save = () => writeJsonAtomic(file, state);
  const ctx: TrialContext = { id: state.id, out: resolve(o.out), baseRun: state.baseRun, phase: o.phase, metric, objective };
  const exec = o.executor ?? inProcess({ phases, backend: o.backend });
  const top = o.asha.maxResource;
  const setsOf = (p: Params, resource: number) => [...Object.entries(p).map(([k, v]) => `${k}=${v}`), `${o.resourceKey}=${resource}`];

  /** The trials as known from jobs 0..h: later results hidden, later trials present with none (they count toward maxTrials). */
  const view = (h: number): TrialRecord[] => state.trials.map((t) => ({ ...t, results: t.results.filter((r) => (r.job ?? -1) <= h) }));
  const issued = (trial: number, rung: number) => state.queue.some((j) => j.trial === trial && j.rung === rung);
  /** Job n (the next), or undefined while the results it is decided on are not all in, or null when the search is over. */
  const decide = (): SearchJob | null | undefined => {
    const n = state.queue.length;
    if (n === 0) {
      return { n, name: "default", sets: [`${o.resourceKey}=${top}`], rung: rungResources(o.asha).length - 1, resource: top, done: false };
    }
    const pending = (upTo: number) => state.queue.some((j) => !j.done && j.n <= upTo);
    if (pending(n - parallel)) return undefined;
    const known = view(n - parallel);
    let job = nextJob(known, o.asha, issued);
    if (!job) {
      if (pending(n - 1)) return undefined; // decided once every job before it is in
      job = nextJob(view(n - 1), o.asha, issued);
      if (!job) return null;
    }
    let trial: number;
    if (job.kind === "new") {
      trial = state.trials.length;
      const rng = new Rng(deriveSeed(o.seed, `trial-${trial}`));
      const history = known.flatMap((t) => {
        const r0 = t.results.find((x) => x.rung === 0);
        return r0 ? [{ params: t.params, score: r0.score }] : [];
      });
      const params = o.sampler === "tpe" ? suggest(o.space, history, rng) : sampleRandom(o.space, rng);
      state.trials.push({ id: trial, params, results: [] });
    } else trial = job.trial;
    const params = state.trials[trial].params;
    return {
      n,
      name: `t${trial}-r${job.rung}`,
      sets: setsOf(params, job.resource),
      trial,
      rung: job.rung,
      resource: job.resource,
      done: false,
    };
  };

  const inflight = new Map<number, Promise<{ job: SearchJob; out: TrialOutcome }>>();
  let ran = 0;
  const budget = () => o.maxJobs === undefined || ran + inflight.size < o.maxJobs;
  const start = (job: SearchJob) => inflight.set(job.n, exec.run(ctx, job).then((out) => ({ job, out })));
  const record = (job: SearchJob, out: TrialOutcome) => {
    if (job.trial === undefined) {
      state.baseline = { resource: job.resource, score: out.score, heldout: out.heldout };
      log(
        `search: default config at ${o.resourceKey}=${job.resource}: ${objective} ${metric} ${out.score}, held-out ${out.heldout} (${
          out.seconds.toFixed(1)
        } s)`,
      );
    } else {
      const t = state.trials[job.trial];
      t.results.push({ rung: job.rung, resource: job.resource, score: out.score, heldout: out.heldout, seconds: out.seconds, job: job.n });
      t.results.sort((a, b) => a.rung - b.rung);
      log(
        `search: trial ${t.id} rung ${job.rung} (${o.resourceKey}=${job.resource}): ${objective} ${metric} ${out.score}, held-out ${out.heldout} ${
          JSON.stringify(t.params)
        }`,
      );
    }
    job.done = true;
    state.jobs++, ran++;
  };

  try {
    for (const j of state.queue) if (!j.done && budget()) start(j);
    while (true) {
      while (budget()) {
        const job = decide();
        if (job === null) {
          state.done = true;
          await save();
          return state;
        }
        if (job === undefined) break;
        state.queue.push(job);
        await save();
        start(job);
      }
      if (!inflight.size) break;
      const { job, out } = await Promise.race(inflight.values());
      inflight.delete(job.n);
      record(job, out);
      await save();
    }
  } finally {
    // A failed job leaves the others running; wait for them so none writes after we return.
    await Promise.allSettled(inflight.values());
    if (!o.executor) await exec.close?.();
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
