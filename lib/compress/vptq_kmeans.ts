/**
 * k-means for VPTQ codebooks: k-means++ seeding and Lloyd iterations with exact nearest-centroid
 * assignment (Hamerly's bounds plus triangle-inequality pruning over per-centroid neighbor
 * lists), optionally weighted per coordinate (a diagonal Hessian). Split out of `vptq.ts`,
 * which re-exports it.
 */
import { Rng } from "../util/rng.ts";

/** The largest codebook size (indices are packed at up to 20 bits). */
export const VPTQ_MAX_K = 1 << 20;

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

function checkInt(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`vptq: ${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}
