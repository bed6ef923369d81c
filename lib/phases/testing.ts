/**
 * Test support for phases: a run directory with a phase context, and (for phases that start
 * from phase 1's model) a stand-in phase 1 whose base model is saved untrained, so a phase's
 * test does not have to pretrain first.
 */
import { join } from "node:path";
import { createModel } from "../models/registry.ts";
import { type ConfigPatch, type PipelineConfig, type Preset, resolveConfig } from "../pipeline/config.ts";
import type { PhaseContext, PhaseResultFile, PhaseSpec } from "../pipeline/phase.ts";
import { phaseSeed } from "../pipeline/phase.ts";
import { appendJsonl, exists, readJson, writeJsonAtomic } from "../util/fs.ts";
import { cognateFor, phase1ModelPath, saveModel } from "./common.ts";

/** A fresh temp run directory and the resolved config of `preset` with the phases' sections and `sets` (`key.path=value`). */
export async function testRun(
  phases: readonly PhaseSpec[],
  preset: Preset = "tiny",
  sets: string[] = [],
): Promise<{ runDir: string; config: PipelineConfig }> {
  const runDir = await Deno.makeTempDir({ prefix: "af-phase-" });
  const config = resolveConfig({ preset, phases, sets });
  await writeJsonAtomic(join(runDir, "config.json"), config);
  return { runDir, config };
}

/** The context the controller would give `phase` in `runDir` (reading earlier results from their folders). */
export function testContext(phase: PhaseSpec, runDir: string, config: PipelineConfig, resume = false): PhaseContext {
  const dir = join(runDir, `phase-${phase.id}-${phase.name}`);
  return {
    config,
    phaseConfig: config.phases[String(phase.id)] ?? {},
    runDir,
    dir,
    resume,
    seed: phaseSeed(config, phase.id),
    log: (rec) => appendJsonl(join(runDir, "metrics.jsonl"), { phase: phase.id, ...rec }),
    previous: async (id) => {
      for await (const e of Deno.readDir(runDir)) {
        if (e.isDirectory && e.name.startsWith(`phase-${id}-`)) {
          const f = join(runDir, e.name, "result.json");
          if (await exists(f)) {
            const r = await readJson<PhaseResultFile>(f);
            return r.status === "completed" ? r : undefined;
          }
        }
      }
      return undefined;
    },
  };
}

/** Writes a stand-in phase 1: an untrained `standard` cognate at the run's model section and a completed result.json naming it. */
export async function fakePhase1(runDir: string, config: PipelineConfig, patch: ConfigPatch = {}): Promise<void> {
  const cfg = cognateFor(config, "standard");
  const model = createModel("cognate-standard", cfg, 1);
  await saveModel(join(runDir, phase1ModelPath("standard")), model, { key: "cognate-standard", config: { ...cfg } });
  model.dispose();
  const result: PhaseResultFile = {
    phase: 1,
    name: "cognate",
    status: "completed",
    seconds: 0,
    metrics: { base_variant: "standard", stand_in: true, ...patch },
    validation: { passed: true, checks: [] },
    artifacts: [phase1ModelPath("standard")],
  };
  await writeJsonAtomic(join(runDir, "phase-1-cognate", "result.json"), result);
}
