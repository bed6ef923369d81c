/** ARC sources: the generator is the default, a folder is read when named; mod.ts exposes the API. */
import assert from "node:assert/strict";
import * as arc from "./mod.ts";
import { DEFAULT_ARC_SOURCE, loadArcSource } from "./source.ts";
import { ARC_TRAINING_DIR, haveArcTraining } from "./testing.ts";

const haveArc = haveArcTraining("source_test.ts");

Deno.test("the default source is the generator: 240 tasks covering every family, deterministic", async () => {
  const { tasks, skipped } = await loadArcSource();
  assert.equal(tasks.length, DEFAULT_ARC_SOURCE.count);
  assert.equal(skipped.length, 0);
  assert.equal(new Set(tasks.map((t) => (t as arc.GeneratedTask).family)).size, arc.FAMILIES.length);
  assert.deepEqual((await loadArcSource()).tasks.map(arc.taskHash), tasks.map(arc.taskHash));
  const small = await loadArcSource({ kind: "generated", count: 5, seed: 3, maxSize: 7, families: ["tile"] });
  assert.ok(small.tasks.every((t) => (t as arc.GeneratedTask).family === "tile" && t.train.every((p) => p.output.length <= 7)));
});

Deno.test({
  name: "a folder source reads the real ARC training set",
  ignore: !haveArc,
  fn: async () => {
    const { tasks } = await loadArcSource({ kind: "folder", dir: ARC_TRAINING_DIR, limit: 10 });
    assert.equal(tasks.length, 10);
  },
});

Deno.test("mod.ts re-exports the public API", () => {
  for (
    const name of [
      "loadTaskFolder",
      "validateTask",
      "vote",
      "augmentTask",
      "generateTask",
      "serializeTask",
      "parseTask",
      "taskHash",
      "encodeGrid",
    ]
  ) {
    assert.equal(typeof (arc as Record<string, unknown>)[name], "function", name);
  }
  assert.equal(arc.GRID_VOCAB_SIZE, 17);
});
