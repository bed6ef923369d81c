/**
 * Vector-quantized (VPTQ) matmul: y [M, N] = x [M, K] W, with W decoded on the fly:
 * W[j * v + t, n] = codebook[idx[j, n] * v + t] (t < v).
 *
 * Layout as `lib/compress/types.ts`: sub-vectors of v consecutive weights along K within
 * one column n, so `idx` is u32 [ceil(K / v), N] row-major (K padded to a multiple of v;
 * rows past K are never read) and the codebook is f32 [k, v] row-major. Indices must be
 * below k (an out-of-range index reads a clamped or zero value on the GPU, NaN in the
 * reference). v is a uniform, so one pipeline serves every vector length.
 *
 * The kernel is the tiled f32 matmul of `matmul.ts` with each B-tile element decoded
 * (index, then codebook entry) as it is staged in workgroup memory.
 */
import {
  type Dispatch,
  getPipeline,
  makeDispatch,
  needWords,
  outputBuffer,
  positiveInt,
  readF32,
  release,
  run,
  storageBuffer,
  uniformBuffer,
} from "./device.ts";
import { checkDims, DEFAULT_R, type MatmulDims, matmulRef, tiledGrid, tiledMatmulSource, type TileR } from "./matmul.ts";

/** Sizes of a VQ product: the matmul's plus the vector length v. */
export interface VqDims extends MatmulDims {
  v: number;
}

/** Rows of the index matrix: ceil(K / v). */
export function vqIndexRows(K: number, v: number): number {
  return Math.ceil(K / v);
}

/** Reference decode of W [K, N] (row-major) from indices [ceil(K / v), N] and codebook [k, v]. */
export function vqDecodeRef(idx: Uint32Array, codebook: Float32Array, K: number, N: number, v: number): Float32Array {
  const rows = vqIndexRows(K, v);
  if (idx.length < rows * N) throw new Error(`vqDecodeRef: ${idx.length} indices, need ceil(K / v) * N = ${rows * N}`);
  const w = new Float32Array(K * N);
  for (let k = 0; k < K; k++) {
    const j = Math.floor(k / v), t = k % v;
    for (let n = 0; n < N; n++) {
      const id = idx[j * N + n];
      w[k * N + n] = id * v + t < codebook.length ? codebook[id * v + t] : NaN;
    }
  }
  return w;
}

/** Reference y = x W with W decoded by `vqDecodeRef`, accumulated in f64. */
export function vqMatmulRef(x: ArrayLike<number>, idx: Uint32Array, codebook: Float32Array, dims: VqDims): Float32Array {
  return matmulRef(x, vqDecodeRef(idx, codebook, dims.K, dims.N, dims.v), dims);
}

/** The VQ kernel's WGSL: binding 3 = indices (u32), 4 = codebook (f32); dims.extra = v. */
export function vqMatmulSource(r: TileR = DEFAULT_R): string {
  return tiledMatmulSource({
    r,
    bindings: /* wgsl */ `
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read> codebook: array<f32>;
fn b_elem(k: u32, n: u32) -> f32 {
  let v = dims.extra;
  return codebook[idx[(k / v) * dims.N + n] * v + k % v];
}`,
  });
}

/** Buffers of a VQ product: x [M, K] f32, idx [ceil(K / v), N] u32, codebook [k, v] f32 in; y [M, N] out. */
export interface VqBuffers {
  x: GPUBuffer;
  idx: GPUBuffer;
  codebook: GPUBuffer;
  y: GPUBuffer;
}

/** The VQ kernel's compiled pipeline for tile specialization `r` (cached per device). */
export function vqMatmulPipeline(device: GPUDevice, r: TileR = DEFAULT_R): Promise<GPUComputePipeline> {
  return getPipeline(device, "vq_matmul", { r }, () => vqMatmulSource(r));
}

/** Records y = x W(idx, codebook) with a pipeline from `vqMatmulPipeline(device, r)`; synchronous. */
export function vqMatmulRecord(device: GPUDevice, pipeline: GPUComputePipeline, bufs: VqBuffers, dims: VqDims, r: TileR): Dispatch {
  checkDims(dims, "vqMatmul");
  positiveInt(dims.v, "vqMatmul: v");
  const { M, K, N, v } = dims;
  needWords(bufs.x, M * K, "vqMatmul x");
  needWords(bufs.idx, vqIndexRows(K, v) * N, "vqMatmul idx");
  needWords(bufs.codebook, v, "vqMatmul codebook");
  needWords(bufs.y, M * N, "vqMatmul y");
  const u = uniformBuffer(device, [M, K, N, v]);
  return makeDispatch(device, pipeline, [bufs.x, bufs.y, u, bufs.idx, bufs.codebook], tiledGrid(dims, r), [u]);
}

/** Records y = x W(idx, codebook) on existing buffers. */
export async function vqMatmulDispatch(device: GPUDevice, bufs: VqBuffers, dims: VqDims, opts: { r?: TileR } = {}): Promise<Dispatch> {
  checkDims(dims, "vqMatmul");
  const r = opts.r ?? DEFAULT_R;
  return vqMatmulRecord(device, await vqMatmulPipeline(device, r), bufs, dims, r);
}

/** y = x W(idx, codebook) on the GPU from host arrays: uploads, runs once, reads back. */
export async function vqMatmul(
  device: GPUDevice,
  x: Float32Array,
  idx: Uint32Array,
  codebook: Float32Array,
  dims: VqDims,
  opts: { r?: TileR } = {},
): Promise<Float32Array> {
  if (codebook.length % dims.v !== 0) throw new Error(`vqMatmul: codebook has ${codebook.length} values, not a multiple of v = ${dims.v}`);
  const bufs = {
    x: storageBuffer(device, x),
    idx: storageBuffer(device, idx),
    codebook: storageBuffer(device, codebook),
    y: outputBuffer(device, dims.M * dims.N),
  };
  try {
    const d = await vqMatmulDispatch(device, bufs, dims, opts);
    await run(device, d);
    release(d);
    return await readF32(device, bufs.y, dims.M * dims.N);
  } finally {
    for (const b of Object.values(bufs)) b.destroy();
  }
}
