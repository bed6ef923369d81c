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
 * are the ones used to reconstruct, so decoding the bytes gives the same matrix.
 */
import { deriveSeed, Rng } from "../util/rng.ts";
import type { CompressedLayer, Matrix } from "./types.ts";

/** The largest codebook size (indices are packed at up to 20 bits). */
export const VPTQ_MAX_K = 1 << 20;
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
// k-means

/** Settings of `kmeans`. */
export interface KmeansOptions {
  /** Number of centroids (required, >= 1). */
  k: number;
  /** Most Lloyd iterations (default 25). */
  iterations?: number;
  /** Stop once the distortion improves by less than this fraction (default 1e-4). */
  tolerance?: number;
  /** Seed of the k-means++ draws (default 0). */
  seed?: number;
  /** Per-coordinate weights [m, v], >= 0 (default: all ones). */
  weights?: Float32Array;
}

/** What `kmeans` found. */
export interface KmeansResult {
  /** Centroids [k, v]. */
  codebook: Float32Array;
  /** Nearest centroid of each point [m]. */
  assignments: Uint32Array;
  /** Mean (weighted) squared error per coordinate after seeding, then after each Lloyd iteration. */
  history: number[];
}

/** Bounds are trusted only with this relative margin, against rounding. */
const BOUND_MARGIN = 1 - 1e-9;
/** Above this many centroids the O(k^2) neighbor lists are not built and scans visit every centroid. */
const NEIGHBOR_MAX_K = 1024;

/** Squared (weighted) distance between point row i of `points` and row c of `cb`. */
function pointDist(points: Float32Array, i: number, v: number, cb: Float64Array, c: number, weights: Float32Array | undefined): number {
  let s = 0;
  const p = i * v;
  const q = c * v;
  if (weights) {
    for (let t = 0; t < v; t++) {
      const d = points[p + t] - cb[q + t];
      s += weights[p + t] * d * d;
    }
  } else {
    for (let t = 0; t < v; t++) {
      const d = points[p + t] - cb[q + t];
      s += d * d;
    }
  }
  return s;
}

/** sqrt(min_t w_t) of point i: its weighted norm is at least this times the Euclidean one. */
function sqrtMinWeight(weights: Float32Array | undefined, i: number, v: number): number {
  if (!weights) return 1;
  let lo = Infinity;
  for (let t = 0; t < v; t++) lo = Math.min(lo, weights[i * v + t]);
  return Math.sqrt(lo);
}

/** For every centroid, the other centroids by increasing Euclidean distance ([k, k - 1] each). */
interface Neighbors {
  order: Uint32Array;
  dist: Float64Array;
}

function buildNeighbors(cb: Float64Array, v: number, k: number): Neighbors | undefined {
  if (k > NEIGHBOR_MAX_K || k < 2) return undefined;
  const all = new Float64Array(k * k);
  for (let c = 0; c < k; c++) {
    for (let e = c + 1; e < k; e++) {
      let s = 0;
      for (let t = 0; t < v; t++) s += (cb[c * v + t] - cb[e * v + t]) ** 2;
      all[c * k + e] = all[e * k + c] = Math.sqrt(s);
    }
  }
  const order = new Uint32Array(k * (k - 1));
  const dist = new Float64Array(k * (k - 1));
  const ids = new Uint32Array(k - 1);
  for (let c = 0; c < k; c++) {
    for (let e = 0, n = 0; e < k; e++) if (e !== c) ids[n++] = e;
    const row = all.subarray(c * k, (c + 1) * k);
    ids.sort((x, y) => row[x] - row[y]);
    order.set(ids, c * (k - 1));
    for (let r = 0; r < k - 1; r++) dist[c * (k - 1) + r] = row[ids[r]];
  }
  return { order, dist };
}

/**
 * Finds the nearest centroid of point i, starting from centroid `start` at squared distance
 * `startD`; ties keep `start`. With neighbor lists it visits centroids by distance from `start`
 * and stops where the triangle inequality rules the rest out (no closer than `start`); distances
 * stop accumulating once past the second-nearest so far. Writes the nearest index to `out[0]`,
 * its squared distance to `out[1]`, and a lower bound on the distance (not squared) to every
 * other centroid to `out[2]`. `wMin` is the point's `sqrtMinWeight`.
 */
function scanPoint(
  points: Float32Array,
  i: number,
  v: number,
  cb: Float64Array,
  k: number,
  weights: Float32Array | undefined,
  nb: Neighbors | undefined,
  wMin: number,
  start: number,
  startD: number,
  out: Float64Array,
): void {
  const p = i * v;
  let best = start;
  let bestD = startD;
  let second = Infinity;
  let rest = Infinity;
  const pruned = nb !== undefined && wMin > 0;
  const u = Math.sqrt(startD);
  const limit = (2 * u) / wMin;
  const row = start * (k - 1);
  for (let r = 0; r < k - 1 || (!pruned && r < k); r++) {
    let j = r;
    if (pruned) {
      const dc = nb.dist[row + r];
      if (dc * BOUND_MARGIN >= limit) {
        rest = wMin * dc - u;
        break;
      }
      j = nb.order[row + r];
    } else if (j === start) continue;
    const c = j * v;
    let d2 = 0;
    if (weights) {
      for (let t = 0; t < v && d2 < second; t++) {
        const d = points[p + t] - cb[c + t];
        d2 += weights[p + t] * d * d;
      }
    } else {
      for (let t = 0; t < v && d2 < second; t++) {
        const d = points[p + t] - cb[c + t];
        d2 += d * d;
      }
    }
    if (d2 < bestD) {
      second = bestD;
      bestD = d2;
      best = j;
    } else if (d2 < second) {
      second = d2;
    }
  }
  out[0] = best;
  out[1] = bestD;
  out[2] = Math.min(Math.sqrt(second), rest);
}

/**
 * Assigns every point to its nearest centroid (exactly; ties keep the current assignment),
 * writing each point's (weighted) squared distance into `dist`; returns the total distortion.
 */
export function assignNearest(
  points: Float32Array,
  v: number,
  codebook: ArrayLike<number>,
  k: number,
  weights: Float32Array | undefined,
  assignments: Uint32Array,
  dist: Float64Array,
): number {
  const cb = Float64Array.from(codebook);
  const nb = buildNeighbors(cb, v, k);
  const out = new Float64Array(3);
  let total = 0;
  for (let i = 0; i < assignments.length; i++) {
    const a = assignments[i];
    scanPoint(points, i, v, cb, k, weights, nb, sqrtMinWeight(weights, i, v), a, pointDist(points, i, v, cb, a, weights), out);
    assignments[i] = out[0];
    dist[i] = out[1];
    total += out[1];
  }
  return total;
}

/**
 * k-means++ seeding: the first centroid is a uniformly drawn point, each next one a point drawn
 * with probability proportional to its (weighted) squared distance to the nearest chosen
 * centroid. Once every point sits on a centroid, the remaining centroids repeat point 0.
 * `nearest` [m], when given, receives each point's nearest centroid.
 */
export function kmeansPlusPlus(
  points: Float32Array,
  v: number,
  k: number,
  rng: Rng,
  weights?: Float32Array,
  nearest?: Uint32Array,
): Float64Array {
  const m = points.length / v;
  if (m < 1) throw new Error("kmeansPlusPlus: no points");
  const cb = new Float64Array(k * v);
  const minD = new Float64Array(m).fill(Infinity);
  let chosen = rng.int(m);
  for (let c = 0; c < k; c++) {
    for (let t = 0; t < v; t++) cb[c * v + t] = points[chosen * v + t];
    let total = 0;
    for (let i = 0; i < m; i++) {
      const d = pointDist(points, i, v, cb, c, weights);
      if (d < minD[i]) {
        minD[i] = d;
        if (nearest) nearest[i] = c;
      }
      total += minD[i];
    }
    if (c === k - 1) break;
    if (!(total > 0)) {
      chosen = 0;
      continue;
    }
    let r = rng.next() * total;
    for (let i = 0; i < m; i++) {
      if (minD[i] <= 0) continue;
      chosen = i;
      r -= minD[i];
      if (r < 0) break;
    }
  }
  return cb;
}

/**
 * One exact assignment pass with Hamerly's bounds: `lower[i]` bounds the distance from point i
 * to every centroid but its own; after the centroids moved by `move` (Euclidean, scaled into the
 * point's weighted norm by `wMax`) a point whose distance to its own centroid is within that
 * bound, or within half its centroid's distance to the nearest other one, keeps it without a scan.
 * Pass `move` undefined to scan every point. Returns the total distortion.
 */
function assignBounded(
  points: Float32Array,
  v: number,
  cb: Float64Array,
  k: number,
  weights: Float32Array | undefined,
  a: Uint32Array,
  dist: Float64Array,
  lower: Float64Array,
  wMax: Float64Array,
  wMin: Float64Array,
  move: Float64Array | undefined,
): number {
  let top = 0;
  let topC = -1;
  let next = 0;
  if (move) {
    for (let c = 0; c < k; c++) {
      if (move[c] > top) {
        next = top;
        top = move[c];
        topC = c;
      } else if (move[c] > next) next = move[c];
    }
  }
  const nb = buildNeighbors(cb, v, k);
  const out = new Float64Array(3);
  let total = 0;
  for (let i = 0; i < a.length; i++) {
    const ai = a[i];
    const d = pointDist(points, i, v, cb, ai, weights);
    if (move) {
      const l = lower[i] - wMax[i] * (ai === topC ? next : top);
      const bound = nb ? Math.max(l, (wMin[i] * nb.dist[ai * (k - 1)]) / 2) : l;
      if (Math.sqrt(d) <= bound * BOUND_MARGIN) {
        lower[i] = l;
        dist[i] = d;
        total += d;
        continue;
      }
    }
    scanPoint(points, i, v, cb, k, weights, nb, wMin[i], ai, d, out);
    a[i] = out[0];
    dist[i] = out[1];
    lower[i] = out[2];
    total += out[1];
  }
  return total;
}

/**
 * Lloyd's algorithm from a k-means++ seeding: alternate nearest-centroid assignment (exact,
 * accelerated by Hamerly's bounds and triangle-inequality pruning) and (weighted) mean updates
 * until the distortion improves by less than `tolerance` or `iterations` run out. An emptied
 * centroid moves onto the worst-served point, so the distortion never increases.
 */
export function kmeans(points: Float32Array, v: number, opts: KmeansOptions): KmeansResult {
  checkInt("v", v, 1);
  checkInt("k", opts.k, 1, VPTQ_MAX_K);
  const iterations = opts.iterations ?? 25;
  checkInt("iterations", iterations, 0);
  const tolerance = opts.tolerance ?? 1e-4;
  if (!(tolerance >= 0)) throw new Error(`kmeans: tolerance must be >= 0, got ${tolerance}`);
  if (points.length % v !== 0) throw new Error(`kmeans: points length ${points.length} is not a multiple of v = ${v}`);
  const { k, weights } = opts;
  if (weights && weights.length !== points.length) {
    throw new Error(`kmeans: weights length ${weights.length} differs from points length ${points.length}`);
  }
  const m = points.length / v;
  const a = new Uint32Array(m);
  const cb = kmeansPlusPlus(points, v, k, new Rng(opts.seed ?? 0), weights, a);
  const dist = new Float64Array(m);
  const lower = new Float64Array(m);
  const wMin = new Float64Array(m);
  const wMax = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    wMin[i] = sqrtMinWeight(weights, i, v);
    let hi = weights ? 0 : 1;
    for (let t = 0; weights && t < v; t++) hi = Math.max(hi, weights[i * v + t]);
    wMax[i] = Math.sqrt(hi);
  }
  const scale = 1 / (m * v);
  let d = assignBounded(points, v, cb, k, weights, a, dist, lower, wMax, wMin, undefined);
  const history = [d * scale];
  const sums = new Float64Array(k * v);
  const wsums = new Float64Array(k * v);
  const counts = new Uint32Array(k);
  const prev = new Float64Array(k * v);
  const move = new Float64Array(k);
  for (let it = 0; it < iterations && d > 0; it++) {
    prev.set(cb);
    updateCentroids(points, v, k, weights, a, dist, cb, sums, wsums, counts);
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let t = 0; t < v; t++) s += (cb[c * v + t] - prev[c * v + t]) ** 2;
      move[c] = Math.sqrt(s);
    }
    const next = assignBounded(points, v, cb, k, weights, a, dist, lower, wMax, wMin, move);
    history.push(next * scale);
    const improved = d - next;
    d = next;
    if (improved <= tolerance * (d + improved)) break;
  }
  return { codebook: Float32Array.from(cb), assignments: a, history };
}

/** The (weighted) mean update; emptied centroids move onto the worst-served points. */
function updateCentroids(
  points: Float32Array,
  v: number,
  k: number,
  weights: Float32Array | undefined,
  a: Uint32Array,
  dist: Float64Array,
  cb: Float64Array,
  sums: Float64Array,
  wsums: Float64Array,
  counts: Uint32Array,
): void {
  sums.fill(0);
  wsums.fill(0);
  counts.fill(0);
  const m = a.length;
  for (let i = 0; i < m; i++) {
    const p = i * v;
    const c = a[i] * v;
    counts[a[i]]++;
    for (let t = 0; t < v; t++) {
      const w = weights ? weights[p + t] : 1;
      sums[c + t] += w * points[p + t];
      wsums[c + t] += w;
    }
  }
  for (let c = 0; c < k; c++) {
    if (counts[c] === 0) {
      let worst = -1;
      for (let i = 0; i < m; i++) if (dist[i] > 0 && (worst < 0 || dist[i] > dist[worst])) worst = i;
      if (worst < 0) continue;
      for (let t = 0; t < v; t++) cb[c * v + t] = points[worst * v + t];
      dist[worst] = 0;
      continue;
    }
    for (let t = 0; t < v; t++) {
      const w = wsums[c * v + t];
      if (w > 0) cb[c * v + t] = sums[c * v + t] / w;
    }
  }
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
    this.settings = {
      v,
      k: this.k,
      residualK: this.residualK,
      outlierColumns: parts.outlierIds.length,
      outlierK: this.outlierK,
      codebookFormat: parts.codebookFormat,
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
   */
  encode(): Uint8Array {
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
  if (flags > 1) throw new Error(`decodeVptq: unknown flags 0x${flags.toString(16)}`);
  const format: CodebookFormat = flags & 1 ? "f32" : "f16";
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

/** Quantizes `points` with a k-entry codebook stored in `format`; returns the codebook and indices. */
function quantize(points: Float32Array, weights: Float32Array | undefined, v: number, k: number, opts: {
  iterations: number;
  tolerance: number;
  seed: number;
  format: CodebookFormat;
}): { codebook: Float32Array; assignments: Uint32Array } {
  const res = kmeans(points, v, { k, iterations: opts.iterations, tolerance: opts.tolerance, seed: opts.seed, weights });
  roundCodebook(res.codebook, opts.format);
  if (opts.format !== "f32") assignNearest(points, v, res.codebook, k, weights, res.assignments, new Float64Array(res.assignments.length));
  return { codebook: res.codebook, assignments: res.assignments };
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
  const groups = Math.ceil(rows / v);
  const outlierIds = largestNormColumns(m, o);
  const isOut = new Uint8Array(cols);
  for (const id of outlierIds) isOut[id] = 1;
  const mainCols = Int32Array.from({ length: cols }, (_, n) => n).filter((n) => !isOut[n]);
  const common = { iterations, tolerance, format };
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
