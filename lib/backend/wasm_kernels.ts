/**
 * Kernel overrides for tfjs's wasm backend that remove measured slow paths
 * (`deno task bench:train --profile` shows them):
 *
 * - `Identity` aliases its input (a reference count) instead of copying it. tfjs calls
 *   it for every tensor a gradient saves, so the copy cost a full pass over every
 *   saved activation. tfjs tensors are immutable (variables swap their data on
 *   `assign`), which is why the cpu backend's Identity aliases too.
 * - `Cast` to the dtype a tensor already has aliases too (tfjs's gradient of every saved
 *   tensor is such a cast).
 * - `GatherV2` of rows (axis 0, the embedding lookup) copies whole rows within the heap;
 *   tfjs-wasm's took 18 ms for 2,048 rows of 128 floats.
 * - `BatchMatMul` on native BLAS when one is found (see blas.ts).
 */
import * as tf from "@tensorflow/tfjs";
import { type BlasInfo, installWasmBlas, type KernelArgs } from "./blas.ts";

interface RefCounting {
  incRef(dataId: object): void;
}

let overridesInstalled = false;

function identityAlias(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs.x;
  (args.backend as RefCounting).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

interface HeapBackend {
  wasm: { HEAPU8: Uint8Array; HEAP32: Int32Array };
  dataIdMap: { get(id: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

/** Rows of x [R, ...] at int32 indices [...] -> [..., ...]; undefined where another case applies. */
function gatherRows(args: KernelArgs): tf.TensorInfo | undefined {
  const { x, indices } = args.inputs;
  const axis = Number(args.attrs?.axis ?? 0), batchDims = Number(args.attrs?.batchDims ?? 0);
  if ((axis !== 0 && axis !== -x.shape.length) || batchDims !== 0) return undefined;
  if (indices.dtype !== "int32" || (x.dtype !== "float32" && x.dtype !== "int32") || x.shape.length === 0) return undefined;
  const backend = args.backend as HeapBackend;
  const rows = x.shape[0];
  const rowBytes = x.shape.slice(1).reduce((p, d) => p * d, 1) * 4;
  const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
  const heap = backend.wasm.HEAPU8; // read after makeOutput, which may grow the heap
  const src = backend.dataIdMap.get(x.dataId)!.memoryOffset;
  const dst = backend.dataIdMap.get(out.dataId)!.memoryOffset;
  const idxOff = backend.dataIdMap.get(indices.dataId)!.memoryOffset / 4;
  const n = indices.shape.reduce((p, d) => p * d, 1);
  const idx = backend.wasm.HEAP32;
  for (let i = 0; i < n; i++) {
    const r = idx[idxOff + i];
    if (r < 0 || r >= rows) throw new Error(`GatherV2: the index value ${r} is not in [0, ${rows - 1}]`);
    heap.copyWithin(dst + i * rowBytes, src + r * rowBytes, src + (r + 1) * rowBytes);
  }
  return out;
}

/** Replaces a wasm kernel by `fast`, which returns undefined to hand a case back to the original. */
function override(kernelName: string, fast: (args: KernelArgs) => tf.TensorInfo | undefined): void {
  const original = tf.getKernel(kernelName, "wasm");
  if (!original) return;
  tf.unregisterKernel(kernelName, "wasm");
  tf.registerKernel({
    kernelName,
    backendName: "wasm",
    kernelFunc: ((args: KernelArgs) =>
      fast(args) ?? original.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0])) as unknown as tf.KernelFunc,
  });
}

/** Installs the overrides once; returns the native BLAS in use, if any. */
export function installWasmKernels(): BlasInfo | undefined {
  if (!overridesInstalled) {
    // Strings live outside the heap: the original kernels handle them.
    override("Identity", (a) => a.inputs.x.dtype !== "string" ? identityAlias(a) : undefined);
    override("Cast", (a) => a.inputs.x.dtype !== "string" && a.inputs.x.dtype === a.attrs?.dtype ? identityAlias(a) : undefined);
    override("GatherV2", gatherRows);
    overridesInstalled = true;
  }
  return installWasmBlas();
}
