/** Stateless building blocks over tensors. Parameters are passed in; shapes are in comments. */
import * as tf from "@tensorflow/tfjs";
import { hasKernel } from "../backend/mod.ts";
import { wasmBlasInstalled } from "../backend/blas.ts";

/**
 * True when the backend multiplies transposed operands at full speed. tfjs-wasm without
 * native BLAS sends them to a scalar loop ~20x slower than XNNPACK's untransposed path,
 * so there the transposes are done explicitly first.
 */
export function fastTransposedMatMul(): boolean {
  return tf.getBackend() !== "wasm" || wasmBlasInstalled();
}

/** op(a) @ op(b) for rank-2 tensors, on the fast path of the current backend. */
export function matMulT(a: tf.Tensor2D, b: tf.Tensor2D, transposeA = false, transposeB = false): tf.Tensor2D {
  if (fastTransposedMatMul()) return tf.matMul(a, b, transposeA, transposeB);
  return tf.matMul(transposeA ? tf.transpose(a) : a, transposeB ? tf.transpose(b) : b);
}

/** Column sums of dy [N, C] -> [C]: a matmul with ones where matmuls are fast (tfjs-wasm's Sum transposes first). */
export function columnSum(dy: tf.Tensor2D): tf.Tensor1D {
  if (!fastTransposedMatMul()) return tf.sum(dy, 0);
  const [n, c] = dy.shape;
  return tf.reshape(tf.matMul(tf.ones([1, n]), dy), [c]); // [1, N] @ [N, C]
}

/**
 * x [N, in] @ w [in, out] with an explicit gradient: dx = dy @ w^T, dw = x^T @ dy,
 * each one matmul on the backend's fast path (see `matMulT`).
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
        return [matMulT(g, bS, false, true), matMulT(aS, g, true, false)]; // [N, in], [in, out]
      },
    };
  });
  return f(x, w) as tf.Tensor2D;
}

/** y [N, out] + b [out] with an explicit gradient: db is a column sum of dy (tfjs-wasm's Sum transposes first). */
function addBias(y: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  const f = tf.customGrad((yi: tf.Tensor | tf.GradSaveFunc, bi: tf.Tensor | tf.GradSaveFunc) => ({
    value: tf.add(yi as tf.Tensor, bi as tf.Tensor), // [N, out]
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [dy as tf.Tensor, columnSum(dy as tf.Tensor2D)], // [N, out], [out]
  }));
  return f(y, b) as tf.Tensor2D;
}

/** y = x W + b over the last axis. x [..., in], w [in, out], b [out] -> [..., out]. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const [inDim, outDim] = w.shape as [number, number];
  const lead = x.shape.slice(0, -1) as number[];
  const x2 = tf.reshape(x, [-1, inDim]) as tf.Tensor2D; // [N, in]
  const xw = matMulFast(x2, w as tf.Tensor2D); // [N, out]
  const y = b ? addBias(xw, b as tf.Tensor1D) : xw;
  return tf.reshape(y, [...lead, outDim]);
}

/**
 * LayerNorm over the last axis, biased variance as in PyTorch. x [..., C], g/b [C].
 * The gradient is the closed form (fewer, fused-friendly ops than autodiff's):
 * dx = rstd * (dxh - mean(dxh) - xh * mean(dxh * xh)) with dxh = dy * g.
 */
export function layerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, eps = 1e-5): tf.Tensor {
  const c = x.shape[x.shape.length - 1];
  const f = tf.customGrad(
    (
      xi: tf.Tensor | tf.GradSaveFunc,
      gi: tf.Tensor | tf.GradSaveFunc,
      bi: tf.Tensor | tf.GradSaveFunc,
      save: tf.Tensor | tf.GradSaveFunc,
    ) => {
      const x2 = tf.reshape(xi as tf.Tensor, [-1, c]); // [N, C]
      const xc = tf.sub(x2, tf.mean(x2, -1, true)); // [N, C]
      const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps)); // [N, 1]
      const xh = tf.mul(xc, rstd); // [N, C]
      (save as tf.GradSaveFunc)([xh, rstd, gi as tf.Tensor]);
      return {
        value: tf.reshape(tf.add(tf.mul(xh, gi as tf.Tensor), bi as tf.Tensor), x.shape),
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const [xhS, rstdS, gS] = saved;
          const d = tf.reshape(dy as tf.Tensor, [-1, c]) as tf.Tensor2D; // [N, C]
          const dxh = tf.mul(d, gS); // [N, C]
          const inner = tf.sub(tf.sub(dxh, tf.mean(dxh, -1, true)), tf.mul(xhS, tf.mean(tf.mul(dxh, xhS), -1, true)));
          const dx = tf.reshape(tf.mul(inner, rstdS), x.shape);
          return [dx, columnSum(tf.mul(d, xhS) as tf.Tensor2D), columnSum(d)]; // [..., C], [C], [C]
        },
      };
    },
  );
  return f(x, g, b);
}

/** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * g. x [..., C], g [C]. */
export function rmsNorm(x: tf.Tensor, g: tf.Tensor, eps = 1e-6): tf.Tensor {
  const ms = tf.mean(tf.mul(x, x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), g);
}

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/**
 * GELU, tanh approximation (PyTorch's `approximate="tanh"`, GPT-2's), computed as
 * x * sigmoid(2u) with u = c (x + a x^3), which equals 0.5 x (1 + tanh(u)) exactly:
 * tfjs-wasm's sigmoid is vectorised, its tanh a scalar loop ~13x slower.
 * dy/dx = s + x s (1 - s) 2c (1 + 3a x^2), with s = sigmoid(2u).
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  const f = tf.customGrad((xi: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    const v = xi as tf.Tensor;
    const s = tf.sigmoid(tf.mul(v, tf.add(tf.mul(tf.square(v), 2 * GELU_C * GELU_A), 2 * GELU_C))); // sigmoid(2u)
    (save as tf.GradSaveFunc)([v, s]);
    return {
      value: tf.mul(v, s),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [vS, sS] = saved;
        const slope = tf.add(tf.mul(tf.square(vS), 6 * GELU_C * GELU_A), 2 * GELU_C); // 2c (1 + 3a x^2)
        const ds = tf.mul(tf.mul(vS, tf.mul(sS, tf.sub(1, sS))), slope);
        return tf.mul(dy as tf.Tensor, tf.add(sS, ds));
      },
    };
  });
  return f(x);
}

/** Binary cross-entropy of logits x against targets y in [0, 1], elementwise, overflow-safe: max(x, 0) - x y + log(1 + exp(-|x|)). */
export function bceWithLogits(x: tf.Tensor, y: tf.Tensor): tf.Tensor {
  return tf.add(tf.sub(tf.relu(x), tf.mul(x, y)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
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
  return matMulT(tf.oneHot(ids, vocab) as tf.Tensor2D, dy, true, false); // [N, V]^T @ [N, C] -> [V, C]
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

/** `crossEntropy` over a sequence batch: logits [B, T, V], targets int32 [B, T], optional mask [B, T]. */
export function tokenCrossEntropy(logits: tf.Tensor, targets: tf.Tensor, mask?: tf.Tensor): tf.Scalar {
  const vocab = logits.shape[logits.shape.length - 1];
  return crossEntropy(
    tf.reshape(logits, [-1, vocab]) as tf.Tensor2D, // [B*T, V]
    tf.reshape(targets, [-1]) as tf.Tensor1D, // [B*T]
    mask ? tf.reshape(mask, [-1]) as tf.Tensor1D : undefined,
  );
}
