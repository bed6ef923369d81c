/** Causal multi-head self-attention and rotary position embeddings. */
import * as tf from "@tensorflow/tfjs";
import { linear } from "./layers.ts";

/** Rotary embedding settings. `scale` > 1 is position interpolation (positions divided by it). */
export interface RopeOptions {
  /** Frequency base (10000 in RoFormer / LLaMA). */
  base: number;
  /** Position interpolation factor: 1 leaves positions as they are. */
  scale: number;
  /** Position of the first token (for decoding with a cache or a shifted window). */
  offset?: number;
}

/** cos and sin tables for positions offset..offset+T-1: each [T, hd/2]. */
export function ropeTables(seqLen: number, headDim: number, opts: RopeOptions): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = headDim / 2;
  const cos = new Float32Array(seqLen * half);
  const sin = new Float32Array(seqLen * half);
  const offset = opts.offset ?? 0;
  for (let t = 0; t < seqLen; t++) {
    const pos = (t + offset) / opts.scale;
    for (let i = 0; i < half; i++) {
      const angle = pos * Math.pow(opts.base, (-2 * i) / headDim);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos: tf.tensor2d(cos, [seqLen, half]), sin: tf.tensor2d(sin, [seqLen, half]) };
}

/**
 * Rotates feature pairs (i, i + hd/2) by position-dependent angles (the "rotate half"
 * layout of GPT-NeoX and LLaMA). x [B, H, T, hd], cos/sin [T, hd/2] (or [B, 1, T, hd/2], a position
 * per row) -> [B, H, T, hd].
 */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor4D {
  const [b, h, t, hd] = x.shape;
  const half = hd / 2;
  const x1 = tf.slice(x, [0, 0, 0, 0], [b, h, t, half]);
  const x2 = tf.slice(x, [0, 0, 0, half], [b, h, t, half]);
  return tf.concat([
    tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)),
    tf.add(tf.mul(x1, sin), tf.mul(x2, cos)),
  ], 3) as tf.Tensor4D;
}

const maskCache = new Map<number, tf.Tensor2D>();

/** Additive causal mask [T, T]: 0 on and below the diagonal, -1e9 above. Cached per T. */
export function causalMask(seqLen: number): tf.Tensor2D {
  let m = maskCache.get(seqLen);
  if (!m || m.isDisposed) {
    const data = new Float32Array(seqLen * seqLen);
    for (let i = 0; i < seqLen; i++) for (let j = i + 1; j < seqLen; j++) data[i * seqLen + j] = -1e9;
    m = tf.keep(tf.tensor2d(data, [seqLen, seqLen]));
    maskCache.set(seqLen, m);
  }
  return m;
}

export interface AttentionWeights {
  /** [C, 3C]: q, k and v projections side by side. */
  qkvW: tf.Tensor;
  qkvB?: tf.Tensor;
  /** [C, C] output projection. */
  projW: tf.Tensor;
  projB?: tf.Tensor;
}

/**
 * Causal multi-head self-attention. x [B, T, C] -> [B, T, C].
 * With `rope`, q and k are rotated by their positions before the dot products.
 */
export function causalSelfAttention(
  x: tf.Tensor3D,
  w: AttentionWeights,
  nHeads: number,
  rope?: RopeOptions,
): tf.Tensor3D {
  const t = x.shape[1];
  const tables = rope ? ropeTables(t, x.shape[2] / nHeads, rope) : undefined;
  return attend(x, w, nHeads, tables, causalMask(t)).y;
}

/** Keys and values of one attention layer for every position seen so far: each [B, H, P, hd] (RoPE applied to k). */
export interface LayerKv {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

/**
 * Self-attention of T new tokens that also reads the keys and values of P earlier ones (a KV cache).
 * x [B, T, C]; `rope`: cos/sin of each new token's own position, [B, 1, T, hd/2] (rows may sit at
 * different positions); `mask`: additive [B, 1, T, P + T], 0 where a query may read a key and -1e9
 * elsewhere (causality and padding, built by the caller). Returns y [B, T, C] and the layer's keys
 * and values over all P + T positions, for the next call.
 */
export function cachedSelfAttention(
  x: tf.Tensor3D,
  w: AttentionWeights,
  nHeads: number,
  rope: { cos: tf.Tensor; sin: tf.Tensor } | undefined,
  mask: tf.Tensor4D,
  past?: LayerKv,
): { y: tf.Tensor3D; kv: LayerKv } {
  return attend(x, w, nHeads, rope, mask, past, x.shape[1] <= 16);
}

/** The shared body of both attentions: projections, RoPE, past concatenation, masked softmax, output projection. */
function attend(
  x: tf.Tensor3D,
  w: AttentionWeights,
  nHeads: number,
  rope: { cos: tf.Tensor; sin: tf.Tensor } | undefined,
  mask: tf.Tensor,
  past?: LayerKv,
  fusedQkv = false,
): { y: tf.Tensor3D; kv: LayerKv } {
  const [b, t, c] = x.shape;
  const hd = c / nHeads;
  // Long inputs: slice the small weight [C, 3C] rather than the activations [B, T, 3C] (slow strided
  // copies). A few tokens (decoding): one product, then split the small activations, so the weight
  // is not copied for every token.
  const qkv = fusedQkv ? tf.split(linear(x, w.qkvW, w.qkvB), 3, 2) : undefined; // 3 x [B, T, C]
  const heads = (i: number) => {
    const y = qkv ? qkv[i] : linear(x, tf.slice(w.qkvW, [0, i * c], [c, c]), w.qkvB ? tf.slice(w.qkvB, [i * c], [c]) : undefined);
    return tf.transpose(tf.reshape(y, [b, t, nHeads, hd]), [0, 2, 1, 3]) as tf.Tensor4D; // [B, H, T, hd]
  };
  let q = heads(0);
  let k = heads(1);
  let v = heads(2);
  if (rope) {
    q = applyRope(q, rope.cos, rope.sin);
    k = applyRope(k, rope.cos, rope.sin);
  }
  if (past) {
    k = tf.concat([past.k, k], 2) as tf.Tensor4D; // [B, H, P + T, hd]
    v = tf.concat([past.v, v], 2) as tf.Tensor4D;
  }
  const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd)), mask); // [B, H, T, P + T]
  const att = tf.softmax(scores); // [B, H, T, P + T]
  const y = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [b, t, c]); // [B, T, C]
  return { y: linear(y, w.projW, w.projB) as tf.Tensor3D, kv: { k, v } };
}
