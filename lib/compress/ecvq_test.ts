/** rANS coding, entropy-constrained k-means, and VPTQ layers with entropy-coded indices. */
import assert from "node:assert/strict";
import { Rng } from "../util/rng.ts";
import { assignEntropy, ecKmeans } from "./ecvq.ts";
import { entropyBits, quantizeFrequencies, RANS_PROB_BITS, ransDecode, ransEncode } from "./rans.ts";
import { bitsPerWeight, mse } from "./types.ts";
import { decodeVptq, vptqCompress } from "./vptq.ts";

Deno.test("rANS: decode(encode(s)) = s, within 0.5% of the empirical entropy; bad streams are named", () => {
  const rng = new Rng(1);
  const n = 50_000;
  // A skewed alphabet of 300 symbols (geometric-like) with some never used.
  const symbols = Uint32Array.from({ length: n }, () => Math.min(299, Math.floor(-Math.log(1 - rng.next()) * 12)) & ~1);
  const counts = new Float64Array(300);
  for (const s of symbols) counts[s]++;
  const freqs = quantizeFrequencies(counts);
  assert.equal(freqs.reduce((a, b) => a + b, 0), 1 << RANS_PROB_BITS);
  for (let s = 0; s < 300; s++) assert.equal(freqs[s] > 0, counts[s] > 0, `symbol ${s}: used iff it has a frequency`);
  const bytes = ransEncode(symbols, freqs);
  assert.deepEqual(ransDecode(bytes, n, freqs), symbols);
  const h = entropyBits(counts);
  console.log(`rANS: ${bytes.length * 8} bits for ${h.toFixed(0)} bits of entropy (${((bytes.length * 8) / h).toFixed(4)}x)`);
  assert.ok(bytes.length * 8 <= h * 1.005 + 64);
  assert.throws(() => ransDecode(bytes.subarray(0, bytes.length - 3), n, freqs), /truncated or corrupt/);
  const flipped = bytes.slice();
  flipped[flipped.length >> 1] ^= 0x5a;
  assert.throws(() => ransDecode(flipped, n, freqs), /rans: stream/);
  assert.throws(() => ransEncode([1], freqs), /symbol 1 at 0 has frequency 0/);
  assert.throws(() => quantizeFrequencies([0, 0]), /no symbol has a nonzero count/);
  assert.deepEqual(ransDecode(ransEncode([], freqs), 0, freqs), new Uint32Array(0));
});

Deno.test("ECVQ assignment is the exact argmin of distance + lambda * code length", () => {
  const rng = new Rng(2);
  const v = 3, k = 40, m = 2000;
  const points = rng.normals(m * v);
  const weights = Float32Array.from({ length: m * v }, () => 0.1 + rng.next());
  const cb = Float64Array.from(rng.normals(k * v));
  const counts = Float64Array.from({ length: k }, () => 1 + rng.int(100));
  const total = counts.reduce((a, b) => a + b, 0);
  const len = Float64Array.from(counts, (c) => -Math.log2(c / total));
  const order = Uint32Array.from({ length: k }, (_, c) => c).sort((a, b) => len[a] - len[b] || a - b);
  const lambda = 0.3;
  for (const w of [undefined, weights]) {
    const a = new Uint32Array(m).map(() => rng.int(k));
    assignEntropy(points, v, cb, len, order, lambda, w, a, true, new Float64Array(k));
    for (let i = 0; i < m; i++) {
      const cost = (c: number) => {
        let d = 0;
        for (let t = 0; t < v; t++) d += (w ? w[i * v + t] : 1) * (points[i * v + t] - cb[c * v + t]) ** 2;
        return d + lambda * len[c];
      };
      let best = Infinity;
      for (let c = 0; c < k; c++) best = Math.min(best, cost(c));
      assert.ok(Math.abs(cost(a[i]) - best) <= 1e-9 * (1 + best), `point ${i}: cost ${cost(a[i])}, best ${best}`);
    }
  }
});

Deno.test("ECVQ on N(0, 1) pairs lands near its target rate and beats fixed-rate quantizers there", () => {
  const v = 2, m = 32768;
  const points = new Rng(3).normals(m * v);
  const res = ecKmeans(points, v, { k: 128, targetBits: 2, iterations: 30, seed: 1 });
  const last = res.history.at(-1)!;
  const ratio = last.distortion / 2 ** (-2 * last.rate);
  console.log(
    `ECVQ v=2: ${last.rate.toFixed(4)} bits, MSE ${last.distortion.toFixed(5)} = ${ratio.toFixed(3)} x D(R), ${last.used} centroids`,
  );
  assert.ok(Math.abs(last.rate - 2) < 0.05, `rate ${last.rate}`);
  // Lloyd-Max's 2-bit scalar quantizer is 1.88 x D(2) and fixed-rate VQ at v = 4 about 1.5 x.
  assert.ok(ratio < 1.45, `MSE / D(R) = ${ratio}`);
  // The final pass keeps only centroids some point uses, numbered densely.
  const used = res.codebook.length / v;
  assert.ok(
    used <= 128 && Math.abs(used - last.used) <= 3,
    `${used} centroids after the final pass, ${last.used} in the last training pass`,
  );
  const hit = new Uint8Array(used);
  for (const a of res.assignments) hit[a] = 1;
  assert.ok(hit.every((h) => h === 1));
  assert.throws(() => ecKmeans(points, v, { k: 8, targetBits: 0 }), /targetBits must be > 0/);
});

Deno.test("entropy-coded VPTQ layers: size within 5% of the target, lossless round trip, deterministic, errors named", () => {
  const m = { rows: 256, cols: 192, data: new Rng(4).normals(256 * 192) };
  const layer = vptqCompress(m, { v: 2, k: 128, entropyBits: 2.5, seed: 5 });
  const bpw = bitsPerWeight(layer);
  const err = mse(layer.decompress(), m.data);
  console.log(
    `VPTQ-EC v=2 target 2.5: ${bpw.toFixed(4)} bits/weight, ${layer.k} centroids, MSE ${err.toFixed(5)} = ${
      (err / 2 ** (-2 * bpw)).toFixed(3)
    } x D(R)`,
  );
  assert.ok(Math.abs(bpw - 2.5) <= 0.05 * 2.5, `${bpw} bits/weight`);
  const bytes = layer.encode();
  const back = decodeVptq(bytes);
  assert.ok(back.entropyCoded);
  assert.deepEqual(back.indices, layer.indices);
  assert.deepEqual(back.decompress(), layer.decompress());
  assert.deepEqual(back.encode(), bytes);
  assert.deepEqual(vptqCompress(m, { v: 2, k: 128, entropyBits: 2.5, seed: 5 }).encode(), bytes);
  assert.throws(() => decodeVptq(bytes.subarray(0, bytes.length - 2)), /truncated or corrupt/);
  const bad = bytes.slice();
  bad[bad.length - 10] ^= 0xff;
  assert.throws(() => decodeVptq(bad), /decodeVptq: entropy-coded indices: rans/);
  assert.throws(() => vptqCompress(m, { v: 2, k: 16, entropyBits: 2, residualK: 4 }), /needs residualK = 0 and outlierColumns = 0/);
  assert.throws(() => vptqCompress(m, { v: 2, k: 16, entropyBits: -1 }), /entropyBits must be >= 0/);
  // Rows not a multiple of v: the zero padding carries no weight and is dropped on reconstruction.
  const odd = { rows: 33, cols: 40, data: new Rng(6).normals(33 * 40) };
  const l3 = vptqCompress(odd, { v: 4, k: 16, entropyBits: 5, seed: 1 }); // 1,320 weights: the tables alone cost ~1.2 bits each
  assert.deepEqual(decodeVptq(l3.encode()).decompress(), l3.decompress());
  // With rate to spare ECVQ is plain k-means: no worse than fixed-rate VPTQ with the same 16 entries.
  const fixed = mse(vptqCompress(odd, { v: 4, k: 16, seed: 1 }).decompress(), odd.data);
  assert.ok(mse(l3.decompress(), odd.data) < 1.1 * fixed, `MSE ${mse(l3.decompress(), odd.data)} vs fixed-rate ${fixed}`);
});
