/** Test helpers: finite-difference gradient checks and plain-array comparisons. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";

/** Asserts |a - b| <= atol + rtol * |b| elementwise, naming the first bad index. */
export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol = 0, what = "value"): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    const tol = atol + rtol * Math.abs(b[i]);
    assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]} (tol ${tol})`);
  }
}

/**
 * Compares tfjs's gradient of scalar f at x with central differences (step h) on up to
 * `samples` coordinates. Run in float32, so tolerances are loose (~1e-2 relative).
 */
export async function gradCheck(
  f: (x: tf.Tensor) => tf.Scalar,
  x: tf.Tensor,
  opts: { h?: number; samples?: number; atol?: number; rtol?: number; what?: string } = {},
): Promise<void> {
  const h = opts.h ?? 1e-2;
  const analytic = (await tf.tidy(() => tf.grad(f)(x)).data()) as Float32Array;
  const base = (await x.data()) as Float32Array;
  const n = base.length;
  const idx = n <= (opts.samples ?? 24)
    ? [...Array(n).keys()]
    : Array.from({ length: opts.samples ?? 24 }, (_, i) => Math.floor((i * n) / (opts.samples ?? 24)));
  for (const i of idx) {
    const eval1 = async (delta: number) => {
      const d = base.slice();
      d[i] += delta;
      const t = tf.tensor(d, x.shape);
      const v = (await tf.tidy(() => f(t)).data())[0];
      t.dispose();
      return v;
    };
    const numeric = ((await eval1(h)) - (await eval1(-h))) / (2 * h);
    const tol = (opts.atol ?? 1e-3) + (opts.rtol ?? 2e-2) * Math.abs(numeric);
    assert.ok(
      Math.abs(analytic[i] - numeric) <= tol,
      `${opts.what ?? "grad"}[${i}]: analytic ${analytic[i]} vs numeric ${numeric} (tol ${tol})`,
    );
  }
}
