/** The wasm kernel overrides (native BLAS matmul, aliasing Identity/Cast, row gather) against plain references. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "./mod.ts";
import { openBlas, setWasmBlas, wasmBlasInstalled } from "./blas.ts";
import { assertClose } from "../testing/gradcheck.ts";
import { Rng } from "../util/rng.ts";

/** C = op(A) op(B) per batch, in float64, with batch-1 broadcasting. */
function refBatchMatMul(
  a: Float32Array,
  b: Float32Array,
  d: { batchA: number; batchB: number; m: number; n: number; k: number; ta: boolean; tb: boolean },
): Float64Array {
  const batch = Math.max(d.batchA, d.batchB);
  const out = new Float64Array(batch * d.m * d.n);
  for (let p = 0; p < batch; p++) {
    const oa = (d.batchA === 1 ? 0 : p) * d.m * d.k, ob = (d.batchB === 1 ? 0 : p) * d.k * d.n;
    for (let i = 0; i < d.m; i++) {
      for (let j = 0; j < d.n; j++) {
        let s = 0;
        for (let q = 0; q < d.k; q++) {
          const av = d.ta ? a[oa + q * d.m + i] : a[oa + i * d.k + q];
          const bv = d.tb ? b[ob + j * d.k + q] : b[ob + q * d.n + j];
          s += av * bv;
        }
        out[(p * d.m + i) * d.n + j] = s;
      }
    }
  }
  return out;
}

const blas = await (async () => {
  await initBackend("wasm", { quiet: true });
  return openBlas();
})();
if (!blas) console.log("native BLAS not found (apt-get install libopenblas0-pthread): the BLAS cases run tfjs's own kernel");

for (const useBlas of [true, false]) {
  Deno.test(`wasm BatchMatMul (${useBlas ? "native BLAS" : "XNNPACK"}) matches a float64 loop for every transpose and batch broadcast`, async () => {
    await initBackend("wasm", { quiet: true });
    setWasmBlas(useBlas);
    try {
      if (useBlas && blas) assert.ok(wasmBlasInstalled(), "BLAS opened but the kernel was not installed");
      const rng = new Rng(7);
      for (const [batchA, batchB] of [[1, 1], [3, 3], [1, 3], [3, 1]]) {
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            const [m, n, k] = [5, 4, 6];
            const a = rng.normals(batchA * m * k), b = rng.normals(batchB * k * n);
            const shapeA = ta ? [batchA, k, m] : [batchA, m, k], shapeB = tb ? [batchB, n, k] : [batchB, k, n];
            const got = await tf.tidy(() => tf.matMul(tf.tensor(a, shapeA), tf.tensor(b, shapeB), ta, tb)).data();
            const ref = refBatchMatMul(a, b, { batchA, batchB, m, n, k, ta, tb });
            assertClose(got, ref, 1e-5, 1e-5, `batch ${batchA}x${batchB} ta=${ta} tb=${tb}`);
          }
        }
      }
      // Rank 4 (attention's [B, H, T, d]) and a shape mismatch that must name both shapes.
      const q = rng.normals(2 * 3 * 4 * 5), kk = rng.normals(2 * 3 * 4 * 5);
      const s = await tf.tidy(() => tf.matMul(tf.tensor4d(q, [2, 3, 4, 5]), tf.tensor4d(kk, [2, 3, 4, 5]), false, true)).data();
      assertClose(s, refBatchMatMul(q, kk, { batchA: 6, batchB: 6, m: 4, n: 4, k: 5, ta: false, tb: true }), 1e-5, 1e-5, "rank 4");
      assert.throws(() => tf.matMul(tf.zeros([2, 3]), tf.zeros([4, 5])), /inner/);
      // [3,1] x [1,3] batches would need a 3x3 batch broadcast: refused on the BLAS path rather than half-computed.
      if (useBlas && blas) assert.throws(() => tf.matMul(tf.zeros([3, 1, 2, 2]), tf.zeros([1, 3, 2, 2])), /must be equal, or one side/);
    } finally {
      setWasmBlas(true);
    }
  });
}

Deno.test("wasm Identity and Cast alias their input, and the alias outlives the original", async () => {
  await initBackend("wasm", { quiet: true });
  const x = tf.tensor1d([1, 2, 3]);
  const offset = (t: tf.Tensor) => (tf.backend() as unknown as { getMemoryOffset(id: object): number }).getMemoryOffset(t.dataId);
  const y = tf.clone(x);
  const z = tf.cast(x, "float32");
  assert.equal(offset(y), offset(x), "clone copied its input");
  assert.equal(offset(z), offset(x), "cast to the same dtype copied its input");
  x.dispose();
  assert.deepEqual(Array.from(await y.data()), [1, 2, 3]);
  assert.deepEqual(Array.from(await z.data()), [1, 2, 3]);
  // A cast to another dtype still converts.
  const w = tf.cast(y, "int32");
  assert.equal(w.dtype, "int32");
  assert.deepEqual(Array.from(await w.data()), [1, 2, 3]);
  tf.dispose([y, z, w]);
});

Deno.test("wasm GatherV2 of rows matches indexing, keeps index shapes, and rejects bad indices", async () => {
  await initBackend("wasm", { quiet: true });
  const table = new Rng(3).normals(6 * 4);
  const ids = [5, 0, 2, 2, 5, 1];
  const got = await tf.tidy(() => tf.gather(tf.tensor2d(table, [6, 4]), tf.tensor2d(ids, [2, 3], "int32")))
    .array() as unknown as number[][][];
  assert.deepEqual([got.length, got[0].length, got[0][0].length], [2, 3, 4]);
  assertClose(got.flat(2), ids.flatMap((i) => Array.from(table.subarray(i * 4, i * 4 + 4))), 0, 0, "gather");
  const ints = await tf.tidy(() => tf.gather(tf.tensor1d([10, 11, 12], "int32"), tf.tensor1d([2, 0], "int32"))).data();
  assert.deepEqual(Array.from(ints), [12, 10]);
  assert.throws(() => tf.gather(tf.tensor2d(table, [6, 4]), tf.tensor1d([6], "int32")), /index value 6 is not in \[0, 5\]/);
  // Other axes take tfjs's own kernel.
  const cols = await tf.tidy(() => tf.gather(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor1d([1], "int32"), 1)).data();
  assert.deepEqual(Array.from(cols), [2, 4]);
});
