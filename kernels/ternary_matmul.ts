/**
 * Ternary (BitNet b1.58) matmul: y [M, N] = x [M, K] (unpack(codes) [K, N] - 1) * scale.
 *
 * Codes follow `lib/compress/types.ts`: c = t + 1 in {0, 1, 2} for t in {-1, 0, 1}, 2 bits
 * each, 16 codes per u32 with the first code in the lowest bits, along a row of W; row k
 * holds ceil(N / 16) words (the last word's unused codes are ignored). Code 3 is invalid
 * (it would decode to t = 2 here and in the reference alike).
 *
 * `scale` is one f32 for the whole matrix or one per output column n; a uniform flag picks
 * which (`perColumn`). The kernel is the tiled f32 matmul of `matmul.ts` with the B tile
 * decoded from the packed codes as it is staged in workgroup memory (each invocation reads
 * one u32 and extracts its own 2-bit code), and the scale applied once per output.
 */
import {
  type Dispatch,
  getPipeline,
  makeDispatch,
  needWords,
  outputBuffer,
  readF32,
  release,
  run,
  storageBuffer,
  uniformBuffer,
} from "./device.ts";
import { checkDims, DEFAULT_R, type MatmulDims, matmulRef, tiledGrid, tiledMatmulSource, type TileR } from "./matmul.ts";

/** u32 words per row of W: ceil(N / 16). */
export function ternaryWordsPerRow(N: number): number {
  return Math.ceil(N / 16);
}

/** Packs ternary values t [K, N] (row-major, each -1, 0 or 1) into 2-bit codes as in types.ts. */
export function packTernary(t: ArrayLike<number>, K: number, N: number): Uint32Array {
  if (t.length !== K * N) throw new Error(`packTernary: ${t.length} values for K x N = ${K} x ${N}`);
  const wpr = ternaryWordsPerRow(N);
  const out = new Uint32Array(K * wpr);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      const v = t[k * N + n];
      if (v !== -1 && v !== 0 && v !== 1) throw new Error(`packTernary: value ${v} at (${k}, ${n}) is not -1, 0 or 1`);
      out[k * wpr + (n >>> 4)] |= (v + 1) << (2 * (n & 15));
    }
  }
  return out;
}

/** Unpacks 2-bit codes into t = c - 1 [K, N] (row-major). */
export function unpackTernary(codes: Uint32Array, K: number, N: number): Int8Array {
  const wpr = ternaryWordsPerRow(N);
  if (codes.length < K * wpr) throw new Error(`unpackTernary: ${codes.length} words, need K * ceil(N / 16) = ${K * wpr}`);
  const t = new Int8Array(K * N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) t[k * N + n] = ((codes[k * wpr + (n >>> 4)] >>> (2 * (n & 15))) & 3) - 1;
  }
  return t;
}

/** Reference y = x (unpack(codes) - 1) * scale, accumulated in f64. `scale` has length 1 or N. */
export function ternaryMatmulRef(x: ArrayLike<number>, codes: Uint32Array, scale: ArrayLike<number>, dims: MatmulDims): Float32Array {
  const perColumn = scaleMode(scale.length, dims.N, "ternaryMatmulRef");
  const y = matmulRef(x, unpackTernary(codes, dims.K, dims.N), dims);
  for (let i = 0; i < y.length; i++) y[i] *= scale[perColumn ? i % dims.N : 0];
  return y;
}

/** True for a per-column scale (length N), false for one per matrix (length 1); throws otherwise. */
function scaleMode(length: number, N: number, what: string): boolean {
  if (length === N) return N !== 1;
  if (length === 1) return false;
  throw new Error(`${what}: scale has ${length} values, expected 1 (per matrix) or N = ${N} (per column)`);
}

/** The ternary kernel's WGSL: binding 3 = packed codes (u32), 4 = scale (f32); dims.extra = 1 for per-column scale. */
export function ternaryMatmulSource(r: TileR = DEFAULT_R): string {
  return tiledMatmulSource({
    r,
    bindings: /* wgsl */ `
@group(0) @binding(3) var<storage, read> codes: array<u32>;
@group(0) @binding(4) var<storage, read> scale: array<f32>;
fn b_elem(k: u32, n: u32) -> f32 {
  let word = codes[k * ((dims.N + 15u) / 16u) + n / 16u];
  return f32((word >> (2u * (n % 16u))) & 3u) - 1.0;
}`,
    epilogue: "acc * scale[select(0u, gn, dims.extra == 1u)]",
  });
}

/** Buffers of a ternary product: x [M, K] f32, codes [K * ceil(N / 16)] u32, scale [1 or N] f32 in; y [M, N] out. */
export interface TernaryBuffers {
  x: GPUBuffer;
  codes: GPUBuffer;
  scale: GPUBuffer;
  y: GPUBuffer;
}

/** The ternary kernel's compiled pipeline for tile specialization `r` (cached per device). */
export function ternaryMatmulPipeline(device: GPUDevice, r: TileR = DEFAULT_R): Promise<GPUComputePipeline> {
  return getPipeline(device, "ternary_matmul", { r }, () => ternaryMatmulSource(r));
}

/** Records y = x (codes - 1) * scale with a pipeline from `ternaryMatmulPipeline(device, r)`; synchronous. */
export function ternaryMatmulRecord(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  bufs: TernaryBuffers,
  dims: MatmulDims & { perColumn: boolean },
  r: TileR,
): Dispatch {
  checkDims(dims, "ternaryMatmul");
  const { M, K, N, perColumn } = dims;
  needWords(bufs.x, M * K, "ternaryMatmul x");
  needWords(bufs.codes, K * ternaryWordsPerRow(N), "ternaryMatmul codes");
  needWords(bufs.scale, perColumn ? N : 1, "ternaryMatmul scale");
  needWords(bufs.y, M * N, "ternaryMatmul y");
  const u = uniformBuffer(device, [M, K, N, perColumn ? 1 : 0]);
  return makeDispatch(device, pipeline, [bufs.x, bufs.y, u, bufs.codes, bufs.scale], tiledGrid(dims, r), [u]);
}

/** Records y = x (codes - 1) * scale on existing buffers; `perColumn` says whether scale has N values or 1. */
export async function ternaryMatmulDispatch(
  device: GPUDevice,
  bufs: TernaryBuffers,
  dims: MatmulDims & { perColumn: boolean },
  opts: { r?: TileR } = {},
): Promise<Dispatch> {
  checkDims(dims, "ternaryMatmul");
  const r = opts.r ?? DEFAULT_R;
  return ternaryMatmulRecord(device, await ternaryMatmulPipeline(device, r), bufs, dims, r);
}

/** y = x (codes - 1) * scale on the GPU from host arrays (scale of length 1 or N): uploads, runs once, reads back. */
export async function ternaryMatmul(
  device: GPUDevice,
  x: Float32Array,
  codes: Uint32Array,
  scale: Float32Array,
  dims: MatmulDims,
  opts: { r?: TileR } = {},
): Promise<Float32Array> {
  const perColumn = scaleMode(scale.length, dims.N, "ternaryMatmul");
  const bufs = {
    x: storageBuffer(device, x),
    codes: storageBuffer(device, codes),
    scale: storageBuffer(device, scale),
    y: outputBuffer(device, dims.M * dims.N),
  };
  try {
    const d = await ternaryMatmulDispatch(device, bufs, { ...dims, perColumn }, opts);
    await run(device, d);
    release(d);
    return await readF32(device, bufs.y, dims.M * dims.N);
  } finally {
    for (const b of Object.values(bufs)) b.destroy();
  }
}
