/** VPTQ: k-means pieces, reconstruction, weighting, residual, outliers, serialization, rate-distortion. */
import assert from "node:assert/strict";
import { Rng } from "../util/rng.ts";
import { bitsPerWeight, type Matrix, mse } from "./types.ts";
import {
  assignNearest,
  decodeVptq,
  fromHalfBits,
  hessianDiagonal,
  kmeans,
  kmeansPlusPlus,
  toHalfBits,
  VPTQ_HEADER_BYTES,
  vptqCompress,
  vptqSettingsForBits,
} from "./vptq.ts";

function gaussian(rows: number, cols: number, seed: number, std = 1): Matrix {
  return { rows, cols, data: new Rng(seed).normals(rows * cols, std) };
}

/** sum_k h_k (w - w^)^2 over the matrix, divided by the entry count. */
function weightedError(m: Matrix, rec: Float32Array, h: Float32Array): number {
  let s = 0;
  for (let r = 0; r < m.rows; r++) {
    for (let n = 0; n < m.cols; n++) s += h[r] * (m.data[r * m.cols + n] - rec[r * m.cols + n]) ** 2;
  }
  return s / m.data.length;
}

/** Brute-force nearest squared distance of every point. */
function bruteNearest(points: Float32Array, v: number, cb: Float32Array, weights?: Float32Array): Float64Array {
  const m = points.length / v;
  const out = new Float64Array(m).fill(Infinity);
  for (let i = 0; i < m; i++) {
    for (let c = 0; c < cb.length / v; c++) {
      let s = 0;
      for (let t = 0; t < v; t++) s += (weights ? weights[i * v + t] : 1) * (points[i * v + t] - cb[c * v + t]) ** 2;
      out[i] = Math.min(out[i], s);
    }
  }
  return out;
}

Deno.test("f16 conversion rounds to nearest even and round-trips", () => {
  for (const x of [0, 1, -2, 0.5, 65504, 2 ** -24, -(2 ** -14), 1.5]) assert.equal(fromHalfBits(toHalfBits(x)), x);
  assert.equal(fromHalfBits(toHalfBits(0.1)), 0.0999755859375);
  assert.equal(fromHalfBits(toHalfBits(1 + 2 ** -11)), 1); // tie goes to even
  assert.equal(fromHalfBits(toHalfBits(1e6)), Infinity);
  assert.equal(fromHalfBits(toHalfBits(2 ** -26)), 0);
});

Deno.test("reconstruction is codebook[index] (+ residual) per sub-vector, K padded to a multiple of v", () => {
  const m = gaussian(30, 12, 1);
  const v = 4;
  const plain = vptqCompress(m, { v, k: 16, seed: 3 });
  const rec = plain.decompress();
  assert.equal(plain.indices.length, Math.ceil(30 / v) * 12);
  for (let j = 0; j < Math.ceil(30 / v); j++) {
    for (let n = 0; n < 12; n++) {
      const idx = plain.indices[j * 12 + n];
      assert.ok(idx < 16);
      for (let t = 0; t < v && j * v + t < 30; t++) assert.equal(rec[(j * v + t) * 12 + n], plain.codebook[idx * v + t]);
    }
  }
  const full = vptqCompress(m, { v, k: 16, residualK: 8, outlierColumns: 2, outlierK: 4, seed: 3 });
  const rec2 = full.decompress();
  const isOut = full.outlierMask();
  assert.equal(full.outlierIds.length, 2);
  for (let j = 0; j < Math.ceil(30 / v); j++) {
    for (let n = 0; n < 12; n++) {
      const g = j * 12 + n;
      const cb = isOut[n] ? full.outlierCodebook : full.codebook;
      for (let t = 0; t < v && j * v + t < 30; t++) {
        const want = Math.fround(cb[full.indices[g] * v + t] + full.residualCodebook[full.residualIndices[g] * v + t]);
        assert.equal(rec2[(j * v + t) * 12 + n], want);
      }
    }
  }
});

Deno.test("Lloyd's distortion never increases and its assignments are the exact nearest centroids", () => {
  const rng = new Rng(5);
  const v = 4;
  const points = rng.normals(3000 * v);
  const weights = new Float32Array(points.length);
  for (let i = 0; i < weights.length; i++) weights[i] = 10 ** (4 * rng.next() - 2);
  for (const w of [undefined, weights]) {
    const res = kmeans(points, v, { k: 64, iterations: 40, tolerance: 0, seed: 9, weights: w });
    assert.ok(res.history.length > 10);
    for (let i = 1; i < res.history.length; i++) assert.ok(res.history[i] <= res.history[i - 1] * (1 + 1e-12), `step ${i}: ${res.history}`);
    assert.ok(res.history.at(-1)! < res.history[0] * 0.9);
    const brute = bruteNearest(points, v, res.codebook, w);
    const dist = new Float64Array(3000);
    const a = Uint32Array.from(res.assignments);
    assignNearest(points, v, res.codebook, 64, w, a, dist);
    for (let i = 0; i < 3000; i++) assert.ok(Math.abs(dist[i] - brute[i]) <= 1e-9 * (1 + brute[i]), `point ${i}`);
  }
});

Deno.test("k-means++ picks distinct initial centroids, even among repeated points", () => {
  const rng = new Rng(2);
  const v = 3;
  const distinct = rng.normals(10 * v);
  const points = new Float32Array(1000 * v);
  for (let i = 0; i < 1000; i++) points.set(distinct.subarray((i % 10) * v, (i % 10 + 1) * v), i * v);
  for (const [data, k] of [[points, 10], [rng.normals(500 * v), 64]] as const) {
    const cb = kmeansPlusPlus(data, v, k, new Rng(7));
    const keys = new Set<string>();
    for (let c = 0; c < k; c++) keys.add(Array.from(cb.subarray(c * v, (c + 1) * v)).join(","));
    assert.equal(keys.size, k);
  }
});

Deno.test("Hessian weighting lowers the weighted error when h is very uneven", () => {
  const m = gaussian(256, 64, 11);
  const rng = new Rng(12);
  const h = new Float32Array(256);
  for (let i = 0; i < 256; i++) h[i] = 10 ** (6 * rng.next() - 3);
  const settings = { v: 4, k: 32, seed: 1 };
  const plain = weightedError(m, vptqCompress(m, settings).decompress(), h);
  const weighted = weightedError(m, vptqCompress(m, settings, { hessian: h }).decompress(), h);
  console.log(`weighted error: unweighted ${plain.toFixed(4)}, Hessian-weighted ${weighted.toFixed(4)}`);
  assert.ok(weighted < 0.8 * plain);
  assert.deepEqual(hessianDiagonal({ rows: 2, cols: 3, data: new Float32Array([1, 2, 0, 3, 0, 2]) }), new Float32Array([5, 2, 2]));
});

Deno.test("the residual codebook lowers the MSE", () => {
  const m = gaussian(128, 64, 21);
  const base = mse(m.data, vptqCompress(m, { v: 4, k: 64, seed: 2 }).decompress());
  const res = mse(m.data, vptqCompress(m, { v: 4, k: 64, residualK: 64, seed: 2 }).decompress());
  console.log(`MSE without residual ${base.toFixed(4)}, with ${res.toFixed(4)}`);
  assert.ok(res < 0.75 * base);
});

Deno.test("outlier columns are the largest-norm ones and a large outlier codebook reconstructs them almost exactly", () => {
  const m = gaussian(64, 32, 31);
  const big = [3, 17, 20];
  for (let r = 0; r < 64; r++) for (const n of big) m.data[r * 32 + n] *= 50;
  const layer = vptqCompress(m, { v: 4, k: 16, outlierColumns: 3 / 32, outlierK: 64, seed: 4 });
  assert.deepEqual(Array.from(layer.outlierIds), big);
  const rec = layer.decompress();
  const without = vptqCompress(m, { v: 4, k: 16, seed: 4 }).decompress();
  for (let r = 0; r < 64; r++) {
    for (const n of big) {
      const w = m.data[r * 32 + n];
      assert.ok(Math.abs(rec[r * 32 + n] - w) <= 1e-3 * Math.abs(w) + 1e-6, `(${r}, ${n})`);
    }
  }
  const colErr = (x: Float32Array) =>
    big.reduce((s, n) => s + Array.from({ length: 64 }, (_, r) => (x[r * 32 + n] - m.data[r * 32 + n]) ** 2).reduce((a, b) => a + b), 0);
  assert.ok(colErr(without) > 1000 * colErr(rec));
});

Deno.test("encode -> decode -> decompress equals decompress, deterministic by seed", () => {
  const m = gaussian(50, 40, 41);
  for (const codebookFormat of ["f16", "f32"] as const) {
    const settings = { v: 3, k: 20, residualK: 5, outlierColumns: 4, outlierK: 9, seed: 8, codebookFormat };
    const layer = vptqCompress(m, settings);
    const bytes = layer.encode();
    const back = decodeVptq(bytes);
    assert.deepEqual(back.decompress(), layer.decompress());
    assert.deepEqual(back.encode(), bytes);
    assert.equal(back.settings.codebookFormat, codebookFormat);
    assert.deepEqual(vptqCompress(m, settings).encode(), bytes);
    assert.notDeepEqual(vptqCompress(m, { ...settings, seed: 9 }).encode(), bytes);
  }
  const f16 = vptqCompress(m, { v: 3, k: 20 }).encode().byteLength;
  const f32 = vptqCompress(m, { v: 3, k: 20, codebookFormat: "f32" }).encode().byteLength;
  assert.equal(f32 - f16, 20 * 3 * 2);
});

Deno.test("decodeVptq and vptqCompress name what is wrong", () => {
  const m = gaussian(16, 8, 51);
  const bytes = vptqCompress(m, { v: 4, k: 5, seed: 1 }).encode();
  const bad = (mutate: (b: Uint8Array) => Uint8Array, re: RegExp) => assert.throws(() => decodeVptq(mutate(bytes.slice())), re);
  bad((b) => b.subarray(0, 10), /shorter than the 36-byte header/);
  bad((b) => (b[0] = 0, b), /bad magic/);
  bad((b) => (b[4] = 9, b), /unsupported version 9/);
  bad((b) => b.subarray(0, b.length - 1), /truncated or corrupt/);
  bad((b) => (b[16] = 0, b), /invalid v 0/);
  // k = 5 packs at 3 bits: an all-ones index byte decodes to 7.
  bad((b) => (b[VPTQ_HEADER_BYTES + 5 * 4 * 2] = 0xff, b), /main index 7 at 0 exceeds its codebook/);
  assert.throws(() => vptqCompress(m, { v: 0, k: 4 }), /v must be an integer/);
  assert.throws(() => vptqCompress(m, { v: 4, k: 4, residualK: -1 }), /residualK must be an integer/);
  assert.throws(() => vptqCompress(m, { v: 4, k: 4, outlierColumns: 8 }), /outlierColumns 8 leaves no ordinary columns/);
  assert.throws(() => vptqCompress(m, { v: 4, k: 4, outlierColumns: 1.5 }), /outlierColumns must be/);
  assert.throws(() => vptqCompress(m, { v: 4, k: 4 }, { hessian: new Float32Array(3) }), /hessian length 3, expected rows = 16/);
  assert.deepEqual(vptqSettingsForBits(2, 4), { v: 4, k: 256 });
  assert.deepEqual(vptqSettingsForBits(1.5, 6), { v: 6, k: 512 });
  assert.throws(() => vptqSettingsForBits(1.5, 3), /bits \* v must be a whole number/);
});

Deno.test("2 bits per weight on N(0, 1) 512x512: budget within 5%, MSE below Lloyd-Max and near D(R)", () => {
  const m = gaussian(512, 512, 61);
  const { v, k } = vptqSettingsForBits(2, 4);
  const t0 = performance.now();
  const layer = vptqCompress(m, { v, k, seed: 1 });
  const ms = performance.now() - t0;
  const nominal = Math.log2(k) / v + (k * v * 16) / (512 * 512);
  const bpw = bitsPerWeight(layer);
  const err = mse(m.data, layer.decompress());
  const bound = 2 ** (-2 * 2);
  console.log(
    `v=${v} k=${k}: ${bpw.toFixed(4)} bits/weight (nominal ${nominal.toFixed(4)}), MSE ${err.toFixed(4)} = ${
      (err / bound).toFixed(3)
    } x D(R), ${ms.toFixed(0)} ms`,
  );
  assert.ok(Math.abs(bpw - nominal) <= 0.05 * nominal);
  assert.ok(err < 0.1175, "beats the 2-bit Lloyd-Max scalar quantizer");
  assert.ok(err <= 1.6 * bound);
});

Deno.test("k-means on a sample of the sub-vectors: every vector still gets its nearest stored centroid", () => {
  const m = gaussian(256, 64, 71);
  const layer = vptqCompress(m, { v: 4, k: 32, seed: 2, trainingVectors: 1000 });
  const full = vptqCompress(m, { v: 4, k: 32, seed: 2 });
  const points = new Float32Array(64 * 64 * 4);
  for (let j = 0; j < 64; j++) {
    for (let n = 0; n < 64; n++) for (let t = 0; t < 4; t++) points[(j * 64 + n) * 4 + t] = m.data[(j * 4 + t) * 64 + n];
  }
  const near = bruteNearest(points, 4, layer.codebook);
  const rec = layer.decompress();
  for (let j = 0; j < 64; j++) {
    for (let n = 0; n < 64; n++) {
      let d = 0;
      for (let t = 0; t < 4; t++) d += (rec[(j * 4 + t) * 64 + n] - m.data[(j * 4 + t) * 64 + n]) ** 2;
      assert.ok(Math.abs(d - near[j * 64 + n]) <= 1e-9 * (1 + d), `vector (${j}, ${n})`);
    }
  }
  const [a, b] = [mse(m.data, layer.decompress()), mse(m.data, full.decompress())];
  console.log(`MSE trained on 1000 of 4096 sub-vectors ${a.toFixed(4)}, on all ${b.toFixed(4)}`);
  assert.ok(a < 1.1 * b);
  assert.throws(() => vptqCompress(m, { v: 4, k: 32, trainingVectors: 0 }), /trainingVectors must be an integer/);
});
