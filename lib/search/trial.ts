/**
 * One job of a search: phase N of a copy of the base run at the job's `--set` overrides, scored.
 * The same function runs a job in-process and on a worker (lib/search/queue.ts), so both give the
 * same numbers.
 *
 * A job is idempotent and resumable:
 * - its outcome is written atomically to `trials/<name>.outcome.json`; a job whose outcome is
 *   there returns it without running again;
 * - its run directory `trials/<name>/` is made from a complete copy (copied to `<name>.part`,
 *   phase N reset to pending, then renamed), so a directory that exists is whole; a job that
 *   finds one continues its phase from the last checkpoint of the attempt that was killed.
 */
import { join } from "node:path";
import type { BackendRequest } from "../backend/mod.ts";
import { loadModel } from "../models/io.ts";
import { validationContext } from "../evolve/breed.ts";
import type { PhaseSpec } from "../phases/spec.ts";
import { openRun, runPhase } from "../pipeline/session.ts";
import { exists, readJson, writeJsonAtomic } from "../util/fs.ts";
import { dropMetrics, MODEL_FILE, phaseDir, readState, RUN_FILES, writeState } from "../util/run_dir.ts";

/** What any process needs to run a job of a search (all of it is in search.json). */
export interface TrialContext {
  /** The search's identity (made once with its search.json): a queue tells its jobs from an earlier search's in the same folder. */
  id?: string;
  /** The search directory (shared storage: every worker reads and writes it at this path). */
  out: string;
  baseRun: string;
  phase: number;
  metric: string;
  objective: "validation" | "result";
}

/** A job: its name (`default`, or `t<trial>-r<rung>`) and its config overrides. */
export interface TrialJob {
  name: string;
  sets: string[];
}

/** A finished job: the objective's score, result.json's metric, and the seconds of the attempt that finished it. */
export interface TrialOutcome {
  score: number;
  heldout: number;
  seconds: number;
}

/** The number at a dotted path of result metrics (NaN when absent or not a number). */
export function metricAt(metrics: Record<string, unknown>, path: string): number {
  let v: unknown = metrics;
  for (const k of path.split(".")) v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[k] : undefined;
  return typeof v === "number" ? v : NaN;
}

/** An outcome as JSON carries it (a file, a queue's return value): a score of -Infinity (a failed or non-finite objective) comes back as null. */
export function outcomeFromJson(o: { score: number | null; heldout: number | null; seconds: number }): TrialOutcome {
  return { score: o.score ?? -Infinity, heldout: o.heldout ?? NaN, seconds: o.seconds };
}

export const outcomeFile = (c: TrialContext, name: string) => join(c.out, "trials", `${name}.outcome.json`);

/** `base` copied to `dir` with phase `spec` reset to pending (its folder, state and metrics), whole or not at all. */
async function freshCopy(base: string, dir: string, spec: PhaseSpec): Promise<void> {
  const part = `${dir}.part`;
  await Deno.remove(part, { recursive: true }).catch(() => {});
  const cp = await new Deno.Command("cp", { args: ["-r", base, part] }).output();
  if (!cp.success) throw new Error(`search: could not copy ${base} to ${part}: ${new TextDecoder().decode(cp.stderr)}`);
  await Deno.remove(join(part, RUN_FILES.lock)).catch(() => {});
  await Deno.remove(phaseDir(part, spec), { recursive: true }).catch(() => {});
  const state = await readState(part);
  if (state) {
    state.phases[String(spec.id)] = { name: spec.name, status: "pending" };
    await writeState(part, state);
  }
  await dropMetrics(part, spec.id);
  await Deno.rename(part, dir);
}

/**
 * Runs (or finishes, or returns the outcome of) one job. `takeOverLock`: the caller holds the
 * job exclusively (a queue's lock), so a run.lock left in the trial's folder by a killed attempt
 * on another machine is removed rather than waited on.
 */
export async function runTrial(
  c: TrialContext,
  job: TrialJob,
  opts: { phases: readonly PhaseSpec[]; backend?: BackendRequest; takeOverLock?: boolean },
): Promise<TrialOutcome> {
  const done = outcomeFile(c, job.name);
  if (await exists(done)) return outcomeFromJson(await readJson(done));
  const spec = opts.phases.find((p) => p.id === c.phase);
  if (!spec) throw new Error(`search: phase ${c.phase} is not registered`);
  const t0 = performance.now();
  const dir = join(c.out, "trials", job.name);
  if (!(await exists(dir))) await freshCopy(c.baseRun, dir, spec);
  else if (opts.takeOverLock) await Deno.remove(join(dir, RUN_FILES.lock)).catch(() => {});
  const { run: { preset } } = await readJson<{ run: { preset: string } }>(join(c.baseRun, RUN_FILES.config));
  const run = await openRun({ runDir: dir, preset, sets: job.sets, phases: opts.phases, backend: opts.backend, log: () => {} });
  const r = await runPhase(run, c.phase, { live: false });
  await writeJsonAtomic(join(c.out, "trials", `${job.name}.json`), r);
  const heldout = metricAt(r.metrics, c.metric);
  let score = heldout;
  if (c.objective === "validation") {
    const file = r.artifacts.find((a) => a.endsWith(MODEL_FILE));
    if (!file) throw new Error(`search: phase ${c.phase}'s result lists no model file to evaluate on validation`);
    const { model } = await loadModel(join(dir, file));
    try {
      const rec = await spec.stage!.evaluate(model, validationContext(run.config, c.phase));
      if (!(c.metric in rec)) {
        throw new Error(
          `search: phase ${c.phase}'s stage evaluation reports ${Object.keys(rec).join(", ")}, not '${c.metric}'; ` +
            `use one of those, or --objective result to score result.json's '${c.metric}'`,
        );
      }
      score = rec[c.metric];
    } finally {
      model.dispose();
    }
  }
  const outcome: TrialOutcome = { score: Number.isFinite(score) ? score : -Infinity, heldout, seconds: (performance.now() - t0) / 1000 };
  await writeJsonAtomic(done, outcome);
  await Deno.remove(dir, { recursive: true });
  return outcome;
}
