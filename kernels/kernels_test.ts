/**
 * Every WGSL kernel against its plain-TypeScript reference on small odd shapes (sizes that
 * are not multiples of any tile, so every bounds check runs).
 *
 * Tolerances (written out per test):
 * - matmuls (f32 accumulation over K): |got - want| <= (1e-4 + 1e-4 |want|) * max(1, K / 32);
 * - GrokFast EMA (three f32 operations per value): |got - want| <= 1e-6 + 1e-5 |want|;
 * - SeedLM (f32 on the GPU vs the compressor's f64 decompress): |got - want| <= 1e-5 + 1e-5 |want|.
 *
 * GPU tests are ignored, with the reason printed, when navigator.gpu gives no adapter. On
 * llvmpipe most of the time is pipeline compilation (about 2 s per tiled pipeline).
 */
import assert from "node:assert/strict";
import { Rng } from "../lib/util/rng.ts";
import { cachedPipelines, getGpu, outputBuffer, release, storageBuffer } from "./device.ts";
import { matmul, type MatmulDims, matmulDispatch, matmulRef, type TileR } from "./matmul.ts";
import { packTernary, ternaryMatmul, ternaryMatmulRef, unpackTernary } from "./ternary_matmul.ts";
import { vqIndexRows, vqMatmul, vqMatmulRef } from "./vq_matmul.ts";
import { seedBasis, seedlmReconstructRef } from "./seedlm_ref.ts";
import { seedlmBasisGpu, seedlmReconstructLayer } from "./seedlm.ts";
import { grokfastEma, grokfastEmaRef } from "./grokfast_ema.ts";

const gpu = await getGpu();
const device = gpu?.device;
if (gpu) console.log(`kernels: adapter ${gpu.adapter}${gpu.fallback ? " (software fallback)" : ""}`);
else console.log("kernel GPU tests skipped: no WebGPU device (reason above)");

/** Asserts |got_i - want_i| <= atol + rtol |want_i| for every i, naming the worst element. */
function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = -1, worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const excess = Math.abs(got[i] - want[i]) - (atol + rtol * Math.abs(want[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  assert.ok(worst < 0, `${what}: element ${worst} got ${got[worst]}, want ${want[worst]} (atol ${atol}, rtol ${rtol})`);
}

/** The matmul tolerance: (1e-4 + 1e-4 |want|) * max(1, K / 32). */
function assertMatmulClose(got: Float32Array, want: Float32Array, K: number, what: string): void {
  const f = Math.max(1, K / 32);
  assertClose(got, want, 1e-4 * f, 1e-4 * f, what);
}

const uniform = (rng: Rng, n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
const ternary = (rng: Rng, n: number) => Int8Array.from({ length: n }, () => rng.int(3) - 1);
const ignore = !device;

// ---- CPU-only checks of the references and packing helpers ----

Deno.test("ternary 2-bit packing: 16 codes per u32, little end first, ceil(N / 16) words per row", () => {
  const K = 3, N = 19;
  const t = ternary(new Rng(1), K * N);
  const codes = packTernary(t, K, N);
  assert.equal(codes.length, K * 2);
  assert.equal(codes[2 * 1 + 1] & 3, t[1 * N + 16] + 1); // row 1, column 16: word 1, lowest bits
  assert.equal((codes[0] >>> 30) & 3, t[15] + 1); // row 0, column 15: word 0, highest bits
  assert.deepEqual([...unpackTernary(codes, K, N)], [...t]);
});

// ---- GPU kernels against the references ----

Deno.test({
  name: "matmul: R = 1, 2, 4 at 5x37x19 and R = 4 at 70x37x130 (tol (1e-4 + 1e-4|c|) K/32)",
  ignore,
  fn: async () => {
    const rng = new Rng(2);
    const cases: [MatmulDims, TileR][] = [
      [{ M: 5, K: 37, N: 19 }, 1],
      [{ M: 5, K: 37, N: 19 }, 2],
      [{ M: 5, K: 37, N: 19 }, 4],
      [{ M: 70, K: 37, N: 130 }, 4],
    ];
    for (const [dims, r] of cases) {
      const a = uniform(rng, dims.M * dims.K), b = uniform(rng, dims.K * dims.N);
      const got = await matmul(device!, a, b, dims, { r });
      assertMatmulClose(got, matmulRef(a, b, dims), dims.K, `matmul r=${r} ${dims.M}x${dims.K}x${dims.N}`);
    }
  },
});

Deno.test({
  name: "pipelines are cached per (kernel, specialization)",
  ignore,
  fn: async () => {
    const dims = { M: 3, K: 5, N: 7 };
    const bufs = {
      a: storageBuffer(device!, new Float32Array(15)),
      b: storageBuffer(device!, new Float32Array(35)),
      c: outputBuffer(device!, 21),
    };
    const d1 = await matmulDispatch(device!, bufs, dims, { r: 1 });
    const before = cachedPipelines(device!);
    const d2 = await matmulDispatch(device!, bufs, { M: 1, K: 5, N: 5 }, { r: 1 });
    assert.equal(cachedPipelines(device!), before, "same kernel and r: no new pipeline");
    assert.equal(d1.pipeline, d2.pipeline);
    const d3 = await matmulDispatch(device!, bufs, dims, { r: 2 });
    assert.notEqual(d3.pipeline, d1.pipeline, "another r: another pipeline");
    release([d1, d2, d3]);
    for (const b of Object.values(bufs)) b.destroy();
  },
});

Deno.test({
  name: "ternary matmul: per-matrix and per-column scale, 5x37x19 and 70x37x130 (tol (1e-4 + 1e-4|y|) K/32)",
  ignore,
  fn: async () => {
    const rng = new Rng(3);
    for (const dims of [{ M: 5, K: 37, N: 19 }, { M: 70, K: 37, N: 130 }]) {
      const { M, K, N } = dims;
      const x = uniform(rng, M * K);
      const codes = packTernary(ternary(rng, K * N), K, N);
      for (const scale of [Float32Array.of(0.37), Float32Array.from({ length: N }, () => 0.1 + rng.next())]) {
        const got = await ternaryMatmul(device!, x, codes, scale, dims);
        const what = `ternary ${M}x${K}x${N} scale[${scale.length}]`;
        assertMatmulClose(got, ternaryMatmulRef(x, codes, scale, dims), K, what);
      }
    }
  },
});

Deno.test({
  name: "VQ matmul: v = 4 and 3 (K = 37 not a multiple), k = 16, 5x37x19 and 70x37x130 (tol (1e-4 + 1e-4|y|) K/32)",
  ignore,
  fn: async () => {
    const rng = new Rng(4);
    const k = 16;
    for (const [M, K, N, v] of [[5, 37, 19, 4], [5, 37, 19, 3], [70, 37, 130, 4]]) {
      const dims = { M, K, N, v };
      const x = uniform(rng, M * K);
      const idx = Uint32Array.from({ length: vqIndexRows(K, v) * N }, () => rng.int(k));
      const codebook = uniform(rng, k * v);
      const got = await vqMatmul(device!, x, idx, codebook, dims);
      assertMatmulClose(got, vqMatmulRef(x, idx, codebook, dims), K, `vq ${M}x${K}x${N} v=${v}`);
    }
  },
});

Deno.test({
  name: "SeedLM: GPU reconstruction equals the reference, 91 weights at C x P = 8x3 and 12x4 (tol 1e-5 + 1e-5|w|)",
  ignore,
  fn: async () => {
    const rng = new Rng(5);
    for (const [C, P] of [[8, 3], [12, 4]]) {
      const blocks = Math.ceil(91 / C); // the last block is padded for both C
      const seeds = Uint16Array.from({ length: blocks }, () => 1 + rng.int(0xffff));
      const expCodes = Uint8Array.from({ length: blocks }, () => rng.int(16));
      const coeffs = Int8Array.from({ length: blocks * P }, () => rng.int(16) - 8);
      const layer = { rows: 7, cols: 13, C, P, seeds, expCodes, eMin: -12, coeffs };
      const want = seedlmReconstructRef(seeds, Int32Array.from(expCodes, (k) => layer.eMin + k), coeffs, C, P).subarray(0, 91);
      const got = await seedlmReconstructLayer(layer);
      assertClose(got, want, 1e-5, 1e-5, `seedlm weights C=${C} P=${P}`);
      const basisSeeds = Uint32Array.of(1, 0xffff, 777, ...seeds.subarray(0, 4));
      const basis = await seedlmBasisGpu(device!, basisSeeds, C, P);
      const u = new Float64Array(basisSeeds.length * C * P);
      basisSeeds.forEach((s, b) => u.set(seedBasis(s, C, P), b * C * P));
      assertClose(basis, u, 1e-6, 1e-5, `seedlm basis C=${C} P=${P}`);
    }
  },
});

Deno.test({
  name: "GrokFast EMA: first step (mu = g) then a second, n = 1037 (tol 1e-6 + 1e-5|want|)",
  ignore,
  fn: async () => {
    const rng = new Rng(6);
    const p = { alpha: 0.98, lambda: 2 };
    const g1 = uniform(rng, 1037), g2 = uniform(rng, 1037);
    const s1 = await grokfastEma(device!, g1, undefined, p);
    const r1 = grokfastEmaRef(g1, undefined, p);
    assertClose(s1.mu, r1.mu, 1e-6, 1e-5, "ema step 1 mu");
    assertClose(s1.g, r1.g, 1e-6, 1e-5, "ema step 1 g'");
    const s2 = await grokfastEma(device!, g2, s1.mu, p);
    const r2 = grokfastEmaRef(g2, r1.mu, p);
    assertClose(s2.mu, r2.mu, 1e-6, 1e-5, "ema step 2 mu");
    assertClose(s2.g, r2.g, 1e-6, 1e-5, "ema step 2 g'");
  },
});
