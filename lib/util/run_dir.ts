/**
 * The run directory, in one place: its file names, the phase folder names, the types of
 * `state.json` and `result.json`, and the readers and writers of each. Everything that reads
 * or writes a run directory (controller, session, report, notebooks, the server) goes through
 * here, so the layout is written down once. JSON is written atomically (temp file + rename);
 * `metrics.jsonl` is appended one line per record and read back tolerating a torn last line.
 *
 *     <run>/config.json  state.json  metrics.jsonl  report.html
 *     <run>/phase-<id>-<name>/result.json  (+ that phase's checkpoints and files)
 */
import { join } from "node:path";
import { appendJsonl, exists, readJson, writeAtomic, writeJsonAtomic } from "./fs.ts";

/** Files of the run directory contract (relative to the run directory). */
export const RUN_FILES = {
  config: "config.json",
  state: "state.json",
  metrics: "metrics.jsonl",
  report: "report.html",
  /** Held by the one process writing the run (lib/util/run_lock.ts). */
  lock: "run.lock",
} as const;

/** The file a phase writes into its own folder when it ends. */
export const RESULT_FILE = "result.json";

/** A phase as the run directory names it. */
export interface PhaseName {
  id: number;
  name: string;
}

/** The folder name of a phase: `phase-<id>-<name>`. */
export const phaseDirName = (p: PhaseName) => `phase-${p.id}-${p.name}`;

/** The folder of phase `p` in `runDir`. */
export const phaseDir = (runDir: string, p: PhaseName) => join(runDir, phaseDirName(p));

/** The file a stage phase (2-6) writes its trained model to, in its own folder. */
export const MODEL_FILE = "model.safetensors";

/** A stage phase's model, relative to the run directory. */
export const stageModelPath = (p: PhaseName) => join(phaseDirName(p), MODEL_FILE);

/** Phase 3's HRRM trained on grid task `task` (part c), relative to the run directory. */
export const gridModelPath = (task: string) => join(phaseDirName({ id: 3, name: "puzzles" }), `hrrm-${task}.safetensors`);

/** Where phase 1 writes each cognate variant, relative to the run directory (the server and later phases load it). */
export const phase1ModelPath = (variant: string) => join(phaseDirName({ id: 1, name: "cognate" }), `${variant}.safetensors`);

// ---------------------------------------------------------------------------------------------
// result.json and state.json

/** One validation gate check: `value` compared with `threshold`. */
export interface ValidationCheck {
  name: string;
  value: number | string | boolean;
  threshold: number | string | boolean;
  passed: boolean;
}

/** `phase-N-<name>/result.json`. */
export interface PhaseResultFile {
  phase: number;
  name: string;
  status: "completed" | "failed";
  seconds: number;
  metrics: Record<string, unknown>;
  validation: { passed: boolean; checks: ValidationCheck[] };
  artifacts: string[];
  error?: string;
  peak_rss_mb?: number;
  warning?: string;
}

/** `interrupted`: stopped by a signal after a checkpoint (lib/util/stop.ts); `--resume` continues it. */
export type PhaseStatus = "pending" | "running" | "completed" | "failed" | "interrupted";

/** One phase's entry in state.json. */
export interface PhaseState {
  name: string;
  status: PhaseStatus;
  started_at?: string;
  ended_at?: string;
  seconds?: number;
  error?: string;
  validation?: PhaseResultFile["validation"];
  peak_rss_mb?: number;
  warning?: string;
  /** How many times the phase was started (more than 1 after a resume). */
  attempts?: number;
  /** interrupted: the signal, and the optimizer step of the checkpoint it stopped at (absent when it stopped outside training). */
  interrupted_by?: string;
  interrupted_at_step?: number;
}

/** `state.json`. */
export interface RunState {
  run_id: string;
  status: "running" | "completed" | "failed" | "interrupted";
  created_at: string;
  updated_at: string;
  phases: Record<string, PhaseState>;
}

/** A fresh state with no phases. */
export function newRunState(): RunState {
  const now = new Date().toISOString();
  return { run_id: crypto.randomUUID(), status: "running", created_at: now, updated_at: now, phases: {} };
}

/** The result.json of phase `p`, or undefined when it has none (completed or failed alike). */
export async function readResult(runDir: string, p: PhaseName): Promise<PhaseResultFile | undefined> {
  const file = join(phaseDir(runDir, p), RESULT_FILE);
  return (await exists(file)) ? await readJson<PhaseResultFile>(file) : undefined;
}

/** Writes phase `p`'s result.json (atomically). */
export async function writeResult(runDir: string, p: PhaseName, result: PhaseResultFile): Promise<void> {
  await writeJsonAtomic(join(phaseDir(runDir, p), RESULT_FILE), result);
}

/** state.json of the run, or undefined when there is none. */
export async function readState(runDir: string): Promise<RunState | undefined> {
  const file = join(runDir, RUN_FILES.state);
  return (await exists(file)) ? await readJson<RunState>(file) : undefined;
}

/** Writes state.json (atomically), stamping `updated_at`. */
export async function writeState(runDir: string, state: RunState): Promise<void> {
  state.updated_at = new Date().toISOString();
  await writeJsonAtomic(join(runDir, RUN_FILES.state), state);
}

/** Writes config.json (atomically). */
export async function writeRunConfig(runDir: string, config: unknown): Promise<void> {
  await writeJsonAtomic(join(runDir, RUN_FILES.config), config);
}

/** True when `runDir` holds a state.json (it is a run directory). */
export function isRunDir(runDir: string): Promise<boolean> {
  return exists(join(runDir, RUN_FILES.state));
}

// ---------------------------------------------------------------------------------------------
// metrics.jsonl

/** One metrics.jsonl record: `{ phase, model, step, loss, lr, ... }`. */
export type MetricRecord = { phase: number; model?: string; step: number; [k: string]: unknown };

/** Parses metrics.jsonl text, skipping blank lines and the torn line a killed run may leave. */
function parseLines(text: string): MetricRecord[] {
  const out: MetricRecord[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch { /* a torn line after SIGKILL */ }
  }
  return out;
}

/**
 * The run's metrics records. A resumed run logs again the steps between its last checkpoint and
 * the kill: the later record of a (phase, model, step) replaces the earlier one, in the earlier
 * one's place. Filtered to one phase (and model) when given.
 */
export async function readMetrics(runDir: string, filter: { phase?: number; model?: string } = {}): Promise<MetricRecord[]> {
  const file = join(runDir, RUN_FILES.metrics);
  if (!(await exists(file))) return [];
  const out: MetricRecord[] = [];
  const at = new Map<string, number>();
  for (const rec of parseLines(await Deno.readTextFile(file))) {
    if (filter.phase !== undefined && rec.phase !== filter.phase) continue;
    if (filter.model !== undefined && rec.model !== filter.model) continue;
    const key = typeof rec.step === "number" ? `${rec.phase}/${rec.model ?? ""}/${rec.step}` : undefined;
    const i = key === undefined ? undefined : at.get(key);
    if (i === undefined) {
      if (key !== undefined) at.set(key, out.length);
      out.push(rec);
    } else out[i] = rec;
  }
  return out;
}

/** Appends one record of phase `phase` to metrics.jsonl. */
export function appendMetric(runDir: string, phase: number, rec: Record<string, unknown>): Promise<void> {
  return appendJsonl(join(runDir, RUN_FILES.metrics), { phase, ...rec });
}

/** Drops phase `phase`'s records (and torn lines) from metrics.jsonl, before it is trained again from scratch. */
export async function dropMetrics(runDir: string, phase: number): Promise<void> {
  const file = join(runDir, RUN_FILES.metrics);
  if (!(await exists(file))) return;
  const keep = parseLines(await Deno.readTextFile(file)).filter((r) => r.phase !== phase);
  await writeAtomic(file, keep.map((r) => JSON.stringify(r) + "\n").join(""));
}
