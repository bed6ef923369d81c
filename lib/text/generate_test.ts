/** Greedy decoding with and without the KV cache gives the same text, and only cache-capable models take the cached path. */
import * as tf from "@tensorflow/tfjs";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { createModel } from "../models/registry.ts";
import { hasKvCache } from "../nn/kv_cache.ts";
import { generateGreedy } from "./generate.ts";

const PROMPTS = ["a", "hello world", "12+34=", "the quick brown fox jumps"];
const SMALL = { dModel: 32, nHeads: 2, nLayers: 2, maxSeqLen: 64, initStd: 0.3 };

Deno.test("generateGreedy: the KV cache path writes the same text as recomputing the prefix", async () => {
  await initBackend("wasm", { quiet: true });
  for (const positions of ["rope", "learned"] as const) {
    const model = createModel("cognate-standard", { ...SMALL, positions }, 5);
    if (!hasKvCache(model)) throw new Error("the standard cognate should decode with a KV cache");
    const full = await generateGreedy(model, PROMPTS, 12, 32, { cache: false });
    const cached = await generateGreedy(model, PROMPTS, 12, 32);
    assertEquals(cached, full, positions);
    // A large random init writes long, varied text: the comparison covers many steps, not one EOS.
    if (full.every((t) => t.length < 3)) throw new Error(`outputs too short to compare: ${JSON.stringify(full)}`);
    // Batched (ragged prompts, one batch) equals one prompt at a time.
    const single = [];
    for (const p of PROMPTS) single.push(...await generateGreedy(model, [p], 12));
    assertEquals(cached, single, `${positions}: batched vs one at a time`);
    model.dispose();
  }
  assertEquals(tf.memory().numTensors < 10_000, true);
});

Deno.test("generateGreedy: the memory and reasoning cognates have no KV cache and decode by recomputation", async () => {
  await initBackend("wasm", { quiet: true });
  for (const key of ["cognate-memory", "cognate-reasoning"] as const) {
    const model = createModel(key, {}, 1);
    assertEquals(hasKvCache(model), false, key);
    const [out] = await generateGreedy(model, ["abc"], 3);
    assertEquals(typeof out, "string");
    model.dispose();
  }
});
