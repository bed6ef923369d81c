/**
 * VPTQ-style vector quantization of a weight matrix (after Liu et al. 2024, "VPTQ: Extreme
 * Low-bit Vector Post-Training Quantization for Large Language Models").
 *
 * Layout (see `types.ts`): W [K, N] row-major; a sub-vector is v consecutive weights along K
 * within one column n, so the indices are [K / v, N] (K padded with zeros to a multiple of v,
 * the padding carrying zero weight) and every codebook is [k, v].
 *
 * Pipeline: optional outlier columns (largest L2 norms) are split off and get their own
 * codebook; the other columns share the main k-entry codebook; an optional residual k2-entry
 * codebook then quantizes what is left over, for every column. Each codebook is trained by
 * k-means++ seeding and Lloyd iterations; given a diagonal Hessian h [K] (h_k = mean over
 * calibration tokens of x_k^2), the distance is sum_t h_{j v + t} (w_t - c_t)^2 and centroids
 * are h-weighted means. Codebooks are stored as f16 by default (or f32) and the stored values
 * are the ones used to reconstruct, so decoding the bytes gives the same matrix. k-means can
 * train on a seeded sample of the sub-vectors (`trainingVectors`), every one then assigned.
 *
 * Entropy-coded indices (`entropyBits` > 0): the codebook is trained by entropy-constrained
 * k-means (`ecvq.ts`) to a target serialized rate, and the indices are stored rANS-coded
 * (`rans.ts`) under their frequency table. Fixed-rate VQ at 2 bits per weight pays about
 * 1.5 x D(R) on Gaussian weights at v = 4; with entropy coding v = 2 or 3 gets about
 * 1.35-1.4 x (the entropy-coded space-filling loss instead of the fixed-rate shape loss).
 * Decoding expands the indices back to u32, so inference (kernels/vq_matmul.ts) is unchanged.
 * The k-means itself lives in `vptq_kmeans.ts`.
 */
import { deriveSeed, Rng } from "../util/rng.ts";
import type { CompressedLayer, Matrix } from "./types.ts";
import { assignNearest, kmeans, VPTQ_MAX_K } from "./vptq_kmeans.ts";
import { ecKmeans } from "./ecvq.ts";
import { quantizeFrequencies, ransDecode, ransEncode } from "./rans.ts";

export { assignNearest, kmeans, type KmeansOptions, kmeansPlusPlus, type KmeansResult, VPTQ_MAX_K } from "./vptq_kmeans.ts";

/** The serialized format's magic, the bytes "VPTQ". */
export const VPTQ_MAGIC = 0x51545056;
/** The serialized format's version. */
export const VPTQ_VERSION = 1;
/** Header length in bytes. */
export const VPTQ_HEADER_BYTES = 36;

/** How codebook entries are stored. */
export type CodebookFormat = "f16" | "f32";

/** Settings of `vptqCompress`. */
export interface VptqSettings {
  /** Sub-vector length (required, >= 1). */
  v: number;
  /** Main codebook size (required, 1..2^20). */
  k: number;
  /** Residual codebook size; 0 = no residual stage (default 0). */
  residualK?: number;
  /** Outlier columns: a count (integer >= 1) or a fraction of the columns (in (0, 1)); 0 = none (default 0). */
  outlierColumns?: number;
  /** Outlier codebook size (default: k). */
  outlierK?: number;
  /** Most Lloyd iterations per codebook; 0 = k-means++ seeding only (default 25). */
  iterations?: number;
  /** Lloyd stops once the distortion improves by less than this fraction (default 1e-4). */
  tolerance?: number;
  /** Seed of the k-means++ draws (default 0). */
  seed?: number;
  /** Codebook storage (default "f16"). */
  codebookFormat?: CodebookFormat;
  /**
   * Entropy-coded indices (ECVQ, `ecvq.ts`): the target serialized bits per weight of the whole
   * layer (indices, codebook, frequency table, header); k is then the largest codebook, and
   * `iterations` the ECVQ passes (default 40). Needs residualK = 0 and no outlier columns.
   * 0 = fixed-rate indices of ceil(log2 k) bits (default 0).
   */
  entropyBits?: number;
  /** Sub-vectors sampled to train the codebook (default: all for fixed rate, 131072 for entropy-coded). */
  trainingVectors?: number;
}

/** Optional calibration information. */
export interface VptqOptions {
  /** Diagonal Hessian / input second moment h [K], h_k = mean over tokens of x_k^2. */
  hessian?: Float32Array;
}

/** Settings for a bit budget: k = 2^(bits * v) (bits * v must be a whole number). */
export function vptqSettingsForBits(bits: number, v: number): { v: number; k: number } {
  checkInt("v", v, 1);
  if (!(bits > 0)) throw new Error(`vptqSettingsForBits: bits must be > 0, got ${bits}`);
  const e = bits * v;
  if (Math.abs(e - Math.round(e)) > 1e-9) throw new Error(`vptqSettingsForBits: bits * v must be a whole number, got ${bits} * ${v}`);
  const k = 2 ** Math.round(e);
  if (k > VPTQ_MAX_K) throw new Error(`vptqSettingsForBits: k = 2^${Math.round(e)} exceeds ${VPTQ_MAX_K} (lower bits or v)`);
  return { v, k };
}

/** The diagonal Hessian h_k = mean over tokens t of x[t, k]^2 of calibration activations x [T, K]. */
export function hessianDiagonal(x: Matrix): Float32Array {
  if (x.rows < 1) throw new Error("hessianDiagonal: x has no rows (tokens)");
  const h = new Float64Array(x.cols);
  for (let t = 0; t < x.rows; t++) {
    const o = t * x.cols;
    for (let k = 0; k < x.cols; k++) h[k] += x.data[o + k] * x.data[o + k];
  }
  const out = new Float32Array(x.cols);
  for (let k = 0; k < x.cols; k++) out[k] = h[k] / x.rows;
  return out;
}

// ---------------------------------------------------------------------------------------------
// f16 conversion

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** The IEEE half-precision bits of x (round to nearest, ties to even). */
export function toHalfBits(x: number): number {
  F32[0] = x;
  const b = U32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** The value of IEEE half-precision bits. */
export function fromHalfBits(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Rounds every entry to what `format` stores, in place. */
function roundCodebook(cb: Float32Array, format: CodebookFormat): void {
  if (format === "f32") return;
  for (let i = 0; i < cb.length; i++) cb[i] = fromHalfBits(toHalfBits(cb[i]));
}

// ---------------------------------------------------------------------------------------------
// The compressed layer

/** The arrays of a VPTQ layer. */
export interface VptqParts {
  rows: number;
  cols: number;
  v: number;
  /** Main codebook [k, v]. */
  codebook: Float32Array;
  /** Residual codebook [k2, v], or empty for none. */
  residualCodebook: Float32Array;
  /** Outlier codebook [kOut, v], or empty when there are no outlier columns. */
  outlierCodebook: Float32Array;
  /** Outlier column ids, ascending. */
  outlierIds: Int32Array;
  /** Indices [ceil(K / v), N]: into the outlier codebook for outlier columns, else the main one. */
  indices: Uint32Array;
  /** Residual indices [ceil(K / v), N], or empty for none. */
  residualIndices: Uint32Array;
  codebookFormat: CodebookFormat;
  /** Main indices stored rANS-coded under their own frequency table (see `encode`); default false. */
  entropyCoded?: boolean;
}

/** A VPTQ-compressed matrix. */
export class VptqLayer implements CompressedLayer, VptqParts {
  readonly method = "vptq" as const;
  readonly rows: number;
  readonly cols: number;
  readonly v: number;
  readonly codebook: Float32Array;
  readonly residualCodebook: Float32Array;
  readonly outlierCodebook: Float32Array;
  readonly outlierIds: Int32Array;
  readonly indices: Uint32Array;
  readonly residualIndices: Uint32Array;
  readonly codebookFormat: CodebookFormat;
  readonly entropyCoded: boolean;
  readonly settings: Record<string, number | string | boolean>;

  constructor(parts: VptqParts, settings: Record<string, number | string | boolean> = {}) {
    checkInt("rows", parts.rows, 1);
    checkInt("cols", parts.cols, 1);
    checkInt("v", parts.v, 1);
    const { v } = parts;
    const groups = Math.ceil(parts.rows / v) * parts.cols;
    const checkCb = (name: string, cb: Float32Array, allowEmpty: boolean) => {
      if (cb.length % v !== 0 || (!allowEmpty && cb.length === 0) || cb.length / v > VPTQ_MAX_K) {
        throw new Error(`VptqLayer: ${name} length ${cb.length} is not [k, ${v}] with 1 <= k <= ${VPTQ_MAX_K}`);
      }
    };
    checkCb("codebook", parts.codebook, false);
    checkCb("residualCodebook", parts.residualCodebook, true);
    checkCb("outlierCodebook", parts.outlierCodebook, parts.outlierIds.length === 0);
    if (parts.outlierIds.length === 0 && parts.outlierCodebook.length > 0) {
      throw new Error("VptqLayer: outlierCodebook given without outlierIds");
    }
    if (parts.indices.length !== groups) throw new Error(`VptqLayer: indices length ${parts.indices.length}, expected ${groups}`);
    const hasRes = parts.residualCodebook.length > 0;
    if (parts.residualIndices.length !== (hasRes ? groups : 0)) {
      throw new Error(`VptqLayer: residualIndices length ${parts.residualIndices.length}, expected ${hasRes ? groups : 0}`);
    }
    for (let i = 0; i < parts.outlierIds.length; i++) {
      const id = parts.outlierIds[i];
      if (id < 0 || id >= parts.cols || (i > 0 && id <= parts.outlierIds[i - 1])) {
        throw new Error(`VptqLayer: outlierIds must be ascending column ids below ${parts.cols}, got ${id} at ${i}`);
      }
    }
    this.rows = parts.rows;
    this.cols = parts.cols;
    this.v = v;
    this.codebook = parts.codebook;
    this.residualCodebook = parts.residualCodebook;
    this.outlierCodebook = parts.outlierCodebook;
    this.outlierIds = parts.outlierIds;
    this.indices = parts.indices;
    this.residualIndices = parts.residualIndices;
    this.codebookFormat = parts.codebookFormat;
    this.entropyCoded = parts.entropyCoded ?? false;
    if (this.entropyCoded && (hasRes || parts.outlierIds.length > 0)) {
      throw new Error("VptqLayer: entropy-coded indices need residualK = 0 and no outlier columns");
    }
    this.settings = {
      v,
      k: this.k,
      residualK: this.residualK,
      outlierColumns: parts.outlierIds.length,
      outlierK: this.outlierK,
      codebookFormat: parts.codebookFormat,
      entropyCoded: this.entropyCoded,
      ...settings,
    };
    const bound = (name: string, idx: Uint32Array, kOf: (n: number) => number) => {
      for (let i = 0; i < idx.length; i++) {
        if (idx[i] >= kOf(i % this.cols)) throw new Error(`VptqLayer: ${name}[${i}] = ${idx[i]} is out of range`);
      }
    };
    const outlier = this.outlierMask();
    bound("indices", this.indices, (n) => (outlier[n] ? this.outlierK : this.k));
    bound("residualIndices", this.residualIndices, () => this.residualK);
  }

  /** Main codebook size. */
  get k(): number {
    return this.codebook.length / this.v;
  }
  /** Residual codebook size (0 = none). */
  get residualK(): number {
    return this.residualCodebook.length / this.v;
  }
  /** Outlier codebook size (0 = none). */
  get outlierK(): number {
    return this.outlierCodebook.length / this.v;
  }

  /** 1 for outlier columns, 0 otherwise [N]. */
  outlierMask(): Uint8Array {
    const mask = new Uint8Array(this.cols);
    for (const id of this.outlierIds) mask[id] = 1;
    return mask;
  }

  /** W ~ codebook[index] (+ residualCodebook[residualIndex]) per sub-vector. */
  decompress(): Float32Array {
    const { rows, cols, v } = this;
    const out = new Float32Array(rows * cols);
    const outlier = this.outlierMask();
    const res = this.residualCodebook;
    const hasRes = res.length > 0;
    const groups = Math.ceil(rows / v);
    for (let j = 0; j < groups; j++) {
      const tEnd = Math.min(v, rows - j * v);
      for (let n = 0; n < cols; n++) {
        const g = j * cols + n;
        const cb = outlier[n] ? this.outlierCodebook : this.codebook;
        const c = this.indices[g] * v;
        const r = hasRes ? this.residualIndices[g] * v : 0;
        for (let t = 0; t < tEnd; t++) out[(j * v + t) * cols + n] = hasRes ? cb[c + t] + res[r + t] : cb[c + t];
      }
    }
    return out;
  }

  /**
   * Serialized bytes, little-endian:
   * header (36 bytes: magic "VPTQ", u16 version, u16 flags (bit 0: f32 codebooks), u32 rows, cols,
   * v, k, k2, outlier count, outlier k); codebook [k, v], residual codebook [k2, v], outlier codebook
   * [kOut, v] (f16 or f32); outlier column ids (u32 each); then three bit streams, each padded to a
   * byte, LSB first: main indices over [K/v, non-outlier columns] at ceil(log2 k) bits, outlier
   * indices over [K/v, outlier columns] at ceil(log2 kOut) bits, residual indices over [K/v, N] at
   * ceil(log2 k2) bits.
   *
   * Entropy-coded layers (flags bit 1; no residual, no outliers) replace the main bit stream by
   * a frequency table (u16 [k], summing to 2^14), the rANS stream's length (u32) and the stream.
   */
  encode(): Uint8Array {
    if (this.entropyCoded) return this.#encodeEntropy();
    const { rows, cols, v } = this;
    const groups = Math.ceil(rows / v);
    const o = this.outlierIds.length;
    const layout = sectionLayout(groups, cols, v, this.k, this.residualK, o, this.outlierK, this.codebookFormat);
    const bytes = new Uint8Array(layout.total);
    const dv = new DataView(bytes.buffer);
    dv.setUint32(0, VPTQ_MAGIC, true);
    dv.setUint16(4, VPTQ_VERSION, true);
    dv.setUint16(6, this.codebookFormat === "f32" ? 1 : 0, true);
    const fields = [rows, cols, v, this.k, this.residualK, o, this.outlierK];
    fields.forEach((f, i) => dv.setUint32(8 + 4 * i, f, true));
    let off = VPTQ_HEADER_BYTES;
    for (const cb of [this.codebook, this.residualCodebook, this.outlierCodebook]) {
      off = writeCodebook(dv, off, cb, this.codebookFormat);
    }
    for (let i = 0; i < o; i++, off += 4) dv.setUint32(off, this.outlierIds[i], true);
    const outlier = this.outlierMask();
    const main = new BitWriter(bytes, off, layout.mainBits);
    const outw = new BitWriter(bytes, off + layout.mainBytes, layout.outlierBits);
    for (let g = 0; g < groups * cols; g++) (outlier[g % cols] ? outw : main).write(this.indices[g]);
    const resw = new BitWriter(bytes, off + layout.mainBytes + layout.outlierBytes, layout.residualBits);
    for (let g = 0; g < this.residualIndices.length; g++) resw.write(this.residualIndices[g]);
    main.flush();
    outw.flush();
    resw.flush();
    return bytes;
  }

  #entropyBytes?: Uint8Array;

  #encodeEntropy(): Uint8Array {
    if (!this.#entropyBytes) {
      const counts = new Float64Array(this.k);
      for (const i of this.indices) counts[i]++;
      const freqs = quantizeFrequencies(counts);
      const stream = ransEncode(this.indices, freqs);
      const vb = this.codebookFormat === "f32" ? 4 : 2;
      const bytes = new Uint8Array(VPTQ_HEADER_BYTES + this.codebook.length * vb + 2 * this.k + 4 + stream.byteLength);
      const dv = new DataView(bytes.buffer);
      dv.setUint32(0, VPTQ_MAGIC, true);
      dv.setUint16(4, VPTQ_VERSION, true);
      dv.setUint16(6, (this.codebookFormat === "f32" ? 1 : 0) | 2, true);
      [this.rows, this.cols, this.v, this.k, 0, 0, 0].forEach((f, i) => dv.setUint32(8 + 4 * i, f, true));
      let off = writeCodebook(dv, VPTQ_HEADER_BYTES, this.codebook, this.codebookFormat);
      for (let c = 0; c < this.k; c++, off += 2) dv.setUint16(off, freqs[c], true);
      dv.setUint32(off, stream.byteLength, true);
      bytes.set(stream, off + 4);
      this.#entropyBytes = bytes;
    }
    return this.#entropyBytes.slice();
  }
}

/** Bits needed for an index into a k-entry codebook. */
export function indexBits(k: number): number {
  return k <= 1 ? 0 : Math.ceil(Math.log2(k));
}

/** Byte counts of the serialized sections. */
function sectionLayout(groups: number, cols: number, v: number, k: number, k2: number, o: number, kOut: number, format: CodebookFormat) {
  const valueBytes = format === "f32" ? 4 : 2;
  const mainBits = indexBits(k);
  const outlierBits = o > 0 ? indexBits(kOut) : 0;
  const residualBits = k2 > 0 ? indexBits(k2) : 0;
  const mainBytes = Math.ceil((groups * (cols - o) * mainBits) / 8);
  const outlierBytes = Math.ceil((groups * o * outlierBits) / 8);
  const residualBytes = k2 > 0 ? Math.ceil((groups * cols * residualBits) / 8) : 0;
  const codebookBytes = (k + k2 + kOut) * v * valueBytes;
  const total = VPTQ_HEADER_BYTES + codebookBytes + 4 * o + mainBytes + outlierBytes + residualBytes;
  return { mainBits, outlierBits, residualBits, mainBytes, outlierBytes, residualBytes, codebookBytes, total };
}

function writeCodebook(dv: DataView, off: number, cb: Float32Array, format: CodebookFormat): number {
  for (let i = 0; i < cb.length; i++) {
    if (format === "f32") {
      dv.setFloat32(off, cb[i], true);
      off += 4;
    } else {
      dv.setUint16(off, toHalfBits(cb[i]), true);
      off += 2;
    }
  }
  return off;
}

function readCodebook(dv: DataView, off: number, n: number, format: CodebookFormat): Float32Array {
  const cb = new Float32Array(n);
  for (let i = 0; i < n; i++) cb[i] = format === "f32" ? dv.getFloat32(off + 4 * i, true) : fromHalfBits(dv.getUint16(off + 2 * i, true));
  return cb;
}

/** Packs unsigned values of `bits` bits (<= 24), LSB first, into `bytes` from `offset`. */
class BitWriter {
  #acc = 0;
  #n = 0;
  #pos: number;
  constructor(private bytes: Uint8Array, offset: number, private bits: number) {
    this.#pos = offset;
  }
  write(value: number): void {
    if (this.bits === 0) return;
    this.#acc = (this.#acc | (value << this.#n)) >>> 0;
    this.#n += this.bits;
    while (this.#n >= 8) {
      this.bytes[this.#pos++] = this.#acc & 0xff;
      this.#acc >>>= 8;
      this.#n -= 8;
    }
  }
  flush(): void {
    if (this.#n > 0) this.bytes[this.#pos++] = this.#acc & 0xff;
    this.#acc = 0;
    this.#n = 0;
  }
}

/** Reads what `BitWriter` wrote. */
class BitReader {
  #acc = 0;
  #n = 0;
  #pos: number;
  readonly #mask: number;
  constructor(private bytes: Uint8Array, offset: number, private bits: number) {
    this.#pos = offset;
    this.#mask = bits === 0 ? 0 : (1 << bits) - 1;
  }
  read(): number {
    if (this.bits === 0) return 0;
    while (this.#n < this.bits) {
      this.#acc = (this.#acc | (this.bytes[this.#pos++] << this.#n)) >>> 0;
      this.#n += 8;
    }
    const value = this.#acc & this.#mask;
    this.#acc >>>= this.bits;
    this.#n -= this.bits;
    return value;
  }
}

/** Parses `VptqLayer.encode()` output; errors name the bad field. */
export function decodeVptq(bytes: Uint8Array): VptqLayer {
  if (bytes.byteLength < VPTQ_HEADER_BYTES) {
    throw new Error(`decodeVptq: ${bytes.byteLength} bytes is shorter than the ${VPTQ_HEADER_BYTES}-byte header`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint32(0, true);
  if (magic !== VPTQ_MAGIC) throw new Error(`decodeVptq: bad magic 0x${magic.toString(16)}, expected "VPTQ"`);
  const version = dv.getUint16(4, true);
  if (version !== VPTQ_VERSION) throw new Error(`decodeVptq: unsupported version ${version}, expected ${VPTQ_VERSION}`);
  const flags = dv.getUint16(6, true);
  if (flags > 3) throw new Error(`decodeVptq: unknown flags 0x${flags.toString(16)}`);
  const format: CodebookFormat = flags & 1 ? "f32" : "f16";
  const entropyCoded = (flags & 2) !== 0;
  const [rows, cols, v, k, k2, o, kOut] = [0, 1, 2, 3, 4, 5, 6].map((i) => dv.getUint32(8 + 4 * i, true));
  const need = (name: string, ok: boolean, value: number) => {
    if (!ok) throw new Error(`decodeVptq: invalid ${name} ${value}`);
  };
  need("rows", rows >= 1, rows);
  need("cols", cols >= 1, cols);
  need("v", v >= 1, v);
  need("k", k >= 1 && k <= VPTQ_MAX_K, k);
  need("residual k", k2 <= VPTQ_MAX_K, k2);
  need("outlier count", o <= cols, o);
  need("outlier k", o > 0 ? kOut >= 1 && kOut <= VPTQ_MAX_K : kOut === 0, kOut);
  const groups = Math.ceil(rows / v);
  if (entropyCoded) return decodeEntropyCoded(dv, { rows, cols, v, k, k2, o, format });
  const layout = sectionLayout(groups, cols, v, k, k2, o, kOut, format);
  if (bytes.byteLength !== layout.total) {
    throw new Error(`decodeVptq: length ${bytes.byteLength} bytes, header implies ${layout.total} (truncated or corrupt)`);
  }
  const vb = format === "f32" ? 4 : 2;
  let off = VPTQ_HEADER_BYTES;
  const codebook = readCodebook(dv, off, k * v, format);
  off += k * v * vb;
  const residualCodebook = readCodebook(dv, off, k2 * v, format);
  off += k2 * v * vb;
  const outlierCodebook = readCodebook(dv, off, kOut * v, format);
  off += kOut * v * vb;
  const outlierIds = new Int32Array(o);
  for (let i = 0; i < o; i++, off += 4) {
    const id = dv.getUint32(off, true);
    if (id >= cols || (i > 0 && id <= outlierIds[i - 1])) {
      throw new Error(`decodeVptq: outlier column id ${id} at ${i} is out of range or not ascending`);
    }
    outlierIds[i] = id;
  }
  const outlier = new Uint8Array(cols);
  for (const id of outlierIds) outlier[id] = 1;
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const main = new BitReader(view, off, layout.mainBits);
  const outr = new BitReader(view, off + layout.mainBytes, layout.outlierBits);
  const indices = new Uint32Array(groups * cols);
  for (let g = 0; g < indices.length; g++) {
    const isOut = outlier[g % cols] === 1;
    const idx = (isOut ? outr : main).read();
    if (idx >= (isOut ? kOut : k)) throw new Error(`decodeVptq: ${isOut ? "outlier" : "main"} index ${idx} at ${g} exceeds its codebook`);
    indices[g] = idx;
  }
  const residualIndices = new Uint32Array(k2 > 0 ? groups * cols : 0);
  const resr = new BitReader(view, off + layout.mainBytes + layout.outlierBytes, layout.residualBits);
  for (let g = 0; g < residualIndices.length; g++) {
    const idx = resr.read();
    if (idx >= k2) throw new Error(`decodeVptq: residual index ${idx} at ${g} exceeds its codebook`);
    residualIndices[g] = idx;
  }
  return new VptqLayer({
    rows,
    cols,
    v,
    codebook,
    residualCodebook,
    outlierCodebook,
    outlierIds,
    indices,
    residualIndices,
    codebookFormat: format,
  });
}

/** The body of an entropy-coded layer (flags bit 1), after its header. */
function decodeEntropyCoded(
  dv: DataView,
  h: { rows: number; cols: number; v: number; k: number; k2: number; o: number; format: CodebookFormat },
): VptqLayer {
  const { rows, cols, v, k, format } = h;
  if (h.k2 !== 0 || h.o !== 0) throw new Error(`decodeVptq: an entropy-coded layer has residual k ${h.k2} and ${h.o} outliers, expected 0`);
  const vb = format === "f32" ? 4 : 2;
  const tableEnd = VPTQ_HEADER_BYTES + k * v * vb + 2 * k;
  if (dv.byteLength < tableEnd + 4) {
    throw new Error(`decodeVptq: length ${dv.byteLength} bytes ends inside the codebook or frequency table`);
  }
  const codebook = readCodebook(dv, VPTQ_HEADER_BYTES, k * v, format);
  const freqs = new Uint16Array(k);
  for (let c = 0; c < k; c++) freqs[c] = dv.getUint16(VPTQ_HEADER_BYTES + k * v * vb + 2 * c, true);
  const streamBytes = dv.getUint32(tableEnd, true);
  if (dv.byteLength !== tableEnd + 4 + streamBytes) {
    throw new Error(`decodeVptq: length ${dv.byteLength} bytes, header implies ${tableEnd + 4 + streamBytes} (truncated or corrupt)`);
  }
  const stream = new Uint8Array(dv.buffer, dv.byteOffset + tableEnd + 4, streamBytes);
  let indices: Uint32Array;
  try {
    indices = ransDecode(stream, Math.ceil(rows / v) * cols, freqs);
  } catch (e) {
    throw new Error(`decodeVptq: entropy-coded indices: ${(e as Error).message}`);
  }
  return new VptqLayer({
    rows,
    cols,
    v,
    codebook,
    residualCodebook: new Float32Array(0),
    outlierCodebook: new Float32Array(0),
    outlierIds: new Int32Array(0),
    indices,
    residualIndices: new Uint32Array(0),
    codebookFormat: format,
    entropyCoded: true,
  });
}

// ---------------------------------------------------------------------------------------------
// Compression

/** Outlier column count from a count (integer >= 1) or a fraction in (0, 1). */
function outlierCount(spec: number, cols: number): number {
  if (!(spec >= 0) || (spec >= 1 && !Number.isInteger(spec))) {
    throw new Error(`vptqCompress: outlierColumns must be an integer count >= 0 or a fraction in (0, 1), got ${spec}`);
  }
  const o = spec < 1 ? Math.round(spec * cols) : spec;
  if (o >= cols) throw new Error(`vptqCompress: outlierColumns ${spec} leaves no ordinary columns out of ${cols}`);
  return o;
}

/** The `count` columns with the largest L2 norms, ascending (ties go to the lower id). */
export function largestNormColumns(m: Matrix, count: number): Int32Array {
  const norms = new Float64Array(m.cols);
  for (let r = 0; r < m.rows; r++) {
    const o = r * m.cols;
    for (let n = 0; n < m.cols; n++) norms[n] += m.data[o + n] * m.data[o + n];
  }
  const order = Array.from({ length: m.cols }, (_, n) => n).sort((a, b) => norms[b] - norms[a] || a - b);
  return Int32Array.from(order.slice(0, count)).sort();
}

/**
 * Sub-vectors of the given columns as points [groups * columns.length, v] (group-major), with
 * per-coordinate weights (h, or 1; 0 on the zero padding) when a Hessian or padding needs them.
 */
function gatherPoints(data: Float32Array, rows: number, cols: number, v: number, columns: Int32Array, hessian?: Float32Array) {
  const groups = Math.ceil(rows / v);
  const nc = columns.length;
  const points = new Float32Array(groups * nc * v);
  const weighted = hessian !== undefined || rows % v !== 0;
  const weights = weighted ? new Float32Array(points.length) : undefined;
  for (let j = 0; j < groups; j++) {
    for (let i = 0; i < nc; i++) {
      const p = (j * nc + i) * v;
      for (let t = 0; t < v; t++) {
        const r = j * v + t;
        if (r >= rows) continue;
        points[p + t] = data[r * cols + columns[i]];
        if (weights) weights[p + t] = hessian ? hessian[r] : 1;
      }
    }
  }
  return { points, weights };
}

/** Rows `pick` of points [m, v] (all of them when `pick` is undefined). */
function rowsOf(points: Float32Array, v: number, pick: Int32Array | undefined): Float32Array {
  if (!pick) return points;
  const out = new Float32Array(pick.length * v);
  for (let i = 0; i < pick.length; i++) out.set(points.subarray(pick[i] * v, pick[i] * v + v), i * v);
  return out;
}

/**
 * Quantizes `points` with a k-entry codebook stored in `format`; returns the codebook and indices.
 * With `sample` below the point count, k-means trains on a seeded sample and every point is then
 * assigned to its nearest stored centroid.
 */
function quantize(points: Float32Array, weights: Float32Array | undefined, v: number, k: number, opts: {
  iterations: number;
  tolerance: number;
  seed: number;
  format: CodebookFormat;
  sample: number;
}): { codebook: Float32Array; assignments: Uint32Array } {
  const m = points.length / v;
  const pick = opts.sample < m ? new Rng(deriveSeed(opts.seed, "sample")).permutation(m).subarray(0, opts.sample).sort() : undefined;
  const res = kmeans(rowsOf(points, v, pick), v, {
    k,
    iterations: opts.iterations,
    tolerance: opts.tolerance,
    seed: opts.seed,
    weights: weights && rowsOf(weights, v, pick),
  });
  roundCodebook(res.codebook, opts.format);
  const kk = res.codebook.length / v;
  let assignments = res.assignments;
  if (pick) assignments = new Uint32Array(m);
  if (pick || opts.format !== "f32") assignNearest(points, v, res.codebook, kk, weights, assignments, new Float64Array(m));
  return { codebook: res.codebook, assignments };
}

/** Serialized bits per weight of an entropy-coded layer's fixed parts with `used` centroids. */
function entropyOverheadBits(used: number, v: number, format: CodebookFormat, weights: number): number {
  const vb = format === "f32" ? 4 : 2;
  return ((VPTQ_HEADER_BYTES + used * v * vb + 2 * used + 4 + 4) * 8) / weights; // + the 4-byte rANS state
}

/** Compresses W [K, N] by VPTQ (see the module doc). */
export function vptqCompress(m: Matrix, settings: VptqSettings, opts: VptqOptions = {}): VptqLayer {
  const { rows, cols, data } = m;
  checkInt("rows", rows, 1);
  checkInt("cols", cols, 1);
  if (data.length !== rows * cols) throw new Error(`vptqCompress: data length ${data.length} is not rows * cols = ${rows * cols}`);
  const { v, k } = settings;
  checkInt("v", v, 1);
  checkInt("k", k, 1, VPTQ_MAX_K);
  const residualK = settings.residualK ?? 0;
  checkInt("residualK", residualK, 0, VPTQ_MAX_K);
  const o = outlierCount(settings.outlierColumns ?? 0, cols);
  const outlierK = settings.outlierK ?? k;
  checkInt("outlierK", outlierK, 1, VPTQ_MAX_K);
  const iterations = settings.iterations ?? 25;
  checkInt("iterations", iterations, 0);
  const tolerance = settings.tolerance ?? 1e-4;
  if (!(tolerance >= 0)) throw new Error(`vptqCompress: tolerance must be >= 0, got ${tolerance}`);
  const seed = settings.seed ?? 0;
  checkInt("seed", seed, 0);
  const format = settings.codebookFormat ?? "f16";
  if (format !== "f16" && format !== "f32") throw new Error(`vptqCompress: codebookFormat must be "f16" or "f32", got ${format}`);
  const { hessian } = opts;
  if (hessian) {
    if (hessian.length !== rows) throw new Error(`vptqCompress: hessian length ${hessian.length}, expected rows = ${rows}`);
    for (let i = 0; i < rows; i++) {
      if (!(hessian[i] >= 0 && Number.isFinite(hessian[i]))) {
        throw new Error(`vptqCompress: hessian[${i}] = ${hessian[i]} is not finite and >= 0`);
      }
    }
  }
  const entropyBits = settings.entropyBits ?? 0;
  if (!(entropyBits >= 0)) throw new Error(`vptqCompress: entropyBits must be >= 0, got ${entropyBits}`);
  if (entropyBits > 0 && (residualK > 0 || o > 0)) {
    throw new Error("vptqCompress: entropyBits (entropy-coded indices) needs residualK = 0 and outlierColumns = 0");
  }
  const sample = settings.trainingVectors ?? (entropyBits > 0 ? 131072 : Number.MAX_SAFE_INTEGER);
  checkInt("trainingVectors", sample, 1);
  const groups = Math.ceil(rows / v);
  if (entropyBits > 0) {
    const all = Int32Array.from({ length: cols }, (_, n) => n);
    const { points, weights } = gatherPoints(data, rows, cols, v, all, hessian);
    const ec = ecKmeans(points, v, {
      k,
      targetBits: entropyBits,
      overheadBits: (used) => entropyOverheadBits(used, v, format, rows * cols),
      iterations: settings.iterations ?? 40,
      sample,
      seed: deriveSeed(seed, "vptq/ecvq"),
      weights,
      round: (cb) => {
        for (let i = 0; format === "f16" && i < cb.length; i++) cb[i] = fromHalfBits(toHalfBits(cb[i]));
        for (let i = 0; format === "f32" && i < cb.length; i++) cb[i] = Math.fround(cb[i]);
      },
    });
    return new VptqLayer(
      {
        rows,
        cols,
        v,
        codebook: Float32Array.from(ec.codebook),
        residualCodebook: new Float32Array(0),
        outlierCodebook: new Float32Array(0),
        outlierIds: new Int32Array(0),
        indices: ec.assignments, // points are group-major over all columns: exactly the [K / v, N] layout
        residualIndices: new Uint32Array(0),
        codebookFormat: format,
        entropyCoded: true,
      },
      { iterations: settings.iterations ?? 40, seed, hessian: hessian !== undefined, entropyBits, lambda: ec.lambda },
    );
  }
  const outlierIds = largestNormColumns(m, o);
  const isOut = new Uint8Array(cols);
  for (const id of outlierIds) isOut[id] = 1;
  const mainCols = Int32Array.from({ length: cols }, (_, n) => n).filter((n) => !isOut[n]);
  const common = { iterations, tolerance, format, sample };
  const indices = new Uint32Array(groups * cols);
  const recon = new Float32Array(rows * cols);
  const place = (columns: Int32Array, cb: Float32Array, a: Uint32Array) => {
    for (let j = 0; j < groups; j++) {
      for (let i = 0; i < columns.length; i++) {
        const n = columns[i];
        const idx = a[j * columns.length + i];
        indices[j * cols + n] = idx;
        for (let t = 0; t < v && j * v + t < rows; t++) recon[(j * v + t) * cols + n] = cb[idx * v + t];
      }
    }
  };
  const main = gatherPoints(data, rows, cols, v, mainCols, hessian);
  const q = quantize(main.points, main.weights, v, k, { ...common, seed: deriveSeed(seed, "vptq/main") });
  place(mainCols, q.codebook, q.assignments);
  let outlierCodebook: Float32Array = new Float32Array(0);
  if (o > 0) {
    const out = gatherPoints(data, rows, cols, v, outlierIds, hessian);
    const qo = quantize(out.points, out.weights, v, outlierK, { ...common, seed: deriveSeed(seed, "vptq/outlier") });
    place(outlierIds, qo.codebook, qo.assignments);
    outlierCodebook = qo.codebook;
  }
  let residualCodebook: Float32Array = new Float32Array(0);
  let residualIndices: Uint32Array = new Uint32Array(0);
  if (residualK > 0) {
    const resid = new Float32Array(rows * cols);
    for (let i = 0; i < resid.length; i++) resid[i] = data[i] - recon[i];
    const all = Int32Array.from({ length: cols }, (_, n) => n);
    const r = gatherPoints(resid, rows, cols, v, all, hessian);
    const qr = quantize(r.points, r.weights, v, residualK, { ...common, seed: deriveSeed(seed, "vptq/residual") });
    residualCodebook = qr.codebook;
    residualIndices = qr.assignments;
  }
  return new VptqLayer(
    {
      rows,
      cols,
      v,
      codebook: q.codebook,
      residualCodebook,
      outlierCodebook,
      outlierIds,
      indices,
      residualIndices,
      codebookFormat: format,
    },
    { iterations, tolerance, seed, hessian: hessian !== undefined },
  );
}

function checkInt(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`vptq: ${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}
