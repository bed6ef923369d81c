/**
 * The compression pipeline: picks a method and setting per weight matrix so the whole
 * model fits `targetBytes` with the least added error, then writes one file whose size on
 * disk is the reported size (every header, codebook, scale and dense tensor counted).
 *
 * Choice: each eligible matrix gets a list of candidates (method x setting, plus dense),
 * each with its serialized bytes and its error (MSE of the reconstruction, times the
 * matrix size, optionally times an importance weight). Starting from the most accurate
 * candidate everywhere, the greedy step with the least added error per byte saved is
 * taken until the model fits (the standard Lagrangian relaxation of the knapsack).
 */
import type { HostTensor } from "../nn/params.ts";
import { decodeSafetensors, encodeSafetensors } from "../train/safetensors.ts";
import { bitnetCompress, decodeBitnet } from "./bitnet.ts";
import { decodeSeedLM, seedlmCompress } from "./seedlm.ts";
import { type CompressedLayer, type Matrix, mse } from "./types.ts";
import { decodeVptq, vptqCompress } from "./vptq.ts";

/** The settings the pipeline tries per method (4, 3 and ~2 bits, VPTQ also entropy-coded at 2; BitNet's 1.6 and 2). */
export const STANDARD_OPTIONS: Record<"bitnet" | "seedlm" | "vptq", CompressionOption[]> = {
  bitnet: [
    { label: "bitnet 2bit/column", compress: (m) => bitnetCompress(m, { packing: "2bit", scale: "column" }) },
    { label: "bitnet base3/column", compress: (m) => bitnetCompress(m, { packing: "base3", scale: "column" }) },
  ],
  seedlm: [
    { label: "seedlm C8 P3", compress: (m) => seedlmCompress(m, { C: 8, P: 3 }) },
    { label: "seedlm C12 P4", compress: (m) => seedlmCompress(m, { C: 12, P: 4 }) },
  ],
  vptq: [
    { label: "vptq v2 k256", compress: (m) => vptqCompress(m, { v: 2, k: 256 }) },
    { label: "vptq v2 k64", compress: (m) => vptqCompress(m, { v: 2, k: 64 }) },
    { label: "vptq v4 k256", compress: (m) => vptqCompress(m, { v: 4, k: 256 }) },
    // Entropy-coded indices: the best 2-bit setting once a matrix is large enough to amortize its ~2 KB of tables.
    { label: "vptq-ec v3 2bit", compress: (m) => vptqCompress(m, { v: 3, k: 512, entropyBits: 2 }) },
  ],
};

const DECODERS: Record<CompressedLayer["method"], ((b: Uint8Array) => CompressedLayer) | undefined> = {
  bitnet: decodeBitnet,
  seedlm: decodeSeedLM,
  vptq: decodeVptq,
  dense: undefined,
};

/** One way to compress a matrix: a method name, its settings, and the function. */
export interface CompressionOption {
  /** e.g. "seedlm C8 P3". */
  label: string;
  compress(m: Matrix): CompressedLayer;
}

/** A candidate for one matrix. */
export interface Candidate {
  label: string;
  /** Serialized bytes of this matrix in this form. */
  bytes: number;
  /** Summed squared error of the reconstruction (MSE x size), times the matrix's importance. */
  error: number;
  layer?: CompressedLayer; // undefined for dense
}

export interface PlanEntry {
  name: string;
  shape: number[];
  chosen: Candidate;
  candidates: Candidate[];
}

export interface CompressionPlan {
  entries: PlanEntry[];
  /** Tensors kept dense (1-D, small, or not eligible), by name. */
  dense: string[];
  /** Total serialized bytes of the chosen plan (compressed layers + dense tensors). */
  plannedBytes: number;
  targetBytes: number;
  /** False when even the smallest candidates do not fit. */
  fits: boolean;
}

export interface PlanOptions {
  targetBytes: number;
  options: CompressionOption[];
  /** Which tensors may be compressed (default: 2-D with at least 4,096 entries). */
  eligible?: (name: string, t: HostTensor) => boolean;
  /** Error weight per tensor (default 1): e.g. larger for the output head. */
  importance?: (name: string) => number;
}

const DENSE_BYTES_PER = 4; // float32

const defaultEligible = (_: string, t: HostTensor) => t.shape.length === 2 && t.data.length >= 4096;

/** Plans the compression of `tensors` to fit `targetBytes`; compresses every candidate once. */
export function planCompression(tensors: Map<string, HostTensor>, opts: PlanOptions): CompressionPlan {
  if (!(opts.targetBytes > 0)) throw new Error(`compression.target_size: ${opts.targetBytes} bytes, expected > 0`);
  const eligible = opts.eligible ?? defaultEligible;
  const entries: PlanEntry[] = [];
  const dense: string[] = [];
  let fixedBytes = 0;
  for (const [name, t] of tensors) {
    if (!eligible(name, t)) {
      dense.push(name);
      fixedBytes += t.data.length * DENSE_BYTES_PER;
      continue;
    }
    const w = opts.importance?.(name) ?? 1;
    const m: Matrix = { rows: t.shape[0], cols: t.shape[1], data: t.data };
    const candidates: Candidate[] = [{ label: "dense", bytes: t.data.length * DENSE_BYTES_PER, error: 0 }];
    for (const o of opts.options) {
      const layer = o.compress(m);
      candidates.push({
        label: o.label,
        bytes: layer.encode().byteLength,
        error: w * mse(layer.decompress(), t.data) * t.data.length,
        layer,
      });
    }
    // Most accurate first; drop candidates that are both larger and worse than another.
    candidates.sort((a, b) => a.error - b.error || a.bytes - b.bytes);
    const useful = candidates.filter((c, i) => candidates.slice(0, i).every((d) => d.bytes > c.bytes));
    entries.push({ name, shape: t.shape, chosen: useful[0], candidates: useful });
  }
  // Greedy: repeatedly move the entry whose next candidate costs the least error per byte saved.
  const total = () => fixedBytes + entries.reduce((s, e) => s + e.chosen.bytes, 0);
  let bytes = total();
  while (bytes > opts.targetBytes) {
    let best: { e: PlanEntry; c: Candidate; rate: number } | undefined;
    for (const e of entries) {
      const i = e.candidates.indexOf(e.chosen);
      const next = e.candidates[i + 1];
      if (!next) continue;
      const rate = (next.error - e.chosen.error) / (e.chosen.bytes - next.bytes);
      if (!best || rate < best.rate) best = { e, c: next, rate };
    }
    if (!best) break;
    bytes -= best.e.chosen.bytes - best.c.bytes;
    best.e.chosen = best.c;
  }
  return { entries, dense, plannedBytes: bytes, targetBytes: opts.targetBytes, fits: bytes <= opts.targetBytes };
}

/** The model's tensors as the plan reconstructs them (compressed layers decompressed). */
export function reconstruct(tensors: Map<string, HostTensor>, plan: CompressionPlan): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, t] of tensors) out.set(name, t);
  for (const e of plan.entries) if (e.chosen.layer) out.set(e.name, { shape: e.shape, data: e.chosen.layer.decompress() });
  return out;
}

/**
 * Serializes the plan into one file: a JSON header (names, shapes, methods, byte ranges)
 * then each compressed layer's bytes, then the dense tensors as safetensors. Returns the
 * file's bytes (what is written to disk is exactly this).
 */
export function serializeCompressed(tensors: Map<string, HostTensor>, plan: CompressionPlan): Uint8Array {
  const parts: Uint8Array[] = [];
  const index: { name: string; shape: number[]; method: string; label: string; offset: number; length: number }[] = [];
  let offset = 0;
  const denseMap = new Map<string, HostTensor>();
  for (const name of plan.dense) denseMap.set(name, tensors.get(name)!);
  for (const e of plan.entries) {
    if (!e.chosen.layer) {
      denseMap.set(e.name, tensors.get(e.name)!);
      continue;
    }
    const b = e.chosen.layer.encode();
    index.push({ name: e.name, shape: e.shape, method: e.chosen.layer.method, label: e.chosen.label, offset, length: b.byteLength });
    parts.push(b);
    offset += b.byteLength;
  }
  const denseBytes = encodeSafetensors(denseMap);
  const header = new TextEncoder().encode(
    JSON.stringify({ format: "agent-forge-compressed/1", layers: index, dense_offset: offset, dense_length: denseBytes.byteLength }),
  );
  const out = new Uint8Array(8 + header.byteLength + offset + denseBytes.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.byteLength), true);
  out.set(header, 8);
  let p = 8 + header.byteLength;
  for (const b of parts) {
    out.set(b, p);
    p += b.byteLength;
  }
  out.set(denseBytes, p);
  return out;
}

/** The plan's compressed layers by tensor name (what `CompressedDecoder` / `measureInference` take; inference.ts). */
export function compressedLayers(plan: CompressionPlan): Map<string, CompressedLayer> {
  const out = new Map<string, CompressedLayer>();
  for (const e of plan.entries) if (e.chosen.layer) out.set(e.name, e.chosen.layer);
  return out;
}

/** Reads a file written by `serializeCompressed` back into dense tensors; errors name what is wrong. */
export function loadCompressed(bytes: Uint8Array, source = "compressed model"): Map<string, HostTensor> {
  const { layers, dense } = loadCompressedLayers(bytes, source);
  const out = new Map<string, HostTensor>();
  for (const [name, l] of layers) out.set(name, { shape: [l.rows, l.cols], data: l.decompress() });
  for (const [name, t] of dense) out.set(name, t);
  return out;
}

/**
 * Reads a file written by `serializeCompressed` into its compressed layers (still compressed,
 * for inference through the kernels) and its dense tensors; errors name what is wrong.
 */
export function loadCompressedLayers(
  bytes: Uint8Array,
  source = "compressed model",
): { layers: Map<string, CompressedLayer>; dense: Map<string, HostTensor> } {
  if (bytes.byteLength < 8) throw new Error(`${source}: ${bytes.byteLength} bytes, too short for a header`);
  const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (8 + headerLen > bytes.byteLength) throw new Error(`${source}: header length ${headerLen} runs past the end of the file`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as {
    format: string;
    layers: { name: string; shape: number[]; method: CompressedLayer["method"]; offset: number; length: number }[];
    dense_offset: number;
    dense_length: number;
  };
  if (header.format !== "agent-forge-compressed/1") {
    throw new Error(`${source}: format ${header.format}, expected agent-forge-compressed/1`);
  }
  const body = bytes.subarray(8 + headerLen);
  const layers = new Map<string, CompressedLayer>();
  for (const l of header.layers) {
    const decode = DECODERS[l.method];
    if (!decode) throw new Error(`${source}: layer ${l.name} has method '${l.method}', expected bitnet, seedlm or vptq`);
    const layer = decode(body.subarray(l.offset, l.offset + l.length));
    if (layer.rows !== l.shape[0] || layer.cols !== l.shape[1]) {
      throw new Error(`${source}: layer ${l.name} decodes to ${layer.rows}x${layer.cols}, header says [${l.shape}]`);
    }
    layers.set(l.name, layer);
  }
  const dense = decodeSafetensors(body.subarray(header.dense_offset, header.dense_offset + header.dense_length), source).tensors;
  return { layers, dense };
}

/** Plans, serializes, and re-plans with a tighter budget while the real file (headers included) is over `targetBytes`. */
export function compressToTarget(
  tensors: Map<string, HostTensor>,
  opts: PlanOptions,
): { plan: CompressionPlan; file: Uint8Array; fits: boolean } {
  let budget = opts.targetBytes;
  for (let attempt = 0;; attempt++) {
    const plan = planCompression(tensors, { ...opts, targetBytes: budget });
    const file = serializeCompressed(tensors, plan);
    if (file.byteLength <= opts.targetBytes || !plan.fits || attempt === 3) {
      return { plan, file, fits: file.byteLength <= opts.targetBytes };
    }
    budget -= file.byteLength - opts.targetBytes; // the headers' share, taken from the layers' budget
  }
}
