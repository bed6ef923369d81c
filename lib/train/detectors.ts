/**
 * Training-dynamics detectors fed one evaluation at a time.
 *
 * - GrokkingDetector: delayed generalization. Train accuracy saturates (memorization)
 *   while validation accuracy lags far behind, and only later does validation cross its
 *   threshold (generalization). Reports both steps and the gap between them.
 * - ConvergenceDetector: a smoothed metric has stopped improving by at least `minDelta`
 *   for `patience` consecutive updates (early stopping).
 */

export interface GrokkingOptions {
  /** Train accuracy that counts as memorized. */
  trainThreshold: number;
  /** Validation accuracy that counts as generalized. */
  valThreshold: number;
  /** At memorization, validation must be at most this for the pattern to be "delayed". */
  lagThreshold: number;
  /** Generalization must come at least this many steps after memorization. */
  minGapSteps: number;
}

export const DEFAULT_GROKKING: GrokkingOptions = { trainThreshold: 0.99, valThreshold: 0.95, lagThreshold: 0.5, minGapSteps: 1 };

export interface GrokkingReport {
  /** `learning`: train not saturated yet; `memorized`: saturated, validation lagging;
   *  `grokked`: validation crossed its threshold after a delay; `generalized`: it crossed
   *  without the delayed pattern (train and validation rose together). */
  phase: "learning" | "memorized" | "grokked" | "generalized";
  /** First step with train accuracy >= trainThreshold. */
  memorizationStep?: number;
  /** Validation accuracy at the memorization step. */
  valAtMemorization?: number;
  /** First step with validation accuracy >= valThreshold. */
  generalizationStep?: number;
  /** generalizationStep - memorizationStep, when both exist. */
  gap?: number;
}

export class GrokkingDetector {
  readonly opts: GrokkingOptions;
  #report: GrokkingReport = { phase: "learning" };

  constructor(opts: Partial<GrokkingOptions> = {}) {
    this.opts = { ...DEFAULT_GROKKING, ...opts };
  }

  /** Feeds one evaluation; returns the report when the phase changed, else undefined. */
  update(step: number, trainAcc: number, valAcc: number): GrokkingReport | undefined {
    const r = this.#report;
    const before = r.phase;
    if (r.memorizationStep === undefined && trainAcc >= this.opts.trainThreshold) {
      r.memorizationStep = step;
      r.valAtMemorization = valAcc;
      if (r.generalizationStep === undefined && valAcc <= this.opts.lagThreshold) r.phase = "memorized";
    }
    if (r.generalizationStep === undefined && valAcc >= this.opts.valThreshold) {
      r.generalizationStep = step;
      if (r.memorizationStep !== undefined) r.gap = step - r.memorizationStep;
      const delayed = r.memorizationStep !== undefined && r.valAtMemorization! <= this.opts.lagThreshold &&
        r.gap! >= this.opts.minGapSteps;
      r.phase = delayed ? "grokked" : "generalized";
    }
    return r.phase !== before ? this.report() : undefined;
  }

  /** A copy of the current report. */
  report(): GrokkingReport {
    return { ...this.#report };
  }
}

export interface ConvergenceOptions {
  /** Updates without sufficient improvement before converging. */
  patience: number;
  /** Improvement smaller than this does not count. */
  minDelta: number;
  /** Moving-average window applied to the metric first (1: raw values). */
  window: number;
  /** `min` for losses, `max` for accuracies. */
  mode: "min" | "max";
}

export const DEFAULT_CONVERGENCE: ConvergenceOptions = { patience: 10, minDelta: 1e-3, window: 5, mode: "min" };

export class ConvergenceDetector {
  readonly opts: ConvergenceOptions;
  #recent: number[] = [];
  #best: number | undefined;
  #stale = 0;
  /** Step at which convergence was declared. */
  convergedAt: number | undefined;

  constructor(opts: Partial<ConvergenceOptions> = {}) {
    this.opts = { ...DEFAULT_CONVERGENCE, ...opts };
    if (!Number.isInteger(this.opts.patience) || this.opts.patience < 1) {
      throw new Error(`convergence.patience = ${this.opts.patience}: expected an integer >= 1`);
    }
    if (!Number.isInteger(this.opts.window) || this.opts.window < 1) {
      throw new Error(`convergence.window = ${this.opts.window}: expected an integer >= 1`);
    }
    if (!(this.opts.minDelta >= 0)) throw new Error(`convergence.minDelta = ${this.opts.minDelta}: expected >= 0`);
  }

  /** The moving average of the last `window` values. */
  smoothed(): number | undefined {
    return this.#recent.length ? this.#recent.reduce((a, b) => a + b, 0) / this.#recent.length : undefined;
  }

  /** Feeds one value; true once converged (and from then on). Non-finite values never count as improvement. */
  update(step: number, value: number): boolean {
    if (this.convergedAt !== undefined) return true;
    this.#recent.push(value);
    if (this.#recent.length > this.opts.window) this.#recent.shift();
    if (this.#recent.length < this.opts.window) return false;
    const s = this.smoothed()!;
    const sign = this.opts.mode === "min" ? 1 : -1;
    if (Number.isFinite(s) && (this.#best === undefined || sign * (this.#best - s) > this.opts.minDelta)) {
      this.#best = s;
      this.#stale = 0;
    } else {
      this.#stale += 1;
      if (this.#stale >= this.opts.patience) this.convergedAt = step;
    }
    return this.convergedAt !== undefined;
  }
}
