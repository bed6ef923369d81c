/**
 * PhaseController: runs a range of phases through a state machine persisted in
 * `state.json` (pending -> running -> completed | failed), runs each phase's validation
 * gate, records errors, resumes interrupted runs, measures each phase (seconds, peak
 * memory) and warns when a phase runs over `slow_factor` times its recorded baseline.
 */
import { currentBackend } from "../backend/mod.ts";
import type { PipelineConfig } from "../config/config.ts";
import { phaseSeed } from "../eval/stage.ts";
import type { PhaseContext, PhaseSpec } from "../phases/spec.ts";
import { exists, readJson, writeJsonAtomic } from "../util/fs.ts";
import { StopRequested, stopRequested } from "../util/stop.ts";
import {
  appendMetric,
  newRunState,
  phaseDir,
  type PhaseResultFile,
  readResult,
  readState,
  type RunState,
  writeResult,
  writeRunConfig,
  writeState,
} from "../util/run_dir.ts";

export type { PhaseState, PhaseStatus, RunState } from "../util/run_dir.ts";

export interface ControllerOptions {
  /** Prints progress lines (phase start/end). */
  log?: (line: string) => void;
  /** Called after the run ends (e.g. to write report.html). */
  onFinish?: (runDir: string) => Promise<void>;
}

export class PhaseController {
  readonly #phases: Map<number, PhaseSpec>;
  readonly #log: (line: string) => void;

  constructor(
    phases: readonly PhaseSpec[],
    readonly runDir: string,
    readonly config: PipelineConfig,
    readonly opts: ControllerOptions = {},
  ) {
    this.#phases = new Map(phases.map((p) => [p.id, p]));
    this.#log = opts.log ?? ((l) => console.error(l));
  }

  /** Writes config.json and a fresh state.json for phases `ids` (a new run). */
  async init(ids: number[]): Promise<RunState> {
    await Deno.mkdir(this.runDir, { recursive: true });
    await writeRunConfig(this.runDir, this.config);
    const state = newRunState();
    for (const id of ids) state.phases[String(id)] = { name: this.#phase(id).name, status: "pending" };
    await this.#save(state);
    return state;
  }

  /** Reads state.json of an existing run. */
  async loadState(): Promise<RunState> {
    const state = await readState(this.runDir);
    if (!state) throw new Error(`${this.runDir}: no state.json, not a run directory`);
    return state;
  }

  #phase(id: number): PhaseSpec {
    const p = this.#phases.get(id);
    if (!p) throw new Error(`phase ${id} is not registered`);
    return p;
  }

  #save(state: RunState): Promise<void> {
    return writeState(this.runDir, state);
  }

  /**
   * Runs every phase of `state` in order; completed ones are skipped, an interrupted or
   * failed one continues with `resume` set. Returns true when all completed and passed. After a
   * stop request (lib/util/stop.ts) it marks the phase and the run `interrupted` and rethrows
   * `StopRequested`.
   */
  async run(state: RunState): Promise<boolean> {
    const ids = Object.keys(state.phases).map(Number).sort((a, b) => a - b);
    state.status = "running";
    await this.#save(state);
    let ok = true;
    for (const id of ids) {
      const ps = state.phases[String(id)];
      if (ps.status === "completed") {
        this.#log(`phase ${id} (${ps.name}) already completed, skipped`);
        continue;
      }
      const stop = stopRequested();
      if (stop) {
        // A signal arrived while the previous phase finished: stop before starting this one.
        await this.#interrupted(state, stop);
        throw new StopRequested(stop);
      }
      const resume = ps.status === "running" || ps.status === "failed" || ps.status === "interrupted";
      try {
        ok = await this.#runPhase(this.#phase(id), state, resume);
      } catch (e) {
        if (e instanceof StopRequested) await this.#interrupted(state, e.signal);
        throw e;
      }
      if (!ok) break;
    }
    state.status = ok ? "completed" : "failed";
    await this.#save(state);
    await this.opts.onFinish?.(this.runDir);
    return ok;
  }

  /** Marks the run interrupted, writes the report, and logs how to continue. */
  async #interrupted(state: RunState, signal: string): Promise<void> {
    state.status = "interrupted";
    await this.#save(state);
    await this.opts.onFinish?.(this.runDir);
    this.#log(`run interrupted by ${signal}; continue it with --resume ${this.runDir}`);
  }

  async #runPhase(phase: PhaseSpec, state: RunState, resume: boolean): Promise<boolean> {
    const key = String(phase.id);
    const ps = state.phases[key];
    const dir = phaseDir(this.runDir, phase);
    await Deno.mkdir(dir, { recursive: true });
    Object.assign(ps, { status: "running", started_at: new Date().toISOString(), attempts: (ps.attempts ?? 0) + 1 });
    delete ps.error;
    delete ps.interrupted_by;
    delete ps.interrupted_at_step;
    await this.#save(state);
    this.#log(`phase ${phase.id} (${phase.name}): ${resume ? "resuming" : "starting"} - ${phase.title}`);

    const ctx: PhaseContext = {
      phase: phase.id,
      config: this.config,
      phaseConfig: this.config.phases[key] ?? {},
      runDir: this.runDir,
      dir,
      resume,
      seed: phaseSeed(this.config, phase.id),
      log: (rec) => appendMetric(this.runDir, phase.id, rec),
      previous: (id) => this.readResult(id),
    };
    const mem = new PeakMemory();
    const t0 = performance.now();
    let result: PhaseResultFile;
    try {
      const out = await phase.run(ctx);
      const checks = phase.validate(out, ctx);
      const passed = checks.every((c) => c.passed);
      result = {
        phase: phase.id,
        name: phase.name,
        status: passed ? "completed" : "failed",
        seconds: (performance.now() - t0) / 1000,
        metrics: out.metrics,
        validation: { passed, checks },
        artifacts: out.artifacts ?? [],
      };
      if (!passed) {
        const failed = checks.filter((c) => !c.passed).map((c) => `${c.name} = ${c.value} (threshold ${c.threshold})`);
        result.error = `validation failed: ${failed.join("; ")}`;
      }
    } catch (e) {
      if (e instanceof StopRequested) {
        // Interrupted: no result.json; the phase's checkpoints are where --resume continues.
        mem.stop();
        Object.assign(ps, { status: "interrupted", ended_at: new Date().toISOString(), interrupted_by: e.signal });
        if (e.step !== undefined) ps.interrupted_at_step = e.step;
        await this.#save(state);
        this.#log(`phase ${phase.id} (${phase.name}) interrupted by ${e.signal}${e.step !== undefined ? ` at step ${e.step}` : ""}`);
        throw e;
      }
      const err = e as Error;
      result = {
        phase: phase.id,
        name: phase.name,
        status: "failed",
        seconds: (performance.now() - t0) / 1000,
        metrics: {},
        validation: { passed: false, checks: [] },
        artifacts: [],
        error: err.stack ?? String(err),
      };
    }
    result.peak_rss_mb = mem.stop();
    if (result.status === "completed") {
      const warning = await this.#checkBaseline(phase, result.seconds);
      if (warning) {
        result.warning = warning;
        this.#log(`warning: ${warning}`);
      }
    }
    await writeResult(this.runDir, phase, result);
    Object.assign(ps, {
      status: result.status,
      ended_at: new Date().toISOString(),
      seconds: result.seconds,
      validation: result.validation,
      peak_rss_mb: result.peak_rss_mb,
    });
    if (result.error) ps.error = result.error.split("\n")[0];
    if (result.warning) ps.warning = result.warning;
    await this.#save(state);
    this.#log(
      `phase ${phase.id} (${phase.name}) ${result.status} in ${result.seconds.toFixed(1)}s` +
        (result.error ? `: ${result.error.split("\n")[0]}` : ""),
    );
    return result.status === "completed";
  }

  /** result.json of phase `id` in this run, when that phase completed. */
  async readResult(id: number): Promise<PhaseResultFile | undefined> {
    const p = this.#phases.get(id);
    if (!p) return undefined;
    const r = await readResult(this.runDir, p);
    return r?.status === "completed" ? r : undefined;
  }

  /** Records the first successful time of a phase per preset and backend; warns past slow_factor x. */
  async #checkBaseline(phase: PhaseSpec, seconds: number): Promise<string | undefined> {
    const file = this.config.pipeline.baseline_file;
    const key = `${this.config.run.preset}/${currentBackend()?.name ?? "unknown"}/phase-${phase.id}`;
    const all = (await exists(file)) ? await readJson<Record<string, { seconds: number; recorded_at: string }>>(file) : {};
    const base = all[key];
    if (!base) {
      all[key] = { seconds, recorded_at: new Date().toISOString() };
      await writeJsonAtomic(file, all);
      return undefined;
    }
    const factor = this.config.pipeline.slow_factor;
    if (seconds > factor * base.seconds) {
      return `phase ${phase.id} (${phase.name}) took ${seconds.toFixed(1)}s, more than ${factor}x its baseline of ${
        base.seconds.toFixed(1)
      }s (${key} in ${file})`;
    }
    return undefined;
  }
}

/** Samples the process's resident memory while a phase runs; `stop` returns the peak in MB. */
class PeakMemory {
  #peak = Deno.memoryUsage().rss;
  readonly #timer = setInterval(() => this.#sample(), 250);
  #sample(): void {
    this.#peak = Math.max(this.#peak, Deno.memoryUsage().rss);
  }
  stop(): number {
    this.#sample();
    clearInterval(this.#timer);
    return Math.round((this.#peak / 2 ** 20) * 10) / 10;
  }
}
