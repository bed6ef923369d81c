/** stopGradient and noGrad: values pass, gradients stop. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { assertClose } from "../testing/gradcheck.ts";
import { noGrad, stopGradient } from "./grad.ts";

Deno.test("stopGradient: same value, zero gradient; noGrad: same values, zero gradient to anchors, dtypes kept", async () => {
  await initBackend("cpu", { quiet: true });
  const x = tf.tensor1d([1, -2, 3]);
  assertClose(await stopGradient(x).data(), [1, -2, 3], 0);
  // d/dx sum(x * stopGradient(x)) = stopGradient(x): only the non-detached path counts.
  assertClose(await tf.grad((v: tf.Tensor) => tf.sum(tf.mul(v, stopGradient(v))))(x).data(), [1, -2, 3], 1e-6);
  assertClose(await tf.grad((v: tf.Tensor) => tf.sum(tf.square(stopGradient(v))))(x).data(), [0, 0, 0], 0);
  const f = (v: tf.Tensor) => {
    const [sq, am] = noGrad(() => [tf.square(v), tf.argMax(v)], [v]);
    assert.equal(am.dtype, "int32");
    assert.deepEqual(sq.shape, [3]);
    return tf.add(tf.sum(tf.mul(sq, v)), tf.cast(am, "float32")) as tf.Scalar;
  };
  assert.equal((await f(x).data())[0], 1 - 8 + 27 + 2);
  assertClose(await tf.grad(f)(x).data(), [1, 4, 9], 1e-6, 0, "noGrad grad"); // only the outer v in sq * v
});
