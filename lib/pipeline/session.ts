/**
 * The notebooks' handle on a run directory: open (or create) a run at a preset, run a phase
 * through the PhaseController, first running any earlier phase whose result is missing (so a
 * notebook opened on its own works, and running the notebooks in order reproduces the
 * pipeline), and read results and metrics back.
 *
 * The run directory is the CLI's (config.json, state.json, metrics.jsonl,
 * phase-N-<name>/result.json, report.html), so `deno task pipeline --resume DIR` and the
 * notebooks can continue each other's runs. Phases run with the repository root as working
 * directory, as the CLI does, so relative paths in the config (pipeline.baseline_file,
 * phases.1.corpus) mean the same in both.
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type BackendRequest, initBackend } from "../backend/mod.ts";
import { type PipelineConfig, type Preset, PRESETS, resolveConfig } from "../config/config.ts";
import { PHASES } from "../phases/mod.ts";
import { PHASE_NAMES, type PhaseSpec } from "../phases/spec.ts";
import { exists, readJson } from "../util/fs.ts";
import {
  dropMetrics,
  type MetricRecord,
  newRunState,
  phaseDir as phaseFolder,
  type PhaseResultFile,
  readMetrics,
  readResult,
  readState,
  RUN_FILES,
  type RunState,
  writeRunConfig,
  writeState,
} from "../util/run_dir.ts";
import { RunLockedError, withRunLock } from "../util/run_lock.ts";
import { inJupyter, LiveFigure, settle } from "../viz/notebook.ts";
import { metricCurves } from "../viz/figures.ts";
import { type PageSection, phaseSections, writeReport } from "../viz/report.ts";
import { PhaseController } from "./controller.ts";

/** How a notebook names itself in run.lock. */
const NOTEBOOK_COMMAND = `notebook session (lib/pipeline/session.ts, ${Deno.args.length ? Deno.args.join(" ") : "Jupyter kernel"})`;

/** The repository root (where the CLI runs, and what relative config paths are relative to). */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Environment variables the notebooks' first cell reads (`deno task nb` and the tests set them). */
export const NB_ENV = {
  /** Preset: tiny | small | seed. */
  preset: "AGENT_FORGE_PRESET",
  /** Run directory shared by the notebooks. */
  runDir: "AGENT_FORGE_RUN_DIR",
  /** Config overrides `key.path=value`, separated by `;`. */
  sets: "AGENT_FORGE_SET",
} as const;

export interface OpenRunOptions {
  /** Run directory; created when missing, reopened otherwise. "" = `runs/notebooks-<preset>` in the repository. */
  runDir: string;
  /** Preset of a new run (default small); an existing run must have been made with the same one. */
  preset?: string;
  /** Config overrides `key.path=value` (as `--set`), applied over the run's config and saved in config.json. */
  sets?: string[];
  /** The phase registry (default lib/phases/mod.ts PHASES; tests pass their own). */
  phases?: readonly PhaseSpec[];
  /** tfjs backend (default: the config's run.backend, i.e. auto). */
  backend?: BackendRequest;
  /** Progress lines (default console.log, which a notebook shows under the cell). */
  log?: (line: string) => void;
}

/** An open run directory. */
export interface Run {
  /** Absolute path of the run directory. */
  runDir: string;
  preset: Preset;
  /** The run's resolved config (what config.json holds). */
  config: PipelineConfig;
  phases: readonly PhaseSpec[];
  log: (line: string) => void;
}

/**
 * Reads the first cell's settings with the environment's overrides: AGENT_FORGE_PRESET replaces
 * the preset, AGENT_FORGE_RUN_DIR the run directory, AGENT_FORGE_SET (`k=v;k=v`) is appended to sets.
 */
export function notebookSettings(cell: { preset: string; runDir: string; sets: string[] }): OpenRunOptions {
  const env = (k: string) => {
    const v = Deno.env.get(k);
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  };
  const extra = env(NB_ENV.sets)?.split(";").map((s) => s.trim()).filter(Boolean) ?? [];
  return { preset: env(NB_ENV.preset) ?? cell.preset, runDir: env(NB_ENV.runDir) ?? cell.runDir, sets: [...cell.sets, ...extra] };
}

function checkPreset(p: string | undefined): Preset {
  const preset = p ?? "small";
  if (!PRESETS.includes(preset as Preset)) throw new Error(`preset '${preset}': expected one of ${PRESETS.join(", ")}`);
  return preset as Preset;
}

/** Dotted keys whose values differ between two configs (`phases.N` once for a whole new section). */
export function configChanges(before: unknown, after: unknown, path = ""): string[] {
  const obj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (obj(before) && obj(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    return keys.flatMap((k) => {
      const key = path ? `${path}.${k}` : k;
      if (!(k in before)) return [`${key} (new)`];
      return configChanges(before[k], after[k], key);
    });
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [`${path}: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`];
}

/**
 * Opens the run directory `runDir`, creating it when needed: a new run's config is resolved
 * from the preset (and `sets`) and written to config.json; an existing run keeps its config
 * (sets applied on top, sections of newly registered phases added at the run's preset) and
 * must have been made with the requested preset. Initialises the backend.
 */
export async function openRun(opts: OpenRunOptions): Promise<Run> {
  const preset = checkPreset(opts.preset);
  const phases = opts.phases ?? PHASES;
  const log = opts.log ?? ((l: string) => console.log(l));
  const runDir = resolve(opts.runDir || join(ROOT, "runs", `notebooks-${preset}`));
  const cfgFile = join(runDir, RUN_FILES.config);
  let config: PipelineConfig;
  if (await exists(cfgFile)) {
    const stored = await readJson<PipelineConfig>(cfgFile);
    const made = stored.run?.preset;
    if (made !== preset) {
      throw new Error(
        `${runDir} holds a run made with preset '${made}', not '${preset}': open it with preset '${made}' or choose another run directory`,
      );
    }
    config = resolveConfig({ preset, file: { path: cfgFile, data: stored }, sets: opts.sets, phases });
    const changes = configChanges(stored, config);
    if (changes.length) {
      await withRunLock(runDir, NOTEBOOK_COMMAND, () => writeRunConfig(runDir, config), log);
      log(`config.json updated (${changes.join("; ")}); phases already run keep the results of their old config`);
    }
    log(`run directory ${runDir} (preset ${preset}, reopened)`);
  } else {
    config = resolveConfig({ preset, sets: opts.sets, phases });
    await withRunLock(runDir, NOTEBOOK_COMMAND, () => writeRunConfig(runDir, config), log);
    log(`run directory ${runDir} (preset ${preset}, new)`);
  }
  await initBackend(opts.backend ?? config.run.backend);
  const run: Run = { runDir, preset, config, phases, log };
  try {
    await withRunLock(runDir, NOTEBOOK_COMMAND, async () => await saveState(run, await runState(run)), log);
  } catch (e) {
    if (!(e instanceof RunLockedError)) throw e;
    log(`opened for reading only: ${e.message}`);
  }
  await settle();
  return run;
}

/** The registered phase `id`, or an error naming what is registered. */
export function phaseSpec(run: Run, id: number): PhaseSpec {
  const p = run.phases.find((x) => x.id === id);
  if (!p) {
    const have = run.phases.map((x) => `${x.id} (${x.name})`).join(", ") || "none";
    throw new Error(`phase ${id} (${PHASE_NAMES[id] ?? "unknown"}) is not registered in lib/phases/mod.ts; registered: ${have}`);
  }
  return p;
}

/** The folder of phase `id` in the run. */
export function phaseDir(run: Run, id: number): string {
  return phaseFolder(run.runDir, phaseSpec(run, id));
}

/** result.json of phase `id` (completed or failed), or undefined when the phase has not run. */
export async function phaseResult(run: Run, id: number): Promise<PhaseResultFile | undefined> {
  return await readResult(run.runDir, phaseSpec(run, id));
}

async function completed(run: Run, id: number): Promise<PhaseResultFile | undefined> {
  const r = await phaseResult(run, id);
  return r?.status === "completed" ? r : undefined;
}

/**
 * The run's state.json, or a fresh state when there is none; phases whose result.json exists but
 * that the state does not list (a notebook run interrupted mid-phase) are added back from their results.
 */
export async function runState(run: Run): Promise<RunState> {
  const state = (await readState(run.runDir)) ?? newRunState();
  for (const p of run.phases) {
    if (state.phases[String(p.id)]) continue;
    const r = await phaseResult(run, p.id);
    if (!r) continue;
    state.phases[String(p.id)] = {
      name: p.name,
      status: r.status,
      seconds: r.seconds,
      validation: r.validation,
      ...(r.error ? { error: r.error.split("\n")[0] } : {}),
      ...(r.peak_rss_mb !== undefined ? { peak_rss_mb: r.peak_rss_mb } : {}),
    };
  }
  return state;
}

/** The run's status from its phases: failed if any failed, completed if all completed, else running. */
export function overallStatus(state: RunState): RunState["status"] {
  const all = Object.values(state.phases);
  if (all.some((p) => p.status === "failed")) return "failed";
  return all.length && all.every((p) => p.status === "completed") ? "completed" : "running";
}

async function saveState(run: Run, state: RunState): Promise<void> {
  const phases = Object.keys(state.phases).map(Number).sort((a, b) => a - b);
  state.phases = Object.fromEntries(phases.map((id) => [String(id), state.phases[String(id)]]));
  state.status = overallStatus(state);
  await writeState(run.runDir, state);
}

/**
 * Runs phases `ids` (in order) through the controller, with the other phases' state kept, and
 * rewrites report.html. Phases marked `fresh` lose their folder and metrics first and train from
 * scratch; the others continue from their checkpoints when they were interrupted or failed.
 * Holds the run's lock meanwhile: a run that a CLI (or another notebook) is writing is refused,
 * naming its holder.
 */
function runIds(run: Run, ids: number[], fresh: Set<number>): Promise<boolean> {
  return withRunLock(run.runDir, NOTEBOOK_COMMAND, () => runIdsLocked(run, ids, fresh), run.log);
}

async function runIdsLocked(run: Run, ids: number[], fresh: Set<number>): Promise<boolean> {
  const full = await runState(run);
  for (const id of ids) {
    const key = String(id);
    if (fresh.has(id)) {
      await Deno.remove(phaseDir(run, id), { recursive: true }).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
      await dropMetrics(run.runDir, id);
      full.phases[key] = { name: phaseSpec(run, id).name, status: "pending" };
    } else if (!full.phases[key] || full.phases[key].status === "completed") {
      // completed in state but its result.json is gone: run it again
      full.phases[key] = { name: phaseSpec(run, id).name, status: "pending" };
    }
  }
  await saveState(run, full);
  // The controller runs every listed phase that is not completed: hand it only these.
  const sub: RunState = { ...full, phases: Object.fromEntries(ids.map((id) => [String(id), full.phases[String(id)]])) };
  const controller = new PhaseController(run.phases, run.runDir, run.config, { log: run.log });
  const cwd = Deno.cwd();
  let ok: boolean;
  Deno.chdir(ROOT);
  try {
    ok = await controller.run(sub);
  } finally {
    Deno.chdir(cwd);
    full.phases = { ...full.phases, ...sub.phases };
    await saveState(run, full);
    await writeReport(run.runDir, await phaseSections(run.runDir, run.phases));
  }
  return ok;
}

function failure(run: Run, r: PhaseResultFile | undefined, id: number): Error {
  const p = phaseSpec(run, id);
  const why = r?.error?.split("\n").slice(0, 3).join("\n") ?? "no result.json written";
  return new Error(`phase ${id} (${p.name}) failed: ${why}\n(see ${join(phaseDir(run, id), "result.json")})`);
}

/**
 * Runs every registered phase before `upTo` whose completed result is missing from the run
 * (in order, at the run's config); phases not built yet are noted and skipped. Throws when one
 * of them fails.
 */
export async function ensurePhases(run: Run, upTo: number): Promise<void> {
  await ensure(run, upTo, true);
  await settle();
}

/** ensurePhases; `verbose` also notes the phases reused and the ones not registered. */
async function ensure(run: Run, upTo: number, verbose: boolean): Promise<void> {
  const missing: number[] = [];
  for (let id = 1; id < upTo; id++) {
    if (!run.phases.some((p) => p.id === id)) {
      if (verbose) run.log(`phase ${id} (${PHASE_NAMES[id] ?? "unknown"}) is not registered yet: skipped`);
      continue;
    }
    const r = await completed(run, id);
    if (!r) missing.push(id);
    else if (verbose) run.log(`phase ${id} (${r.name}) already completed in this run (${r.seconds.toFixed(1)} s)`);
  }
  if (!missing.length) return;
  run.log(`running missing earlier phase(s) ${missing.join(", ")} at preset ${run.preset}`);
  if (!(await runIds(run, missing, new Set()))) {
    for (const id of missing) if (!(await completed(run, id))) throw failure(run, await phaseResult(run, id), id);
  }
}

/**
 * Runs phase `id` (after `ensurePhases(run, id)`) and returns its result. A phase already
 * completed in this run is not run again unless `rerun` is set, which deletes its folder and
 * metrics and trains it from scratch (e.g. after changing its config). An interrupted or failed
 * phase continues from its checkpoints. A phase that ran but failed its validation gate is
 * returned too (status "failed"), so its charts can show what went wrong; `checkGate` (lib/viz/
 * notebook.ts) then stops the notebook. Throws when the phase itself threw.
 */
/** Options of `runPhase`. */
export interface RunPhaseOptions {
  /** Train again from scratch even when the phase completed. */
  rerun?: boolean;
  /**
   * A loss chart that redraws in place while the phase trains (default: on inside Jupyter), read
   * from the run's metrics.jsonl every `liveEveryMs` (default 2000).
   */
  live?: boolean;
  liveEveryMs?: number;
}

/** What a live chart cost while a phase ran. */
export interface LiveCost {
  /** Redraws sent (a poll that found no new step sends none). */
  updates: number;
  /** Polls of metrics.jsonl. */
  polls: number;
  /** Milliseconds the polls took on the event loop (reading, building the figure, sending it): time training did not run. */
  ms: number;
}

/**
 * Redraws phase `id`'s loss curves from metrics.jsonl every `everyMs` while the phase runs; `stop`
 * draws the final state and returns what the chart cost.
 */
export function liveLoss(run: Run, id: number, everyMs = 2000): { stop(): Promise<LiveCost> } {
  const chart = new LiveFigure(`phase ${id} training loss`);
  const cost: LiveCost = { updates: 0, polls: 0, ms: 0 };
  let seen = -1, busy: Promise<void> | undefined;
  const poll = async () => {
    const t0 = performance.now();
    cost.polls++;
    const records = (await runMetrics(run, id)).filter((r) => typeof r.loss === "number");
    if (records.length !== seen && records.length > 0) {
      seen = records.length;
      await chart.update(metricCurves(records, "loss", `phase ${id} training loss (live: ${records.length} logged steps)`));
      cost.updates++;
    }
    cost.ms += performance.now() - t0;
  };
  const timer = setInterval(() => {
    busy ??= poll().catch((e) => run.log(`live chart: ${(e as Error).message}`)).finally(() => (busy = undefined));
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await busy;
      await poll().catch((e) => run.log(`live chart: ${(e as Error).message}`));
      await chart.close();
      return cost;
    },
  };
}

export async function runPhase(run: Run, id: number, opts: RunPhaseOptions = {}): Promise<PhaseResultFile> {
  const spec = phaseSpec(run, id);
  await ensure(run, id, false);
  const done = await completed(run, id);
  if (done && !opts.rerun) {
    run.log(
      `phase ${id} (${spec.name}) already completed in this run (${
        done.seconds.toFixed(1)
      } s); runPhase(run, ${id}, { rerun: true }) trains it again`,
    );
    await settle();
    return done;
  }
  const live = (opts.live ?? inJupyter()) ? liveLoss(run, id, opts.liveEveryMs) : undefined;
  const t0 = performance.now();
  try {
    await runIds(run, [id], new Set(opts.rerun ? [id] : []));
  } finally {
    if (live) {
      const c = await live.stop();
      const s = (performance.now() - t0) / 1000;
      run.log(
        `live loss chart: ${c.updates} redraws from ${c.polls} polls took ${(c.ms / 1000).toFixed(2)} s of the phase's ${s.toFixed(1)} s (${
          (100 * c.ms / 1000 / s).toFixed(2)
        }%)`,
      );
    }
  }
  const r = await phaseResult(run, id);
  if (!r || (r.status !== "completed" && !r.validation.checks.length)) throw failure(run, r, id);
  if (r.status !== "completed") run.log(`phase ${id} (${spec.name}) did not pass its validation gate; its results follow`);
  await settle();
  return r;
}

/** metrics.jsonl records of the run (of phase `phase` only when given). */
export async function runMetrics(run: Run, phase?: number): Promise<MetricRecord[]> {
  return await readMetrics(run.runDir, { phase });
}

/** Phase `id`'s own report sections (tables, figures) rendered from its result. */
export function phaseReport(run: Run, result: PhaseResultFile): PageSection[] {
  const spec = phaseSpec(run, result.phase);
  return spec.report?.(result) ?? [];
}

/** Phase `id`'s config section as rows `{ key, value }` (what `sets` like `phases.<id>.<key>=...` change). */
export function phaseConfigRows(run: Run, id: number): { key: string; value: unknown }[] {
  phaseSpec(run, id);
  return Object.entries(run.config.phases[String(id)] ?? {}).map(([k, value]) => ({ key: `phases.${id}.${k}`, value }));
}

/** One row per phase of the run's state: status, seconds, peak memory, checks passed, error. */
export async function phaseTable(run: Run): Promise<Record<string, unknown>[]> {
  const state = await runState(run);
  return Object.entries(state.phases).map(([id, p]) => {
    const checks = p.validation?.checks ?? [];
    return {
      phase: Number(id),
      name: p.name,
      status: p.status,
      seconds: p.seconds ?? null,
      peak_rss_mb: p.peak_rss_mb ?? null,
      checks_passed: `${checks.filter((c) => c.passed).length}/${checks.length}`,
      error: p.error ?? "",
    };
  });
}
