/**
 * Compressed linear layers on tfjs-webgpu's own device: y [M, N] = x [M, K] W with W kept in
 * its compressed form on the GPU and expanded inside the matmul by the WGSL kernels of kernels/:
 * - BitNet b1.58: the packed 2-bit ternary codes and scales (`ternary_matmul.ts`);
 * - VPTQ: u32 indices and the f32 codebook (`vq_matmul.ts`); outlier columns index a second
 *   codebook stored after the main one (their indices offset by k), and a residual stage is a
 *   second VQ product added to the first;
 * - SeedLM: seeds, exponents and coefficients; each call regenerates W from the LFSR bases
 *   (`seedlm.ts` reconstruct) into a scratch buffer and multiplies with the tiled f32 kernel.
 *
 * The bridge to tfjs uses its public WebGPU API: `x.dataToGPU()` (a copy of x's buffer, after
 * tfjs has submitted its pending work), our dispatches submitted on the same device's queue,
 * and `tf.tensor({ buffer }, ...)` (tfjs copies y into its own buffer), so queue order keeps
 * every read after its write. `apply` is synchronous: pipelines are compiled by `gpuLinear`.
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { BitnetLayer, pack2bit } from "./bitnet.ts";
import { SeedLMLayer } from "./seedlm.ts";
import type { CompressedLayer } from "./types.ts";
import { VptqLayer } from "./vptq.ts";
import { type Dispatch, encode, outputBuffer, release, storageBuffer } from "../../kernels/device.ts";
import { DEFAULT_R, matmulPipeline, matmulRecord } from "../../kernels/matmul.ts";
import { seedlmReconstructPipeline, seedlmReconstructRecord } from "../../kernels/seedlm.ts";
import { ternaryMatmulPipeline, ternaryMatmulRecord } from "../../kernels/ternary_matmul.ts";
import { vqMatmulPipeline, vqMatmulRecord } from "../../kernels/vq_matmul.ts";

/** tfjs-webgpu's device when tfjs runs on the webgpu backend, else undefined. */
export function tfjsWebgpuDevice(): GPUDevice | undefined {
  if (tf.getBackend() !== "webgpu") return undefined;
  return (tf.backend() as unknown as WebGPUBackend).device;
}

/** Which kernel a `GpuLinear` runs. */
export type GpuLinearKind = "ternary" | "vq" | "seedlm";

/** A compressed weight resident on the GPU. */
export interface GpuLinear {
  readonly kind: GpuLinearKind;
  /** Inputs (rows of W). */
  readonly K: number;
  /** Outputs (columns of W). */
  readonly N: number;
  /** x [M, K] (a tfjs-webgpu tensor) -> y = x W [M, N], a new tfjs tensor. */
  apply(x: tf.Tensor2D): tf.Tensor2D;
  /** Frees the GPU buffers. */
  dispose(): void;
}

/** One call's work: the dispatches, and the output buffers to wrap as tensors and sum. */
type Recorder = (x: GPUBuffer, M: number) => { dispatches: Dispatch[]; outputs: GPUBuffer[]; scratch: GPUBuffer[] };

/** Runs `record` on x's buffer and returns the summed outputs as one tfjs tensor [M, N]. */
function applyWith(device: GPUDevice, record: Recorder, x: tf.Tensor2D, K: number, N: number, what: string): tf.Tensor2D {
  const [M, k] = x.shape;
  if (k !== K) throw new Error(`${what}: x has ${k} features, the weight has ${K} rows`);
  if (tfjsWebgpuDevice() !== device) throw new Error(`${what}: tfjs is not on the webgpu backend this weight was uploaded to`);
  (tf.backend() as unknown as WebGPUBackend).uploadToGPU(x.dataId); // a tensor made from host values may not be on the GPU yet
  const { buffer, tensorRef } = x.dataToGPU() as { buffer: GPUBuffer; tensorRef: tf.Tensor };
  const { dispatches, outputs, scratch } = record(buffer, M);
  const enc = device.createCommandEncoder();
  encode(enc, dispatches);
  device.queue.submit([enc.finish()]);
  release(dispatches);
  tensorRef.dispose();
  const ys = outputs.map((b) => tf.tensor({ buffer: b }, [M, N], "float32") as tf.Tensor2D); // tfjs copies each
  for (const b of [...outputs, ...scratch]) b.destroy();
  if (ys.length === 1) return ys[0];
  const sum = tf.addN(ys) as tf.Tensor2D;
  tf.dispose(ys);
  return sum;
}

/** Uploads `layer` to `device` (tfjs-webgpu's) and compiles the pipelines it needs. */
export async function gpuLinear(layer: CompressedLayer, device: GPUDevice): Promise<GpuLinear> {
  const r = DEFAULT_R;
  const K = layer.rows, N = layer.cols;
  const owned: GPUBuffer[] = [];
  const keep = (b: GPUBuffer) => (owned.push(b), b);
  let kind: GpuLinearKind;
  let record: Recorder;
  if (layer instanceof BitnetLayer) {
    kind = "ternary";
    const codes = keep(storageBuffer(device, layer.packing === "2bit" ? layer.payload as Uint32Array : pack2bit(layer.codes(), K, N)));
    const scale = keep(storageBuffer(device, layer.scales));
    const pipeline = await ternaryMatmulPipeline(device, r);
    const perColumn = layer.scaleMode === "column" && N > 1;
    record = (x, M) => {
      const y = outputBuffer(device, M * N);
      return {
        dispatches: [ternaryMatmulRecord(device, pipeline, { x, codes, scale, y }, { M, K, N, perColumn }, r)],
        outputs: [y],
        scratch: [],
      };
    };
  } else if (layer instanceof VptqLayer) {
    kind = "vq";
    const { v, k } = layer;
    // Main and outlier codebooks in one table; outlier columns' indices point past the main entries.
    const codebook = new Float32Array(layer.codebook.length + layer.outlierCodebook.length);
    codebook.set(layer.codebook);
    codebook.set(layer.outlierCodebook, layer.codebook.length);
    const idx = Uint32Array.from(layer.indices);
    const outlier = layer.outlierMask();
    for (let g = 0; g < idx.length; g++) if (outlier[g % N]) idx[g] += k;
    const stages = [{ idx: keep(storageBuffer(device, idx)), cb: keep(storageBuffer(device, codebook)) }];
    if (layer.residualK > 0) {
      stages.push({ idx: keep(storageBuffer(device, layer.residualIndices)), cb: keep(storageBuffer(device, layer.residualCodebook)) });
    }
    const pipeline = await vqMatmulPipeline(device, r);
    record = (x, M) => {
      const outputs = stages.map(() => outputBuffer(device, M * N));
      const dispatches = stages.map((s, i) =>
        vqMatmulRecord(device, pipeline, { x, idx: s.idx, codebook: s.cb, y: outputs[i] }, { M, K, N, v }, r)
      );
      return { dispatches, outputs, scratch: [] };
    };
  } else if (layer instanceof SeedLMLayer) {
    kind = "seedlm";
    const { C, P, blocks } = layer;
    const seeds = keep(storageBuffer(device, Uint32Array.from(layer.seeds)));
    const exps = keep(storageBuffer(device, Int32Array.from(layer.expCodes, (e) => layer.eMin + e)));
    const coeffs = keep(storageBuffer(device, Int32Array.from(layer.coeffs)));
    const rec = await seedlmReconstructPipeline(device);
    const mm = await matmulPipeline(device, r);
    record = (x, M) => {
      const w = outputBuffer(device, blocks * C); // W [K, N] row-major (+ the last block's padding), rebuilt per call
      const y = outputBuffer(device, M * N);
      const dispatches = [
        seedlmReconstructRecord(device, rec, { seeds, exps, coeffs, w }, { blocks, C, P }),
        matmulRecord(device, mm, { a: x, b: w, c: y }, { M, K, N }, r),
      ];
      return { dispatches, outputs: [y], scratch: [w] };
    };
  } else {
    throw new Error(`gpuLinear: no kernel for method '${layer.method}' (expected bitnet, vptq or seedlm)`);
  }
  return {
    kind,
    K,
    N,
    apply: (x) => applyWith(device, record, x, K, N, `gpuLinear(${kind} ${K}x${N})`),
    dispose: () => owned.forEach((b) => b.destroy()),
  };
}
