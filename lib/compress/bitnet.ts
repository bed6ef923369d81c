/**
 * BitNet b1.58 (Ma et al. 2024): ternary weights {-1, 0, 1} times an absmean scale, 8-bit
 * per-token absmax activations, quantization-aware training through a straight-through
 * estimator, and packed storage (2 bits or 1.6 bits per weight).
 *
 * Quantizers (the paper's):
 * - weights: gamma = mean |W| (per matrix, or per output column n as an option),
 *   W~ = RoundClip(W / (gamma + eps), -1, 1), dequantized W~ * gamma;
 * - activations, per row (token) of x [M, K]: x_q = Clip(round(x * 127 / max|x_row|), -128, 127),
 *   dequantized x_q * max|x_row| / 127 (max|x_row| floored at eps).
 * Rounding is half to even everywhere (tfjs's `round`, and PyTorch's), on tensors and on the host.
 *
 * Layouts follow `types.ts`: W [K, N] row-major, code c = t + 1; "2bit" puts 16 codes per u32,
 * little end first, along a row of W (ceil(N / 16) words per row); "base3" puts 5 trits per byte
 * (sum c_i 3^i) along the flattened row-major W.
 *
 * Serialized layout (little-endian), `BitnetLayer.encode` / `decodeBitnet`:
 *   0  magic "BITN" (4 bytes)       4 u8 version (1)    5 u8 packing (0 = 2bit, 1 = base3)
 *   6  u8 scale (0 = matrix, 1 = column)                7 u8 reserved (0)
 *   8  u32 rows (K)                 12 u32 cols (N)     16 f32 eps
 *   20 payload: 2bit: rows * ceil(cols / 16) u32; base3: ceil(rows * cols / 5) bytes, zero-padded to 4
 *   .. scales: f32 x (1 or cols)
 */
import * as tf from "@tensorflow/tfjs";
import { columnSum, linear, matMulT } from "../nn/layers.ts";
import type { ParamSet } from "../nn/params.ts";
import type { CompressedLayer, Matrix } from "./types.ts";

/** How ternary codes are stored. */
export type BitnetPacking = "2bit" | "base3";
/** One absmean scale per matrix, or one per output channel (column n). */
export type BitnetScale = "matrix" | "column";

export interface BitnetSettings {
  /** "2bit": 16 codes per u32 (2 bits/weight); "base3": 5 trits per byte (1.6 bits/weight). Default "2bit". */
  packing: BitnetPacking;
  /** "matrix": one gamma = mean|W| (the paper's); "column": one per output column n. Default "matrix". */
  scale: BitnetScale;
  /** Added to gamma before dividing, so an all-zero matrix or column maps to zeros. Default 1e-5. */
  eps: number;
}

export const DEFAULT_BITNET: BitnetSettings = { packing: "2bit", scale: "matrix", eps: 1e-5 };

/** File magic "BITN". */
export const BITNET_MAGIC = [0x42, 0x49, 0x54, 0x4e] as const;
/** Current serialized format version. */
export const BITNET_VERSION = 1;
/** Header size in bytes (see the module comment). */
export const BITNET_HEADER_BYTES = 20;

const PACKINGS: readonly BitnetPacking[] = ["2bit", "base3"];
const SCALES: readonly BitnetScale[] = ["matrix", "column"];

/** Fills defaults and checks every field; errors name the field. */
export function resolveBitnetSettings(s: Partial<BitnetSettings> = {}): BitnetSettings {
  const r = { ...DEFAULT_BITNET, ...s };
  if (!PACKINGS.includes(r.packing)) throw new Error(`bitnet.packing = '${r.packing}': expected one of ${PACKINGS.join(", ")}`);
  if (!SCALES.includes(r.scale)) throw new Error(`bitnet.scale = '${r.scale}': expected one of ${SCALES.join(", ")}`);
  if (!(Number.isFinite(r.eps) && r.eps >= 0)) throw new Error(`bitnet.eps = ${r.eps}: expected a finite number >= 0`);
  return r;
}

/** Round half to even (tfjs's and PyTorch's `round`). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

function checkMatrix(m: Matrix, what: string): void {
  if (!Number.isInteger(m.rows) || m.rows < 1) throw new Error(`${what}.rows = ${m.rows}: expected an integer >= 1`);
  if (!Number.isInteger(m.cols) || m.cols < 1) throw new Error(`${what}.cols = ${m.cols}: expected an integer >= 1`);
  if (m.data.length !== m.rows * m.cols) {
    throw new Error(`${what}.data has ${m.data.length} values, expected rows * cols = ${m.rows * m.cols}`);
  }
  for (let i = 0; i < m.data.length; i++) {
    if (!Number.isFinite(m.data[i])) throw new Error(`${what}.data[${i}] = ${m.data[i]}: weights must be finite`);
  }
}

/** Absmean scales of W [K, N]: [mean |W|] for "matrix", mean over each column for "column" (f32). */
export function absmeanScales(m: Matrix, scale: BitnetScale): Float32Array {
  const { rows, cols, data } = m;
  if (scale === "matrix") {
    let s = 0;
    for (let i = 0; i < data.length; i++) s += Math.abs(data[i]);
    return Float32Array.of(s / data.length);
  }
  const sums = new Float64Array(cols);
  for (let k = 0; k < rows; k++) for (let n = 0; n < cols; n++) sums[n] += Math.abs(data[k * cols + n]);
  return Float32Array.from(sums, (v) => v / rows);
}

/**
 * Ternary codes c = t + 1 of W [K, N] (row-major, one byte each) with their scales:
 * t = RoundClip(W / (gamma + eps), -1, 1), gamma from `absmeanScales` (the stored f32 value).
 */
export function ternarize(m: Matrix, scale: BitnetScale, eps: number): { codes: Uint8Array; scales: Float32Array } {
  checkMatrix(m, "ternarize: matrix");
  const scales = absmeanScales(m, scale);
  const { rows, cols, data } = m;
  const codes = new Uint8Array(rows * cols);
  for (let k = 0; k < rows; k++) {
    for (let n = 0; n < cols; n++) {
      const g = scales[scale === "matrix" ? 0 : n];
      const t = Math.min(1, Math.max(-1, roundHalfEven(data[k * cols + n] / (g + eps))));
      codes[k * cols + n] = t + 1;
    }
  }
  return { codes, scales };
}

/** Dense W [K, N] from codes and scales: (c - 1) * gamma. */
export function dequantizeTernary(codes: Uint8Array, scales: Float32Array, rows: number, cols: number, scale: BitnetScale): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let k = 0; k < rows; k++) {
    for (let n = 0; n < cols; n++) out[k * cols + n] = (codes[k * cols + n] - 1) * scales[scale === "matrix" ? 0 : n];
  }
  return out;
}

/** u32 words per row of the 2-bit packing. */
export function wordsPerRow(cols: number): number {
  return Math.ceil(cols / 16);
}

/** 2-bit packing of codes [K, N]: row k, column n goes to word k * ceil(N / 16) + n / 16, bits 2 (n % 16). */
export function pack2bit(codes: Uint8Array, rows: number, cols: number): Uint32Array {
  if (codes.length !== rows * cols) throw new Error(`pack2bit: ${codes.length} codes, expected rows * cols = ${rows * cols}`);
  const wpr = wordsPerRow(cols);
  const out = new Uint32Array(rows * wpr);
  for (let k = 0; k < rows; k++) {
    for (let n = 0; n < cols; n++) {
      const c = codes[k * cols + n];
      if (c > 2) throw new Error(`pack2bit: code ${c} at row ${k}, column ${n} is not in {0, 1, 2}`);
      out[k * wpr + (n >> 4)] |= c << (2 * (n & 15));
    }
  }
  return out;
}

/** Inverse of `pack2bit`; throws naming the position of a code 3. */
export function unpack2bit(words: Uint32Array, rows: number, cols: number): Uint8Array {
  const wpr = wordsPerRow(cols);
  if (words.length !== rows * wpr) throw new Error(`unpack2bit: ${words.length} words, expected rows * ceil(cols / 16) = ${rows * wpr}`);
  const out = new Uint8Array(rows * cols);
  for (let k = 0; k < rows; k++) {
    for (let n = 0; n < cols; n++) {
      const c = (words[k * wpr + (n >> 4)] >>> (2 * (n & 15))) & 3;
      if (c === 3) throw new Error(`unpack2bit: invalid code 3 at row ${k}, column ${n}`);
      out[k * cols + n] = c;
    }
  }
  return out;
}

/** Bytes of the base-3 packing of `count` codes. */
export function base3Bytes(count: number): number {
  return Math.ceil(count / 5);
}

/** Base-3 packing: byte b holds codes 5b..5b+4 as sum c_i 3^i (missing tail codes count as 0). */
export function packBase3(codes: Uint8Array): Uint8Array {
  const out = new Uint8Array(base3Bytes(codes.length));
  for (let b = 0; b < out.length; b++) {
    let v = 0;
    for (let i = 4; i >= 0; i--) {
      const j = 5 * b + i;
      const c = j < codes.length ? codes[j] : 0;
      if (c > 2) throw new Error(`packBase3: code ${c} at index ${j} is not in {0, 1, 2}`);
      v = v * 3 + c;
    }
    out[b] = v;
  }
  return out;
}

/** Inverse of `packBase3` for `count` codes; throws naming a byte above 242 (3^5 - 1). */
export function unpackBase3(bytes: Uint8Array, count: number): Uint8Array {
  if (bytes.length < base3Bytes(count)) throw new Error(`unpackBase3: ${bytes.length} bytes, expected ${base3Bytes(count)}`);
  const out = new Uint8Array(count);
  for (let b = 0; b < base3Bytes(count); b++) {
    let v = bytes[b];
    if (v > 242) throw new Error(`unpackBase3: byte ${b} = ${v} is not 5 trits (max 242)`);
    for (let i = 0; i < 5 && 5 * b + i < count; i++) {
      out[5 * b + i] = v % 3;
      v = Math.floor(v / 3);
    }
  }
  return out;
}

/** Payload bytes as serialized (base-3 zero-padded to a multiple of 4 so the scales stay aligned). */
export function payloadBytes(rows: number, cols: number, packing: BitnetPacking): number {
  if (packing === "2bit") return rows * wordsPerRow(cols) * 4;
  return Math.ceil(base3Bytes(rows * cols) / 4) * 4;
}

/** Exact serialized size in bytes: header + payload + f32 scales. */
export function bitnetEncodedBytes(rows: number, cols: number, packing: BitnetPacking, scale: BitnetScale): number {
  return BITNET_HEADER_BYTES + payloadBytes(rows, cols, packing) + 4 * (scale === "matrix" ? 1 : cols);
}

/** A ternary matrix in packed form: what `bitnetCompress` returns and `decodeBitnet` reads back. */
export class BitnetLayer implements CompressedLayer {
  readonly method = "bitnet" as const;
  readonly settings: Record<string, number | string | boolean>;

  /**
   * `payload` is the packed codes (Uint32Array for "2bit", Uint8Array of ceil(K N / 5) bytes for
   * "base3"); `scales` holds 1 value ("matrix") or `cols` values ("column").
   */
  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly packing: BitnetPacking,
    readonly scaleMode: BitnetScale,
    readonly eps: number,
    readonly payload: Uint32Array | Uint8Array,
    readonly scales: Float32Array,
  ) {
    const want = packing === "2bit" ? rows * wordsPerRow(cols) : base3Bytes(rows * cols);
    if (packing === "2bit" && !(payload instanceof Uint32Array)) throw new Error("BitnetLayer: 2bit payload must be a Uint32Array");
    if (packing === "base3" && !(payload instanceof Uint8Array)) throw new Error("BitnetLayer: base3 payload must be a Uint8Array");
    if (payload.length !== want) throw new Error(`BitnetLayer: payload has ${payload.length} elements, expected ${want}`);
    const nScales = scaleMode === "matrix" ? 1 : cols;
    if (scales.length !== nScales) throw new Error(`BitnetLayer: ${scales.length} scales, expected ${nScales} for scale '${scaleMode}'`);
    this.settings = { packing, scale: scaleMode, eps };
  }

  /** The unpacked codes c = t + 1, [K, N] row-major. */
  codes(): Uint8Array {
    return this.packing === "2bit"
      ? unpack2bit(this.payload as Uint32Array, this.rows, this.cols)
      : unpackBase3(this.payload as Uint8Array, this.rows * this.cols);
  }

  /** The serialized bytes (layout in the module comment). */
  encode(): Uint8Array {
    const pBytes = payloadBytes(this.rows, this.cols, this.packing);
    const out = new Uint8Array(bitnetEncodedBytes(this.rows, this.cols, this.packing, this.scaleMode));
    const dv = new DataView(out.buffer);
    out.set(BITNET_MAGIC, 0);
    dv.setUint8(4, BITNET_VERSION);
    dv.setUint8(5, PACKINGS.indexOf(this.packing));
    dv.setUint8(6, SCALES.indexOf(this.scaleMode));
    dv.setUint32(8, this.rows, true);
    dv.setUint32(12, this.cols, true);
    dv.setFloat32(16, this.eps, true);
    if (this.packing === "2bit") {
      this.payload.forEach((w, i) => dv.setUint32(BITNET_HEADER_BYTES + 4 * i, w, true));
    } else out.set(this.payload as Uint8Array, BITNET_HEADER_BYTES);
    const s0 = BITNET_HEADER_BYTES + pBytes;
    this.scales.forEach((s, i) => dv.setFloat32(s0 + 4 * i, s, true));
    return out;
  }

  /** The dense matrix [K, N]: (c - 1) * gamma. */
  decompress(): Float32Array {
    return dequantizeTernary(this.codes(), this.scales, this.rows, this.cols, this.scaleMode);
  }
}

/** Compresses W [K, N] to BitNet b1.58 ternary form (absmean scales). */
export function bitnetCompress(m: Matrix, settings: Partial<BitnetSettings> = {}): BitnetLayer {
  const s = resolveBitnetSettings(settings);
  checkMatrix(m, "bitnetCompress: matrix");
  const { codes, scales } = ternarize(m, s.scale, s.eps);
  const payload = s.packing === "2bit" ? pack2bit(codes, m.rows, m.cols) : packBase3(codes);
  return new BitnetLayer(m.rows, m.cols, s.packing, s.scale, s.eps, payload, scales);
}

/** Reads what `BitnetLayer.encode` wrote; errors name what is wrong. Codes are validated. */
export function decodeBitnet(bytes: Uint8Array): BitnetLayer {
  if (bytes.length < BITNET_HEADER_BYTES) {
    throw new Error(`decodeBitnet: ${bytes.length} bytes, shorter than the ${BITNET_HEADER_BYTES}-byte header`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (BITNET_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error(`decodeBitnet: bad magic [${[...bytes.subarray(0, 4)]}], expected "BITN"`);
  }
  const version = dv.getUint8(4);
  if (version !== BITNET_VERSION) throw new Error(`decodeBitnet: version ${version} not supported (expected ${BITNET_VERSION})`);
  const packing = PACKINGS[dv.getUint8(5)];
  if (!packing) throw new Error(`decodeBitnet: packing code ${dv.getUint8(5)} unknown (0 = 2bit, 1 = base3)`);
  const scale = SCALES[dv.getUint8(6)];
  if (!scale) throw new Error(`decodeBitnet: scale code ${dv.getUint8(6)} unknown (0 = matrix, 1 = column)`);
  const rows = dv.getUint32(8, true), cols = dv.getUint32(12, true);
  if (rows < 1 || cols < 1) throw new Error(`decodeBitnet: shape [${rows}, ${cols}] is empty`);
  const eps = dv.getFloat32(16, true);
  const want = bitnetEncodedBytes(rows, cols, packing, scale);
  if (bytes.length !== want) {
    throw new Error(`decodeBitnet: ${bytes.length} bytes, expected ${want} for [${rows}, ${cols}] ${packing} ${scale}`);
  }
  const p0 = BITNET_HEADER_BYTES;
  let payload: Uint32Array | Uint8Array;
  if (packing === "2bit") {
    payload = new Uint32Array(rows * wordsPerRow(cols));
    for (let i = 0; i < payload.length; i++) payload[i] = dv.getUint32(p0 + 4 * i, true);
  } else payload = bytes.slice(p0, p0 + base3Bytes(rows * cols));
  const s0 = p0 + payloadBytes(rows, cols, packing);
  const scales = new Float32Array(scale === "matrix" ? 1 : cols);
  for (let i = 0; i < scales.length; i++) {
    scales[i] = dv.getFloat32(s0 + 4 * i, true);
    if (!Number.isFinite(scales[i])) throw new Error(`decodeBitnet: scale ${i} = ${scales[i]} is not finite`);
  }
  const layer = new BitnetLayer(rows, cols, packing, scale, eps, payload, scales);
  layer.codes(); // validates every code (throws naming the position)
  return layer;
}

// ---------------------------------------------------------------------------------------------
// Tensor quantizers and quantization-aware training
// ---------------------------------------------------------------------------------------------

/**
 * 8-bit per-token absmax quantization of x [M, K]: q = Clip(round(x * (127 / a)), -128, 127)
 * with a = max(max|x_row|, eps); returns q (integer-valued f32) and the per-row step a / 127 [M, 1].
 */
export function absmaxQuantize(x: tf.Tensor2D, eps = 1e-5): { q: tf.Tensor2D; step: tf.Tensor2D } {
  return tf.tidy(() => {
    const a = tf.maximum(tf.max(tf.abs(x), 1, true), eps); // [M, 1]
    const q = tf.clipByValue(tf.round(tf.mul(x, tf.div(127, a))), -128, 127) as tf.Tensor2D; // [M, K]
    return { q, step: tf.div(a, 127) as tf.Tensor2D };
  });
}

/** x [M, K] quantized to 8 bits per row and dequantized back: q * max|x_row| / 127. */
export function fakeQuantActivations(x: tf.Tensor2D, eps = 1e-5): tf.Tensor2D {
  return tf.tidy(() => {
    const { q, step } = absmaxQuantize(x, eps);
    return tf.mul(q, step) as tf.Tensor2D;
  });
}

/** W [K, N] ternarized by absmean and dequantized: RoundClip(W / (gamma + eps), -1, 1) * gamma. */
export function fakeQuantWeights(w: tf.Tensor2D, scale: BitnetScale = "matrix", eps = 1e-5): tf.Tensor2D {
  return tf.tidy(() => {
    const gamma = scale === "matrix" ? tf.mean(tf.abs(w)) : tf.mean(tf.abs(w), 0, true); // [] or [1, N]
    const t = tf.clipByValue(tf.round(tf.div(w, tf.add(gamma, eps))), -1, 1);
    return tf.mul(t, gamma) as tf.Tensor2D;
  });
}

export interface BitLinearOptions {
  /** Weight scale granularity. Default "matrix" (the paper's). */
  scale?: BitnetScale;
  /** Quantize the input to 8 bits per token (absmax). Default true. */
  quantizeActivations?: boolean;
  /** eps of both quantizers. Default 1e-5. */
  eps?: number;
  /**
   * Where the straight-through estimator evaluates the dense gradient: "quantized" (default,
   * the paper's `w + (quant(w) - w).detach()`): dx = dy Wq^T, dW = Xq^T dy; "latent": at the
   * unquantized x and W (dx = dy W^T, dW = X^T dy).
   */
  ste?: "quantized" | "latent";
}

/**
 * BitLinear: y = Q8(x) @ T(W) + b over the last axis with a straight-through backward.
 * x [..., K], w [K, N], b [N] -> [..., N]. The quantizers' own derivatives (zero almost
 * everywhere) are replaced by the identity; db = column sums of dy.
 */
export function bitLinear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor, opts: BitLinearOptions = {}): tf.Tensor {
  const scale = opts.scale ?? "matrix", eps = opts.eps ?? 1e-5, ste = opts.ste ?? "quantized";
  const quantAct = opts.quantizeActivations ?? true;
  if (!SCALES.includes(scale)) throw new Error(`bitLinear: scale = '${scale}': expected matrix or column`);
  if (ste !== "quantized" && ste !== "latent") throw new Error(`bitLinear: ste = '${ste}': expected quantized or latent`);
  if (w.rank !== 2) throw new Error(`bitLinear: weight has shape [${w.shape}], expected [K, N]`);
  const [inDim, outDim] = w.shape as [number, number];
  if (x.shape[x.rank - 1] !== inDim) throw new Error(`bitLinear: input last axis ${x.shape[x.rank - 1]} != weight rows ${inDim}`);
  const lead = x.shape.slice(0, -1);
  const x2 = tf.reshape(x, [-1, inDim]) as tf.Tensor2D; // [M, K]
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [xi, wi] = [args[0] as tf.Tensor2D, args[1] as tf.Tensor2D];
    const xq = quantAct ? fakeQuantActivations(xi, eps) : xi; // [M, K]
    const wq = fakeQuantWeights(wi, scale, eps); // [K, N]
    save(ste === "quantized" ? [xq, wq] : [xi, wi]);
    const y = tf.matMul(xq, wq); // [M, N]
    return {
      value: b ? tf.add(y, args[2] as tf.Tensor) : y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [a, m] = saved as tf.Tensor2D[];
        const g = dy as tf.Tensor2D; // [M, N]
        const grads: tf.Tensor[] = [matMulT(g, m, false, true), matMulT(a, g, true, false)]; // [M, K], [K, N]
        if (b) grads.push(columnSum(g)); // [N]
        return grads;
      },
    };
  });
  const y = (b ? f(x2, w, b) : f(x2, w)) as tf.Tensor2D;
  return tf.reshape(y, [...lead, outDim]);
}

/** A model's QAT routing: which weights go through BitLinear, and a `linear` that honours it. */
export interface BitnetQat {
  /** Weight names routed through `bitLinear`. */
  readonly names: ReadonlySet<string>;
  /** y = x W + b with W = params[wName]; BitLinear when wName is routed, else the dense `linear`. */
  linear(x: tf.Tensor, wName: string, bName?: string): tf.Tensor;
}

/**
 * Sets up quantization-aware training over `params`: `names` (default: every rank-2
 * parameter) are routed through `bitLinear` with `opts`. Errors name a missing or non-matrix parameter.
 */
export function bitnetQat(params: ParamSet, names?: Iterable<string>, opts: BitLinearOptions = {}): BitnetQat {
  const chosen = new Set(names ?? params.names().filter((n) => params.get(n).rank === 2));
  for (const n of chosen) {
    if (!params.has(n)) throw new Error(`bitnetQat: no parameter '${n}'`);
    if (params.get(n).rank !== 2) throw new Error(`bitnetQat: parameter '${n}' has shape [${params.get(n).shape}], expected [K, N]`);
  }
  return {
    names: chosen,
    linear: (x, wName, bName) => {
      const w = params.get(wName), b = bName ? params.get(bName) : undefined;
      return chosen.has(wName) ? bitLinear(x, w, b, opts) : linear(x, w, b);
    },
  };
}

/**
 * After QAT: compresses each named weight with `bitnetCompress` and writes its dequantized
 * ternary matrix back into `params` (so dense inference sees exactly the stored weights).
 */
export async function ternarizeParams(
  params: ParamSet,
  names: Iterable<string>,
  settings: Partial<BitnetSettings> = {},
): Promise<Map<string, BitnetLayer>> {
  const out = new Map<string, BitnetLayer>();
  for (const name of names) {
    const v = params.get(name);
    if (v.rank !== 2) throw new Error(`ternarizeParams: parameter '${name}' has shape [${v.shape}], expected [K, N]`);
    const [rows, cols] = v.shape as [number, number];
    const layer = bitnetCompress({ rows, cols, data: (await v.data()) as Float32Array }, settings);
    tf.tidy(() => v.assign(tf.tensor2d(layer.decompress(), [rows, cols])));
    out.set(name, layer);
  }
  return out;
}
