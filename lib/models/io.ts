/** Model files: parameters in safetensors with the registry key and config in its metadata, so a file loads on its own. */
import { decodeSafetensors, encodeSafetensors } from "../train/safetensors.ts";
import { exists, writeAtomic } from "../util/fs.ts";
import { createModel, type ModelKey, type RegistryModel } from "./registry.ts";

/** A model file: registry key + config in the safetensors metadata, so it loads without anything else. */
export interface SavedModel {
  key: ModelKey;
  config: Record<string, unknown>;
}

/** Writes `model`'s parameters with its registry key and config (atomically). */
export async function saveModel(path: string, model: RegistryModel, meta: SavedModel): Promise<void> {
  const tensors = await model.params.toHost();
  await writeAtomic(path, encodeSafetensors(tensors, { key: meta.key, config: JSON.stringify(meta.config) }));
}

/** Loads a file written by `saveModel`: builds the model from its key and config, then its weights. */
export async function loadModel(path: string): Promise<{ model: RegistryModel; meta: SavedModel }> {
  if (!(await exists(path))) throw new Error(`${path}: model file not found`);
  const { tensors, metadata } = decodeSafetensors(await Deno.readFile(path), path);
  if (!metadata.key || !metadata.config) throw new Error(`${path}: no model key/config in the safetensors metadata`);
  const meta: SavedModel = { key: metadata.key as ModelKey, config: JSON.parse(metadata.config) };
  const model = createModel(meta.key, meta.config, 0);
  model.params.load(tensors, { source: path });
  return { model, meta };
}
