/**
 * A Hugging Face model folder for a saved decoder-family model (cognate-* or decoder).
 *
 * Where a standard architecture computes exactly what the model computes (hf_arch.ts: gpt2, gpt_neox
 * or llama; the standard cognate and the decoder), the folder is that architecture's, loadable by
 * Transformers.js and PyTorch `transformers`:
 *
 *     config.json              model_type gpt2 | gpt_neox | llama and its fields, plus our `agent_forge` section
 *     model.safetensors        the parameters under the architecture's names and layouts (torch Linear [out, in])
 *     onnx/model.onnx          the decoder with past key values (onnx.ts, profile `kv`), as Transformers.js runs it
 *     generation_config.json   bos/eos/pad ids, greedy decoding, ids past the tokenizer's suppressed
 *     tokenizer.json           the byte tokenizer (byteTokenizerJson) or GPT-2 BPE (gpt2TokenizerJson)
 *     tokenizer_config.json, special_tokens_map.json
 *
 * Otherwise (the memory and reasoning cognates, or a combination no architecture has) the folder
 * keeps our own format: model_type `agent-forge-cognate` / `agent-forge-decoder`, the parameters
 * under our names (tok, l0.qkv_w, ...; Linear weights [in, out]), no ONNX graph, and config.json
 * says why (`agent_forge.no_standard_architecture`); only this repo loads it.
 *
 * `loadHfFolder` rebuilds the model exactly from `agent_forge.registry_key/config`, checking that the
 * HF architecture fields agree with it; a config.json without that section (hand-written, or from
 * another tool) builds a standard cognate from the HF fields alone. Errors name the file and field.
 */
import { join } from "node:path";
import { cognateConfig, decoderPart } from "../models/cognate.ts";
import { createModel, isModelKey, MODEL_KEYS, type ModelKey, type RegistryModel } from "../models/registry.ts";
import type { DecoderConfig } from "../nn/decoder.ts";
import type { SavedModel } from "../models/io.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { bpeModelJson, byteLevelAlphabet, gpt2TokenizerConfigJson, gpt2TokenizerJson } from "../../datasets/tokenizers/gpt2_json.ts";
import { GPT2_EOT, GPT2_VOCAB_SIZE } from "../../datasets/tokenizers/gpt2.ts";
import { fromHfTensors, type HfArch, hfArchConfig, hfArchOf, toHfTensors } from "./hf_arch.ts";
import { decoderToOnnx } from "./onnx.ts";
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
export const HF_FORMAT_VERSION = 2;
/** Versions `loadHfFolder` reads: 1 wrote every model in our own format, 2 adds the standard architectures. */
const READABLE_VERSIONS = [1, 2];

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

/** The config.json fields of our own format (model_type agent-forge-*), derived from the decoder config; the caller adds our section. */
export function hfConfig(meta: SavedModel, ids = tokenizerIds("byte")): Record<string, unknown> {
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
    prev_tokens: c.prevTokens ?? 0, // embeddings of the k preceding tokens added to each input (decoder.ts prevTokens)
    [c.norm === "rmsnorm" ? "rms_norm_eps" : "layer_norm_eps"]: c.normEps,
    attention_bias: c.bias,
    mlp_bias: c.bias,
    tie_word_embeddings: c.tieEmbeddings,
    initializer_range: c.initStd,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    torch_dtype: "float32",
  };
}

// ---------------------------------------------------------------------------------------------
// Tokenizer files

/** The byte-to-character table of byte-level BPE (GPT-2's convention); shared with the GPT-2 tokenizer files. */
export { byteLevelAlphabet };

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
    model: bpeModelJson(vocab, []), // no merges: each byte stays its own token
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
    padding_side: "left", // batched generation: each row's newest token last
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

/** The files an HF folder holds, by role (`onnx` only for a standard architecture). */
export const HF_FILES = {
  config: "config.json",
  weights: "model.safetensors",
  onnx: "onnx/model.onnx",
  generation: "generation_config.json",
  tokenizer: "tokenizer.json",
  tokenizerConfig: "tokenizer_config.json",
  specialTokens: "special_tokens_map.json",
} as const;

/** The tokenizers an export can carry: the pipeline's bytes, or GPT-2 BPE (a model trained on GPT-2 ids). */
export type HfTokenizer = "byte" | "gpt2";

export interface HfExportOptions {
  /** Default: `gpt2` when the vocabulary holds GPT-2's 50,257 ids, else `byte`. */
  tokenizer?: HfTokenizer;
}

/** The standard architecture of a saved model, or null and why none fits. */
export function standardArchOf(meta: SavedModel): { arch: HfArch; reason?: undefined } | { arch: null; reason: string } {
  if (meta.key !== "cognate-standard" && meta.key !== "decoder") {
    return { arch: null, reason: `'${meta.key}' adds modules to the decoder that no standard architecture has` };
  }
  return hfArchOf(decoderConfigOf(meta));
}

/** Special ids and vocabulary of each tokenizer. */
function tokenizerIds(t: HfTokenizer): { bos: number; eos: number; pad: number; vocab: number } {
  return t === "gpt2"
    ? { bos: GPT2_EOT, eos: GPT2_EOT, pad: GPT2_EOT, vocab: GPT2_VOCAB_SIZE }
    : { bos: TOKENIZER.bos, eos: TOKENIZER.eos, pad: TOKENIZER.pad, vocab: TOKENIZER.vocabSize };
}

/**
 * Writes `model` (saved as `meta`) as an HF folder in `dir` (created if needed); every file atomically.
 * Returns the paths written. See the module comment for which layout a model gets.
 */
export async function exportHfFolder(model: RegistryModel, meta: SavedModel, dir: string, opts: HfExportOptions = {}): Promise<string[]> {
  const c = decoderConfigOf(meta); // throws first for models without a decoder architecture
  const tokenizer = opts.tokenizer ?? (c.vocabSize >= GPT2_VOCAB_SIZE ? "gpt2" : "byte");
  const ids = tokenizerIds(tokenizer);
  if (c.vocabSize < ids.vocab) {
    throw new Error(`HF export: tokenizer '${tokenizer}' has ${ids.vocab} ids, the model's vocabulary only ${c.vocabSize}`);
  }
  const std = standardArchOf(meta);
  const tensors = await model.params.toHost();
  const section = {
    format_version: HF_FORMAT_VERSION,
    registry_key: meta.key,
    config: meta.config,
    tokenizer,
    ...(std.arch
      ? { weight_layout: `${std.arch} names and layouts, as transformers stores them` }
      : { no_standard_architecture: std.reason, weight_layout: OUR_LAYOUT }),
  };
  const cfg = std.arch ? { ...hfArchConfig(std.arch, c, ids), agent_forge: section } : { ...hfConfig(meta, ids), agent_forge: section };
  const weights = std.arch
    ? encodeSafetensors(toHfTensors(std.arch, c, tensors), { format: "pt" })
    : encodeSafetensors(tensors, { format: "agent-forge", key: meta.key, config: JSON.stringify(meta.config) });
  const files: [string, string | Uint8Array][] = [
    [HF_FILES.weights, weights],
    [HF_FILES.config, JSON.stringify(cfg, null, 2) + "\n"],
    [HF_FILES.generation, JSON.stringify(generationConfig(c, tokenizer), null, 2) + "\n"],
    [HF_FILES.tokenizer, JSON.stringify(tokenizer === "gpt2" ? await gpt2TokenizerJson() : byteTokenizerJson()) + "\n"],
    [
      HF_FILES.tokenizerConfig,
      JSON.stringify(tokenizer === "gpt2" ? gpt2TokenizerConfigJson(c.maxSeqLen) : tokenizerConfig(c.maxSeqLen), null, 2) + "\n",
    ],
    [HF_FILES.specialTokens, JSON.stringify(tokenizer === "gpt2" ? gpt2SpecialTokensMap() : specialTokensMap(), null, 2) + "\n"],
  ];
  if (std.arch) {
    const graph = decoderToOnnx(c, tensors, { profile: "kv" }, {
      "agent_forge.registry_key": meta.key,
      "agent_forge.config": JSON.stringify(meta.config),
    });
    files.push([HF_FILES.onnx, graph]);
  }
  if (std.arch) await Deno.mkdir(join(dir, "onnx"), { recursive: true });
  for (const [name, data] of files) await writeAtomic(join(dir, name), data);
  return files.map(([name]) => join(dir, name));
}

const OUR_LAYOUT = "our parameter names; Linear weights stored [in, out] (the transpose of torch.nn.Linear.weight)";

/** special_tokens_map.json of GPT-2. */
function gpt2SpecialTokensMap(): Record<string, string> {
  return { bos_token: "<|endoftext|>", eos_token: "<|endoftext|>", unk_token: "<|endoftext|>" };
}

/**
 * generation_config.json: greedy decoding up to the context length with the tokenizer's special ids.
 * Ids past the tokenizer's (the model's vocabulary may be rounded up) are suppressed, as our own
 * decoding never picks them, so that other runtimes decode the same tokens.
 */
export function generationConfig(c: DecoderConfig, tokenizer: HfTokenizer = "byte"): Record<string, unknown> {
  const ids = tokenizerIds(tokenizer);
  const extra = Array.from({ length: Math.max(0, c.vocabSize - ids.vocab) }, (_, i) => ids.vocab + i);
  return {
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    do_sample: false,
    max_length: c.maxSeqLen,
    ...(extra.length ? { suppress_tokens: extra } : {}),
  };
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

function posIntOrZero(j: Json, file: string, name: string): number {
  const v = j[name];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw fieldError(file, name, v, "an integer >= 0");
  return v;
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

/** The linear RoPE interpolation factor of `rope_scaling` (null: 1); other scalings are refused. */
function ropeScaleOf(j: Json, file: string): number {
  const scaling = j.rope_scaling;
  if (scaling == null) return 1;
  const s = scaling as Json;
  if (typeof s !== "object" || (s.rope_type ?? s.type) !== "linear") {
    throw fieldError(file, "rope_scaling", scaling, `null or { rope_type: "linear", factor }`);
  }
  if (typeof s.factor !== "number" || !(s.factor > 0)) throw fieldError(file, "rope_scaling.factor", s.factor, "a positive number");
  return s.factor;
}

/** `name` when present, else `fallback`. */
function orDefault<T>(j: Json, name: string, fallback: T, read: (j: Json, file: string, name: string) => T, file: string): T {
  return j[name] === undefined || j[name] === null ? fallback : read(j, file, name);
}

/**
 * The decoder config of a standard architecture's config.json (gpt2, gpt_neox, llama), for a folder
 * without our section. Fields that ask for something our decoder does not compute (exact GELU,
 * GPT-NeoX's parallel residual, partial rotary, grouped-query attention) are refused by name.
 */
export function decoderFromArchConfig(arch: HfArch, j: Json, file: string): DecoderConfig {
  const initStd = typeof j.initializer_range === "number" ? j.initializer_range : 0.02;
  const heads = (C: number, name: string) => {
    const H = posInt(j, file, name);
    if (C % H !== 0) throw fieldError(file, name, H, `a divisor of the hidden size = ${C}`);
    return H;
  };
  const tanhGelu = ["gelu_new", "gelu_pytorch_tanh"] as const;
  if (arch === "gpt2") {
    const C = posInt(j, file, "n_embd");
    oneOf(j, file, "activation_function", tanhGelu);
    return {
      vocabSize: posInt(j, file, "vocab_size"),
      dModel: C,
      nHeads: heads(C, "n_head"),
      nLayers: posInt(j, file, "n_layer"),
      mlpRatio: orDefault(j, "n_inner", 4 * C, posInt, file) / C,
      maxSeqLen: posInt(j, file, "n_positions"),
      norm: "layernorm",
      positions: "learned",
      ropeBase: 10000,
      ropeScale: 1,
      mlp: "gelu",
      bias: true,
      tieEmbeddings: orDefault(j, "tie_word_embeddings", true, bool, file),
      initStd,
      normEps: positive(j, file, "layer_norm_epsilon"),
    };
  }
  const C = posInt(j, file, "hidden_size");
  const common = {
    vocabSize: posInt(j, file, "vocab_size"),
    dModel: C,
    nHeads: heads(C, "num_attention_heads"),
    nLayers: posInt(j, file, "num_hidden_layers"),
    mlpRatio: posInt(j, file, "intermediate_size") / C,
    maxSeqLen: posInt(j, file, "max_position_embeddings"),
    positions: "rope" as const,
    ropeScale: ropeScaleOf(j, file),
    tieEmbeddings: orDefault(j, "tie_word_embeddings", false, bool, file),
    initStd,
  };
  if (arch === "gpt_neox") {
    oneOf(j, file, "hidden_act", tanhGelu);
    if (orDefault(j, "use_parallel_residual", true, bool, file)) {
      throw fieldError(file, "use_parallel_residual", j.use_parallel_residual ?? "missing (default true)", "false");
    }
    const pct = j.rotary_pct ?? j.partial_rotary_factor ?? 0.25;
    if (pct !== 1) throw fieldError(file, "rotary_pct", pct, "1 (every head dimension rotated)");
    const base = j.rope_theta ?? j.rotary_emb_base ?? 10000;
    if (typeof base !== "number" || !(base > 0)) throw fieldError(file, "rope_theta", base, "a positive number");
    return { ...common, norm: "layernorm", ropeBase: base, mlp: "gelu", bias: true, normEps: positive(j, file, "layer_norm_eps") };
  }
  oneOf(j, file, "hidden_act", ["silu"] as const);
  const kvHeads = orDefault(j, "num_key_value_heads", common.nHeads, posInt, file);
  if (kvHeads !== common.nHeads) throw fieldError(file, "num_key_value_heads", kvHeads, `${common.nHeads} (no grouped-query attention)`);
  if (j.head_dim != null && j.head_dim !== C / common.nHeads) throw fieldError(file, "head_dim", j.head_dim, `${C / common.nHeads}`);
  const bias = orDefault(j, "attention_bias", false, bool, file);
  if (orDefault(j, "mlp_bias", false, bool, file) !== bias) {
    throw fieldError(file, "mlp_bias", j.mlp_bias, `the same as attention_bias (${bias})`);
  }
  return {
    ...common,
    norm: "rmsnorm",
    ropeBase: orDefault(j, "rope_theta", 10000, positive, file),
    mlp: "swiglu",
    bias,
    normEps: positive(j, file, "rms_norm_eps"),
  };
}

/** Reads the decoder architecture from config.json's HF fields; errors name the file and field. */
export function decoderFromHfConfig(j: Json, file: string): DecoderConfig {
  const dModel = posInt(j, file, "hidden_size");
  const nHeads = posInt(j, file, "num_attention_heads");
  if (dModel % nHeads !== 0) throw fieldError(file, "num_attention_heads", nHeads, `a divisor of hidden_size = ${dModel}`);
  const positions = oneOf(j, file, "position_embedding_type", ["rope", "absolute"] as const) === "rope" ? "rope" : "learned";
  const ropeScale = positions === "rope" ? ropeScaleOf(j, file) : 1;
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
    prevTokens: j.prev_tokens === undefined ? 0 : posIntOrZero(j, file, "prev_tokens"),
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
  prevTokens: "prev_tokens",
};

const STANDARD_TYPES: readonly HfArch[] = ["gpt2", "gpt_neox", "llama"];

/** Fields of a standard config.json that do not describe the computation (not compared with our section). */
const UNCOMPARED = new Set([
  "architectures",
  "bos_token_id",
  "eos_token_id",
  "pad_token_id",
  "initializer_range",
  "torch_dtype",
  "use_cache",
  "transformers.js_config",
]);

/** The registry key and config a config.json describes (checked against its HF fields). */
export function savedModelFromHfConfig(j: Json, file: string): SavedModel {
  const types = [...new Set(Object.values(HF_MODEL_TYPES)), ...STANDARD_TYPES];
  const modelType = oneOf(j, file, "model_type", types);
  const arch = STANDARD_TYPES.find((t) => t === modelType);
  const hfFields = () => arch ? decoderFromArchConfig(arch, j, file) : decoderFromHfConfig(j, file);
  const af = j.agent_forge as Json | undefined;
  if (af === undefined) {
    // No registry section: a standard cognate from the HF fields alone.
    return { key: "cognate-standard", config: { ...cognateConfig({ ...hfFields(), variant: "standard" }) } };
  }
  if (typeof af !== "object" || af === null) throw fieldError(file, "agent_forge", af, "an object");
  if (!READABLE_VERSIONS.includes(af.format_version as number)) {
    throw fieldError(file, "agent_forge.format_version", af.format_version, `one of ${READABLE_VERSIONS.join(", ")}`);
  }
  const key = af.registry_key;
  if (typeof key !== "string" || !isModelKey(key)) {
    throw fieldError(file, "agent_forge.registry_key", key, `one of ${MODEL_KEYS.join(", ")}`);
  }
  const config = af.config;
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw fieldError(file, "agent_forge.config", config, "an object");
  }
  const meta: SavedModel = { key, config: config as Json };
  if (!HF_MODEL_TYPES[key]) {
    throw fieldError(file, "agent_forge.registry_key", key, `a decoder-family key (${Object.keys(HF_MODEL_TYPES).join(", ")})`);
  }
  const reg = decoderConfigOf(meta);
  if (arch) {
    const std = standardArchOf(meta);
    if (std.arch !== arch) {
      throw fieldError(file, "model_type", modelType, `"${std.arch ?? HF_MODEL_TYPES[key]}" for this agent_forge config`);
    }
    const tokenizer = af.tokenizer === "gpt2" ? "gpt2" : "byte";
    const expected = hfArchConfig(arch, reg, tokenizerIds(tokenizer));
    for (const [k, v] of Object.entries(expected)) {
      if (UNCOMPARED.has(k) || JSON.stringify(j[k]) === JSON.stringify(v)) continue;
      throw new Error(
        `${file}: field '${k}' (${JSON.stringify(j[k])}) disagrees with agent_forge.config (which gives ${JSON.stringify(v)})`,
      );
    }
    return meta;
  }
  if (HF_MODEL_TYPES[key] !== modelType) {
    throw fieldError(file, "model_type", modelType, `"${HF_MODEL_TYPES[key]}" for registry key ${key}`);
  }
  const hf = hfFields();
  for (const k of Object.keys(HF_NAME) as (keyof DecoderConfig)[]) {
    if ((k === "ropeBase" || k === "ropeScale") && hf.positions !== "rope") continue; // not written for learned positions
    const field = (c: DecoderConfig) => k === "mlpRatio" ? Math.round(c.mlpRatio * c.dModel) : k === "prevTokens" ? c[k] ?? 0 : c[k];
    const a = field(reg), b = field(hf);
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
  const decoded = decodeSafetensors(await Deno.readFile(weightsPath), weightsPath).tensors;
  const arch = STANDARD_TYPES.find((t) => t === j.model_type);
  let model: RegistryModel;
  try {
    model = createModel(meta.key, meta.config, 0);
  } catch (e) {
    throw new Error(`${cfgPath}: agent_forge.config does not build a '${meta.key}' model: ${(e as Error).message}`);
  }
  try {
    let tensors = decoded;
    if (arch) {
      // Names and shapes the architecture has for this config: those of our own parameters, mapped.
      const expected = toHfTensors(arch, decoderConfigOf(meta), await model.params.toHost());
      const extra = [...decoded.keys()].filter((name) => !expected.has(name));
      if (extra.length) throw new Error(`${weightsPath}: tensors a ${arch} model of this config has no parameter for: ${extra.join(", ")}`);
      for (const [name, want] of expected) {
        const got = decoded.get(name);
        if (!got) throw new Error(`${weightsPath}: missing tensor '${name}' (${arch})`);
        if (got.shape.join() !== want.shape.join()) {
          throw new Error(`${weightsPath}: tensor '${name}' has shape [${got.shape}], expected [${want.shape}]`);
        }
      }
      tensors = fromHfTensors(arch, decoderConfigOf(meta), decoded, weightsPath);
    }
    const extra = [...tensors.keys()].filter((name) => !model.params.has(name));
    if (extra.length) throw new Error(`${weightsPath}: tensors the '${meta.key}' config has no parameter for: ${extra.join(", ")}`);
    model.params.load(tensors, { source: weightsPath });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, meta };
}
