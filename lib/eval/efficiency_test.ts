import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/mod.ts";
import { createModel } from "../models/registry.ts";
import { cognatePresetConfig } from "../models/cognate.ts";
import { efficiencySuite, meanPonderSteps, quantile } from "./efficiency.ts";

await initBackend("wasm");

Deno.test("quantile interpolates between order statistics", () => {
  assert.equal(quantile([3, 1, 2], 0.5), 2);
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantile([1, 2, 3, 4, 5], 0.99), 4.96);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});

Deno.test("efficiency suite measures a real model; ponder steps exist only for the reasoning cognate", async () => {
  const std = createModel("cognate-standard", cognatePresetConfig("tiny", "standard"), 1);
  const r = await efficiencySuite(std, 1234, { seq: 16, repeats: 5, newTokens: 4, batch: 4, seed: 1 });
  assert.equal(r.params, std.params.count());
  assert.ok(r.latency_p50_ms > 0 && r.latency_p99_ms >= r.latency_p50_ms);
  assert.ok(r.gen_tokens_per_s_b1 > 0 && r.gen_tokens_per_s_batch > 0);
  const ids = tf.zeros([2, 8], "int32") as tf.Tensor2D, mask = tf.ones([2, 8]) as tf.Tensor2D;
  assert.equal(meanPonderSteps(std, ids, mask), null);
  const rsn = createModel("cognate-reasoning", cognatePresetConfig("tiny", "reasoning"), 1);
  const steps = meanPonderSteps(rsn, ids, mask)!;
  assert.ok(steps >= 1 && steps <= 8, `mean steps ${steps}`);
  tf.dispose([ids, mask]);
  std.dispose();
  rsn.dispose();
});
