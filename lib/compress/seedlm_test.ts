import assert from "node:assert/strict";
import { seedlmReconstructRef } from "../../kernels/seedlm_ref.ts";
import { Rng } from "../util/rng.ts";
import { bitsPerWeight, type Matrix, mse } from "./types.ts";
import {
  BASIS_STRIDE,
  decodeSeedLM,
  lfsrPeriod,
  lfsrStep,
  SEED_COUNT,
  seedBasis,
  seedBasisTable,
  SEEDLM_HEADER_BYTES,
  seedlmCompress,
  type SeedLMLayer,
  stateToValue,
} from "./seedlm.ts";

/** Deterministic N(0, 1) samples (mulberry32 + Box-Muller). */
function gaussian(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return out;
}

function gaussianMatrix(rows: number, cols: number, seed: number): Matrix {
  return { rows, cols, data: gaussian(rows * cols, seed) };
}

// Exhaustive compressions shared by several tests (each is seconds of search, so done once).
let layer4: { m: Matrix; layer: SeedLMLayer } | undefined;
/** 128 x 128 N(0, 1), C = 8, P = 3 (4 bits per weight), exhaustive. */
function fourBit(): { m: Matrix; layer: SeedLMLayer } {
  if (!layer4) {
    const m = gaussianMatrix(128, 128, 42);
    layer4 = { m, layer: seedlmCompress(m, { C: 8, P: 3 }) };
  }
  return layer4;
}
let layer3: { m: Matrix; layer: SeedLMLayer } | undefined;
/** 64 x 64 N(0, 1), C = 12, P = 4 (3 bits per weight), exhaustive. */
function threeBit(): { m: Matrix; layer: SeedLMLayer } {
  if (!layer3) {
    const m = gaussianMatrix(64, 64, 7);
    layer3 = { m, layer: seedlmCompress(m, { C: 12, P: 4 }) };
  }
  return layer3;
}

/** Block b reconstructed with a plain loop: U(seed) q_int 2^e. */
function plainBlock(layer: SeedLMLayer, b: number): number[] {
  const { C, P } = layer;
  const u = seedBasis(layer.seeds[b], C, P);
  const e = layer.eMin + layer.expCodes[b];
  const out: number[] = [];
  for (let c = 0; c < C; c++) {
    let acc = 0;
    for (let j = 0; j < P; j++) acc += u[c * P + j] * layer.coeffs[b * P + j];
    out.push(acc * 2 ** e);
  }
  return out;
}

/**
 * Brute force, written independently of the search: for every seed regenerate U by walking the
 * LFSR, solve the normal equations by Gaussian elimination, apply the documented exponent and
 * rounding rule, and measure ||w - U q^||^2 directly. Returns the error per seed (Infinity when singular).
 */
function bruteForceErrors(blocks: number[][], C: number, P: number, eMin: number): Float64Array[] {
  const errs = blocks.map(() => new Float64Array(SEED_COUNT + 1).fill(Infinity));
  for (let seed = 1; seed <= SEED_COUNT; seed++) {
    const u = seedBasis(seed, C, P);
    blocks.forEach((w, bi) => {
      // Augmented normal equations [U^T U | U^T w].
      const a: number[][] = [];
      for (let i = 0; i < P; i++) {
        const row: number[] = [];
        for (let j = 0; j < P; j++) {
          let s = 0;
          for (let c = 0; c < C; c++) s += u[c * P + i] * u[c * P + j];
          row.push(s);
        }
        let s = 0;
        for (let c = 0; c < C; c++) s += u[c * P + i] * w[c];
        row.push(s);
        a.push(row);
      }
      for (let col = 0; col < P; col++) {
        let piv = col;
        for (let r = col + 1; r < P; r++) if (Math.abs(a[r][col]) > Math.abs(a[piv][col])) piv = r;
        if (Math.abs(a[piv][col]) < 1e-9) return;
        [a[col], a[piv]] = [a[piv], a[col]];
        for (let r = 0; r < P; r++) {
          if (r === col) continue;
          const f = a[r][col] / a[col][col];
          for (let j = col; j <= P; j++) a[r][j] -= f * a[col][j];
        }
      }
      const q = a.map((row, i) => row[P] / row[i]);
      const m = Math.max(0, ...q.map((x) => x / 7.5), ...q.map((x) => -x / 8.5));
      const e = m === 0 ? eMin : Math.min(eMin + 15, Math.max(eMin, Math.ceil(Math.log2(m))));
      const qh = q.map((x) => Math.min(7, Math.max(-8, Math.round(x / 2 ** e))) * 2 ** e);
      let err = 0;
      for (let c = 0; c < C; c++) {
        let r = w[c];
        for (let j = 0; j < P; j++) r -= u[c * P + j] * qh[j];
        err += r * r;
      }
      errs[bi][seed] = err;
    });
  }
  return errs;
}

/** Checks that the layer's seeds for the given blocks are the brute-force minimizers. */
function assertBestSeeds(layer: SeedLMLayer, data: Float32Array, blockIds: number[]): void {
  const { C, P } = layer;
  const blocks = blockIds.map((b) => Array.from({ length: C }, (_, c) => data[b * C + c] ?? 0));
  const errs = bruteForceErrors(blocks, C, P, layer.eMin);
  blockIds.forEach((b, i) => {
    let best = 1;
    for (let s = 2; s <= SEED_COUNT; s++) if (errs[i][s] < errs[i][best]) best = s;
    const chosen = layer.seeds[b];
    const tol = 1e-9 * (1 + errs[i][best]);
    assert.ok(
      errs[i][chosen] <= errs[i][best] + tol,
      `block ${b}: seed ${chosen} error ${errs[i][chosen]} vs best ${best} error ${errs[i][best]}`,
    );
    assert.equal(chosen, best, `block ${b}: chosen seed differs from the brute-force argmin`);
    // The stored codes are the ones the rule gives for the chosen seed: its reconstruction error matches.
    const rec = plainBlock(layer, b);
    let err = 0;
    for (let c = 0; c < C; c++) err += (blocks[i][c] - rec[c]) ** 2;
    assert.ok(Math.abs(err - errs[i][chosen]) <= tol, `block ${b}: stored codes error ${err} vs rule ${errs[i][chosen]}`);
  });
}

Deno.test("LFSR x^16 + x^14 + x^13 + x^11 + 1 has period 65535 from every tested seed", () => {
  for (const seed of [1, 2, 3, 0x8000, 0xace1, 12345, 65535]) assert.equal(lfsrPeriod(seed), 65535, `seed ${seed}`);
  // From seed 1 it visits every nonzero 16-bit state exactly once.
  const seen = new Uint8Array(65536);
  let s = 1;
  for (let i = 0; i < SEED_COUNT; i++) {
    assert.equal(seen[s], 0, `state ${s} repeated after ${i} steps`);
    seen[s] = 1;
    s = lfsrStep(s);
  }
  assert.equal(seen[0], 0);
  assert.throws(() => lfsrPeriod(0), /seed must be an integer in 1\.\.65535/);
  assert.throws(() => lfsrPeriod(65536), /seed/);
});

Deno.test("basis: deterministic, documented mapping, unit columns, table equals decoder regeneration", () => {
  const C = 8, P = 3;
  const a = seedBasis(0xace1, C, P), b = seedBasis(0xace1, C, P);
  assert.deepEqual(a, b);
  assert.notDeepEqual(seedBasis(0xace2, C, P), a);
  // Mapping: first value = state after BASIS_STRIDE steps, (2x - 65535) / 65535, then column normalization.
  let s = 0xace1;
  const raw: number[] = [];
  for (let k = 0; k < C * P; k++) {
    for (let t = 0; t < BASIS_STRIDE; t++) s = lfsrStep(s);
    raw.push(stateToValue(s));
    assert.ok(raw[k] > -1 && raw[k] < 1);
  }
  for (let j = 0; j < P; j++) {
    const col = raw.slice(j * C, (j + 1) * C);
    const norm = Math.hypot(...col);
    for (let c = 0; c < C; c++) assert.ok(Math.abs(a[c * P + j] - col[c] / norm) < 1e-15);
    let n2 = 0;
    for (let c = 0; c < C; c++) n2 += a[c * P + j] ** 2;
    assert.ok(Math.abs(n2 - 1) < 1e-12);
  }
  // The encoder's cached table (built from the m-sequence) equals what the decoder regenerates.
  for (const [tc, tp] of [[8, 3], [12, 4]]) {
    const table = seedBasisTable(tc, tp);
    assert.equal(seedBasisTable(tc, tp), table, "cached");
    const seeds = [1, 2, 255, 4096, 0xace1, 65534, 65535];
    for (let i = 0; i < 100; i++) seeds.push(1 + ((i * 40503 + 17) % SEED_COUNT));
    for (const seed of seeds) {
      const u = seedBasis(seed, tc, tp);
      assert.deepEqual(table.u.subarray(seed * tc * tp, (seed + 1) * tc * tp), u, `C=${tc} P=${tp} seed ${seed}`);
      // G G^-1 = I.
      const o = seed * tp * tp;
      for (let i = 0; i < tp; i++) {
        for (let j = 0; j < tp; j++) {
          let acc = 0;
          for (let k = 0; k < tp; k++) acc += table.gram[o + i * tp + k] * table.gramInv[o + k * tp + j];
          assert.ok(Math.abs(acc - (i === j ? 1 : 0)) < 1e-9);
        }
      }
    }
    let invalid = 0;
    for (let seed = 1; seed <= SEED_COUNT; seed++) invalid += 1 - table.valid[seed];
    assert.ok(invalid < 10, `C=${tc} P=${tp}: ${invalid} singular seeds`);
  }
});

Deno.test("4 bits (C=8, P=3) on 128x128 N(0,1): throughput, MSE, reconstruction = U(seed) q 2^e", () => {
  const { m, layer } = fourBit();
  const st = layer.stats!;
  const err = mse(m.data, layer.decompress());
  console.log(
    `SeedLM C=8 P=3 128x128: precompute ${st.precomputeSeconds.toFixed(2)} s, search ${st.searchSeconds.toFixed(2)} s, ` +
      `${st.blocksPerSecond.toFixed(0)} blocks/s, ${(st.seedsPerSecond / 1e6).toFixed(1)} M seed-evals/s; ` +
      `MSE ${err.toFixed(4)} (Lloyd-Max 4-bit 0.0095), ${bitsPerWeight(layer).toFixed(4)} bits/weight`,
  );
  assert.equal(st.blocks, 2048);
  assert.equal(st.seedsPerBlock, 65535);
  assert.ok(err < 0.5, `MSE ${err}`);
  const w = layer.decompress();
  for (let b = 0; b < layer.blocks; b++) {
    const rec = plainBlock(layer, b);
    for (let c = 0; c < layer.C; c++) assert.equal(w[b * layer.C + c], Math.fround(rec[c]), `block ${b} c ${c}`);
  }
});

Deno.test("3 bits (C=12, P=4) on 64x64 N(0,1): MSE", () => {
  const { m, layer } = threeBit();
  const err = mse(m.data, layer.decompress());
  const st = layer.stats!;
  console.log(
    `SeedLM C=12 P=4 64x64: search ${st.searchSeconds.toFixed(2)} s, ${(st.seedsPerSecond / 1e6).toFixed(1)} M seed-evals/s; ` +
      `MSE ${err.toFixed(4)} (Lloyd-Max 3-bit 0.0346)`,
  );
  assert.ok(err < 0.5, `MSE ${err}`);
  assert.ok(err > mse(fourBit().m.data, fourBit().layer.decompress()), "3 bits is worse than 4 bits");
});

Deno.test("exhaustive search finds the brute-force best seed (P = 3, P = 4 and the general path)", () => {
  assertBestSeeds(fourBit().layer, fourBit().m.data, [0, 1234]);
  assertBestSeeds(threeBit().layer, threeBit().m.data, [5]);
  // P = 2 uses the general (not unrolled) scorer; 3 x 5 = 15 weights in blocks of 6, the last one padded.
  const m = { rows: 3, cols: 5, data: gaussian(15, 3) };
  const layer = seedlmCompress(m, { C: 6, P: 2 });
  assertBestSeeds(layer, m.data, [0, 2]);
});

Deno.test("encode -> decode -> decompress equals decompress; encoding deterministic", () => {
  const { layer } = fourBit();
  const bytes = layer.encode();
  assert.deepEqual(layer.encode(), bytes);
  const back = decodeSeedLM(bytes);
  assert.equal(back.method, "seedlm");
  assert.deepEqual([back.rows, back.cols, back.C, back.P, back.eMin], [128, 128, 8, 3, layer.eMin]);
  assert.deepEqual(back.seeds, layer.seeds);
  assert.deepEqual(back.expCodes, layer.expCodes);
  assert.deepEqual(back.coeffs, layer.coeffs);
  assert.deepEqual(back.decompress(), layer.decompress());
  assert.deepEqual(back.encode(), bytes);
  // Padded shape (35 weights, C = 8) with a short search.
  const small = seedlmCompress({ rows: 5, cols: 7, data: gaussian(35, 9) }, { C: 8, P: 3, seeds: 500 });
  const sb = decodeSeedLM(small.encode());
  assert.equal(sb.decompress().length, 35);
  assert.deepEqual(sb.decompress(), small.decompress());
  assert.equal(small.encode().byteLength, SEEDLM_HEADER_BYTES + Math.ceil((5 * 8) / 2));
});

Deno.test("serialized bits per weight within 5% of (16 + 4 + 4P) / C on 256x256", () => {
  const m = gaussianMatrix(256, 256, 11);
  for (const [C, P] of [[8, 3], [12, 4]]) {
    // The size does not depend on the search, so a short one keeps the test quick.
    const layer = seedlmCompress(m, { C, P, seeds: 32 });
    const nominal = (16 + 4 + 4 * P) / C;
    const bpw = bitsPerWeight(layer);
    const blocks = Math.ceil((256 * 256) / C);
    assert.equal(layer.encode().byteLength, SEEDLM_HEADER_BYTES + Math.ceil((blocks * (5 + P)) / 2));
    assert.ok(Math.abs(bpw - nominal) / nominal < 0.05, `C=${C} P=${P}: ${bpw} vs ${nominal}`);
    console.log(`SeedLM C=${C} P=${P} 256x256: ${bpw.toFixed(4)} bits/weight (nominal ${nominal})`);
  }
});

Deno.test("zero matrix, bad settings and malformed bytes", () => {
  const zero = seedlmCompress({ rows: 4, cols: 4, data: new Float32Array(16) }, { seeds: 10 });
  assert.deepEqual(zero.decompress(), new Float32Array(16));
  const m = gaussianMatrix(4, 4, 1);
  assert.throws(() => seedlmCompress(m, { C: 0 }), /C must be an integer/);
  assert.throws(() => seedlmCompress(m, { C: 4, P: 5 }), /P must be an integer/);
  assert.throws(() => seedlmCompress(m, { seeds: 0 }), /seeds must be an integer/);
  assert.throws(() => seedlmCompress({ rows: 4, cols: 4, data: new Float32Array(15) }), /data has length 15/);
  assert.throws(() => seedlmCompress({ rows: 1, cols: 2, data: new Float32Array([1, NaN]) }), /data\[1\] is not finite/);

  const good = seedlmCompress(m, { seeds: 10 }).encode();
  assert.throws(() => decodeSeedLM(good.subarray(0, 10)), /shorter than the 16-byte header/);
  const bad = (edit: (b: Uint8Array) => void) => {
    const b = good.slice();
    edit(b);
    return b;
  };
  assert.throws(() => decodeSeedLM(bad((b) => (b[0] = 0x58))), /bad magic/);
  assert.throws(() => decodeSeedLM(bad((b) => (b[4] = 9))), /unsupported version 9/);
  assert.throws(() => decodeSeedLM(bad((b) => (b[6] = 0))), /header P must be/);
  assert.throws(() => decodeSeedLM(good.subarray(0, good.length - 1)), /payload length/);
  assert.throws(() => decodeSeedLM(bad((b) => (b[16] = 0, b[17] = 0))), /block 0 has seed 0/);
});

Deno.test("the kernels' reference reconstruction equals SeedLMLayer.decompress exactly, 7x13 at C x P = 8x3 and 12x4", () => {
  const rng = new Rng(5);
  const rows = 7, cols = 13; // 91 weights: the last block is padded for both C
  const data = Float32Array.from({ length: rows * cols }, () => rng.normal());
  for (const [C, P] of [[8, 3], [12, 4]]) {
    const layer = seedlmCompress({ rows, cols, data }, { C, P, seeds: 2000 });
    const exps = Int32Array.from(layer.expCodes, (k) => layer.eMin + k);
    const ref = seedlmReconstructRef(layer.seeds, exps, layer.coeffs, C, P).subarray(0, rows * cols);
    assert.deepEqual(ref, layer.decompress(), `C=${C} P=${P}`);
  }
});
