/**
 * Test support for phases: a run directory with a phase context, and (for phases that start
 * from phase 1's model) a stand-in phase 1 whose base model is saved untrained, so a phase's
 * test does not have to pretrain first.
 */
import { join } from "node:path";
import { type ConfigPatch, type PipelineConfig, type Preset, resolveConfig } from "../config/config.ts";
import { phaseSeed } from "../eval/stage.ts";
import { saveModel } from "../models/io.ts";
import { createModel } from "../models/registry.ts";
import { appendMetric, phase1ModelPath, phaseDir, type PhaseResultFile, readResult, writeResult, writeRunConfig } from "../util/run_dir.ts";
import { cognateFor } from "./common.ts";
import type { PhaseContext, PhaseSpec } from "./spec.ts";

/** A fresh temp run directory and the resolved config of `preset` with the phases' sections and `sets` (`key.path=value`). */
export async function testRun(
  phases: readonly PhaseSpec[],
  preset: Preset = "tiny",
  sets: string[] = [],
): Promise<{ runDir: string; config: PipelineConfig }> {
  const runDir = await Deno.makeTempDir({ prefix: "af-phase-" });
  const config = resolveConfig({ preset, phases, sets });
  await writeRunConfig(runDir, config);
  return { runDir, config };
}

/** The context the controller would give `phase` in `runDir` (reading earlier results from their folders). */
export function testContext(phase: PhaseSpec, runDir: string, config: PipelineConfig, resume = false): PhaseContext {
  return {
    phase: phase.id,
    config,
    phaseConfig: config.phases[String(phase.id)] ?? {},
    runDir,
    dir: phaseDir(runDir, phase),
    resume,
    seed: phaseSeed(config, phase.id),
    log: (rec) => appendMetric(runDir, phase.id, rec),
    previous: async (id) => {
      for await (const e of Deno.readDir(runDir)) {
        const m = e.isDirectory ? e.name.match(/^phase-(\d+)-(.+)$/) : null;
        if (m && Number(m[1]) === id) {
          const r = await readResult(runDir, { id, name: m[2] });
          return r?.status === "completed" ? r : undefined;
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
  await writeResult(runDir, { id: 1, name: "cognate" }, result);
}
