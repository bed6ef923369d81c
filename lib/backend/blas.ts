/**
 * Native BLAS for the wasm backend: tfjs-wasm's `BatchMatMul` replaced by OpenBLAS's
 * `cblas_sgemm`, called through Deno's FFI directly on the wasm heap (no copies).
 *
 * Why: tfjs-wasm runs rank-2 untransposed matmuls through XNNPACK on one thread, and
 * everything else (batched attention matmuls, transposed operands) through a scalar loop.
 * OpenBLAS uses every core with native FMA kernels, handles the transposes and batches
 * itself, and is what NumPy and PyTorch's CPU builds use. Debian ships it
 * (`apt-get install libopenblas0-pthread`).
 *
 * When the library is absent (or `AGENT_FORGE_BLAS=off`), nothing is replaced and the
 * wasm backend runs as tfjs ships it. `AGENT_FORGE_BLAS=/path/libopenblas.so` picks a library.
 */
import * as tf from "@tensorflow/tfjs";

/** The environment variable that disables (`off`) or points at (a path) the BLAS library. */
export const BLAS_ENV = "AGENT_FORGE_BLAS";

const CANDIDATES = [
  "libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "libopenblas.so",
  "libopenblas.dylib",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
];

// CBLAS enum values.
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

const SYMBOLS = {
  cblas_sgemm: {
    // order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
    parameters: ["i32", "i32", "i32", "i32", "i32", "i32", "f32", "pointer", "i32", "pointer", "i32", "f32", "pointer", "i32"],
    result: "void",
  },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
} as const;

type BlasLib = Deno.DynamicLibrary<typeof SYMBOLS>;

export interface BlasInfo {
  /** The file that was opened. */
  path: string;
  /** OpenBLAS's own description (version, kernel), when it offers one. */
  config?: string;
  /** Threads OpenBLAS will use. */
  threads?: number;
}

let lib: BlasLib | undefined;
let info: BlasInfo | undefined;
let tried = false;

/** Opens the BLAS library once; undefined when it is absent, disabled or FFI is not allowed. */
export function openBlas(): BlasInfo | undefined {
  if (tried) return info;
  tried = true;
  let env: string | undefined;
  try {
    env = Deno.env.get(BLAS_ENV);
  } catch {
    env = undefined;
  }
  if (env === "off" || env === "0") return undefined;
  for (const path of env ? [env] : CANDIDATES) {
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (e) {
      if (env) throw new Error(`${BLAS_ENV}=${env}: cannot open it as a BLAS library (${(e as Error).message})`);
      continue;
    }
    const cfg = lib.symbols.openblas_get_config?.();
    info = {
      path,
      config: cfg ? new Deno.UnsafePointerView(cfg).getCString() : undefined,
      threads: lib.symbols.openblas_get_num_threads?.(),
    };
    return info;
  }
  return undefined;
}

/**
 * C [batch, m, n] = op(A) [batch, m, k] @ op(B) [batch, k, n] on raw pointers into one
 * heap, row-major; a batch of 1 on either side broadcasts.
 */
function sgemmBatched(
  heap: Deno.PointerValue,
  a: number,
  b: number,
  c: number,
  dims: { batchA: number; batchB: number; m: number; n: number; k: number; transA: boolean; transB: boolean },
): void {
  const { batchA, batchB, m, n, k, transA, transB } = dims;
  const gemm = lib!.symbols.cblas_sgemm;
  const batch = Math.max(batchA, batchB);
  const lda = transA ? m : k;
  const ldb = transB ? k : n;
  const strideA = batchA === 1 ? 0 : m * k * 4;
  const strideB = batchB === 1 ? 0 : k * n * 4;
  for (let i = 0; i < batch; i++) {
    gemm(
      ROW_MAJOR,
      transA ? TRANS : NO_TRANS,
      transB ? TRANS : NO_TRANS,
      m,
      n,
      k,
      1,
      Deno.UnsafePointer.offset(heap!, a + i * strideA),
      lda,
      Deno.UnsafePointer.offset(heap!, b + i * strideB),
      ldb,
      0,
      Deno.UnsafePointer.offset(heap!, c + i * m * n * 4),
      n,
    );
  }
}

interface WasmBackendInternals {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(id: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

/** What tfjs passes a kernel, with the inputs typed as present (tfjs checks arity). */
export interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: unknown;
  attrs?: Record<string, unknown>;
}

function product(xs: number[]): number {
  return xs.reduce((p, x) => p * x, 1);
}

/** tfjs's `BatchMatMul` contract (see tfjs-backend-wasm's BatchMatMul) on OpenBLAS. */
function batchMatMulBlas(args: KernelArgs): tf.TensorInfo {
  const { a, b } = args.inputs;
  const { transposeA, transposeB } = (args.attrs ?? {}) as { transposeA: boolean; transposeB: boolean };
  const backend = args.backend as WasmBackendInternals;
  if (a.dtype !== "float32" || b.dtype !== "float32") throw new Error("BatchMatMul: float32 tensors only");
  const ra = a.shape.length, rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const ka = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (ka !== kb) {
    throw new Error(
      `matMul: inner dimensions ${ka} and ${kb} of shapes [${a.shape}] and [${b.shape}] (transposeA=${transposeA}, transposeB=${transposeB}) differ`,
    );
  }
  const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
  const outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  const batchA = product(outerA), batchB = product(outerB);
  // Batches pair up one to one when the (left-padded) batch shapes are equal, or one side is a single matrix.
  const rank = Math.max(outerA.length, outerB.length);
  const pad = (s: number[]) => [...Array(rank - s.length).fill(1), ...s].join(",");
  if (batchA !== 1 && batchB !== 1 && pad(outerA) !== pad(outerB)) {
    throw new Error(`matMul: batch dimensions [${outerA}] and [${outerB}] must be equal, or one side must hold a single matrix`);
  }
  const out = backend.makeOutput([...outer, m, n], "float32");
  const offA = backend.dataIdMap.get(a.dataId)!.memoryOffset;
  const offB = backend.dataIdMap.get(b.dataId)!.memoryOffset;
  const offC = backend.dataIdMap.get(out.dataId)!.memoryOffset;
  if (m * n > 0) {
    if (ka === 0) {
      backend.wasm.HEAPU8.fill(0, offC, offC + m * n * 4 * product(outer));
    } else {
      // The heap pointer is read after makeOutput: an allocation can grow (and move) the heap.
      const heap = Deno.UnsafePointer.of(backend.wasm.HEAPU8 as Uint8Array<ArrayBuffer>);
      sgemmBatched(heap, offA, offB, offC, { batchA, batchB, m, n, k: ka, transA: transposeA, transB: transposeB });
    }
  }
  return out;
}

let installed = false;
let xnnpack: tf.KernelConfig | undefined;

/**
 * Routes the wasm backend's `BatchMatMul` to OpenBLAS when the library opens. Returns
 * the library's description, or undefined when the wasm backend keeps its own kernel.
 */
export function installWasmBlas(): BlasInfo | undefined {
  const found = openBlas();
  if (found) setWasmBlas(true);
  return found;
}

/**
 * Switches the wasm backend's matmuls between native BLAS (`true`, when it opened) and
 * tfjs's own XNNPACK kernel (`false`); tests run both paths. Returns the state now.
 */
export function setWasmBlas(on: boolean): boolean {
  if (on === installed || (on && !openBlas())) return installed;
  xnnpack ??= tf.getKernel("BatchMatMul", "wasm");
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel(
    on ? { kernelName: "BatchMatMul", backendName: "wasm", kernelFunc: batchMatMulBlas as unknown as tf.KernelFunc } : xnnpack!,
  );
  installed = on;
  return installed;
}

/** True when the wasm backend's matmuls run on native BLAS. */
export function wasmBlasInstalled(): boolean {
  return installed;
}
