/**
 * A GPT-style decoder, configurable from its config: norms, positions, MLP kind, biases,
 * tied head. Parameter names follow the PyTorch reference export (`tok`, `pos`,
 * `l0.qkv_w`, ..., `head_w`), with Linear weights stored [in, out].
 */
import * as tf from "@tensorflow/tfjs";
import {
  type AttentionWeights,
  cachedSelfAttention,
  causalSelfAttention,
  type LayerKv,
  type RopeOptions,
  ropeTables,
} from "./attention.ts";
import { embedding, gelu, layerNorm, linear, rmsNorm, silu, tokenCrossEntropy } from "./layers.ts";
import { ParamSet } from "./params.ts";

export interface DecoderConfig {
  /** Tokens in the vocabulary. */
  vocabSize: number;
  /** Width of the residual stream (C). */
  dModel: number;
  /** Attention heads; dModel must divide by it. */
  nHeads: number;
  /** Transformer blocks. */
  nLayers: number;
  /** MLP hidden width as a multiple of dModel (4 for GPT-2). */
  mlpRatio: number;
  /** Longest sequence; sizes the learned position table. */
  maxSeqLen: number;
  /** `layernorm` (with bias, GPT-2) or `rmsnorm` (LLaMA). */
  norm: "layernorm" | "rmsnorm";
  /** `learned` absolute positions or `rope` rotary positions. */
  positions: "learned" | "rope";
  /** RoPE frequency base. */
  ropeBase: number;
  /** RoPE position interpolation factor (> 1 stretches the trained context). */
  ropeScale: number;
  /** `gelu` (tanh approximation) or `swiglu` MLP. */
  mlp: "gelu" | "swiglu";
  /** Biases on Linear layers. */
  bias: boolean;
  /** Output head shares the token embedding table. */
  tieEmbeddings: boolean;
  /** Std of the normal init for weights and embeddings; biases start at 0, norm gains at 1. */
  initStd: number;
  /** Epsilon inside the norms. */
  normEps: number;
  /**
   * How many preceding tokens each position also embeds (0 to MAX_PREV_TOKENS): table
   * `prev<k>_tok` [V, C] embeds the token k places back, added to the input. A position then
   * knows its context from the first layer on, so one attention layer can match the tokens just
   * written against an earlier occurrence and copy what followed it (induction), which a plain
   * decoder must first build from previous-token heads in earlier layers. Absent: 0.
   */
  prevTokens?: number;
}

/** The PyTorch reference model of `shared/peers/torch_gpt_ref.py`. */
export const REFERENCE_DECODER: DecoderConfig = {
  vocabSize: 128,
  dModel: 128,
  nHeads: 4,
  nLayers: 4,
  mlpRatio: 4,
  maxSeqLen: 64,
  norm: "layernorm",
  positions: "learned",
  ropeBase: 10000,
  ropeScale: 1,
  mlp: "gelu",
  bias: true,
  tieEmbeddings: false,
  initStd: 0.02,
  normEps: 1e-5,
  prevTokens: 0,
};

/** The most preceding tokens a decoder embeds (`prevTokens`): what the KV cache hands it for each new token. */
export const MAX_PREV_TOKENS = 4;

/** A small shape that trains in seconds on a CPU: the reference model at 64 wide and 2 layers. */
export const SMALL_DECODER: DecoderConfig = { ...REFERENCE_DECODER, dModel: 64, nLayers: 2 };

/** Checks a decoder config; the error names the field and what it accepts. */
export function validateDecoderConfig(c: DecoderConfig): void {
  const posInt = ["vocabSize", "dModel", "nHeads", "nLayers", "maxSeqLen"] as const;
  for (const k of posInt) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) throw new Error(`decoder.${k} = ${c[k]}: expected a positive integer`);
  }
  if (c.dModel % c.nHeads !== 0) throw new Error(`decoder.dModel = ${c.dModel} must divide by nHeads = ${c.nHeads}`);
  if (c.positions === "rope" && (c.dModel / c.nHeads) % 2 !== 0) {
    throw new Error(`decoder: rope needs an even head size, got ${c.dModel / c.nHeads}`);
  }
  if (!(c.mlpRatio > 0)) throw new Error(`decoder.mlpRatio = ${c.mlpRatio}: expected > 0`);
  if (!(c.ropeScale > 0)) throw new Error(`decoder.ropeScale = ${c.ropeScale}: expected > 0`);
  const k = c.prevTokens ?? 0;
  if (!(Number.isInteger(k) && k >= 0 && k <= MAX_PREV_TOKENS)) {
    throw new Error(`decoder.prevTokens = ${k}: expected an integer in 0..${MAX_PREV_TOKENS}`);
  }
}

/**
 * The token `k` places before each of `ids` (int32 [B, T]) in its row: ids shifted right by k.
 * The first k positions read `context` (int32 [B, >= k], the tokens before `ids`, oldest first),
 * or -1 (none) without it. -> int32 [B, T]
 */
export function tokensBefore(ids: tf.Tensor2D, k: number, context?: tf.Tensor2D): tf.Tensor2D {
  const [b, t] = ids.shape;
  if (context && context.shape[1] < k) throw new Error(`tokensBefore: ${context.shape[1]} context tokens, ${k} needed`);
  const head = context ? tf.slice(context, [0, context.shape[1] - k], [b, k]) : tf.fill([b, k], -1, "int32"); // [B, k]
  return tf.slice(tf.concat([head, ids], 1), [0, 0], [b, t]) as tf.Tensor2D;
}

/**
 * Rows of a previous-token table `table` [V, C] for `before` (int32 [B, T], from
 * `tokensBefore`), a zero row where it is -1. `lookup` gathers rows (default: `embedding`, whose
 * gradient is a scatter-add). -> [B, T, C]
 */
export function prevTokenEmbedding(
  table: tf.Tensor2D,
  before: tf.Tensor2D,
  lookup: (table: tf.Tensor2D, ids: tf.Tensor2D) => tf.Tensor = embedding,
): tf.Tensor3D {
  const has = tf.cast(tf.greaterEqual(before, 0), "float32"); // [B, T]
  const rows = lookup(table, tf.maximum(before, tf.scalar(0, "int32")) as tf.Tensor2D); // [B, T, C]
  return tf.mul(rows, tf.expandDims(has, 2)) as tf.Tensor3D;
}

/** What a forward pass returns: the final hidden states and the logits. */
export interface DecoderOutput {
  hidden: tf.Tensor3D; // [B, T, C] after the final norm
  logits: tf.Tensor3D; // [B, T, V]
}

/**
 * One incremental forward pass over T new tokens per row, reading P cached ones (kv_cache.ts
 * builds these). Rows may sit at different positions and hold padding.
 */
export interface CachedInput {
  /** int32 [B, T]: the new tokens. */
  ids: tf.Tensor2D;
  /** [B * T], row-major: each new token's position within its row (0 = the row's first real token). */
  positions: Int32Array;
  /** Additive [B, 1, T, P + T]: 0 where a new token may read a key, -1e9 elsewhere (future or padding). */
  mask: tf.Tensor4D;
  /** Keys and values of the P earlier slots, one per layer; absent on the first call (P = 0). */
  past?: LayerKv[];
  /** [B, T, MAX_PREV_TOKENS], row-major: entry k - 1 is the token k places before each new one in its row, -1 for none or padding (read with `prevTokens`). */
  prevIds?: Int32Array;
}

/** What a cached forward pass returns: logits of the new tokens and every layer's keys and values over P + T slots. */
export interface CachedOutput {
  logits: tf.Tensor3D; // [B, T, V]
  present: LayerKv[]; // per layer, each [B, H, P + T, hd]
}

export class Decoder {
  readonly cfg: DecoderConfig;
  readonly params: ParamSet;

  constructor(cfg: DecoderConfig, seed: number) {
    validateDecoderConfig(cfg);
    this.cfg = cfg;
    this.params = new ParamSet(seed);
    this.#build();
  }

  #build(): void {
    const { vocabSize: V, dModel: C, nLayers, maxSeqLen, initStd: std, bias, mlp } = this.cfg;
    const F = Math.round(this.cfg.mlpRatio * C);
    const p = this.params;
    const normal = { kind: "normal", std } as const;
    const zeros = { kind: "const", value: 0 } as const;
    const ones = { kind: "const", value: 1 } as const;
    const norm = (name: string) => {
      p.add(`${name}_g`, [C], ones);
      if (this.cfg.norm === "layernorm") p.add(`${name}_b`, [C], zeros);
    };
    const lin = (name: string, i: number, o: number) => {
      p.add(`${name}_w`, [i, o], normal);
      if (bias) p.add(`${name}_b`, [o], zeros);
    };
    p.add("tok", [V, C], normal);
    if (this.cfg.positions === "learned") p.add("pos", [maxSeqLen, C], normal);
    for (let k = 1; k <= (this.cfg.prevTokens ?? 0); k++) p.add(`prev${k}_tok`, [V, C], normal);
    for (let l = 0; l < nLayers; l++) {
      norm(`l${l}.ln1`);
      lin(`l${l}.qkv`, C, 3 * C);
      lin(`l${l}.proj`, C, C);
      norm(`l${l}.ln2`);
      lin(`l${l}.fc1`, C, F);
      if (mlp === "swiglu") lin(`l${l}.fc3`, C, F);
      lin(`l${l}.fc2`, F, C);
    }
    norm("lnf");
    if (!this.cfg.tieEmbeddings) p.add("head_w", [C, V], normal);
  }

  #opt(name: string): tf.Tensor | undefined {
    return this.params.vars.get(name);
  }

  #norm(x: tf.Tensor, name: string): tf.Tensor {
    const g = this.params.get(`${name}_g`);
    return this.cfg.norm === "layernorm"
      ? layerNorm(x, g, this.params.get(`${name}_b`), this.cfg.normEps)
      : rmsNorm(x, g, this.cfg.normEps);
  }

  #mlp(x: tf.Tensor, l: number): tf.Tensor {
    const fc = (n: string, h: tf.Tensor) => linear(h, this.params.get(`l${l}.${n}_w`), this.#opt(`l${l}.${n}_b`));
    const h = this.cfg.mlp === "swiglu" ? tf.mul(silu(fc("fc1", x)), fc("fc3", x)) : gelu(fc("fc1", x));
    return fc("fc2", h);
  }

  /** Block `l`'s attention weights. */
  #attention(l: number): AttentionWeights {
    return {
      qkvW: this.params.get(`l${l}.qkv_w`),
      qkvB: this.#opt(`l${l}.qkv_b`),
      projW: this.params.get(`l${l}.proj_w`),
      projB: this.#opt(`l${l}.proj_b`),
    };
  }

  /** The rest of block `l` after its attention output `a`: residual, norm, MLP, residual. [B, T, C] */
  #afterAttention(x: tf.Tensor, a: tf.Tensor, l: number): tf.Tensor3D {
    const h = tf.add(x, a);
    return tf.add(h, this.#mlp(this.#norm(h, `l${l}.ln2`), l)) as tf.Tensor3D;
  }

  /**
   * Token (+ learned position, + previous-token) embeddings. ids int32 [B, T] -> [B, T, C].
   * With `prevTokens`, the first positions of `ids` have no predecessors unless `context` gives
   * them: int32 [B, prevTokens], the tokens before each row's first (a chunk's, when `posOffset`
   * > 0), oldest first, -1 for none.
   */
  embed(ids: tf.Tensor2D, posOffset = 0, context?: tf.Tensor2D): tf.Tensor3D {
    const [, t] = ids.shape;
    if (this.cfg.positions === "learned" && posOffset + t > this.cfg.maxSeqLen) {
      throw new Error(`sequence of ${posOffset + t} tokens exceeds maxSeqLen ${this.cfg.maxSeqLen}`);
    }
    let x = embedding(this.params.get("tok") as tf.Variable<tf.Rank.R2>, ids); // [B, T, C]
    if (this.cfg.positions === "learned") {
      x = tf.add(x, tf.slice(this.params.get("pos"), [posOffset, 0], [t, this.cfg.dModel]));
    }
    for (let k = 1; k <= (this.cfg.prevTokens ?? 0); k++) {
      x = tf.add(x, prevTokenEmbedding(this.params.get(`prev${k}_tok`) as tf.Tensor2D, tokensBefore(ids, k, context)));
    }
    return x as tf.Tensor3D;
  }

  /** Transformer block `l`. x [B, T, C] -> [B, T, C]. */
  block(x: tf.Tensor3D, l: number, posOffset = 0): tf.Tensor3D {
    const rope: RopeOptions | undefined = this.cfg.positions === "rope"
      ? { base: this.cfg.ropeBase, scale: this.cfg.ropeScale, offset: posOffset }
      : undefined;
    const a = causalSelfAttention(this.#norm(x, `l${l}.ln1`) as tf.Tensor3D, this.#attention(l), this.cfg.nHeads, rope);
    return this.#afterAttention(x, a, l);
  }

  /** Final norm then output head. x [B, T, C] -> hidden [B, T, C], logits [B, T, V]. */
  head(x: tf.Tensor3D): DecoderOutput {
    const hidden = this.#norm(x, "lnf") as tf.Tensor3D;
    const logits = this.cfg.tieEmbeddings
      ? tf.matMul(tf.reshape(hidden, [-1, this.cfg.dModel]), this.params.get("tok"), false, true)
      : linear(hidden, this.params.get("head_w"));
    return { hidden, logits: tf.reshape(logits, [hidden.shape[0], hidden.shape[1], this.cfg.vocabSize]) as tf.Tensor3D };
  }

  /**
   * The forward pass with a KV cache: T new tokens per row attend to themselves (causally) and to the
   * cached slots. Same maths as `forward`, with per-row positions and a padding mask. Run inside tf.tidy.
   */
  forwardCached(input: CachedInput): CachedOutput {
    const { ids, positions, mask, past } = input;
    const [b, t] = ids.shape;
    const { dModel: C, nHeads, nLayers } = this.cfg;
    if (positions.length !== b * t) throw new Error(`forwardCached: ${positions.length} positions for ids [${b}, ${t}]`);
    if (past && past.length !== nLayers) throw new Error(`forwardCached: past has ${past.length} layers, the model ${nLayers}`);
    const maxPos = positions.reduce((m, p) => Math.max(m, p), 0);
    const pos = tf.tensor2d(positions, [b, t], "int32");
    let x: tf.Tensor = tf.gather(this.params.get("tok"), ids); // [B, T, C] (inference: no custom gradient)
    const K = this.cfg.prevTokens ?? 0;
    if (K > 0) {
      if (!input.prevIds || input.prevIds.length !== b * t * MAX_PREV_TOKENS) {
        throw new Error(`forwardCached: the model reads ${K} previous tokens (prevTokens); give prevIds, ${MAX_PREV_TOKENS} per new token`);
      }
      const all = tf.tensor3d(input.prevIds, [b, t, MAX_PREV_TOKENS], "int32");
      for (let k = 1; k <= K; k++) {
        const before = tf.reshape(tf.slice(all, [0, 0, k - 1], [b, t, 1]), [b, t]) as tf.Tensor2D;
        x = tf.add(x, prevTokenEmbedding(this.params.get(`prev${k}_tok`) as tf.Tensor2D, before, (table, i) => tf.gather(table, i)));
      }
    }
    let rope: { cos: tf.Tensor; sin: tf.Tensor } | undefined;
    if (this.cfg.positions === "learned") {
      if (maxPos >= this.cfg.maxSeqLen) throw new Error(`position ${maxPos} exceeds maxSeqLen ${this.cfg.maxSeqLen}`);
      x = tf.add(x, tf.gather(this.params.get("pos"), pos)); // + [B, T, C]
    } else {
      const tables = ropeTables(maxPos + 1, C / nHeads, { base: this.cfg.ropeBase, scale: this.cfg.ropeScale });
      const row = (table: tf.Tensor2D) => tf.expandDims(tf.gather(table, pos), 1); // [B, 1, T, hd/2]
      rope = { cos: row(tables.cos), sin: row(tables.sin) };
    }
    const present: LayerKv[] = [];
    for (let l = 0; l < nLayers; l++) {
      const a = cachedSelfAttention(this.#norm(x, `l${l}.ln1`) as tf.Tensor3D, this.#attention(l), nHeads, rope, mask, past?.[l]);
      present.push(a.kv);
      x = this.#afterAttention(x, a.y, l);
    }
    return { logits: this.head(x as tf.Tensor3D).logits, present };
  }

  /** Full forward pass. ids int32 [B, T]. */
  forward(ids: tf.Tensor2D, posOffset = 0): DecoderOutput {
    let x = this.embed(ids, posOffset);
    for (let l = 0; l < this.cfg.nLayers; l++) x = this.block(x, l, posOffset);
    return this.head(x);
  }

  /** Mean next-token cross-entropy. ids, targets int32 [B, T]; mask float [B, T] (1 = counts). */
  loss(ids: tf.Tensor2D, targets: tf.Tensor2D, mask?: tf.Tensor2D): tf.Scalar {
    const { logits } = this.forward(ids);
    return tokenCrossEntropy(logits, targets, mask);
  }
}
