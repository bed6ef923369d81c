/**
 * Tiled f32 matmul C [M, N] = A [M, K] B [K, N], all row-major.
 *
 * A 16x16 workgroup computes a BM x BN = 16R x 16R block of C, each invocation an R x R
 * sub-block (rows lid.y + 16i, columns lid.x + 16j, accumulators unrolled in the WGSL
 * text). Per step of BK = 16 / R along K the workgroup stages the A tile [BM, BK] and the
 * B tile [BK, BN] in workgroup memory, one element of each per invocation; out-of-range
 * elements are staged as 0, so any M, K, N works. R (1, 2 or 4) is the specialization;
 * the default 4 (64x64 blocks) was the fastest of the three on llvmpipe (about 2x R = 2)
 * and is the usual choice on real GPUs.
 *
 * Workgroup memory stays at 2 x 256 f32 for every R: WebGPU zero-initialises it, and on
 * llvmpipe the compile time of that grows about quadratically with its size (2 x 1024
 * floats took 40 s to compile; 2 x 256 take about 2 s). A vec4 variant (each invocation
 * 4 consecutive rows and columns, vec4 workgroup tiles) measured 1.5x slower on llvmpipe.
 *
 * `tiledMatmulSource` is shared with the ternary and VQ kernels, which only change how an
 * element of the B tile is produced (`b_elem`, decoded from packed weights) and how a
 * result is scaled.
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

/** Outputs per invocation along each axis: the workgroup block is 16R x 16R. */
export type TileR = 1 | 2 | 4;
/** The default R (64x64 blocks). */
export const DEFAULT_R: TileR = 4;

/** Matrix sizes of one product: x/A [M, K], W/B [K, N], out [M, N]. */
export interface MatmulDims {
  M: number;
  K: number;
  N: number;
}

/** What a tiled kernel adds to the shared skeleton. */
export interface TiledParts {
  /** Outputs per invocation per axis. */
  r: TileR;
  /**
   * Declarations of the kernel's own bindings (from @binding(3) on) and a function
   * `fn b_elem(k: u32, n: u32) -> f32` giving B[k, n], called only with k < K and n < N.
   */
  bindings: string;
  /** An f32 expression for the stored value from `acc` (the dot product) and column `gn`; default `acc`. */
  epilogue?: string;
}

/**
 * The WGSL of a tiled matmul: binding 0 = A (`x`, f32 [M, K]), 1 = out (f32 [M, N]),
 * 2 = uniform dims {M, K, N, extra}, from 3 on the kernel's own (`parts.bindings`).
 */
export function tiledMatmulSource(parts: TiledParts): string {
  const r = parts.r;
  const ix = [...Array(r).keys()];
  // The R x R accumulators are unrolled here, as scalars, rather than a private array indexed in WGSL loops.
  const inner = [
    ...ix.map((i) => `      let a${i} = As[kk * BM + lid.y + ${16 * i}u];`),
    ...ix.map((j) => `      let b${j} = Bs[kk * BN + lid.x + ${16 * j}u];`),
    ...ix.flatMap((i) => ix.map((j) => `      acc${i}${j} = fma(a${i}, b${j}, acc${i}${j});`)),
  ].join("\n");
  const store = ix.flatMap((i) => ix.map((j) => `  store(row0 + lid.y + ${16 * i}u, col0 + lid.x + ${16 * j}u, acc${i}${j});`))
    .join("\n");
  return /* wgsl */ `
const BM: u32 = ${16 * r}u;
const BN: u32 = ${16 * r}u;
const BK: u32 = ${16 / r}u;

struct Dims { M: u32, K: u32, N: u32, extra: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> dims: Dims;
${parts.bindings}

var<workgroup> As: array<f32, 256>; // As[kk * BM + mm] = A[row0 + mm, k0 + kk]
var<workgroup> Bs: array<f32, 256>; // Bs[kk * BN + nn] = B[k0 + kk, col0 + nn]

fn store(gm: u32, gn: u32, acc: f32) {
  if (gm < dims.M && gn < dims.N) {
    out[gm * dims.N + gn] = ${parts.epilogue ?? "acc"};
  }
}

@compute @workgroup_size(16, 16)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  let row0 = wg.y * BM;
  let col0 = wg.x * BN;
${ix.flatMap((i) => ix.map((j) => `  var acc${i}${j} = 0.0;`)).join("\n")}
  for (var k0 = 0u; k0 < dims.K; k0 += BK) {
    // A tile [BM, BK], one element per invocation; consecutive invocations read consecutive k.
    {
      let mm = li / BK;
      let kk = li % BK;
      let gm = row0 + mm;
      let gk = k0 + kk;
      var v = 0.0;
      if (gm < dims.M && gk < dims.K) { v = x[gm * dims.K + gk]; }
      As[kk * BM + mm] = v;
    }
    // B tile [BK, BN], one element per invocation; consecutive invocations read consecutive n.
    {
      let kk = li / BN;
      let nn = li % BN;
      let gk = k0 + kk;
      let gn = col0 + nn;
      var v = 0.0;
      if (gk < dims.K && gn < dims.N) { v = b_elem(gk, gn); }
      Bs[kk * BN + nn] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
${inner}
    }
    workgroupBarrier();
  }
${store}
}
`;
}

/** The grid of a tiled kernel: one workgroup per 16R x 16R block of the output. */
export function tiledGrid(dims: MatmulDims, r: TileR): [number, number, number] {
  const b = 16 * r;
  return [Math.ceil(dims.N / b), Math.ceil(dims.M / b), 1];
}

/** Checks M, K, N are positive integers; `what` names the kernel. */
export function checkDims(dims: MatmulDims, what: string): void {
  positiveInt(dims.M, `${what}: M`);
  positiveInt(dims.K, `${what}: K`);
  positiveInt(dims.N, `${what}: N`);
}

/** The dense kernel's WGSL: B is a plain f32 [K, N] at binding 3. */
export function matmulSource(r: TileR = DEFAULT_R): string {
  return tiledMatmulSource({
    r,
    bindings: /* wgsl */ `
@group(0) @binding(3) var<storage, read> b: array<f32>;
fn b_elem(k: u32, n: u32) -> f32 { return b[k * dims.N + n]; }`,
  });
}

/** Buffers of a dense product: a [M, K], b [K, N] in; c [M, N] out. */
export interface MatmulBuffers {
  a: GPUBuffer;
  b: GPUBuffer;
  c: GPUBuffer;
}

/** The dense kernel's compiled pipeline for tile specialization `r` (cached per device). */
export function matmulPipeline(device: GPUDevice, r: TileR = DEFAULT_R): Promise<GPUComputePipeline> {
  return getPipeline(device, "matmul", { r }, () => matmulSource(r));
}

/** Records C = A B on existing buffers with a pipeline from `matmulPipeline(device, r)`; synchronous. */
export function matmulRecord(device: GPUDevice, pipeline: GPUComputePipeline, bufs: MatmulBuffers, dims: MatmulDims, r: TileR): Dispatch {
  checkDims(dims, "matmul");
  const { M, K, N } = dims;
  needWords(bufs.a, M * K, "matmul a");
  needWords(bufs.b, K * N, "matmul b");
  needWords(bufs.c, M * N, "matmul c");
  const u = uniformBuffer(device, [M, K, N, 0]);
  return makeDispatch(device, pipeline, [bufs.a, bufs.c, u, bufs.b], tiledGrid(dims, r), [u]);
}

/** Records C = A B on existing buffers (release the dispatch's uniform with `release`). */
export async function matmulDispatch(
  device: GPUDevice,
  bufs: MatmulBuffers,
  dims: MatmulDims,
  opts: { r?: TileR } = {},
): Promise<Dispatch> {
  checkDims(dims, "matmul");
  const r = opts.r ?? DEFAULT_R;
  return matmulRecord(device, await matmulPipeline(device, r), bufs, dims, r);
}

/** C = A B on the GPU from host arrays: uploads, runs once, reads back. */
export async function matmul(
  device: GPUDevice,
  a: Float32Array,
  b: Float32Array,
  dims: MatmulDims,
  opts: { r?: TileR } = {},
): Promise<Float32Array> {
  const bufs = { a: storageBuffer(device, a), b: storageBuffer(device, b), c: outputBuffer(device, dims.M * dims.N) };
  try {
    const d = await matmulDispatch(device, bufs, dims, opts);
    await run(device, d);
    release(d);
    return await readF32(device, bufs.c, dims.M * dims.N);
  } finally {
    for (const x of Object.values(bufs)) x.destroy();
  }
}

/** Reference C = A B (accumulated in f64, rounded once to f32). */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, dims: MatmulDims): Float32Array {
  const { M, K, N } = dims;
  const c = new Float32Array(M * N);
  const row = new Float64Array(N);
  for (let m = 0; m < M; m++) {
    row.fill(0);
    for (let k = 0; k < K; k++) {
      const av = a[m * K + k];
      for (let n = 0; n < N; n++) row[n] += av * b[k * N + n];
    }
    c.set(row, m * N);
  }
  return c;
}
