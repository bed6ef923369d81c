/** The library entry point: every layer's namespace loads, and a model can be built and trained a step through it. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import * as af from "./mod.ts";

Deno.test("lib/mod.ts exposes one namespace per layer, and a model built through it computes a finite loss", async () => {
  await af.backend.initBackend("wasm", { quiet: true });
  const layers = [
    "util",
    "backend",
    "nn",
    "train",
    "models",
    "compress",
    "config",
    "text",
    "evaluation",
    "deploy",
    "phases",
    "evolve",
    "pipeline",
    "explore",
    "viz",
  ] as const;
  for (const ns of [...layers, "datasets", "arc", "puzzles"] as const) {
    assert.ok(Object.keys(af[ns]).length > 0, `namespace ${ns} is empty`);
  }
  assert.equal(af.phases.PHASES.length, 7);
  assert.equal(typeof af.pipeline.openRun, "function");
  assert.equal(typeof af.explore.rerunGrokking, "function");
  assert.equal(typeof af.evaluation.answerMetrics, "function");
  const model = af.models.createModel("cognate-standard", {}, 0);
  const items = af.datasets.generateExamples("sanity", 8, 0);
  assert.equal(items.length, 8);
  assert.ok(model.params.count() > 0);
  const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6]], [1, 6], "int32");
  const loss = (await model.loss(ids, ids).data())[0];
  assert.ok(Number.isFinite(loss) && loss > 0, `loss ${loss}`);
  model.dispose();
});
