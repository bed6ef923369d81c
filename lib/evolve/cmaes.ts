/**
 * CMA-ES, the covariance matrix adaptation evolution strategy, for minimizing a black-box function of a few (<= ~100)
 * real parameters.
 *
 * Each generation samples `lambda` candidates from a multivariate normal N(m, sigma^2 C), ranks them by fitness, and moves
 * the mean `m` to a weighted average of the best `mu` of them. Two evolution paths (exponentially smoothed sums of the
 * mean's steps) drive the adaptation: `ps` sets the step size `sigma` (cumulative step-size adaptation, CSA: lengthen
 * steps when consecutive steps point the same way, shorten them when they cancel), and `pc` together with the selected
 * steps themselves (rank-one and rank-mu updates) learns the covariance `C`, so the search distribution takes the shape
 * of the function's level sets (a rotated, ill-conditioned ellipsoid becomes a sphere to it).
 *
 * Reference: N. Hansen, "The CMA Evolution Strategy: A Tutorial", 2016, arXiv:1604.00772. The formulas and default
 * parameters below are the tutorial's (its Table 1 / Appendix A), with these choices:
 *
 * - The standard (mu/mu_w, lambda) form: positive recombination weights only (no active / negative weights), learning
 *   rate for the mean c_m = 1.
 * - The eigendecomposition C = B D^2 B^T is recomputed after every update with a small cyclic Jacobi routine
 *   ({@link jacobiEigen}): dimensions are small, and it keeps the state exactly `m, sigma, C, pc, ps` (no stale B, D).
 * - Normal samples come from the repo's seeded {@link Rng} (`normal()`, doubles), so a run is a pure function of its seed,
 *   and `state()` / `fromState()` resume it exactly.
 * - Ask/tell: `ask()` returns the generation's candidates; `tell()` takes them back with their fitness in any order (they
 *   are matched to the asked ones by value; ties in fitness are broken by the order they were asked, so the order of
 *   `tell`'s arguments never matters). Calling `ask()` again before `tell()` returns the same outstanding candidates.
 * - Box bounds: by repair and re-injection. A sample outside [lower, upper] is projected (clipped) onto the box; that
 *   clipped point is what the caller evaluates AND what the update uses, with its step capped in Mahalanobis norm at
 *   sqrt(n) + 2n/(n+2) (Hansen 2011, "Injecting external solutions into CMA-ES", also in the tutorial's appendix on
 *   boundaries). Since the mean is a convex combination of feasible points it always stays inside the box, and an optimum
 *   on a bound is approached without the mean drifting off into the infeasible region.
 *
 * @module
 */

import { Rng } from "../util/rng.ts";

/** Options of a {@link Cmaes} search. */
export interface CmaesOptions {
  /** The initial mean (the starting point); its length is the dimension. Clipped into the bounds if given. */
  mean: number[];
  /** The initial step size (standard deviation of every coordinate at the start); about a quarter of the search range. */
  sigma: number;
  /** Candidates per generation (lambda); default 4 + floor(3 ln n). At least 2. */
  popsize?: number;
  /** Seed of the normal samples; default 0. */
  seed?: number;
  /** Per-coordinate lower bounds (optional, same length as `mean`). */
  lower?: number[];
  /** Per-coordinate upper bounds (optional, same length as `mean`). */
  upper?: number[];
}

/** Everything a {@link Cmaes} needs to resume exactly; plain JSON (finite numbers, arrays, null). */
export interface CmaesState {
  version: 1;
  mean: number[];
  sigma: number;
  /** The covariance matrix, full and symmetric. */
  C: number[][];
  /** Evolution path of the covariance (rank-one update). */
  pc: number[];
  /** Evolution path of the step size (CSA). */
  ps: number[];
  generation: number;
  lambda: number;
  /** The generator's state after the last draw. */
  rng: number;
  /** Bounds, null when none; an unbounded coordinate is null too (JSON has no Infinity). */
  lower: (number | null)[] | null;
  upper: (number | null)[] | null;
  /** Best point ever told, or null before any finite fitness. */
  best: { x: number[]; f: number } | null;
  /** The unclipped samples of an ask() not yet told, or null. */
  pending: number[][] | null;
}

/** Eigendecomposition of a symmetric matrix: `a = vectors * diag(values) * vectors^T`, eigenvectors in the columns. */
export interface Eigen {
  values: number[];
  /** Orthonormal; column j is the eigenvector of `values[j]`. */
  vectors: number[][];
}

/**
 * Cyclic Jacobi eigenvalue algorithm for a symmetric matrix (only the upper triangle is read). Each rotation zeroes one
 * off-diagonal entry; sweeps repeat until the off-diagonal mass is negligible against the matrix norm. Pure: `a` is not
 * modified. O(n^3) per sweep, typically well under 10 sweeps.
 */
export function jacobiEigen(a: readonly (readonly number[])[]): Eigen {
  const n = a.length;
  const A = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i <= j ? a[i][j] : a[j][i])));
  const V = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j): number => (i === j ? 1 : 0)));
  let norm2 = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) norm2 += A[i][j] * A[i][j];
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += A[p][q] * A[p][q];
    if (off === 0 || off <= 1e-32 * norm2) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p][q];
        if (apq === 0) continue;
        // Rotation angle that zeroes A[p][q]: t = tan(phi), the smaller root of t^2 + 2 theta t - 1 = 0.
        const theta = (A[q][q] - A[p][p]) / (2 * apq);
        const t = Math.abs(theta) > 1e150 ? 1 / (2 * theta) : (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k][p], akq = A[k][q];
          A[k][p] = c * akp - s * akq;
          A[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p][k], aqk = A[q][k];
          A[p][k] = c * apk - s * aqk;
          A[q][k] = s * apk + c * aqk;
        }
        A[p][q] = A[q][p] = 0;
        for (let k = 0; k < n; k++) {
          const vkp = V[k][p], vkq = V[k][q];
          V[k][p] = c * vkp - s * vkq;
          V[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: A.map((row, i) => row[i]), vectors: V };
}

/** Strategy parameters, all fixed by the dimension and lambda (tutorial defaults). */
interface Params {
  mu: number;
  weights: number[];
  mueff: number;
  cc: number;
  cs: number;
  c1: number;
  cmu: number;
  damps: number;
  /** E||N(0, I)||. */
  chiN: number;
}

function defaultParams(n: number, lambda: number): Params {
  const mu = Math.floor(lambda / 2);
  const raw = Array.from({ length: mu }, (_, i) => Math.log((lambda + 1) / 2) - Math.log(i + 1));
  const sum = raw.reduce((s, w) => s + w, 0);
  const weights = raw.map((w) => w / sum);
  const mueff = 1 / weights.reduce((s, w) => s + w * w, 0);
  const cc = (4 + mueff / n) / (n + 4 + (2 * mueff) / n);
  const cs = (mueff + 2) / (n + mueff + 5);
  const c1 = 2 / ((n + 1.3) ** 2 + mueff);
  const cmu = Math.min(1 - c1, (2 * (mueff - 2 + 1 / mueff)) / ((n + 2) ** 2 + mueff));
  const damps = 1 + 2 * Math.max(0, Math.sqrt((mueff - 1) / (n + 1)) - 1) + cs;
  const chiN = Math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));
  return { mu, weights, mueff, cc, cs, c1, cmu, damps, chiN };
}

const norm = (v: readonly number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const key = (x: readonly number[]) => x.join(",");

/** An ask/tell CMA-ES minimizer. See the module doc for the algorithm and the choices made. */
export class Cmaes {
  readonly dim: number;
  readonly lambda: number;
  /** Completed tell() calls. */
  generation = 0;
  readonly #p: Params;
  readonly #rng: Rng;
  readonly #lower: number[] | null;
  readonly #upper: number[] | null;
  #mean: number[];
  #sigma: number;
  #C: number[][];
  #pc: number[];
  #ps: number[];
  /** C = B diag(D)^2 B^T, from {@link jacobiEigen}. */
  #B: number[][] = [];
  #D: number[] = [];
  #best: { x: number[]; f: number } | null = null;
  /** Unclipped samples of the outstanding ask(), or null. */
  #pending: number[][] | null = null;

  constructor(opts: CmaesOptions) {
    const n = opts.mean.length;
    if (n < 1) throw new Error("Cmaes: mean must have at least one coordinate");
    if (!opts.mean.every(Number.isFinite)) throw new Error("Cmaes: mean must be finite");
    if (!(opts.sigma > 0 && Number.isFinite(opts.sigma))) throw new Error(`Cmaes: sigma must be > 0, got ${opts.sigma}`);
    const lambda = opts.popsize ?? 4 + Math.floor(3 * Math.log(n));
    if (!Number.isInteger(lambda) || lambda < 2) throw new Error(`Cmaes: popsize must be an integer >= 2, got ${lambda}`);
    this.#lower = checkBound(opts.lower, n, "lower");
    this.#upper = checkBound(opts.upper, n, "upper");
    if (this.#lower || this.#upper) {
      for (let i = 0; i < n; i++) {
        if (this.#lo(i) > this.#hi(i)) throw new Error(`Cmaes: lower[${i}] = ${this.#lo(i)} > upper[${i}] = ${this.#hi(i)}`);
      }
    }
    this.dim = n;
    this.lambda = lambda;
    this.#p = defaultParams(n, lambda);
    this.#rng = new Rng(opts.seed ?? 0);
    this.#mean = this.#clip(opts.mean);
    this.#sigma = opts.sigma;
    this.#C = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
    this.#pc = new Array(n).fill(0);
    this.#ps = new Array(n).fill(0);
    this.#decompose();
  }

  /** The current mean of the search distribution (a copy). */
  get mean(): number[] {
    return [...this.#mean];
  }
  /** The current overall step size. */
  get sigma(): number {
    return this.#sigma;
  }
  /** The best candidate told so far (`f = Infinity` and the initial mean before any finite fitness). */
  get best(): { x: number[]; f: number } {
    return this.#best ? { x: [...this.#best.x], f: this.#best.f } : { x: this.mean, f: Infinity };
  }
  /** The covariance matrix C (a copy); the sampling covariance is sigma^2 C. */
  get covariance(): number[][] {
    return this.#C.map((r) => [...r]);
  }

  /** This generation's `lambda` candidates, inside the bounds if given. Again before tell(): the same candidates. */
  ask(): number[][] {
    if (!this.#pending) {
      const n = this.dim;
      this.#pending = [];
      for (let k = 0; k < this.lambda; k++) {
        const dz = Array.from({ length: n }, (_, i) => this.#D[i] * this.#rng.normal()); // D z
        const x = new Array(n);
        for (let i = 0; i < n; i++) {
          let y = 0;
          for (let j = 0; j < n; j++) y += this.#B[i][j] * dz[j]; // y = B D z ~ N(0, C)
          x[i] = this.#mean[i] + this.#sigma * y;
        }
        this.#pending.push(x);
      }
    }
    return this.#pending.map((x) => this.#clip(x));
  }

  /**
   * Updates the distribution from the candidates ask() returned and their fitness (lower is better), in any order.
   * Throws if the candidates are not exactly this generation's, or a fitness is NaN or -Infinity; +Infinity (a failed
   * evaluation) is allowed and ranks last.
   */
  tell(candidates: number[][], fitness: number[]): void {
    if (!this.#pending) throw new Error("Cmaes.tell: no outstanding candidates; call ask() first");
    const n = this.dim, lambda = this.lambda;
    if (candidates.length !== lambda) {
      throw new Error(`Cmaes.tell: expected ${lambda} candidates (lambda), got ${candidates.length}`);
    }
    if (fitness.length !== candidates.length) {
      throw new Error(`Cmaes.tell: got ${candidates.length} candidates but ${fitness.length} fitness values`);
    }
    // Match each told candidate to an asked one by value (duplicates, possible after clipping, take the next unused).
    const asked = this.#pending.map((x) => this.#clip(x));
    const unused = new Map<string, number[]>();
    asked.forEach((x, k) => {
      const list = unused.get(key(x));
      if (list) list.push(k);
      else unused.set(key(x), [k]);
    });
    const fOf = new Array<number>(lambda);
    for (let t = 0; t < lambda; t++) {
      const x = candidates[t];
      if (!Array.isArray(x) || x.length !== n) {
        throw new Error(`Cmaes.tell: candidate ${t} has length ${Array.isArray(x) ? x.length : "?"}, expected ${n}`);
      }
      if (typeof fitness[t] !== "number" || Number.isNaN(fitness[t]) || fitness[t] === -Infinity) {
        throw new Error(`Cmaes.tell: fitness[${t}] is ${fitness[t]}, expected a finite number or +Infinity`);
      }
      const k = unused.get(key(x))?.shift();
      if (k === undefined) {
        throw new Error(
          `Cmaes.tell: candidate ${t} is not one of the candidates ask() returned for generation ${this.generation} ` +
            `(or is given twice)`,
        );
      }
      fOf[k] = fitness[t];
    }
    // All checked: only now change any state.
    fOf.forEach((f, k) => {
      if (f < (this.#best?.f ?? Infinity)) this.#best = { x: [...asked[k]], f };
    });
    this.#update(asked, fOf);
    this.#pending = null;
    this.generation++;
  }

  /** The full state as plain JSON data; {@link Cmaes.fromState} resumes from it exactly. */
  state(): CmaesState {
    return {
      version: 1,
      mean: [...this.#mean],
      sigma: this.#sigma,
      C: this.#C.map((r) => [...r]),
      pc: [...this.#pc],
      ps: [...this.#ps],
      generation: this.generation,
      lambda: this.lambda,
      rng: this.#rng.state,
      lower: this.#lower ? this.#lower.map((v) => (Number.isFinite(v) ? v : null)) : null,
      upper: this.#upper ? this.#upper.map((v) => (Number.isFinite(v) ? v : null)) : null,
      best: this.#best ? { x: [...this.#best.x], f: this.#best.f } : null,
      pending: this.#pending ? this.#pending.map((x) => [...x]) : null,
    };
  }

  /** Rebuilds a search from {@link Cmaes.state}; it continues exactly as the original would. */
  static fromState(s: CmaesState): Cmaes {
    if (s?.version !== 1) throw new Error(`Cmaes.fromState: unknown state version ${s?.version}`);
    const n = s.mean.length;
    const square = s.C.length === n && s.C.every((r) => r.length === n);
    if (!square || s.pc.length !== n || s.ps.length !== n) {
      throw new Error(`Cmaes.fromState: C, pc and ps must match the mean's dimension ${n}`);
    }
    const es = new Cmaes({
      mean: s.mean,
      sigma: s.sigma,
      popsize: s.lambda,
      lower: s.lower?.map((v) => v ?? -Infinity),
      upper: s.upper?.map((v) => v ?? Infinity),
    });
    es.#mean = [...s.mean];
    es.#C = s.C.map((r) => [...r]);
    es.#pc = [...s.pc];
    es.#ps = [...s.ps];
    es.generation = s.generation;
    es.#rng.state = s.rng;
    es.#best = s.best ? { x: [...s.best.x], f: s.best.f } : null;
    es.#pending = s.pending ? s.pending.map((x) => [...x]) : null;
    es.#decompose();
    return es;
  }

  // --- internals ---

  #lo(i: number): number {
    return this.#lower ? this.#lower[i] : -Infinity;
  }
  #hi(i: number): number {
    return this.#upper ? this.#upper[i] : Infinity;
  }
  #clip(x: readonly number[]): number[] {
    return x.map((v, i) => Math.min(this.#hi(i), Math.max(this.#lo(i), v)));
  }

  /** C^{-1/2} v = B D^{-1} B^T v. */
  #invSqrtC(v: readonly number[]): number[] {
    const n = this.dim;
    const u = new Array<number>(n).fill(0);
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += this.#B[i][j] * v[i];
      u[j] = s / this.#D[j];
    }
    return Array.from({ length: n }, (_, i) => {
      let s = 0;
      for (let j = 0; j < n; j++) s += this.#B[i][j] * u[j];
      return s;
    });
  }

  #decompose(): void {
    const { values, vectors } = jacobiEigen(this.#C);
    const top = Math.max(...values);
    // Guard against round-off making a tiny eigenvalue zero or negative; C itself is kept as updated.
    this.#D = values.map((v) => Math.sqrt(Math.max(v, top * 1e-20, 1e-300)));
    this.#B = vectors;
  }

  /** One generation's update (tutorial, Table 1 / Appendix A) from the evaluated (clipped) points, in ask order. */
  #update(points: number[][], fOf: number[]): void {
    const n = this.dim, { mu, weights, mueff, cc, cs, c1, cmu, damps, chiN } = this.#p;
    const m = this.#mean, sigma = this.#sigma;
    // Rank: fitness ascending, ties by ask order (stable, independent of the order tell() was given).
    const order = Array.from({ length: this.lambda }, (_, k) => k).sort((a, b) => fOf[a] - fOf[b] || a - b);
    const capped = Math.sqrt(n) + (2 * n) / (n + 2);
    const ys = order.slice(0, mu).map((k) => {
      const y = points[k].map((v, i) => (v - m[i]) / sigma);
      const clipped = this.#pending![k].some((v, i) => v !== points[k][i]);
      if (!clipped) return y;
      // Re-injected repaired sample: cap its Mahalanobis length (Hansen 2011).
      const len = norm(this.#invSqrtC(y));
      return len > capped ? y.map((v) => (v * capped) / len) : y;
    });
    // Recombination: y_w = sum w_i y_{i:lambda}; m <- m + sigma y_w (c_m = 1).
    const yw = new Array<number>(n).fill(0);
    ys.forEach((y, r) => y.forEach((v, i) => (yw[i] += weights[r] * v)));
    this.#mean = m.map((v, i) => v + sigma * yw[i]);
    // Step-size path and CSA.
    const cInvYw = this.#invSqrtC(yw);
    const fs = Math.sqrt(cs * (2 - cs) * mueff);
    this.#ps = this.#ps.map((v, i) => (1 - cs) * v + fs * cInvYw[i]);
    const psNorm = norm(this.#ps);
    const g = this.generation + 1;
    const hsig = psNorm / Math.sqrt(1 - (1 - cs) ** (2 * g)) < (1.4 + 2 / (n + 1)) * chiN ? 1 : 0;
    // Covariance path (stalled while ||ps|| is large, so that C does not grow too fast when sigma is too small).
    const fc = hsig * Math.sqrt(cc * (2 - cc) * mueff);
    this.#pc = this.#pc.map((v, i) => (1 - cc) * v + fc * yw[i]);
    // C <- (1 - c1 - cmu + (1 - hsig) c1 cc (2 - cc)) C + c1 pc pc^T + cmu sum w_i y_i y_i^T, upper triangle mirrored.
    const keep = 1 - c1 - cmu + (1 - hsig) * c1 * cc * (2 - cc);
    const pc = this.#pc, C = this.#C;
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        let rankMu = 0;
        for (let r = 0; r < mu; r++) rankMu += weights[r] * ys[r][i] * ys[r][j];
        C[i][j] = C[j][i] = keep * C[i][j] + c1 * pc[i] * pc[j] + cmu * rankMu;
      }
    }
    this.#sigma = sigma * Math.exp((cs / damps) * (psNorm / chiN - 1));
    this.#decompose();
  }
}

function checkBound(b: number[] | undefined, n: number, name: string): number[] | null {
  if (b === undefined) return null;
  if (b.length !== n) throw new Error(`Cmaes: ${name} has length ${b.length}, expected ${n} (the mean's)`);
  if (b.some((v) => typeof v !== "number" || Number.isNaN(v))) throw new Error(`Cmaes: ${name} contains a non-number`);
  return [...b];
}
