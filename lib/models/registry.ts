/**
 * The model registry: one key per trainable model, each with its config type, small defaults
 * (they build in well under a second) and a factory `(config, seed) => model`. Every model
 * offers the same minimal interface (`RegistryModel`): its parameters, a training loss, and
 * a forward pass (synchronous `forward` or, for HRRM's adaptive inference, async `infer`).
 */
import type * as tf from "@tensorflow/tfjs";
import { type CachedInput, type CachedOutput, Decoder, type DecoderConfig, SMALL_DECODER, validateDecoderConfig } from "../nn/decoder.ts";
import type { ParamSet } from "../nn/params.ts";
import { Cognate, type CognateConfig, cognatePresetConfig, type CognateVariant, validateCognateConfig } from "./cognate.ts";
import { Cogment, type CogmentConfig, DEFAULT_COGMENT, validateCogmentConfig } from "./cogment.ts";
import { DEFAULT_HRRM, Hrrm, type HrrmConfig, type HrrmVariant, validateHrrmConfig } from "./hrrm.ts";

/** What every registered model offers. */
export interface RegistryModel {
  readonly params: ParamSet;
  /** The training loss. ids, targets int32 [B, T]; mask float [B, T] (1 = counts). */
  loss(ids: tf.Tensor2D, targets: tf.Tensor2D, mask?: tf.Tensor2D): tf.Scalar;
  /** ids [B, T] -> at least logits [B, T, V] (decoder, cognates, Cogment). */
  forward?(ids: tf.Tensor2D): { logits: tf.Tensor3D };
  /** The forward pass with a KV cache (nn/kv_cache.ts): the decoder and the standard cognate have it. */
  forwardCached?(input: CachedInput): CachedOutput;
  /** ids [B, T] -> at least logits [B, T, V], adaptively (HRRM). */
  infer?(ids: tf.Tensor2D): Promise<{ logits: tf.Tensor3D }>;
  /** Frees the parameters (and any other tensors the model holds). */
  dispose(): void;
}

/** The config type of every key. */
export interface ModelConfigs {
  "cognate-standard": CognateConfig;
  "cognate-memory": CognateConfig;
  "cognate-reasoning": CognateConfig;
  cogment: CogmentConfig;
  "hrrm-reasoner": HrrmConfig;
  "hrrm-planner": HrrmConfig;
  "hrrm-memory": HrrmConfig;
  decoder: DecoderConfig;
}

/** A registry key. */
export type ModelKey = keyof ModelConfigs;

/** One registry entry. */
export interface ModelEntry<C> {
  /** One line for listings. */
  description: string;
  /** The default config (a fresh object each call). */
  defaults(): C;
  /** Checks a full config; the error names the field. */
  validate(config: C): void;
  /** Builds the model, its parameters drawn from `seed`. */
  create(config: C, seed: number): RegistryModel;
}

/** The decoder with a dispose method (Decoder itself has none). */
function decoderModel(cfg: DecoderConfig, seed: number): RegistryModel {
  const d = new Decoder(cfg, seed);
  return Object.assign(d, { dispose: () => d.params.dispose() });
}

function cognateEntry(variant: CognateVariant, what: string): ModelEntry<CognateConfig> {
  return {
    description: `cognate ${variant}: ${what} (defaults: the tiny preset, sized to the standard model's parameters)`,
    defaults: () => cognatePresetConfig("tiny", variant),
    validate: (c) => {
      validateCognateConfig(c);
      if (c.variant !== variant) throw new Error(`cognate-${variant}: config variant is '${c.variant}'`);
    },
    create: (c, seed) => new Cognate(c, seed),
  };
}

function hrrmEntry(variant: HrrmVariant, what: string): ModelEntry<HrrmConfig> {
  return {
    description: `HRRM ${variant}: ${what}`,
    defaults: () => ({ ...DEFAULT_HRRM, variant }),
    validate: (c) => {
      validateHrrmConfig(c);
      if (c.variant !== variant) throw new Error(`hrrm-${variant}: config variant is '${c.variant}'`);
    },
    create: (c, seed) => new Hrrm(c, seed),
  };
}

/** Every registered model. */
export const MODELS: { readonly [K in ModelKey]: ModelEntry<ModelConfigs[K]> } = {
  "cognate-standard": cognateEntry("standard", "plain transformer"),
  "cognate-memory": cognateEntry("memory", "transformer + GatedLTM after a middle block"),
  "cognate-reasoning": cognateEntry("reasoning", "transformer + ACT refinement core before the head"),
  cogment: {
    description: "Cogment: ACT over a shared block, short-term slots, GatedLTM, ACT refinement",
    defaults: () => ({ ...DEFAULT_COGMENT }),
    validate: validateCogmentConfig,
    create: (c, seed) => new Cogment(c, seed),
  },
  "hrrm-reasoner": hrrmEntry("reasoner", "hierarchical recurrent reasoner, deep supervision, Q-halting"),
  "hrrm-planner": hrrmEntry("planner", "HRRM with a plan-action controller"),
  "hrrm-memory": hrrmEntry("memory", "HRRM with a learned slot memory"),
  decoder: {
    description: "GPT-style decoder (a 2-layer, 64-wide reference shape)",
    defaults: () => ({ ...SMALL_DECODER }),
    validate: validateDecoderConfig,
    create: decoderModel,
  },
};

/** The registry's keys, in declaration order. */
export const MODEL_KEYS = Object.keys(MODELS) as ModelKey[];

/** Whether `key` names a registered model. */
export function isModelKey(key: string): key is ModelKey {
  return Object.hasOwn(MODELS, key);
}

function entryOf(key: string): ModelEntry<unknown> {
  if (!isModelKey(key)) throw new Error(`unknown model '${key}'; accepted keys: ${MODEL_KEYS.join(", ")}`);
  return MODELS[key] as ModelEntry<unknown>;
}

/**
 * The defaults of `key` with `overrides`, validated. An override key the config lacks throws,
 * naming it and the accepted keys.
 */
export function modelConfig<K extends ModelKey>(key: K, overrides?: Partial<ModelConfigs[K]>): ModelConfigs[K];
export function modelConfig(key: string, overrides?: Record<string, unknown>): unknown;
export function modelConfig(key: string, overrides: Record<string, unknown> = {}): unknown {
  const entry = entryOf(key);
  const defaults = entry.defaults() as Record<string, unknown>;
  for (const k of Object.keys(overrides)) {
    if (!(k in defaults)) throw new Error(`model '${key}': unknown config key '${k}'; accepted: ${Object.keys(defaults).join(", ")}`);
  }
  const cfg = { ...defaults, ...overrides };
  entry.validate(cfg);
  return cfg;
}

/**
 * Builds the model `key` from its defaults with `overrides`, parameters drawn from `seed`.
 * An unknown key throws, naming it and the accepted keys.
 */
export function createModel<K extends ModelKey>(key: K, overrides?: Partial<ModelConfigs[K]>, seed?: number): RegistryModel;
export function createModel(key: string, overrides?: Record<string, unknown>, seed?: number): RegistryModel;
export function createModel(key: string, overrides: Record<string, unknown> = {}, seed = 0): RegistryModel {
  return entryOf(key).create(modelConfig(key, overrides), seed);
}
