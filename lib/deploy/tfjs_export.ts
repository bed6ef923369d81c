/**
 * tfjs's own model format: `model.json` (a tf.io ModelJSON: topology + weights manifest) beside one
 * weights shard `group1-shard1of1.bin`, as tfjs's converter writes them. The weights are encoded by
 * `tf.io.encodeWeights` and saved through a tf.io save handler; they are read back through tfjs's
 * own loader (`tf.io.http` over a file: URL, which fetches model.json, then the shards its manifest
 * names) and `tf.io.decodeWeights`. The topology is ours, not a Keras or GraphDef one: it names the
 * registry key and config that rebuild the model, so `loadTfjs` returns a registry model, and any
 * other tf.io handler (IndexedDB, http) can store or serve the same artifacts.
 */
import * as tf from "@tensorflow/tfjs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createModel, isModelKey, MODEL_KEYS, type RegistryModel } from "../models/registry.ts";
import type { HostTensor } from "../nn/params.ts";
import type { SavedModel } from "../models/io.ts";
import { writeAtomic } from "../util/fs.ts";

/** File names of the export (tfjs's converter names a single shard `group1-shard1of1.bin`). */
export const TFJS_FILES = { manifest: "model.json", weights: "group1-shard1of1.bin" } as const;

/** The `format` field of our model.json. */
export const TFJS_FORMAT = "agent-forge-registry";

/** Our model.json topology: what rebuilds the model before its weights are loaded. */
export interface TfjsTopology {
  class_name: "AgentForgeRegistryModel";
  registry_key: string;
  config: Record<string, unknown>;
}

/** The tf.io artifacts of a model: topology, encoded weights (in parameter order) and their specs. */
export async function tfjsArtifacts(model: RegistryModel, meta: SavedModel): Promise<tf.io.ModelArtifacts> {
  const named: tf.NamedTensorMap = Object.fromEntries(model.params.vars);
  const { data, specs } = await tf.io.encodeWeights(named);
  const modelTopology: TfjsTopology = { class_name: "AgentForgeRegistryModel", registry_key: meta.key, config: meta.config };
  return {
    modelTopology,
    format: TFJS_FORMAT,
    generatedBy: `agent-forge (tfjs-core ${tf.version_core})`,
    convertedBy: null,
    weightSpecs: specs,
    weightData: data,
  };
}

/** A tf.io save handler writing model.json + the one weights shard into `dir` (each file atomically). */
export function fileSaveHandler(dir: string): tf.io.IOHandler {
  return tf.io.withSaveHandler(async (artifacts) => {
    if (!artifacts.weightSpecs || !artifacts.weightData) throw new Error(`tfjs export to ${dir}: the artifacts carry no weights`);
    const data = artifacts.weightData instanceof ArrayBuffer
      ? new Uint8Array(artifacts.weightData)
      : new Uint8Array(tf.io.concatenateArrayBuffers(artifacts.weightData));
    const json: tf.io.ModelJSON = {
      modelTopology: artifacts.modelTopology ?? {},
      format: artifacts.format,
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy ?? null,
      weightsManifest: [{ paths: [TFJS_FILES.weights], weights: artifacts.weightSpecs }],
    };
    await writeAtomic(join(dir, TFJS_FILES.weights), data);
    await writeAtomic(join(dir, TFJS_FILES.manifest), JSON.stringify(json, null, 1) + "\n");
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  });
}

/** Writes `model` in tfjs's format into `dir`. Returns the files written and their total size in bytes. */
export async function exportTfjs(model: RegistryModel, meta: SavedModel, dir: string): Promise<{ paths: string[]; sizeBytes: number }> {
  await fileSaveHandler(dir).save!(await tfjsArtifacts(model, meta));
  const paths = [join(dir, TFJS_FILES.manifest), join(dir, TFJS_FILES.weights)];
  let sizeBytes = 0;
  for (const p of paths) sizeBytes += (await Deno.stat(p)).size;
  return { paths, sizeBytes };
}

/** Builds a registry model from tf.io artifacts (ours: see TfjsTopology); `source` names them in errors. */
export function modelFromArtifacts(artifacts: tf.io.ModelArtifacts, source: string): { model: RegistryModel; meta: SavedModel } {
  const topo = artifacts.modelTopology as Partial<TfjsTopology> | undefined;
  if (artifacts.format !== TFJS_FORMAT) {
    throw new Error(`${source}: format = ${JSON.stringify(artifacts.format)}: expected "${TFJS_FORMAT}"`);
  }
  if (!topo || typeof topo !== "object" || topo instanceof ArrayBuffer) {
    throw new Error(`${source}: modelTopology missing or not an object`);
  }
  const key = topo.registry_key;
  if (typeof key !== "string" || !isModelKey(key)) {
    throw new Error(`${source}: modelTopology.registry_key = ${JSON.stringify(key)}: expected one of ${MODEL_KEYS.join(", ")}`);
  }
  if (typeof topo.config !== "object" || topo.config === null) throw new Error(`${source}: modelTopology.config: expected an object`);
  if (!artifacts.weightSpecs || !artifacts.weightData) throw new Error(`${source}: no weights (weightsManifest empty?)`);
  const meta: SavedModel = { key, config: topo.config };
  const named = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  const model = createModel(key, topo.config, 0);
  try {
    const host = new Map<string, HostTensor>();
    for (const [name, t] of Object.entries(named)) {
      if (!model.params.has(name)) throw new Error(`${source}: weight '${name}' is not a parameter of the '${key}' config`);
      host.set(name, { shape: t.shape.slice(), data: t.dataSync() as Float32Array });
    }
    model.params.load(host, { source });
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    tf.dispose(Object.values(named));
  }
  return { model, meta };
}

/** Loads a folder written by `exportTfjs` through tfjs's loader (tf.io.http over its file: URL). */
export async function loadTfjs(dir: string): Promise<{ model: RegistryModel; meta: SavedModel }> {
  const manifest = join(dir, TFJS_FILES.manifest);
  const url = pathToFileURL(resolve(manifest)).href;
  let artifacts: tf.io.ModelArtifacts;
  try {
    artifacts = await tf.io.http(url, { fetchFunc: fetch }).load!();
  } catch (e) {
    throw new Error(`${manifest}: tfjs could not load it (${(e as Error).message})`);
  }
  return modelFromArtifacts(artifacts, manifest);
}
