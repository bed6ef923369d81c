/**
 * SeedLM on the GPU: regenerates each block's pseudo-random basis U(seed) [C, P] from its
 * 16-bit LFSR seed and writes the block's weights w = 2^e U q, never storing U.
 *
 * The LFSR, the basis and the block layout are those of the CPU compressor
 * (`lib/compress/seedlm.ts`; restated in `seedlm_ref.ts`): a 16-bit Fibonacci LFSR for
 * x^16 + x^14 + x^13 + x^11 + 1 stepped 16 times per value, v = (2 x - 65535) / 65535, U filled
 * column by column (U[c, j] = v_(j C + c + 1)) and each column scaled to unit L2 norm. One
 * invocation per block walks the LFSR twice (once for the column norms, once for the weights),
 * so blocks run in parallel and U is never stored. Arithmetic is f32 (the CPU's is f64), so the
 * output matches `SeedLMLayer.decompress` within float tolerance, not bit for bit.
 *
 * Two entry points in one module: `reconstruct` (the weights) and `basis` (U itself, row-major,
 * for testing the generator). Bindings: 0 = seeds u32 [blocks], 1 = out f32, 2 = uniform
 * {blocks, C, P}, 3 = exponents i32 [blocks] (eMin + expCode), 4 = coefficients i32 [blocks, P].
 */
import {
  type Dispatch,
  getDevice,
  getPipeline,
  grid1d,
  INDEX_1D,
  makeDispatch,
  needWords,
  outputBuffer,
  positiveInt,
  readF32,
  release,
  run,
  storageBuffer,
  uniformBuffer,
  WG_1D,
} from "./device.ts";
import { BASIS_STRIDE, checkSeed, SEED_COUNT } from "./seedlm_ref.ts";

/** Largest P the kernel supports (the compressor's limit; the column scales live in an array<f32, 16>). */
const MAX_P = 16;

/** Sizes of a SeedLM reconstruction: blocks of C weights from P coefficients. */
export interface SeedlmDims {
  blocks: number;
  C: number;
  P: number;
}

/** The SeedLM module's WGSL (entry points `basis` and `reconstruct`). */
export function seedlmSource(): string {
  return /* wgsl */ `
struct Params { blocks: u32, C: u32, P: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> seeds: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> exps: array<i32>;
@group(0) @binding(4) var<storage, read> coeffs: array<i32>;

// 16-bit Fibonacci LFSR x^16 + x^14 + x^13 + x^11 + 1: shift right, new bit at the top.
fn lfsr_step(s: u32) -> u32 {
  let bit = (s ^ (s >> 2u) ^ (s >> 3u) ^ (s >> 5u)) & 1u;
  return (s >> 1u) | (bit << 15u);
}

// The state ${BASIS_STRIDE} steps on (one basis value).
fn lfsr_next(s: u32) -> u32 {
  var t = s;
  for (var k = 0u; k < ${BASIS_STRIDE}u; k++) { t = lfsr_step(t); }
  return t;
}

// (2 x - 65535) / 65535 (the numerator is exact in f32).
fn lfsr_value(s: u32) -> f32 {
  return f32(i32(2u * s) - ${SEED_COUNT}) / ${SEED_COUNT}.0;
}

// 1 / ||U[:, j]|| for every column j of U(seed) (0 for an all-zero column, as the CPU).
fn col_scales(seed: u32) -> array<f32, ${MAX_P}> {
  var inv: array<f32, ${MAX_P}>;
  var s = seed;
  for (var j = 0u; j < params.P; j++) {
    var s2 = 0.0;
    for (var c = 0u; c < params.C; c++) {
      s = lfsr_next(s);
      let v = lfsr_value(s);
      s2 += v * v;
    }
    inv[j] = select(0.0, 1.0 / sqrt(s2), s2 > 0.0);
  }
  return inv;
}

@compute @workgroup_size(${WG_1D})
fn basis(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  ${INDEX_1D}
  if (i >= params.blocks) { return; }
  let seed = seeds[i] & 0xffffu;
  let inv = col_scales(seed);
  let P = params.P;
  let n = params.C * P;
  var s = seed;
  for (var j = 0u; j < P; j++) {
    for (var c = 0u; c < params.C; c++) {
      s = lfsr_next(s);
      out[i * n + c * P + j] = lfsr_value(s) * inv[j];
    }
  }
}

@compute @workgroup_size(${WG_1D})
fn reconstruct(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  ${INDEX_1D}
  if (i >= params.blocks) { return; }
  let seed = seeds[i] & 0xffffu;
  let inv = col_scales(seed);
  let C = params.C;
  let o = i * C;
  var s = seed;
  // Column j of U adds v * (q_j / ||U[:, j]||) to every weight of the block.
  for (var j = 0u; j < params.P; j++) {
    let q = f32(coeffs[i * params.P + j]);
    for (var c = 0u; c < C; c++) {
      s = lfsr_next(s);
      let t = (lfsr_value(s) * inv[j]) * q;
      out[o + c] = select(out[o + c] + t, t, j == 0u);
    }
  }
  let e = exps[i];
  for (var c = 0u; c < C; c++) { out[o + c] = ldexp(out[o + c], e); }
}
`;
}

function check(dims: SeedlmDims): void {
  positiveInt(dims.blocks, "seedlm: blocks");
  positiveInt(dims.C, "seedlm: C");
  positiveInt(dims.P, "seedlm: P");
  if (dims.P > MAX_P) throw new Error(`seedlm: P = ${dims.P} exceeds ${MAX_P}`);
}

/** Buffers of a reconstruction: seeds, exps, coeffs in; w [blocks * C] out. */
export interface SeedlmBuffers {
  seeds: GPUBuffer;
  exps: GPUBuffer;
  coeffs: GPUBuffer;
  w: GPUBuffer;
}

/** The reconstruction's compiled pipeline (cached per device). */
export function seedlmReconstructPipeline(device: GPUDevice): Promise<GPUComputePipeline> {
  return getPipeline(device, "seedlm", null, seedlmSource, "reconstruct");
}

/** Records the reconstruction with a pipeline from `seedlmReconstructPipeline`; synchronous. */
export function seedlmReconstructRecord(device: GPUDevice, pipeline: GPUComputePipeline, bufs: SeedlmBuffers, dims: SeedlmDims): Dispatch {
  check(dims);
  const { blocks, C, P } = dims;
  needWords(bufs.seeds, blocks, "seedlm seeds");
  needWords(bufs.exps, blocks, "seedlm exps");
  needWords(bufs.coeffs, blocks * P, "seedlm coeffs");
  needWords(bufs.w, blocks * C, "seedlm w");
  const u = uniformBuffer(device, [blocks, C, P, 0]);
  return makeDispatch(device, pipeline, [bufs.seeds, bufs.w, u, bufs.exps, bufs.coeffs], grid1d(device, blocks), [u]);
}

/** Records the reconstruction of every block into `w` (block b at b * C). */
export async function seedlmReconstructDispatch(device: GPUDevice, bufs: SeedlmBuffers, dims: SeedlmDims): Promise<Dispatch> {
  check(dims);
  return seedlmReconstructRecord(device, await seedlmReconstructPipeline(device), bufs, dims);
}

/** Records the basis generation: U(seed_b) [C, P] row-major at b * C * P of `u`. */
export async function seedlmBasisDispatch(
  device: GPUDevice,
  bufs: { seeds: GPUBuffer; u: GPUBuffer },
  dims: SeedlmDims,
): Promise<Dispatch> {
  check(dims);
  const { blocks, C, P } = dims;
  needWords(bufs.seeds, blocks, "seedlm seeds");
  needWords(bufs.u, blocks * C * P, "seedlm basis");
  const pipeline = await getPipeline(device, "seedlm", null, seedlmSource, "basis");
  const uni = uniformBuffer(device, [blocks, C, P, 0]);
  return makeDispatch(device, pipeline, [bufs.seeds, bufs.u, uni], grid1d(device, blocks), [uni]);
}

function seedBuffer(device: GPUDevice, seeds: ArrayLike<number>): GPUBuffer {
  for (let i = 0; i < seeds.length; i++) checkSeed(seeds[i]);
  return storageBuffer(device, Uint32Array.from(seeds));
}

/** Weights [blocks * C] from host arrays: seeds (1..65535), exponents, coefficients [blocks, P]. */
export async function seedlmReconstruct(
  device: GPUDevice,
  seeds: ArrayLike<number>,
  exps: Int32Array,
  coeffs: Int32Array,
  C: number,
  P: number,
): Promise<Float32Array> {
  const dims = { blocks: seeds.length, C, P };
  if (exps.length !== dims.blocks) throw new Error(`seedlmReconstruct: ${exps.length} exponents for ${dims.blocks} seeds`);
  if (coeffs.length !== dims.blocks * P) throw new Error(`seedlmReconstruct: ${coeffs.length} coefficients, need blocks * P`);
  const bufs = {
    seeds: seedBuffer(device, seeds),
    exps: storageBuffer(device, exps),
    coeffs: storageBuffer(device, coeffs),
    w: outputBuffer(device, dims.blocks * C),
  };
  try {
    const d = await seedlmReconstructDispatch(device, bufs, dims);
    await run(device, d);
    release(d);
    return await readF32(device, bufs.w, dims.blocks * C);
  } finally {
    for (const b of Object.values(bufs)) b.destroy();
  }
}

/** The bases [blocks, C, P] of `seeds`, generated on the GPU. */
export async function seedlmBasisGpu(device: GPUDevice, seeds: ArrayLike<number>, C: number, P: number): Promise<Float32Array> {
  const dims = { blocks: seeds.length, C, P };
  const bufs = { seeds: seedBuffer(device, seeds), u: outputBuffer(device, dims.blocks * C * P) };
  try {
    const d = await seedlmBasisDispatch(device, bufs, dims);
    await run(device, d);
    release(d);
    return await readF32(device, bufs.u, dims.blocks * C * P);
  } finally {
    for (const b of Object.values(bufs)) b.destroy();
  }
}

/** A SeedLM-compressed matrix as the kernel reads it (lib/compress/seedlm.ts's SeedLMLayer fits). */
export interface SeedLMBlocks {
  rows: number;
  cols: number;
  /** Block length and coefficients per block. */
  C: number;
  P: number;
  /** One seed per block (1..65535). */
  seeds: Uint16Array;
  /** Exponent codes per block; the exponent is eMin + code. */
  expCodes: ArrayLike<number>;
  eMin: number;
  /** Signed integer coefficients [blocks * P]. */
  coeffs: ArrayLike<number>;
}

/**
 * The weights [rows * cols] of a compressed layer, reconstructed on the GPU (the process's
 * device): seeds, exponents eMin + expCode and the integer coefficients go in unchanged; the
 * last block's padding is dropped. Equals `layer.decompress()` within f32 rounding.
 */
export async function seedlmReconstructLayer(layer: SeedLMBlocks): Promise<Float32Array> {
  const device = await getDevice({ quiet: true });
  if (!device) throw new Error("seedlmReconstructLayer: no WebGPU device");
  const exps = Int32Array.from(layer.expCodes, (k) => layer.eMin + k);
  const w = await seedlmReconstruct(device, layer.seeds, exps, Int32Array.from(layer.coeffs), layer.C, layer.P);
  return w.length === layer.rows * layer.cols ? w : w.slice(0, layer.rows * layer.cols);
}
