/** AdamW (PyTorch semantics), the warmup + cosine schedule, and global-norm gradient clipping. */
import * as tf from "@tensorflow/tfjs";
import type { HostTensor } from "../nn/params.ts";

/** Gradients keyed by parameter name. */
export type GradMap = Map<string, tf.Tensor>;

export interface AdamWOptions {
  /** First-moment decay. */
  beta1: number;
  /** Second-moment decay. */
  beta2: number;
  /** Added to the denominator. */
  eps: number;
  /** Decoupled weight decay (p <- p * (1 - lr * wd)). */
  weightDecay: number;
  /** Parameters that get no weight decay (default: none, as PyTorch's AdamW on every parameter). */
  noDecay?: (name: string) => boolean;
  /**
   * `decoupled` (default, AdamW): p <- p * (1 - lr * wd). `l2`: wd * p is added to the
   * gradient before the moments, as `torch.optim.Adam(weight_decay=wd)` (the Grokfast
   * paper's optimizer).
   */
  decayMode?: "decoupled" | "l2";
}

/**
 * AdamW exactly as `torch.optim.AdamW` (single-tensor path): decay, moments, bias
 * corrections, then p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
 */
export class AdamW {
  readonly opts: AdamWOptions;
  /** Steps taken so far (PyTorch's `state["step"]`). */
  t = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(opts: AdamWOptions) {
    this.opts = opts;
  }

  /** Applies one update to `params` from `grads` at learning rate `lr`. */
  step(params: Map<string, tf.Variable>, grads: GradMap, lr: number): void {
    this.t += 1;
    const { beta1, beta2, eps, weightDecay } = this.opts;
    const bc1 = 1 - Math.pow(beta1, this.t);
    const bc2Sqrt = Math.sqrt(1 - Math.pow(beta2, this.t));
    const stepSize = lr / bc1;
    tf.tidy(() => {
      for (const [name, p] of params) {
        const grad = grads.get(name);
        if (!grad) continue;
        const m = this.#slot(this.m, name, p);
        const v = this.#slot(this.v, name, p);
        const decay = this.opts.noDecay?.(name) ? 0 : weightDecay;
        const l2 = this.opts.decayMode === "l2";
        const pDecayed = decay && !l2 ? tf.mul(p, 1 - lr * decay) : p;
        const g = decay && l2 ? tf.add(grad, tf.mul(p, decay)) : grad;
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.mul(g, g), 1 - beta2));
        const denom = tf.add(tf.div(tf.sqrt(v1), bc2Sqrt), eps);
        m.assign(m1);
        v.assign(v1);
        p.assign(tf.sub(pDecayed, tf.mul(tf.div(m1, denom), stepSize)));
      }
    });
  }

  #slot(slots: Map<string, tf.Variable>, name: string, p: tf.Variable): tf.Variable {
    let s = slots.get(name);
    if (!s) {
      s = tf.variable(tf.zerosLike(p), false);
      slots.set(name, s);
    }
    return s;
  }

  /** Moments as host tensors named `m.<param>` / `v.<param>`, for checkpoints. */
  async stateToHost(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [prefix, slots] of [["m", this.m], ["v", this.v]] as const) {
      for (const [name, s] of slots) out.set(`${prefix}.${name}`, { shape: s.shape.slice(), data: (await s.data()) as Float32Array });
    }
    return out;
  }

  /** Restores moments and the step count saved by `stateToHost`. */
  loadState(t: number, tensors: Map<string, HostTensor>): void {
    this.dispose();
    this.t = t;
    for (const [key, h] of tensors) {
      const dot = key.indexOf(".");
      const prefix = key.slice(0, dot);
      const slots = prefix === "m" ? this.m : prefix === "v" ? this.v : undefined;
      if (!slots) throw new Error(`optimizer state: unexpected tensor '${key}'`);
      slots.set(key.slice(dot + 1), tf.variable(tf.tensor(h.data, h.shape, "float32"), false));
    }
  }

  dispose(): void {
    for (const s of [...this.m.values(), ...this.v.values()]) s.dispose();
    this.m.clear();
    this.v.clear();
  }
}

export interface ScheduleOptions {
  /** Peak learning rate. */
  lr: number;
  /** Floor reached at the last step. */
  minLr: number;
  /** Linear warmup steps from lr / warmup to lr. */
  warmupSteps: number;
  /** Total optimizer steps. */
  totalSteps: number;
}

/** Linear warmup, then cosine decay from lr to minLr. `step` counts from 0. */
export function warmupCosine(step: number, s: ScheduleOptions): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  return s.minLr + 0.5 * (1 + Math.cos(Math.PI * progress)) * (s.lr - s.minLr);
}

/** Global L2 norm of all gradients, as a scalar tensor. */
export function globalNorm(grads: GradMap): tf.Scalar {
  return tf.tidy(() => {
    const squares = [...grads.values()].map((g) => tf.sum(tf.mul(g, g)));
    return tf.sqrt(tf.addN(squares)) as tf.Scalar;
  });
}

/**
 * Scales gradients so their global norm is at most `maxNorm` (PyTorch's
 * clip_grad_norm_: coef = maxNorm / (norm + 1e-6), clamped to 1). Returns new tensors
 * and the norm before clipping; the inputs are left to the caller.
 */
export function clipByGlobalNorm(grads: GradMap, maxNorm: number): { grads: GradMap; norm: tf.Scalar } {
  const norm = globalNorm(grads);
  const coef = tf.tidy(() => tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1));
  const out: GradMap = new Map();
  for (const [name, g] of grads) out.set(name, tf.mul(g, coef));
  coef.dispose();
  return { grads: out, norm };
}
