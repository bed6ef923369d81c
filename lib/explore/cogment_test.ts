/**
 * cogmentTrace on a fake run: phase 1's Cogment (saved as the reasoning variant) read token by
 * token, checked against the model's own forward pass; and on a run whose reasoning variant is
 * the refinement cognate, a Cogment trained on the spot, said so.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { resolveConfig } from "../config/config.ts";
import { cognatePresetConfig } from "../models/cognate.ts";
import type { Cogment } from "../models/cogment.ts";
import { loadModel, saveModel } from "../models/io.ts";
import { createModel } from "../models/registry.ts";
import { cogmentFor } from "../phases/common.ts";
import { PHASES } from "../phases/mod.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { phase1ModelPath } from "../util/run_dir.ts";
import { cogmentTrace } from "./cogment.ts";

await initBackend("cpu", { quiet: true });

async function fakeRun(reasoning: "cogment" | "refinement") {
  const runDir = await Deno.makeTempDir({ prefix: "explore-cogment-" });
  const config = resolveConfig({ preset: "tiny", phases: PHASES });
  const [key, cfg] = reasoning === "cogment"
    ? ["cogment" as const, { ...cogmentFor(config) }]
    : ["cognate-reasoning" as const, { ...cognatePresetConfig("tiny", "reasoning") }];
  const model = createModel(key, cfg, 3);
  await saveModel(join(runDir, phase1ModelPath("reasoning")), model, { key, config: cfg });
  model.dispose();
  return { runDir, config };
}

Deno.test("cogmentTrace: depth and refinement steps per token, slot use and LTM surprise are phase 1's Cogment's own", async () => {
  const run = await fakeRun("cogment");
  const texts = ["copy:abc=abc", "sort:dcba=abcd"];
  const t = await cogmentTrace(run, { texts });
  assert.equal(t.source, "phase 1's reasoning variant");
  const { model } = await loadModel(join(run.runDir, phase1ModelPath("reasoning")));
  const cog = model as unknown as Cogment;
  for (const [i, text] of texts.entries()) {
    const ids = [TOKENIZER.bos, ...TOKENIZER.encode(text)];
    const x = tf.tensor2d([ids], [1, ids.length], "int32");
    const [depth, surprise] = tf.tidy(() => {
      const out = cog.forward(x);
      return [Array.from(out.halting.steps.dataSync()), Array.from(out.memory.ltmSurprise.dataSync())];
    });
    x.dispose();
    assert.deepEqual(t.depth[i].steps, depth);
    assert.ok(depth.every((n) => n >= 1 && n <= cog.cfg.depthMaxSteps));
    if (i === 0) assert.deepEqual(t.ltm.map((c) => c.surprise), surprise);
  }
  model.dispose();
  assert.equal(t.slotUsage.length, cog.cfg.memorySlots);
  assert.ok(Math.abs(t.slotUsage.reduce((a, b) => a + b, 0) - 1) < 1e-4, "slot attention is a distribution per token");
  assert.ok(t.ltm.every((c) => c.wrote === c.surprise > t.threshold));
  assert.equal(t.figures.length, 4);
  await Deno.remove(run.runDir, { recursive: true });
});

Deno.test("cogmentTrace: with the refinement cognate as phase 1's reasoning variant, a Cogment trained here, and the titles say so", async () => {
  const run = await fakeRun("refinement");
  const t = await cogmentTrace(run, { texts: ["copy:ab=ab"], steps: 2 });
  assert.match(t.source, /trained here for 2 steps/);
  assert.ok(t.figures.every((f) => JSON.stringify(f.layout).includes("trained here")), "every chart names its model");
  await Deno.remove(run.runDir, { recursive: true });
});
