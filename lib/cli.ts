/**
 * `deno task pipeline`: runs the Agent Forge phases headless and writes a run directory
 * (config.json, state.json, metrics.jsonl, phase-N-<name>/result.json, report.html).
 *
 * Exit codes: 0 all requested phases completed and validated; 1 a phase failed (error or
 * validation); 2 bad usage or config.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { BACKEND_ENV, type BackendRequest, initBackend, parseBackend } from "./backend/mod.ts";
import { checkResolved, ConfigError, type PipelineConfig, type Preset, PRESETS, resolveConfig } from "./config/config.ts";
import { PhaseController } from "./pipeline/controller.ts";
import { isRunDir, RUN_FILES } from "./util/run_dir.ts";
import { acquireRunLock, type RunLock, RunLockedError } from "./util/run_lock.ts";
import { beforeHardExit, exitCodeFor, installStopHandlers, StopRequested } from "./util/stop.ts";
import { PHASE_NAMES, type PhaseSpec } from "./phases/spec.ts";
import { PHASES } from "./phases/mod.ts";
import { readJson, WriteError } from "./util/fs.ts";
import { phaseSections, writeReport } from "./viz/report.ts";

const HELP = `Agent Forge pipeline: trains small reasoning models through the seven phases.

Usage: deno task pipeline [options]

Options:
  --preset tiny|small|seed   config preset (default small)
  --config FILE.json         config file merged over the preset
  --set key.path=value       override one config value (repeatable), e.g. --set phases.2.steps=100,
                             or --set training.grad_clip=0.5 for every phase's trainer (a phase's
                             own steps, lr and batch_size win over training.*; 0 inherits them)
  --from N --to N            run phases N..M (default: every implemented phase)
  --out DIR                  run directory (default runs/<timestamp>-<preset>)
  --resume DIR               continue the run in DIR: completed phases are skipped, the
                             interrupted one continues from its last checkpoint
  --backend webgpu|wasm|cpu  tfjs backend (default: auto; env AGENT_FORGE_BACKEND)
  --seed N                   base seed (sets run.seed)
  --help                     this text

Exit codes: 0 all requested phases completed and validated, 1 a phase failed,
2 bad usage or config, or the run directory is locked by another writer,
130 / 143 stopped by SIGINT / SIGTERM: the current optimizer step finished, a checkpoint
was written and the phase is marked interrupted (--resume continues it); a second signal
exits at once.`;

class UsageError extends Error {}

function phaseList(phases: readonly PhaseSpec[]): string {
  return phases.length ? phases.map((p) => `${p.id} (${p.name})`).join(", ") : "none yet";
}

function parsePhaseNumber(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 7) throw new UsageError(`${flag} ${v}: expected a phase number from 1 to 7`);
  return n;
}

/** Picks the phase ids to run; every one must be implemented. */
function phaseRange(phases: readonly PhaseSpec[], from?: number, to?: number): number[] {
  const ids = phases.map((p) => p.id).sort((a, b) => a - b);
  if (!ids.length) {
    throw new UsageError(`no phase is implemented yet in this version, so there is nothing to run (implemented: none yet)`);
  }
  const lo = from ?? ids[0];
  const hi = to ?? ids[ids.length - 1];
  if (lo > hi) throw new UsageError(`--from ${lo} is after --to ${hi}`);
  const wanted = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  const missing = wanted.filter((id) => !ids.includes(id));
  if (missing.length) {
    throw new UsageError(
      `phase ${missing.map((id) => `${id} (${PHASE_NAMES[id]})`).join(", ")} is not implemented yet; implemented: ${phaseList(phases)}`,
    );
  }
  return wanted;
}

/** A backend name from a flag or the environment, as a usage error when it is not one. */
function backendArg(source: string, value: string): BackendRequest {
  try {
    return parseBackend(value, source);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "-");
}

/** Runs the CLI; returns the exit code. `phases` is the registry (tests pass their own). */
export async function main(args: string[], phases: readonly PhaseSpec[] = PHASES): Promise<number> {
  let lock: RunLock | undefined;
  let removeHandlers: (() => void) | undefined;
  let runDir = "";
  try {
    const { values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        preset: { type: "string" },
        config: { type: "string" },
        set: { type: "string", multiple: true },
        from: { type: "string" },
        to: { type: "string" },
        out: { type: "string" },
        resume: { type: "string" },
        backend: { type: "string" },
        seed: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(HELP);
      console.log(`\nImplemented phases: ${phaseList(phases)}`);
      return 0;
    }
    const backend = values.backend ? backendArg("--backend", values.backend) : undefined;
    const envBackend = Deno.env.get(BACKEND_ENV);
    if (envBackend) backendArg(BACKEND_ENV, envBackend);

    let config: PipelineConfig;
    let resume = false;
    if (values.resume) {
      for (const flag of ["preset", "config", "set", "from", "to", "out", "seed"] as const) {
        if (values[flag] !== undefined) {
          throw new UsageError(`--resume uses the run's own config and phases; --${flag} cannot be combined with it`);
        }
      }
      runDir = values.resume;
      const cfgFile = join(runDir, RUN_FILES.config);
      if (!(await isRunDir(runDir))) {
        throw new UsageError(`--resume ${runDir}: no ${RUN_FILES.state} there, not a run directory`);
      }
      config = checkResolved(await readJson(cfgFile), phases, cfgFile);
      resume = true;
    } else {
      const preset = (values.preset ?? "small") as Preset;
      if (!PRESETS.includes(preset)) {
        throw new ConfigError("--preset", `'${values.preset}' is not a preset; expected one of ${PRESETS.join(", ")}`);
      }
      let file: { path: string; data: unknown } | undefined;
      if (values.config) {
        try {
          file = { path: values.config, data: await readJson(values.config) };
        } catch (e) {
          throw new UsageError(`--config: ${(e as Error).message}`);
        }
      }
      const sets = [...(values.set ?? [])];
      if (values.seed !== undefined) sets.push(`run.seed=${values.seed}`);
      if (backend) sets.push(`run.backend=${backend}`);
      config = resolveConfig({ preset, file, sets, phases });
      runDir = values.out ?? join("runs", `${timestamp()}-${preset}`);
      if (await isRunDir(runDir)) {
        throw new UsageError(`--out ${runDir} already holds a run; use --resume ${runDir} to continue it or choose another folder`);
      }
    }
    const ids = resume ? [] : phaseRange(phases, parsePhaseNumber("--from", values.from), parsePhaseNumber("--to", values.to));

    // One writer per run directory: a second one is refused before it writes anything.
    lock = acquireRunLock(runDir, `deno task pipeline ${args.join(" ")}`.trim());
    if (!resume && await isRunDir(runDir)) {
      throw new UsageError(`--out ${runDir} already holds a run; use --resume ${runDir} to continue it or choose another folder`);
    }
    // SIGTERM / SIGINT: finish the current optimizer step, checkpoint, mark the phase interrupted.
    const held = lock;
    const forgetHook = beforeHardExit(() => held.release());
    const removeSignals = installStopHandlers();
    removeHandlers = () => {
      removeSignals();
      forgetHook();
    };

    await initBackend(backend ?? config.run.backend);
    const controller = new PhaseController(phases, runDir, config, {
      onFinish: async (dir) => {
        const report = await writeReport(dir, await phaseSections(dir, phases));
        console.error(`report: ${report}`);
      },
    });
    const state = resume ? await controller.loadState() : await controller.init(ids);
    console.error(`run directory: ${runDir}`);
    const ok = await controller.run(state);
    return ok ? 0 : 1;
  } catch (e) {
    if (e instanceof StopRequested) return exitCodeFor(e.signal);
    if (e instanceof RunLockedError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof WriteError) {
      console.error(`error: ${e.message}`);
      console.error(`the last good checkpoint is intact: once the path is writable again, continue with --resume ${runDir}`);
      return 1;
    }
    if (e instanceof ConfigError || e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      console.error("run with --help for usage");
      return 2;
    }
    const code = (e as { code?: string }).code;
    if (
      code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" || code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" ||
      code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL"
    ) {
      console.error(`error: ${(e as Error).message}`);
      console.error("run with --help for usage");
      return 2;
    }
    console.error(`error: ${(e as Error).stack ?? e}`);
    return 1;
  } finally {
    removeHandlers?.();
    lock?.release();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
