/**
 * Adaptive computation: how many times to apply a step function to a state.
 *
 * - ACT (Graves 2016, "Adaptive Computation Time for Recurrent Neural Networks"): a halting
 *   unit h = sigmoid(W s + b) per row (per position for [B, T, C] states); a row stops at the
 *   first step N where the cumulative h reaches 1 - eps, or at maxSteps. Its output is the
 *   mean-field sum of the states weighted by the halting distribution (p_n = h_n for n < N,
 *   the remainder R = 1 - sum_{n<N} h_n at N), and its ponder cost is rho = N + R.
 * - Q-learning halting (HRM / TRM): halt and continue heads Q_halt, Q_continue read the state;
 *   a row stops when Q_halt > Q_continue, trained towards "is the current answer right" and
 *   "the best value of the next step" respectively.
 *
 * Both loops stop as soon as every row has halted. Knowing that needs the host: after each
 * step the loop hands a tiny [B] tensor to `shouldContinue`, whose default reads it with
 * `dataSync()`. The loops create intermediate tensors: run them inside `tf.tidy` (the trainer
 * does) or dispose the result's tensors yourself.
 */
import * as tf from "@tensorflow/tfjs";
import { bceWithLogits, linear } from "../nn/layers.ts";
import { noGrad, stopGradient } from "../nn/grad.ts";
import type { ParamSet } from "../nn/params.ts";
import { Rng } from "../util/rng.ts";

/** One application of the recurrent computation: state [B, C] or [B, T, C] -> same shape. `n` counts from 1. */
export type StepFn = (state: tf.Tensor, n: number) => tf.Tensor;

/**
 * Decides after step n whether to run another. `anyRunning` [B] is 1 where a row (any
 * position of it, for [B, T, C] states) still runs, 0 where it halted. Returning false ends
 * the loop: rows still running halt at n, taking their remainder as weight.
 */
export type ShouldContinue = (anyRunning: tf.Tensor, n: number) => boolean;

/** The default `ShouldContinue`: a host read of the [B] mask (synchronous; fine on cpu and wasm). */
export function hostAnyRunning(anyRunning: tf.Tensor): boolean {
  return (anyRunning.dataSync() as Float32Array).some((v) => v > 0);
}

/** Never reads the host: runs every loop to maxSteps (masks still zero the weights of halted rows). */
export const alwaysContinue: ShouldContinue = () => true;

// ---------------------------------------------------------------------------------------------
// ACT

export interface ActConfig {
  /** Most steps per row; N <= maxSteps. Default 8. */
  maxSteps: number;
  /** A row halts once its cumulative halting probability reaches 1 - eps. Default 0.01. */
  eps: number;
  /** Weight tau of the ponder cost in the loss. Default 0.01. */
  tau: number;
  /** Initial bias of the halting unit (positive: few steps at the start of training). Default 1. */
  haltBiasInit: number;
  /** Std of the halting unit's initial weights. Default 0.02. */
  haltInitStd: number;
}

export const DEFAULT_ACT: ActConfig = { maxSteps: 8, eps: 0.01, tau: 0.01, haltBiasInit: 1, haltInitStd: 0.02 };

/** Checks an ActConfig; the error names the field. */
export function validateActConfig(c: ActConfig): void {
  if (!Number.isInteger(c.maxSteps) || c.maxSteps < 1) throw new Error(`act.maxSteps = ${c.maxSteps}: expected an integer >= 1`);
  if (!(c.eps > 0 && c.eps < 1)) throw new Error(`act.eps = ${c.eps}: expected in (0, 1)`);
  if (!(c.tau >= 0)) throw new Error(`act.tau = ${c.tau}: expected >= 0`);
  if (!Number.isFinite(c.haltBiasInit)) throw new Error(`act.haltBiasInit = ${c.haltBiasInit}: expected a number`);
  if (!(c.haltInitStd >= 0)) throw new Error(`act.haltInitStd = ${c.haltInitStd}: expected >= 0`);
}

/** DEFAULT_ACT with `overrides`, validated. */
export function actConfig(overrides: Partial<ActConfig> = {}): ActConfig {
  const c = { ...DEFAULT_ACT, ...overrides };
  validateActConfig(c);
  return c;
}

/** The halting unit: w [C, 1], b [1]. */
export interface HaltingWeights {
  w: tf.Tensor;
  b: tf.Tensor;
}

/** Adds the halting unit `${prefix}halt_w` [C, 1], `${prefix}halt_b` [1] to `params`. */
export function addHaltingUnit(params: ParamSet, prefix: string, dim: number, cfg: ActConfig = DEFAULT_ACT): HaltingWeights {
  return {
    w: params.add(`${prefix}halt_w`, [dim, 1], { kind: "normal", std: cfg.haltInitStd }),
    b: params.add(`${prefix}halt_b`, [1], { kind: "const", value: cfg.haltBiasInit }),
  };
}

/** h = sigmoid(W s + b). state [..., C] -> [...]. */
export function haltingProbability(state: tf.Tensor, halt: HaltingWeights): tf.Tensor {
  return tf.reshape(tf.sigmoid(linear(state, halt.w, halt.b)), state.shape.slice(0, -1)); // [...]
}

/** What an ACT loop returns. L is the lead shape of the state: [B] or [B, T]; S = stepsRun. */
export type ActResult = {
  /** Mean-field output: sum_n p_n s_n, shaped like the state. */
  output: tf.Tensor;
  /** Steps the loop executed (calls of the step function): max N over the batch. */
  stepsRun: number;
  /** N per row / position, as floats. [L] */
  steps: tf.Tensor;
  /** R = 1 - sum_{n<N} h_n. [L] */
  remainder: tf.Tensor;
  /** Halting distribution p_n; sums to 1 over n, 0 after a row halted. [S, ...L] */
  weights: tf.Tensor;
  /** Raw halting probabilities h_n (also after a row halted). [S, ...L] */
  haltProbs: tf.Tensor;
  /** mean(N + R): the ponder cost, unscaled; differentiable through R. Scalar. */
  ponderCost: tf.Scalar;
};

/** Options of `actLoop`. */
export interface ActOptions {
  /** Whether to run another step; default `hostAnyRunning`. */
  shouldContinue?: ShouldContinue;
}

/**
 * A discrete decision: fn's float32 result, with zero gradient to its inputs. Comparison
 * ops on the gradient tape would otherwise need gradients tfjs does not define (LessEqual).
 */
export function discrete(fn: (...xs: tf.Tensor[]) => tf.Tensor, ...xs: tf.Tensor[]): tf.Tensor {
  return noGrad(() => [tf.cast(fn(...xs), "float32")], xs)[0];
}

/** [L] mask -> [B]: 1 where any position of the row is 1. */
function rowsAny(mask: tf.Tensor): tf.Tensor {
  return mask.rank === 1 ? tf.clone(mask) : tf.max(mask, [...Array(mask.rank - 1).keys()].map((i) => i + 1));
}

/**
 * Runs ACT: s_n = step(s_{n-1}, n) for n = 1.. until every row halted (or maxSteps).
 * state0 [B, C] or [B, T, C]; halting per row or per position. Differentiable through the
 * states, the halting unit and the weights; N itself is discrete.
 */
export function actLoop(state0: tf.Tensor, step: StepFn, halt: HaltingWeights, cfg: ActConfig, opts: ActOptions = {}): ActResult {
  validateActConfig(cfg);
  const shouldContinue = opts.shouldContinue ?? hostAnyRunning;
  const lead = state0.shape.slice(0, -1); // [B] or [B, T]
  const threshold = 1 - cfg.eps;
  let running: tf.Tensor = tf.ones(lead); // [L] 1 until the row halts
  let cum: tf.Tensor = tf.zeros(lead); // [L] sum of h over the row's earlier steps
  let steps: tf.Tensor = tf.zeros(lead); // [L] N so far
  let remainder: tf.Tensor = tf.zeros(lead); // [L]
  let output: tf.Tensor = tf.zerosLike(state0); // like the state
  const hs: tf.Tensor[] = [], ps: tf.Tensor[] = [];
  let state = state0;
  let n = 0;
  while (n < cfg.maxSteps) {
    n += 1;
    state = step(state, n);
    const h = haltingProbability(state, halt); // [L]
    steps = tf.add(steps, running);
    let haltNow = tf.mul(running, discrete((c) => tf.greaterEqual(c, threshold), tf.add(cum, h))); // [L]
    let go = n < cfg.maxSteps;
    if (go) {
      const anyRunning = rowsAny(tf.sub(running, haltNow)); // [B]
      go = shouldContinue(anyRunning, n);
      anyRunning.dispose();
    }
    if (!go) haltNow = running; // the last step: every row still running halts here
    const cont = tf.sub(running, haltNow); // [L] rows that go on
    const r = tf.mul(haltNow, tf.sub(1, cum)); // [L] R where the row halts now, else 0
    const p = tf.add(tf.mul(cont, h), r); // [L]
    output = tf.add(output, tf.mul(tf.expandDims(p, -1), state));
    remainder = tf.add(remainder, r);
    cum = tf.add(cum, tf.mul(cont, h));
    running = cont;
    hs.push(h);
    ps.push(p);
    if (!go) break;
  }
  return {
    output,
    stepsRun: n,
    steps,
    remainder,
    weights: tf.stack(ps), // [S, ...L]
    haltProbs: tf.stack(hs), // [S, ...L]
    ponderCost: tf.mean(tf.add(steps, remainder)) as tf.Scalar,
  };
}

/** tau * ponderCost: the term ACT adds to the task loss. */
export function ponderLoss(result: ActResult, cfg: ActConfig): tf.Scalar {
  return tf.mul(result.ponderCost, cfg.tau) as tf.Scalar;
}

// ---------------------------------------------------------------------------------------------
// Q-learning halting (HRM / TRM)

export interface QHaltConfig {
  /** Most steps per row. Default 8. */
  maxSteps: number;
  /** Training only: probability that a row must run a random minimum of [2, maxSteps] steps. Default 0.1. */
  explore: number;
  /** Initial bias of both Q logits (HRM: -5, so neither head dominates at first). Default -5. */
  qBiasInit: number;
}

export const DEFAULT_QHALT: QHaltConfig = { maxSteps: 8, explore: 0.1, qBiasInit: -5 };

/** Checks a QHaltConfig; the error names the field. */
export function validateQHaltConfig(c: QHaltConfig): void {
  if (!Number.isInteger(c.maxSteps) || c.maxSteps < 1) throw new Error(`qhalt.maxSteps = ${c.maxSteps}: expected an integer >= 1`);
  if (!(c.explore >= 0 && c.explore <= 1)) throw new Error(`qhalt.explore = ${c.explore}: expected in [0, 1]`);
  if (!Number.isFinite(c.qBiasInit)) throw new Error(`qhalt.qBiasInit = ${c.qBiasInit}: expected a number`);
}

/** DEFAULT_QHALT with `overrides`, validated. */
export function qHaltConfig(overrides: Partial<QHaltConfig> = {}): QHaltConfig {
  const c = { ...DEFAULT_QHALT, ...overrides };
  validateQHaltConfig(c);
  return c;
}

/** The Q head: w [C, 2], b [2]; column 0 is Q_halt, column 1 Q_continue (logits). */
export interface QHeadWeights {
  w: tf.Tensor;
  b: tf.Tensor;
}

/** Q logits of a state, one pair per row ([B, T, C] states are mean-pooled over T). -> qHalt, qContinue [B]. */
export function qValues(state: tf.Tensor, q: QHeadWeights): { qHalt: tf.Tensor1D; qContinue: tf.Tensor1D } {
  const pooled = state.rank === 3 ? tf.mean(state, 1) : state; // [B, C]
  const logits = linear(pooled, q.w, q.b); // [B, 2]
  const [qHalt, qContinue] = tf.unstack(logits, 1) as tf.Tensor1D[];
  return { qHalt, qContinue };
}

/**
 * Per-row minimum steps: 1, or in training with probability `explore` uniform in [2, maxSteps]
 * (HRM's exploration). Host values; deterministic given `rng`.
 */
export function explorationMinSteps(batch: number, cfg: QHaltConfig, training: boolean, rng: Rng): Float32Array {
  const out = new Float32Array(batch).fill(1);
  if (!training || cfg.maxSteps < 2) return out;
  for (let i = 0; i < batch; i++) if (rng.next() < cfg.explore) out[i] = 2 + rng.int(cfg.maxSteps - 1);
  return out;
}

/** What a Q-halting loop returns. S = stepsRun. */
export type QHaltResult = {
  /** Each row's state at the step it halted, shaped like the state. */
  output: tf.Tensor;
  /** Steps the loop executed: max N over the batch. */
  stepsRun: number;
  /** N per row, as floats. [B] */
  steps: tf.Tensor1D;
  /** Q logits at every executed step. [S, B] */
  qHalt: tf.Tensor2D;
  qContinue: tf.Tensor2D;
  /** The state after every executed step, for the caller's per-step correctness. S tensors. */
  states: tf.Tensor[];
  /** Minimum steps each row had to run. [B] host values. */
  minSteps: Float32Array;
};

/** Options of `qHaltLoop`. */
export interface QHaltOptions {
  /** Exploration on (HRM applies it in training only). Default false. */
  training?: boolean;
  /** Source of the exploration draws; required when `training` (one Rng across batches, so draws differ per batch). */
  rng?: Rng;
  /** Whether to run another step; default `hostAnyRunning`. */
  shouldContinue?: ShouldContinue;
}

/**
 * Runs the step function with Q-learning halting: a row halts after step n when
 * Q_halt > Q_continue and n >= its minimum steps, or at maxSteps. Unlike HRM (which runs
 * evaluation to maxSteps) the decision applies in evaluation too, so it saves compute there.
 */
export function qHaltLoop(state0: tf.Tensor, step: StepFn, q: QHeadWeights, cfg: QHaltConfig, opts: QHaltOptions = {}): QHaltResult {
  validateQHaltConfig(cfg);
  const shouldContinue = opts.shouldContinue ?? hostAnyRunning;
  const batch = state0.shape[0];
  if (opts.training && !opts.rng) {
    throw new Error("qHaltLoop: training needs opts.rng (a seeded Rng advanced across batches) for its exploration draws");
  }
  const minSteps = explorationMinSteps(batch, cfg, opts.training ?? false, opts.rng ?? new Rng(0));
  const minT = tf.tensor1d(minSteps); // [B]
  const bcast = (m: tf.Tensor) => tf.reshape(m, [batch, ...state0.shape.slice(1).map(() => 1)]); // [B] -> [B, 1(, 1)]
  let running: tf.Tensor = tf.ones([batch]); // [B]
  let steps: tf.Tensor = tf.zeros([batch]); // [B]
  let output: tf.Tensor = tf.zerosLike(state0);
  const qh: tf.Tensor[] = [], qc: tf.Tensor[] = [], states: tf.Tensor[] = [];
  let state = state0;
  let n = 0;
  while (n < cfg.maxSteps) {
    n += 1;
    state = step(state, n);
    states.push(state);
    const { qHalt, qContinue } = qValues(state, q); // [B], [B]
    qh.push(qHalt);
    qc.push(qContinue);
    steps = tf.add(steps, running);
    const wants = discrete((a, b) => tf.logicalAnd(tf.greater(a, b), tf.lessEqual(minT, n)), qHalt, qContinue); // [B]
    let haltNow = tf.mul(running, wants); // [B]
    let go = n < cfg.maxSteps;
    if (go) {
      const anyRunning = tf.sub(running, haltNow); // [B]
      go = shouldContinue(anyRunning, n);
      anyRunning.dispose();
    }
    if (!go) haltNow = running;
    output = tf.add(output, tf.mul(bcast(haltNow), state));
    running = tf.sub(running, haltNow);
    if (!go) break;
  }
  return {
    output,
    stepsRun: n,
    steps: steps as tf.Tensor1D,
    qHalt: tf.stack(qh) as tf.Tensor2D,
    qContinue: tf.stack(qc) as tf.Tensor2D,
    states,
    minSteps,
  };
}

/** Q-learning targets and where they apply, all [S, B]. */
export type QHaltTargets = {
  /** 1 where the prediction at that step is correct. */
  halt: tf.Tensor2D;
  /** sigmoid of the next step's best Q logit (only Q_halt when the next step is maxSteps); no gradient. */
  continue: tf.Tensor2D;
  /** 1 at steps the row ran (n <= N). */
  haltMask: tf.Tensor2D;
  /** haltMask, and a next step exists (n < stepsRun). */
  continueMask: tf.Tensor2D;
};

/**
 * The Q-learning targets of a run. correct [S, B]: 1 where the answer read from
 * `result.states[n]` is right. Q_continue(n) bootstraps from step n+1, which the batch ran
 * even for rows that halted at n; the last executed step has no continue target.
 */
export function qHaltTargets(result: QHaltResult, correct: tf.Tensor, cfg: QHaltConfig): QHaltTargets {
  const s = result.stepsRun;
  const batch = result.steps.shape[0];
  const stepNo = tf.reshape(tf.range(1, s + 1), [s, 1]); // [S, 1]
  const haltMask = discrete((n) => tf.lessEqual(stepNo, tf.reshape(n, [1, batch])), result.steps) as tf.Tensor2D; // [S, B]
  let cont: tf.Tensor2D = tf.zeros([s, batch]);
  if (s > 1) {
    const nh = tf.slice(result.qHalt, [1, 0], [s - 1, batch]); // [S-1, B] next step's Q_halt
    const nc = tf.slice(result.qContinue, [1, 0], [s - 1, batch]); // [S-1, B]
    const nextIsLast = tf.reshape(tf.equal(tf.range(2, s + 1), cfg.maxSteps), [s - 1, 1]); // [S-1, 1]
    const best = tf.where(tf.broadcastTo(nextIsLast, [s - 1, batch]), nh, tf.maximum(nh, nc)); // [S-1, B]
    cont = tf.concat([tf.sigmoid(stopGradient(best)), tf.zeros([1, batch])]) as tf.Tensor2D; // [S, B]
  }
  const hasNext = tf.cast(tf.less(stepNo, s), "float32"); // [S, 1]
  return {
    halt: tf.cast(correct, "float32") as tf.Tensor2D,
    continue: cont,
    haltMask,
    continueMask: tf.mul(haltMask, hasNext) as tf.Tensor2D,
  };
}

/** mean over the mask of v; 0 when the mask is empty. */
function maskedMean(v: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.div(tf.sum(tf.mul(v, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
}

/**
 * HRM's Q-learning loss: 0.5 * (BCE(Q_halt, correct) + BCE(Q_continue, bootstrapped target)),
 * each a mean over the steps where it applies. Add it to the task loss.
 */
export function qHaltLoss(result: QHaltResult, correct: tf.Tensor, cfg: QHaltConfig): tf.Scalar {
  const t = qHaltTargets(result, correct, cfg);
  const haltLoss = maskedMean(bceWithLogits(result.qHalt, t.halt), t.haltMask);
  const contLoss = maskedMean(bceWithLogits(result.qContinue, t.continue), t.continueMask);
  return tf.mul(tf.add(haltLoss, contLoss), 0.5) as tf.Scalar;
}
