/** Stateless building blocks over tensors. Parameters are passed in; shapes are in comments. */
import * as tf from "@tensorflow/tfjs";
import { hasKernel } from "../backend/mod.ts";

/**
 * x [N, in] @ w [in, out] with a gradient whose matmuls are also rank-2 and untransposed
 * (dx = dy @ w^T, dw = x^T @ dy with the transposes done explicitly): tfjs-wasm sends
 * transposed matmuls to a scalar loop ~20x slower than its XNNPACK path.
 */
export function matMulFast(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad((xi: tf.Tensor | tf.GradSaveFunc, wi: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    const [a, b] = [xi as tf.Tensor2D, wi as tf.Tensor2D];
    (save as tf.GradSaveFunc)([a, b]);
    return {
      value: tf.matMul(a, b), // [N, out]
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [aS, bS] = saved as tf.Tensor2D[];
        const g = dy as tf.Tensor2D; // [N, out]
        return [tf.matMul(g, tf.transpose(bS)), tf.matMul(tf.transpose(aS), g)]; // [N, in], [in, out]
      },
    };
  });
  return f(x, w) as tf.Tensor2D;
}

/** y = x W + b over the last axis. x [..., in], w [in, out], b [out] -> [..., out]. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const [inDim, outDim] = w.shape as [number, number];
  const lead = x.shape.slice(0, -1) as number[];
  let y: tf.Tensor = matMulFast(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, w as tf.Tensor2D); // [N, out]
  if (b) y = tf.add(y, b);
  return tf.reshape(y, [...lead, outDim]);
}

/** LayerNorm over the last axis, biased variance as in PyTorch. x [..., C], g/b [C]. */
export function layerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, eps = 1e-5): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.mul(xc, xc), -1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), g), b);
}

/** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * g. x [..., C], g [C]. */
export function rmsNorm(x: tf.Tensor, g: tf.Tensor, eps = 1e-6): tf.Tensor {
  const ms = tf.mean(tf.mul(x, x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), g);
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** GELU, tanh approximation (PyTorch's `approximate="tanh"`, GPT-2's). */
export function gelu(x: tf.Tensor): tf.Tensor {
  const x3 = tf.mul(tf.mul(x, x), x); // x*x*x: pow(3) is slow on wasm
  const inner = tf.mul(tf.add(x, tf.mul(x3, 0.044715)), GELU_C);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/** SiLU (swish): x * sigmoid(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/**
 * Embedding lookup with an explicit gradient, so it trains on every backend (tfjs-wasm
 * lacks the scatter kernel that `tf.gather`'s own gradient needs).
 * table [V, C], ids int32 [...] -> [..., C].
 */
export function embedding(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  const [vocab, dim] = table.shape;
  const flat = tf.reshape(ids, [-1]) as tf.Tensor1D; // [N]
  const f = tf.customGrad((t: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    (save as tf.GradSaveFunc)([flat]); // the backward pass may only use saved tensors
    return {
      value: tf.gather(t as tf.Tensor, flat), // [N, C]
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => scatterRows(dy as tf.Tensor2D, saved[0] as tf.Tensor1D, vocab),
    };
  });
  return tf.reshape(f(table), [...ids.shape, dim]);
}

/** Sums rows of dy [N, C] into a [V, C] table at `ids` [N]: the gradient of a row gather. */
export function scatterRows(dy: tf.Tensor2D, ids: tf.Tensor1D, vocab: number): tf.Tensor2D {
  if (hasKernel("UnsortedSegmentSum")) return tf.unsortedSegmentSum(dy, ids, vocab);
  const oneHotT = tf.transpose(tf.oneHot(ids, vocab)); // [V, N]
  return tf.matMul(oneHotT, dy); // [V, C]
}

/**
 * Mean token cross-entropy with an explicit, fused gradient (softmax - onehot).
 * logits [N, V], targets int32 [N], optional weights [N] (a loss mask; the mean is over
 * their sum). Equals PyTorch's `F.cross_entropy` when weights are absent.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights?: tf.Tensor1D): tf.Scalar {
  const [n, vocab] = logits.shape;
  // Tensors the gradient needs must pass through `save`: anything else is freed when the
  // forward pass ends, before the backward pass runs.
  const w = weights ?? tf.ones([n]); // [N]
  const scale = tf.div(w, tf.sum(w)); // [N]
  const scaleCol = tf.reshape(scale, [n, 1]); // [N, 1]
  const flatIdx = tf.add(tf.mul(tf.range(0, n, 1, "int32"), tf.scalar(vocab, "int32")), targets); // [N]
  const f = tf.customGrad((input: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    const l = input as tf.Tensor;
    (save as tf.GradSaveFunc)([l, scaleCol, targets]);
    const nll = tf.sub(tf.logSumExp(l, 1), tf.gather(tf.reshape(l, [-1]), flatIdx)); // [N]
    return {
      value: tf.sum(tf.mul(nll, scale)),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [lS, scaleS, targetsS] = saved;
        const diff = tf.sub(tf.softmax(lS), tf.oneHot(targetsS as tf.Tensor1D, vocab)); // [N, V]
        return tf.mul(diff, tf.mul(scaleS, dy as tf.Tensor));
      },
    };
  });
  return f(logits) as tf.Scalar;
}
