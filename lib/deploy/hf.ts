/**
 * A Hugging Face-style model folder for a saved decoder-family model (cognate-* or decoder):
 *
 *     config.json              model_type, architecture fields, our registry key + config
 *     model.safetensors        the parameters under our names (tok, l0.qkv_w, ...), Linear weights [in, out]
 *     generation_config.json   bos/eos/pad ids, greedy decoding
 *     tokenizer.json           the byte tokenizer in the `tokenizers` JSON format (see byteTokenizerJson)
 *     tokenizer_config.json, special_tokens_map.json
 *
 * `loadHfFolder` rebuilds the model exactly from `agent_forge.registry_key/config`, checking that the
 * HF architecture fields agree with it; a config.json without that section (hand-written, or edited
 * by another tool) builds a standard cognate from the HF fields alone. Errors name the file and field.
 * The weights keep our layout, not transformers' (Linear weights are the transpose of torch.nn.Linear's):
 * the folder is HF-shaped for tooling and inspection, not loadable by `transformers` as it is.
 */
import { join } from "node:path";
import { cognateConfig, decoderPart } from "../models/cognate.ts";
import { createModel, isModelKey, MODEL_KEYS, type ModelKey, type RegistryModel } from "../models/registry.ts";
import type { DecoderConfig } from "../nn/decoder.ts";
import type { SavedModel } from "../models/io.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { decodeSafetensors, encodeSafetensors } from "../train/safetensors.ts";
import { exists, readJson, writeAtomic } from "../util/fs.ts";

/** `model_type` of each exportable registry key. */
export const HF_MODEL_TYPES: Partial<Record<ModelKey, string>> = {
  "cognate-standard": "agent-forge-cognate",
  "cognate-memory": "agent-forge-cognate",
  "cognate-reasoning": "agent-forge-cognate",
  decoder: "agent-forge-decoder",
};

/** Version of the `agent_forge` section; bumped when its meaning changes. */
export const HF_FORMAT_VERSION = 1;

/** Names of the special tokens of the byte tokenizer (ids from TOKENIZER). */
export const SPECIAL_TOKENS = {
  pad: { id: TOKENIZER.pad, content: "<pad>" },
  bos: { id: TOKENIZER.bos, content: "<bos>" },
  eos: { id: TOKENIZER.eos, content: "<eos>" },
  sep: { id: TOKENIZER.sep, content: "<sep>" },
  mask: { id: TOKENIZER.mask, content: "<mask>" },
} as const;

/** The decoder fields of a saved model's config; throws naming the key when the model is not a decoder. */
export function decoderConfigOf(meta: SavedModel): DecoderConfig {
  if (!HF_MODEL_TYPES[meta.key]) {
    throw new Error(`model '${meta.key}' has no decoder architecture to export; exportable: ${Object.keys(HF_MODEL_TYPES).join(", ")}`);
  }
  return decoderPart(meta.config as unknown as DecoderConfig);
}

/** The config.json of a model: HF architecture fields derived from the decoder config, plus our own section. */
export function hfConfig(meta: SavedModel): Record<string, unknown> {
  const c = decoderConfigOf(meta);
  const rope = c.positions === "rope";
  return {
    model_type: HF_MODEL_TYPES[meta.key],
    architectures: [meta.key === "decoder" ? "AgentForgeDecoderForCausalLM" : "AgentForgeCognateForCausalLM"],
    vocab_size: c.vocabSize,
    hidden_size: c.dModel,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nHeads,
    head_dim: c.dModel / c.nHeads,
    intermediate_size: Math.round(c.mlpRatio * c.dModel),
    max_position_embeddings: c.maxSeqLen,
    position_embedding_type: rope ? "rope" : "absolute",
    ...(rope ? { rope_theta: c.ropeBase, rope_scaling: c.ropeScale === 1 ? null : { rope_type: "linear", factor: c.ropeScale } } : {}),
    hidden_act: c.mlp === "swiglu" ? "silu" : "gelu_pytorch_tanh",
    mlp_type: c.mlp, // "gelu": fc2(gelu(fc1 x)); "swiglu": fc2(silu(fc1 x) * fc3 x)
    norm_type: c.norm,
    [c.norm === "rmsnorm" ? "rms_norm_eps" : "layer_norm_eps"]: c.normEps,
    attention_bias: c.bias,
    mlp_bias: c.bias,
    tie_word_embeddings: c.tieEmbeddings,
    initializer_range: c.initStd,
    bos_token_id: TOKENIZER.bos,
    eos_token_id: TOKENIZER.eos,
    pad_token_id: TOKENIZER.pad,
    torch_dtype: "float32",
    agent_forge: {
      format_version: HF_FORMAT_VERSION,
      registry_key: meta.key,
      config: meta.config,
      weight_layout: "our parameter names; Linear weights stored [in, out] (the transpose of torch.nn.Linear.weight)",
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Tokenizer files

/**
 * The byte-to-character table of byte-level BPE (GPT-2's convention): printable Latin-1 bytes map to
 * themselves, the other bytes, in order, to U+0100 onwards. Index = byte, value = character.
 */
export function byteLevelAlphabet(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(keep(b) ? b : next++));
  return out;
}

/**
 * The byte tokenizer as a `tokenizers` tokenizer.json: a byte-level pre-tokenizer (no regex split,
 * no prefix space) turns the UTF-8 bytes into one character each, a BPE model with no merges gives
 * each its byte value as id, and the specials are added tokens 256..260. A template prepends <bos>,
 * as the pipeline does for prompts. One difference from TOKENIZER: a text that spells a special
 * token (e.g. "<eos>") is read as that token here, as bytes by TOKENIZER.
 */
export function byteTokenizerJson(): Record<string, unknown> {
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
  const vocab: Record<string, number> = {};
  byteLevelAlphabet().forEach((ch, b) => vocab[ch] = b);
  const bos = SPECIAL_TOKENS.bos.content;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: Object.values(SPECIAL_TOKENS).map((t) => ({
      id: t.id,
      content: t.content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { [bos]: { id: bos, ids: [SPECIAL_TOKENS.bos.id], tokens: [bos] } },
    },
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

/** tokenizer_config.json: special tokens, their ids, the context length and what the ids mean. */
export function tokenizerConfig(maxLength: number): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  for (const t of Object.values(SPECIAL_TOKENS)) {
    decoder[String(t.id)] = { content: t.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  }
  return {
    tokenizer_class: "PreTrainedTokenizerFast",
    ...specialTokensMap(),
    added_tokens_decoder: decoder,
    model_max_length: maxLength,
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    agent_forge_tokenizer: {
      name: TOKENIZER.name,
      vocab_size: TOKENIZER.vocabSize,
      description: "ids 0..255 are the UTF-8 bytes of the text; 256..260 are PAD, BOS, EOS, SEP, MASK",
      ...Object.fromEntries(Object.entries(SPECIAL_TOKENS).map(([k, t]) => [`${k}_id`, t.id])),
    },
  };
}

/** special_tokens_map.json */
export function specialTokensMap(): Record<string, string> {
  return Object.fromEntries(Object.entries(SPECIAL_TOKENS).map(([k, t]) => [`${k}_token`, t.content]));
}

// ---------------------------------------------------------------------------------------------
// Export and load

/** The files an HF folder holds, by role. */
export const HF_FILES = {
  config: "config.json",
  weights: "model.safetensors",
  generation: "generation_config.json",
  tokenizer: "tokenizer.json",
  tokenizerConfig: "tokenizer_config.json",
  specialTokens: "special_tokens_map.json",
} as const;

/** Writes `model` (saved as `meta`) as an HF-style folder in `dir` (created if needed); every file atomically. Returns the paths written. */
export async function exportHfFolder(model: RegistryModel, meta: SavedModel, dir: string): Promise<string[]> {
  const cfg = hfConfig(meta); // throws first for models without a decoder architecture
  const maxLen = decoderConfigOf(meta).maxSeqLen;
  const tensors = await model.params.toHost();
  const files: [string, string | Uint8Array][] = [
    [HF_FILES.weights, encodeSafetensors(tensors, { format: "agent-forge", key: meta.key, config: JSON.stringify(meta.config) })],
    [HF_FILES.config, JSON.stringify(cfg, null, 2) + "\n"],
    [HF_FILES.generation, JSON.stringify(generationConfig(maxLen), null, 2) + "\n"],
    [HF_FILES.tokenizer, JSON.stringify(byteTokenizerJson()) + "\n"],
    [HF_FILES.tokenizerConfig, JSON.stringify(tokenizerConfig(maxLen), null, 2) + "\n"],
    [HF_FILES.specialTokens, JSON.stringify(specialTokensMap(), null, 2) + "\n"],
  ];
  for (const [name, data] of files) await writeAtomic(join(dir, name), data);
  return files.map(([name]) => join(dir, name));
}

/** generation_config.json: greedy decoding up to the context length, with our special ids. */
export function generationConfig(maxLength: number): Record<string, unknown> {
  return { bos_token_id: TOKENIZER.bos, eos_token_id: TOKENIZER.eos, pad_token_id: TOKENIZER.pad, do_sample: false, max_length: maxLength };
}

type Json = Record<string, unknown>;

function fieldError(file: string, name: string, value: unknown, expected: string): Error {
  return new Error(`${file}: field '${name}' = ${JSON.stringify(value) ?? "missing"}: expected ${expected}`);
}

function posInt(j: Json, file: string, name: string): number {
  const v = j[name];
  if (!Number.isInteger(v) || (v as number) <= 0) throw fieldError(file, name, v, "a positive integer");
  return v as number;
}

function positive(j: Json, file: string, name: string): number {
  const v = j[name];
  if (typeof v !== "number" || !(v > 0)) throw fieldError(file, name, v, "a positive number");
  return v;
}

function oneOf<T extends string>(j: Json, file: string, name: string, values: readonly T[]): T {
  const v = j[name];
  if (!values.includes(v as T)) throw fieldError(file, name, v, `one of ${values.map((x) => JSON.stringify(x)).join(", ")}`);
  return v as T;
}

function bool(j: Json, file: string, name: string): boolean {
  const v = j[name];
  if (typeof v !== "boolean") throw fieldError(file, name, v, "true or false");
  return v;
}

/** Reads the decoder architecture from config.json's HF fields; errors name the file and field. */
export function decoderFromHfConfig(j: Json, file: string): DecoderConfig {
  const dModel = posInt(j, file, "hidden_size");
  const nHeads = posInt(j, file, "num_attention_heads");
  if (dModel % nHeads !== 0) throw fieldError(file, "num_attention_heads", nHeads, `a divisor of hidden_size = ${dModel}`);
  const positions = oneOf(j, file, "position_embedding_type", ["rope", "absolute"] as const) === "rope" ? "rope" : "learned";
  let ropeScale = 1;
  const scaling = j.rope_scaling;
  if (positions === "rope" && scaling != null) {
    const s = scaling as Json;
    if (typeof s !== "object" || s.rope_type !== "linear") {
      throw fieldError(file, "rope_scaling", scaling, `null or { rope_type: "linear", factor }`);
    }
    if (typeof s.factor !== "number" || !(s.factor > 0)) throw fieldError(file, "rope_scaling.factor", s.factor, "a positive number");
    ropeScale = s.factor;
  }
  const norm = oneOf(j, file, "norm_type", ["layernorm", "rmsnorm"] as const);
  const c: DecoderConfig = {
    vocabSize: posInt(j, file, "vocab_size"),
    dModel,
    nHeads,
    nLayers: posInt(j, file, "num_hidden_layers"),
    mlpRatio: posInt(j, file, "intermediate_size") / dModel,
    maxSeqLen: posInt(j, file, "max_position_embeddings"),
    norm,
    positions,
    ropeBase: positions === "rope" ? positive(j, file, "rope_theta") : 10000,
    ropeScale,
    mlp: oneOf(j, file, "mlp_type", ["gelu", "swiglu"] as const),
    bias: bool(j, file, "attention_bias"),
    tieEmbeddings: bool(j, file, "tie_word_embeddings"),
    initStd: typeof j.initializer_range === "number" ? j.initializer_range : 0.02,
    normEps: positive(j, file, norm === "rmsnorm" ? "rms_norm_eps" : "layer_norm_eps"),
  };
  if (bool(j, file, "mlp_bias") !== c.bias) throw fieldError(file, "mlp_bias", j.mlp_bias, `the same as attention_bias (${c.bias})`);
  return c;
}

/** HF field of each decoder field, for mismatch messages. */
const HF_NAME: Record<keyof DecoderConfig, string> = {
  vocabSize: "vocab_size",
  dModel: "hidden_size",
  nHeads: "num_attention_heads",
  nLayers: "num_hidden_layers",
  mlpRatio: "intermediate_size",
  maxSeqLen: "max_position_embeddings",
  norm: "norm_type",
  positions: "position_embedding_type",
  ropeBase: "rope_theta",
  ropeScale: "rope_scaling",
  mlp: "mlp_type",
  bias: "attention_bias",
  tieEmbeddings: "tie_word_embeddings",
  initStd: "initializer_range",
  normEps: "layer_norm_eps / rms_norm_eps",
};

/** The registry key and config a config.json describes (checked against its HF fields). */
export function savedModelFromHfConfig(j: Json, file: string): SavedModel {
  const types = [...new Set(Object.values(HF_MODEL_TYPES))];
  oneOf(j, file, "model_type", types);
  const hf = decoderFromHfConfig(j, file);
  const af = j.agent_forge as Json | undefined;
  if (af === undefined) {
    // No registry section: a standard cognate from the HF fields alone.
    return { key: "cognate-standard", config: { ...cognateConfig({ ...hf, variant: "standard" }) } };
  }
  if (typeof af !== "object" || af === null) throw fieldError(file, "agent_forge", af, "an object");
  if (af.format_version !== HF_FORMAT_VERSION) {
    throw fieldError(file, "agent_forge.format_version", af.format_version, `${HF_FORMAT_VERSION}`);
  }
  const key = af.registry_key;
  if (typeof key !== "string" || !isModelKey(key)) {
    throw fieldError(file, "agent_forge.registry_key", key, `one of ${MODEL_KEYS.join(", ")}`);
  }
  if (HF_MODEL_TYPES[key] !== j.model_type) {
    throw fieldError(file, "model_type", j.model_type, `"${HF_MODEL_TYPES[key]}" for registry key ${key}`);
  }
  const config = af.config;
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw fieldError(file, "agent_forge.config", config, "an object");
  }
  const meta: SavedModel = { key, config: config as Json };
  const reg = decoderConfigOf(meta);
  for (const k of Object.keys(HF_NAME) as (keyof DecoderConfig)[]) {
    if ((k === "ropeBase" || k === "ropeScale") && hf.positions !== "rope") continue; // not written for learned positions
    const a = k === "mlpRatio" ? Math.round(reg.mlpRatio * reg.dModel) : reg[k];
    const b = k === "mlpRatio" ? Math.round(hf.mlpRatio * hf.dModel) : hf[k];
    if (a !== b) {
      throw new Error(
        `${file}: field '${HF_NAME[k]}' (${JSON.stringify(b)}) disagrees with agent_forge.config.${k} (${JSON.stringify(a)})`,
      );
    }
  }
  return meta;
}

/** Loads a folder written by `exportHfFolder` (or any folder with such a config.json and model.safetensors). */
export async function loadHfFolder(dir: string): Promise<{ model: RegistryModel; meta: SavedModel }> {
  const cfgPath = join(dir, HF_FILES.config);
  const weightsPath = join(dir, HF_FILES.weights);
  if (!(await exists(cfgPath))) throw new Error(`${cfgPath}: not found (is ${dir} an exported model folder?)`);
  const j = await readJson<Json>(cfgPath);
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw new Error(`${cfgPath}: expected a JSON object`);
  const meta = savedModelFromHfConfig(j, cfgPath);
  if (!(await exists(weightsPath))) throw new Error(`${weightsPath}: not found`);
  const { tensors } = decodeSafetensors(await Deno.readFile(weightsPath), weightsPath);
  let model: RegistryModel;
  try {
    model = createModel(meta.key, meta.config, 0);
  } catch (e) {
    throw new Error(`${cfgPath}: agent_forge.config does not build a '${meta.key}' model: ${(e as Error).message}`);
  }
  try {
    const extra = [...tensors.keys()].filter((name) => !model.params.has(name));
    if (extra.length) throw new Error(`${weightsPath}: tensors the '${meta.key}' config has no parameter for: ${extra.join(", ")}`);
    model.params.load(tensors, { source: weightsPath });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, meta };
}
