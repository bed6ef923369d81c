/**
 * Gradient plumbing tfjs 4 lacks: stopping gradients and running work off the tape.
 * tfjs records nothing inside a custom-gradient op's forward function; both helpers use that.
 */
import * as tf from "@tensorflow/tfjs";

/**
 * x with a zero gradient: the value is a copy of x, and backprop sends zeros to x, so
 * nothing upstream of x learns through this path (tfjs 4 has no stopGradient).
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const f = tf.customGrad((xi: tf.Tensor | tf.GradSaveFunc) => ({
    value: tf.clone(xi as tf.Tensor),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.zerosLike(dy as tf.Tensor),
  }));
  return f(x) as T;
}

/**
 * Runs `fn` off the gradient tape and returns its outputs (float32 or int32).
 *
 * `fn` runs as the forward function of a custom-gradient op, where tfjs records nothing, so
 * none of its intermediates are kept for backprop. The op's inputs are `anchors` (the tensors
 * on the tape that fn reads; at least one) and its gradient to them is zero, so gradients of
 * later losses still reach them, as zeros. Outputs travel packed in one float32 vector.
 */
export function noGrad(fn: () => tf.Tensor[], anchors: tf.Tensor[]): tf.Tensor[] {
  if (anchors.length === 0) throw new Error("noGrad: needs at least one anchor tensor");
  const meta: { shape: number[]; dtype: tf.DataType }[] = [];
  const anchorShapes = anchors.map((a) => a.shape.slice());
  const f = tf.customGrad((..._inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const outs = fn();
    for (const o of outs) meta.push({ shape: o.shape.slice(), dtype: o.dtype });
    const flat = tf.concat(outs.map((o) => tf.reshape(o.dtype === "float32" ? o : tf.cast(o, "float32"), [-1]))); // [sum sizes]
    return { value: flat, gradFunc: () => anchorShapes.map((s) => tf.zeros(s)) };
  });
  const packed = f(...anchors) as tf.Tensor1D;
  let offset = 0;
  return meta.map((m) => {
    const size = m.shape.reduce((a, b) => a * b, 1);
    const r = tf.reshape(tf.slice(packed, [offset], [size]), m.shape);
    offset += size;
    return m.dtype === "float32" ? r : tf.cast(r, m.dtype);
  });
}
