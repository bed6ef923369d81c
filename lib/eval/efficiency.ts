/**
 * The efficiency suite: parameters, size on disk, forward latency (p50/p99 over repeated
 * single-sequence passes), greedy generation throughput, and for models with ACT halting
 * the mean refinement (ponder) steps they actually ran.
 */
import * as tf from "@tensorflow/tfjs";
import type { Cognate } from "../models/cognate.ts";
import type { RegistryModel } from "../models/registry.ts";
import { generateGreedy, logitsOf } from "../text/generate.ts";
import { deriveSeed, Rng } from "../util/rng.ts";

/** The q-quantile (0..1) of `xs` by linear interpolation between order statistics. */
export function quantile(xs: readonly number[], q: number): number {
  if (!xs.length) return NaN;
  const s = xs.toSorted((a, b) => a - b);
  const pos = (s.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export interface EfficiencyReport {
  params: number;
  bytes_on_disk: number;
  /** One forward of [1, seq] tokens: median and 99th percentile, ms. */
  latency_p50_ms: number;
  latency_p99_ms: number;
  seq: number;
  repeats: number;
  /** Greedy generation, tokens per second, at batch 1 and at `batch`. */
  gen_tokens_per_s_b1: number;
  gen_tokens_per_s_batch: number;
  batch: number;
}

/** Measures `model` (whose file is `bytes` long) on random token ids drawn from `seed`. */
export async function efficiencySuite(
  model: RegistryModel,
  bytes: number,
  opts: { seq: number; repeats: number; newTokens: number; batch: number; seed: number },
): Promise<EfficiencyReport> {
  const rng = new Rng(deriveSeed(opts.seed, "efficiency"));
  const ids = tf.tensor2d(Int32Array.from({ length: opts.seq }, () => rng.int(256)), [1, opts.seq], "int32");
  const times: number[] = [];
  for (let i = 0; i < opts.repeats + 2; i++) {
    const t0 = performance.now();
    const logits = await logitsOf(model, ids);
    await logits.data();
    logits.dispose();
    if (i >= 2) times.push(performance.now() - t0); // two warm-up passes
  }
  ids.dispose();
  const prompt = "copy:abcdefgh=";
  const genRate = async (n: number) => {
    const t0 = performance.now();
    const outs = await generateGreedy(model, Array(n).fill(prompt), opts.newTokens, n);
    const tokens = outs.reduce((a, s) => a + Math.max(1, new TextEncoder().encode(s).length), 0);
    return tokens / ((performance.now() - t0) / 1000);
  };
  return {
    params: model.params.count(),
    bytes_on_disk: bytes,
    latency_p50_ms: quantile(times, 0.5),
    latency_p99_ms: quantile(times, 0.99),
    seq: opts.seq,
    repeats: opts.repeats,
    gen_tokens_per_s_b1: await genRate(1),
    gen_tokens_per_s_batch: await genRate(opts.batch),
    batch: opts.batch,
  };
}

/** Mean ACT refinement steps per position that a reasoning cognate ran on `ids` windows (masked positions only), or null for models without halting. */
export function meanPonderSteps(model: RegistryModel, ids: tf.Tensor2D, mask: tf.Tensor2D): number | null {
  const c = model as unknown as Cognate;
  if (!c.core) return null;
  return tf.tidy(() => {
    const steps = c.forward(ids).extras.steps!; // [B, T]
    return tf.div(tf.sum(tf.mul(steps, mask)), tf.maximum(tf.sum(mask), 1)).dataSync()[0];
  });
}
