/** Model registry: every key builds a working model from its defaults; unknown keys and config keys are named. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { Rng } from "../util/rng.ts";
import { Cognate } from "./cognate.ts";
import { createModel, isModelKey, MODEL_KEYS, modelConfig, MODELS } from "./registry.ts";

const EXPECTED = [
  "cognate-standard",
  "cognate-memory",
  "cognate-reasoning",
  "cogment",
  "hrrm-reasoner",
  "hrrm-planner",
  "hrrm-memory",
  "decoder",
];

Deno.test("registry: every key creates a model whose loss and forward / infer work", async () => {
  await initBackend("cpu", { quiet: true });
  assert.deepEqual([...MODEL_KEYS].sort(), [...EXPECTED].sort());
  for (const key of MODEL_KEYS) {
    const cfg = modelConfig(key) as { vocabSize: number };
    const m = createModel(key, {}, 1);
    const V = cfg.vocabSize, [B, T] = [2, 6];
    const rng = new Rng(2);
    const x = tf.tensor2d(Array.from({ length: B * T }, () => rng.int(V)), [B, T], "int32");
    const loss = (await m.loss(x, x).data())[0];
    assert.ok(Number.isFinite(loss) && loss > 0, `${key}: loss ${loss}`);
    assert.ok(m.forward || m.infer, `${key}: forward or infer`);
    const out = m.forward ? m.forward(x) : await m.infer!(x);
    assert.deepEqual(out.logits.shape, [B, T, V], key);
    assert.ok(m.params.count() > 1000, `${key}: ${m.params.count()} parameters`);
    assert.ok(MODELS[key].description.length > 0);
    m.dispose();
  }
});

Deno.test("registry: unknown keys are rejected naming the key and the accepted ones", () => {
  assert.throws(() => createModel("gpt-5"), (e: Error) => {
    assert.match(e.message, /unknown model 'gpt-5'/);
    for (const k of EXPECTED) assert.ok(e.message.includes(k), `${k} listed`);
    return true;
  });
  assert.equal(isModelKey("cogment"), true);
  assert.equal(isModelKey("toString"), false);
  assert.throws(() => createModel("decoder", { widht: 3 }), /unknown config key 'widht'.*dModel/);
  assert.throws(() => createModel("cognate-memory", { variant: "reasoning" }), /cognate-memory: config variant is 'reasoning'/);
  assert.throws(() => createModel("hrrm-planner", { variant: "memory" }), /hrrm-planner/);
  assert.throws(() => createModel("decoder", { nHeads: 5 }), /nHeads/);
});

Deno.test("registry: overrides and seeds reach the model", async () => {
  await initBackend("cpu", { quiet: true });
  const small = createModel("decoder", { nLayers: 1 }, 0), big = createModel("decoder", {}, 0);
  assert.ok(small.params.count() < big.params.count());
  const c = createModel("cognate-reasoning", { maxRefinementSteps: 3 }, 0);
  assert.ok(c instanceof Cognate && c.cfg.maxRefinementSteps === 3 && c.core);
  const [a, b, d] = [createModel("cogment", {}, 7), createModel("cogment", {}, 7), createModel("cogment", {}, 8)];
  const first = (m: typeof a) => m.params.get("tok").data();
  assert.deepEqual(await first(a), await first(b));
  assert.notDeepEqual(await first(a), await first(d));
  for (const m of [small, big, c, a, b, d]) m.dispose();
});
