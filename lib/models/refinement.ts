/**
 * A refinement core: one shared residual block applied again and again to hidden states
 * [B, T, C], reading an optional memory context through a gate, until the states stop
 * changing (low surprise), ACT halts them, or maxRefinementSteps is reached.
 *
 * One step n:  u = gate(h_{n-1}, ctx)           (h_{n-1} when there is no context)
 *              h_n = h_{n-1} + MLP(LN(u))        (the block; its residual is the carried state)
 * with gate(h, ctx) = h + sigmoid(W [h; ctx] + b) * ctx. The memory conditions every update
 * without piling up in the carried state, so a block with zero output weights is a fixed point.
 *
 * surprise_n = mean over rows and positions of ||h_n - h_{n-1}|| / ||h_{n-1}||.
 *
 * Like the ACT loop, `refine` creates intermediate tensors: run it inside `tf.tidy`.
 */
import * as tf from "@tensorflow/tfjs";
import { gelu, layerNorm, linear } from "../nn/layers.ts";
import type { ParamSet } from "../nn/params.ts";
import {
  type ActConfig,
  actLoop,
  type ActResult,
  addHaltingUnit,
  DEFAULT_ACT,
  type HaltingWeights,
  hostAnyRunning,
  type ShouldContinue,
  validateActConfig,
} from "./act.ts";

export interface RefinementConfig {
  /** Width of the hidden states (C). */
  dim: number;
  /** MLP hidden width as a multiple of dim. Default 2. */
  mlpRatio: number;
  /** Most block applications per `refine` call. Default 8. */
  maxRefinementSteps: number;
  /** Stop once a step's surprise falls below this; 0 turns convergence stopping off. Default 1e-3. */
  convergenceThreshold: number;
  /** `act`: a halting unit per position (act.ts) also stops the loop; the output is ACT's mean field. Default `none`. */
  halting: "none" | "act";
  /** ACT settings when halting is `act`; its maxSteps is replaced by maxRefinementSteps. Default DEFAULT_ACT. */
  act: ActConfig;
  /** Std of the normal init for weights; biases start at 0, norm gains at 1. Default 0.02. */
  initStd: number;
  /** Initial bias of the memory gate (0: half open). Default 0. */
  gateBiasInit: number;
  /** LayerNorm epsilon. Default 1e-5. */
  normEps: number;
}

export const DEFAULT_REFINEMENT: RefinementConfig = {
  dim: 32,
  mlpRatio: 2,
  maxRefinementSteps: 8,
  convergenceThreshold: 1e-3,
  halting: "none",
  act: DEFAULT_ACT,
  initStd: 0.02,
  gateBiasInit: 0,
  normEps: 1e-5,
};

/** Checks a RefinementConfig; the error names the field. */
export function validateRefinementConfig(c: RefinementConfig): void {
  for (const k of ["dim", "maxRefinementSteps"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`refinement.${k} = ${c[k]}: expected an integer >= 1`);
  }
  if (!(c.mlpRatio > 0)) throw new Error(`refinement.mlpRatio = ${c.mlpRatio}: expected > 0`);
  if (!(c.convergenceThreshold >= 0)) throw new Error(`refinement.convergenceThreshold = ${c.convergenceThreshold}: expected >= 0`);
  if (c.halting !== "none" && c.halting !== "act") throw new Error(`refinement.halting = ${c.halting}: expected none or act`);
  if (!(c.initStd >= 0)) throw new Error(`refinement.initStd = ${c.initStd}: expected >= 0`);
  if (!(c.normEps > 0)) throw new Error(`refinement.normEps = ${c.normEps}: expected > 0`);
  if (!Number.isFinite(c.gateBiasInit)) throw new Error(`refinement.gateBiasInit = ${c.gateBiasInit}: expected a number`);
  validateActConfig({ ...c.act, maxSteps: c.maxRefinementSteps });
}

/** DEFAULT_REFINEMENT with `overrides`, validated. */
export function refinementConfig(overrides: Partial<RefinementConfig> = {}): RefinementConfig {
  const c = { ...DEFAULT_REFINEMENT, ...overrides };
  validateRefinementConfig(c);
  return c;
}

/**
 * Scalars a RefinementCore adds to its ParamSet, from the config alone (no tensors):
 * norm 2C, MLP C*F + F + F*C + C, gate 2C*C + C, and the halting unit C + 1 with `act`.
 */
export function refinementParamCount(c: RefinementConfig): number {
  const C = c.dim, F = Math.round(c.mlpRatio * C);
  return 2 * C + (C * F + F) + (F * C + C) + (2 * C * C + C) + (c.halting === "act" ? C + 1 : 0);
}

/** h' = h + sigmoid([h; ctx] W + b) * ctx. h, ctx [B, T, C]; w [2C, C]; b [C] -> [B, T, C]. */
export function memoryGate(h: tf.Tensor, ctx: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const g = tf.sigmoid(linear(tf.concat([h, ctx], -1), w, b)); // [B, T, C]
  return tf.add(h, tf.mul(g, ctx));
}

/** Relative change per row/position, averaged: mean ||next - prev|| / ||prev||. [B, T, C] x2 -> scalar. */
export function surprise(prev: tf.Tensor, next: tf.Tensor): tf.Scalar {
  const num = tf.norm(tf.sub(next, prev), "euclidean", -1); // [B, T]
  const den = tf.add(tf.norm(prev, "euclidean", -1), 1e-6); // [B, T]
  return tf.mean(tf.div(num, den)) as tf.Scalar;
}

/** Reads whether a step converged. Default: a host read (`dataSync`) of the scalar, `< threshold`. */
export type ConvergedFn = (surprise: tf.Scalar, threshold: number) => boolean;

/** The default `ConvergedFn`. */
export function hostConverged(s: tf.Scalar, threshold: number): boolean {
  return s.dataSync()[0] < threshold;
}

/** Options of one `refine` call. */
export interface RefineOptions {
  /** Memory context [B, T, C] read through the gate at every step. */
  ctx?: tf.Tensor3D;
  /** Keep every step's states in the history. Default false. */
  keepStates?: boolean;
  /** Convergence test; default `hostConverged`. Not called when convergenceThreshold is 0. */
  converged?: ConvergedFn;
  /** ACT's continue test (halting `act`); default `hostAnyRunning`. */
  shouldContinue?: ShouldContinue;
}

/** Why the loop ended. */
export type StopReason = "converged" | "halted" | "maxSteps";

/** What `refine` returns. S = steps. */
export type RefinementResult = {
  /** Final states [B, T, C]: the last step's, or ACT's mean field when halting is `act`. */
  output: tf.Tensor3D;
  /** Block applications run. */
  steps: number;
  history: {
    /** Surprise of every step. [S] */
    surprise: tf.Tensor1D;
    /** States after every step (keepStates only). S tensors [B, T, C]. */
    states?: tf.Tensor3D[];
  };
  stopReason: StopReason;
  /** The ACT result when halting is `act` (per-position N, weights, ponder cost). */
  act?: ActResult;
};

/** The shared block, its memory gate and (optionally) a halting unit, with parameters `${prefix}...` in a ParamSet. */
export class RefinementCore {
  readonly cfg: RefinementConfig;
  readonly params: ParamSet;
  readonly prefix: string;
  readonly halt?: HaltingWeights;

  /** Adds the core's parameters to `params` under `prefix` (e.g. `refine.`). */
  constructor(params: ParamSet, cfg: RefinementConfig, prefix = "refine.") {
    validateRefinementConfig(cfg);
    this.cfg = cfg;
    this.params = params;
    this.prefix = prefix;
    const { dim: C, initStd: std } = cfg;
    const F = Math.round(cfg.mlpRatio * C);
    const normal = { kind: "normal", std } as const;
    const zeros = { kind: "const", value: 0 } as const;
    params.add(`${prefix}ln_g`, [C], { kind: "const", value: 1 });
    params.add(`${prefix}ln_b`, [C], zeros);
    params.add(`${prefix}fc1_w`, [C, F], normal);
    params.add(`${prefix}fc1_b`, [F], zeros);
    params.add(`${prefix}fc2_w`, [F, C], normal);
    params.add(`${prefix}fc2_b`, [C], zeros);
    params.add(`${prefix}gate_w`, [2 * C, C], normal);
    params.add(`${prefix}gate_b`, [C], { kind: "const", value: cfg.gateBiasInit });
    if (cfg.halting === "act") this.halt = addHaltingUnit(params, prefix, C, cfg.act);
  }

  #p(name: string): tf.Variable {
    return this.params.get(`${this.prefix}${name}`);
  }

  /** The memory gate with this core's weights. h, ctx [B, T, C] -> [B, T, C]. */
  gate(h: tf.Tensor, ctx: tf.Tensor): tf.Tensor {
    return memoryGate(h, ctx, this.#p("gate_w"), this.#p("gate_b"));
  }

  /** One refinement step. h [B, T, C], ctx [B, T, C] optional -> [B, T, C]. */
  step(h: tf.Tensor, ctx?: tf.Tensor): tf.Tensor {
    const u = ctx ? this.gate(h, ctx) : h; // [B, T, C]
    const n = layerNorm(u, this.#p("ln_g"), this.#p("ln_b"), this.cfg.normEps); // [B, T, C]
    const m = linear(gelu(linear(n, this.#p("fc1_w"), this.#p("fc1_b"))), this.#p("fc2_w"), this.#p("fc2_b")); // [B, T, F] -> [B, T, C]
    return tf.add(h, m);
  }

  /** Refines h0 [B, T, C] until convergence, ACT halting, or maxRefinementSteps. */
  refine(h0: tf.Tensor3D, opts: RefineOptions = {}): RefinementResult {
    const { maxRefinementSteps: max, convergenceThreshold: thr } = this.cfg;
    const converged = opts.converged ?? hostConverged;
    const surprises: tf.Scalar[] = [];
    const states: tf.Tensor3D[] = [];
    let isConverged = false;
    const stepFn = (h: tf.Tensor): tf.Tensor => {
      const next = this.step(h, opts.ctx); // [B, T, C]
      const s = surprise(h, next);
      surprises.push(s);
      if (opts.keepStates) states.push(next as tf.Tensor3D);
      if (thr > 0 && converged(s, thr)) isConverged = true;
      return next;
    };
    let output: tf.Tensor;
    let act: ActResult | undefined;
    if (this.halt) {
      const should = opts.shouldContinue ?? hostAnyRunning;
      act = actLoop(h0, stepFn, this.halt, { ...this.cfg.act, maxSteps: max }, {
        shouldContinue: (anyRunning, n) => !isConverged && should(anyRunning, n),
      });
      output = act.output;
    } else {
      output = h0;
      while (surprises.length < max && !isConverged) output = stepFn(output);
    }
    const steps = surprises.length;
    const stopReason: StopReason = isConverged ? "converged" : steps < max ? "halted" : "maxSteps";
    return {
      output: output as tf.Tensor3D,
      steps,
      history: { surprise: tf.stack(surprises) as tf.Tensor1D, ...(opts.keepStates ? { states } : {}) },
      stopReason,
      ...(act ? { act } : {}),
    };
  }
}
