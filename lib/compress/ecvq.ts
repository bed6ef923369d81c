/**
 * Entropy-constrained vector quantization (ECVQ; Chou, Lookabaugh and Gray 1989): k-means
 * whose assignment minimizes distortion + lambda * code length, so the indices can be
 * entropy coded (`rans.ts`) at a rate set by lambda rather than by log2 k.
 *
 * Per point x the cost of centroid c is ||x - c||^2_w + lambda * l_c with l_c = -log2 p_c
 * and p_c the share of points assigned to c in the previous pass; the update is the
 * (weighted) mean, so every Lloyd pass lowers D + lambda R for a fixed lambda; centroids the
 * rate does not pay for lose their points (the codebook shrinks to what it needs).
 *
 * Rate control: lambda starts at the high-resolution slope -dD/dR = 2 ln 2 D(R) ~ 2 sigma^2
 * 2^(-2R) (the constant measured to land near the target on Gaussian data at v = 2 to 4);
 * whenever the rate has settled (it moved by less than 0.01 bit in a pass) and is off target,
 * lambda takes a high-resolution step, times 2^(2 (rate - target)) clamped to [0.67, 1.5],
 * except in the last eighth of the passes. `rate` counts the entropy of the indices plus
 * `overheadBits(used)` (the codebook and frequency table), so the target is the layer's
 * serialized bits per weight.
 * Code lengths count every centroid with a pseudo-count of 1/2, so an emptied one keeps a
 * finite length; the centroids no point uses at the end are dropped.
 *
 * Speed: training runs on a seeded sample of at most `sample` points, then every point is
 * assigned once. Assignment visits centroids by increasing code length and stops as soon as
 * lambda * l_c alone exceeds the best cost so far, with partial distances cut at that cost.
 */
import { Rng } from "../util/rng.ts";
import { kmeansPlusPlus } from "./vptq_kmeans.ts";

/** Settings of `ecKmeans`. */
export interface EcKmeansOptions {
  /** Most centroids (k-means++ seeds this many; unused ones are dropped). */
  k: number;
  /** Target bits per coordinate: index entropy / (points * v) plus overheadBits(used). */
  targetBits: number;
  /** Bits per coordinate that storing `used` centroids costs (default 0). */
  overheadBits?: (used: number) => number;
  /** Lloyd passes on the sample (default 40); lambda adapts in all but the last 8. */
  iterations?: number;
  /** Training points sampled (default 131072; all when there are fewer). */
  sample?: number;
  /** Seed of the sample and the k-means++ draws (default 0). */
  seed?: number;
  /** Per-coordinate weights [m, v] >= 0 (default all ones). */
  weights?: Float32Array;
  /** Applied to the trained centroids before the final assignment (e.g. rounding to what is stored). */
  round?: (codebook: Float64Array) => void;
}

/** What `ecKmeans` found. */
export interface EcKmeansResult {
  /** Centroids in use [k', v]. */
  codebook: Float64Array;
  /** Centroid of every point [m]. */
  assignments: Uint32Array;
  /** The final lambda. */
  lambda: number;
  /** Per pass on the sample: the rate (bits per coordinate, overhead included) and distortion (per coordinate). */
  history: { rate: number; distortion: number; used: number }[];
}

/** Pseudo-count of every centroid in its code length: an emptied centroid keeps a finite length and can win points back. */
const PSEUDO_COUNT = 0.5;

/** Code lengths -log2((count + 1/2) / (total + k/2)) and the centroid order by increasing length. */
function codeLengths(counts: Float64Array): { len: Float64Array; order: Uint32Array } {
  const k = counts.length;
  const total = counts.reduce((a, b) => a + b, 0) + PSEUDO_COUNT * k;
  const len = Float64Array.from(counts, (c) => -Math.log2((c + PSEUDO_COUNT) / total));
  const order = Uint32Array.from({ length: k }, (_, c) => c).sort((a, b) => len[a] - len[b] || a - b);
  return { len, order };
}

/**
 * Assigns points to argmin_c d_w(x, c) + lambda l_c (ties to the earlier centroid in `order`),
 * starting each search from the point's previous centroid `a[i]` when `warm`. Returns the summed
 * distortion; `counts` receives the new assignment counts.
 */
export function assignEntropy(
  points: Float32Array,
  v: number,
  cb: Float64Array,
  len: Float64Array,
  order: Uint32Array,
  lambda: number,
  weights: Float32Array | undefined,
  a: Uint32Array,
  warm: boolean,
  counts: Float64Array,
): number {
  counts.fill(0);
  let total = 0;
  const k = order.length;
  for (let i = 0; i < a.length; i++) {
    const p = i * v;
    let best = -1, bestCost = Infinity, bestD = 0;
    if (warm && Number.isFinite(len[a[i]])) {
      best = a[i];
      bestD = dist(points, p, cb, best * v, v, weights, Infinity);
      bestCost = bestD + lambda * len[best];
    }
    for (let r = 0; r < k; r++) {
      const c = order[r];
      const rate = lambda * len[c];
      if (!(rate < bestCost)) break; // every later centroid costs at least this much in rate alone
      if (c === best) continue;
      const d = dist(points, p, cb, c * v, v, weights, bestCost - rate);
      if (d + rate < bestCost) {
        best = c;
        bestCost = d + rate;
        bestD = d;
      }
    }
    a[i] = best;
    counts[best]++;
    total += bestD;
  }
  return total;
}

/** Weighted squared distance between point row p and centroid row q, abandoned once it reaches `cut`. */
function dist(points: Float32Array, p: number, cb: Float64Array, q: number, v: number, w: Float32Array | undefined, cut: number): number {
  let s = 0;
  for (let t = 0; t < v && s < cut; t++) {
    const d = points[p + t] - cb[q + t];
    s += (w ? w[p + t] : 1) * d * d;
  }
  return s;
}

/** ECVQ training and assignment (see the module doc). */
export function ecKmeans(points: Float32Array, v: number, opts: EcKmeansOptions): EcKmeansResult {
  if (!Number.isInteger(v) || v < 1) throw new Error(`ecKmeans: v must be a positive integer, got ${v}`);
  if (!Number.isInteger(opts.k) || opts.k < 1) throw new Error(`ecKmeans: k must be a positive integer, got ${opts.k}`);
  if (!(opts.targetBits > 0)) throw new Error(`ecKmeans: targetBits must be > 0, got ${opts.targetBits}`);
  const iterations = opts.iterations ?? 40;
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`ecKmeans: iterations must be an integer >= 1, got ${iterations}`);
  const sampleMax = opts.sample ?? 131072;
  if (!Number.isInteger(sampleMax) || sampleMax < 1) throw new Error(`ecKmeans: sample must be an integer >= 1, got ${sampleMax}`);
  const m = points.length / v;
  if (!Number.isInteger(m) || m < 1) throw new Error(`ecKmeans: ${points.length} values are not a positive multiple of v = ${v}`);
  const { weights } = opts;
  if (weights && weights.length !== points.length) throw new Error(`ecKmeans: weights length ${weights.length}, expected ${points.length}`);
  const overhead = opts.overheadBits ?? (() => 0);
  const rng = new Rng(opts.seed ?? 0);

  // The training sample [s, v] (all points, in order, when there are few enough).
  const s = Math.min(m, sampleMax);
  const pick = s === m ? undefined : rng.permutation(m).subarray(0, s).sort();
  const gather = (src: Float32Array) => {
    if (!pick) return src;
    const out = new Float32Array(s * v);
    for (let i = 0; i < s; i++) out.set(src.subarray(pick[i] * v, pick[i] * v + v), i * v);
    return out;
  };
  const sp = gather(points);
  const sw = weights ? gather(weights) : undefined;
  const k = Math.min(opts.k, s);
  const cb = kmeansPlusPlus(sp, v, k, rng, sw);

  let sq = 0, wsum = 0;
  for (let i = 0; i < sp.length; i++) {
    const w = sw ? sw[i] : 1;
    sq += w * sp[i] * sp[i];
    wsum += w;
  }
  const sigma2 = wsum > 0 ? sq / wsum : 0;
  let lambda = 2 * sigma2 * 2 ** (-2 * opts.targetBits); // the slope -dD/dR at the target (per coordinate and per point alike)
  const counts = new Float64Array(k);
  let { len, order } = codeLengths(counts);
  const a = new Uint32Array(s);
  const history: EcKmeansResult["history"] = [];
  let lastCorrection = 0;
  const sums = new Float64Array(k * v), wsums = new Float64Array(k * v);
  for (let it = 0; it < iterations; it++) {
    const d = assignEntropy(sp, v, cb, len, order, lambda, sw, a, it > 0, counts);
    // Weighted means; an empty centroid stays where it is.
    sums.fill(0);
    wsums.fill(0);
    for (let i = 0; i < s; i++) {
      const c = a[i];
      for (let t = 0; t < v; t++) {
        const w = sw ? sw[i * v + t] : 1;
        sums[c * v + t] += w * sp[i * v + t];
        wsums[c * v + t] += w;
      }
    }
    for (let j = 0; j < k * v; j++) if (wsums[j] > 0) cb[j] = sums[j] / wsums[j];
    let used = 0;
    for (let c = 0; c < k; c++) if (counts[c] > 0) used++;
    const rate = entropyOf(counts, s) / (s * v) + overhead(used);
    history.push({ rate, distortion: d / (s * v), used });
    ({ len, order } = codeLengths(counts));
    // Once the rate has settled (moved < 0.01 bit in a pass, 3+ passes since the last step), a high-resolution step.
    const settled = it > 0 && Math.abs(rate - history[it - 1].rate) < 0.01 && it - lastCorrection >= 3;
    if (settled && it < iterations - Math.max(3, iterations / 8) && Math.abs(rate - opts.targetBits) > 0.005) {
      lambda *= Math.min(1.5, Math.max(0.67, 2 ** (2 * (rate - opts.targetBits))));
      lastCorrection = it;
    }
  }

  // Every point, once, under the final (stored) centroids and code lengths; then drop what no point uses.
  opts.round?.(cb);
  const all = new Uint32Array(m);
  const allCounts = new Float64Array(k);
  assignEntropy(points, v, cb, len, order, lambda, weights, all, false, allCounts);
  const remap = new Int32Array(k).fill(-1);
  let used = 0;
  for (let c = 0; c < k; c++) if (allCounts[c] > 0) remap[c] = used++;
  const codebook = new Float64Array(used * v);
  for (let c = 0; c < k; c++) if (remap[c] >= 0) codebook.set(cb.subarray(c * v, c * v + v), remap[c] * v);
  for (let i = 0; i < m; i++) all[i] = remap[all[i]];
  return { codebook, assignments: all, lambda, history };
}

/** Bits of an index stream with these counts over `total` symbols: sum of -count log2(count / total). */
function entropyOf(counts: Float64Array, total: number): number {
  let bits = 0;
  for (const c of counts) if (c > 0) bits -= c * Math.log2(c / total);
  return bits;
}
