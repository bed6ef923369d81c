/** tfjs's format: model.json + group1-shard1of1.bin, read back with tfjs's own loader into identical logits. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { type CognateConfig, cognatePresetConfig } from "../models/cognate.ts";
import { createModel, type RegistryModel } from "../models/registry.ts";
import { logitsOf } from "../text/generate.ts";
import type { SavedModel } from "../models/io.ts";
import { Rng } from "../util/rng.ts";
import { exportTfjs, loadTfjs, modelFromArtifacts, TFJS_FILES, TFJS_FORMAT, tfjsArtifacts } from "./tfjs_export.ts";

function tinyCognate(seed: number, overrides: Partial<CognateConfig> = {}): { model: RegistryModel; meta: SavedModel } {
  const config = cognatePresetConfig("tiny", "standard", overrides);
  return { model: createModel("cognate-standard", config, seed), meta: { key: "cognate-standard", config: { ...config } } };
}

async function logitsFor(model: RegistryModel): Promise<Float32Array> {
  const rng = new Rng(9);
  const ids = tf.tensor2d(Int32Array.from({ length: 48 }, () => rng.int(261)), [3, 16], "int32");
  const logits = await logitsOf(model, ids);
  const data = (await logits.data()) as Float32Array;
  tf.dispose([ids, logits]);
  return data;
}

Deno.test("tfjs export round trip through tf.io gives identical logits", async () => {
  await initBackend("wasm", { quiet: true });
  for (const overrides of [{}, { positions: "learned", mlp: "swiglu", tieEmbeddings: true }] as Partial<CognateConfig>[]) {
    const { model, meta } = tinyCognate(4, overrides);
    const dir = await Deno.makeTempDir();
    const { paths, sizeBytes } = await exportTfjs(model, meta, dir);
    assert.deepEqual(paths, [join(dir, "model.json"), join(dir, "group1-shard1of1.bin")]);
    const json = JSON.parse(await Deno.readTextFile(join(dir, TFJS_FILES.manifest)));
    assert.equal(json.format, TFJS_FORMAT);
    assert.deepEqual(json.weightsManifest[0].paths, ["group1-shard1of1.bin"]);
    assert.deepEqual(json.weightsManifest[0].weights.map((w: { name: string }) => w.name), model.params.names());
    assert.ok(json.weightsManifest[0].weights.every((w: { dtype: string }) => w.dtype === "float32"));
    assert.equal((await Deno.stat(paths[1])).size, model.params.count() * 4);
    assert.ok(sizeBytes > model.params.count() * 4);
    const back = await loadTfjs(dir);
    assert.deepEqual(back.meta, meta);
    assert.deepEqual(await logitsFor(back.model), await logitsFor(model));
    // The same artifacts through another tf.io handler (memory) rebuild the same model too.
    const mem = await tf.io.fromMemory(await tfjsArtifacts(model, meta)).load!();
    const viaMemory = modelFromArtifacts(mem, "memory");
    assert.deepEqual(await logitsFor(viaMemory.model), await logitsFor(model));
    [model, back.model, viaMemory.model].forEach((m) => m.dispose());
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tfjs loader errors name the file and the field", async () => {
  await initBackend("wasm", { quiet: true });
  const { model, meta } = tinyCognate(4);
  const dir = await Deno.makeTempDir();
  await exportTfjs(model, meta, dir);
  const path = join(dir, TFJS_FILES.manifest);
  const good = JSON.parse(await Deno.readTextFile(path));
  const bad = structuredClone(good);
  bad.modelTopology.registry_key = "gpt9";
  await Deno.writeTextFile(path, JSON.stringify(bad));
  await assert.rejects(loadTfjs(dir), /model\.json: modelTopology\.registry_key = "gpt9": expected one of cognate-standard/);
  await Deno.writeTextFile(path, JSON.stringify({ ...good, format: "layers-model" }));
  await assert.rejects(loadTfjs(dir), /model\.json: format = "layers-model"/);
  const renamed = structuredClone(good);
  renamed.weightsManifest[0].weights[0].name = "embedding";
  await Deno.writeTextFile(path, JSON.stringify(renamed));
  await assert.rejects(loadTfjs(dir), /model\.json: weight 'embedding' is not a parameter/);
  await Deno.writeTextFile(path, JSON.stringify(good));
  await Deno.remove(join(dir, TFJS_FILES.weights));
  await assert.rejects(loadTfjs(dir), /model\.json: tfjs could not load it/);
  model.dispose();
  await Deno.remove(dir, { recursive: true });
});
