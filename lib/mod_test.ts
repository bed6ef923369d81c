/** The library entry point: every namespace loads, and a model can be built through it. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import * as af from "./mod.ts";

Deno.test("lib/mod.ts exposes the library by namespace, and a model built through it computes a finite loss", async () => {
  await af.backend.initBackend("wasm", { quiet: true });
  for (const ns of ["backend", "layers", "decoder", "trainer", "grokfast", "models", "compress", "datasets", "arc"] as const) {
    assert.ok(Object.keys(af[ns]).length > 0, `namespace ${ns} is empty`);
  }
  const model = af.models.createModel("cognate-standard", {}, 0);
  const items = af.datasets.generateExamples("sanity", 8, 0);
  assert.equal(items.length, 8);
  assert.ok(model.params.count() > 0);
  const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6]], [1, 6], "int32");
  const loss = (await model.loss(ids, ids).data())[0];
  assert.ok(Number.isFinite(loss) && loss > 0, `loss ${loss}`);
  model.dispose();
});
