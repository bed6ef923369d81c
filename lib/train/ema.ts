/**
 * An exponential moving average of the weights (Polyak averaging), as TRM and HRM evaluate:
 * after each optimizer step t (1-based), ema <- d_t * ema + (1 - d_t) * params with
 * d_t = min(decay, (1 + t) / (10 + t)), the warm-up of TensorFlow's ExponentialMovingAverage, so
 * early steps are not dominated by the initial weights. The trainer updates it, checkpoints it
 * and, when training ends, loads it into the model.
 */
import * as tf from "@tensorflow/tfjs";
import type { HostTensor, ParamSet } from "../nn/params.ts";

/** The averaging weight of the old average after step t (1-based). */
export function emaDecayAt(decay: number, t: number): number {
  return Math.min(decay, (1 + t) / (10 + t));
}

export class WeightEma {
  readonly #avg = new Map<string, tf.Variable>();

  constructor(readonly params: ParamSet, readonly decay: number) {
    if (!(decay > 0 && decay < 1)) throw new Error(`training.ema_decay = ${decay}: expected a number in (0, 1), or 0 for no EMA`);
    for (const [name, v] of params.vars) this.#avg.set(name, tf.variable(v.clone(), false));
  }

  /** Folds the current weights in after optimizer step `t` (1-based). */
  update(t: number): void {
    const d = emaDecayAt(this.decay, t);
    tf.tidy(() => {
      for (const [name, a] of this.#avg) a.assign(tf.add(tf.mul(a, d), tf.mul(this.params.get(name), 1 - d)));
    });
  }

  /** The averages as host tensors (a checkpoint's ema.safetensors). */
  async toHost(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [name, a] of this.#avg) out.set(name, { shape: a.shape, data: (await a.data()) as Float32Array });
    return out;
  }

  /** Restores what `toHost` returned; errors name the missing parameter. */
  load(state: Map<string, HostTensor>): void {
    for (const [name, a] of this.#avg) {
      const h = state.get(name);
      if (!h) throw new Error(`ema state: no average for parameter '${name}'`);
      a.assign(tf.tensor(h.data, h.shape, "float32"));
    }
  }

  /** Writes the averages into the model's parameters. */
  applyToParams(): void {
    for (const [name, a] of this.#avg) this.params.get(name).assign(a);
  }

  dispose(): void {
    tf.dispose([...this.#avg.values()]);
  }
}
