/**
 * Answer metrics shared by every gate: teacher-forced loss, token accuracy and per-item exact
 * match on answer tokens, and the input-blind baselines they are compared with (the majority
 * answer token and the unigram distribution of answer tokens).
 */
import * as tf from "@tensorflow/tfjs";
import type { LmWindows } from "../../datasets/sanity.ts";
import type { RegistryModel } from "../models/registry.ts";
import { logitsOf } from "../text/generate.ts";
import { TOKENIZER } from "../text/tokens.ts";

/** Teacher-forced answer metrics over windows. */
export interface AnswerMetrics {
  /** Mean cross-entropy (nats) over answer tokens. */
  loss: number;
  /** Fraction of answer tokens whose argmax is the target. */
  token_acc: number;
  /**
   * Fraction of items whose every answer token (and its EOS) is the argmax: exactly the items
   * greedy decoding would answer right, read in one forward pass.
   */
  exact: number;
  /** Answer tokens and items counted. */
  tokens: number;
  items: number;
  /** Per item (in order): all answer tokens right. */
  correct: boolean[];
}

/**
 * Teacher-forced metrics of `model` on windows (answer tokens only): loss, token accuracy and
 * per-item exact match (an item is a maximal run of mask = 1 within a window).
 */
export async function answerMetrics(model: RegistryModel, w: LmWindows, batchSize = 32): Promise<AnswerMetrics> {
  const T = w.seqLen;
  let lossSum = 0, tokens = 0, right = 0;
  const correct: boolean[] = [];
  for (let r0 = 0; r0 < w.count; r0 += batchSize) {
    const n = Math.min(batchSize, w.count - r0);
    const ids = tf.tensor2d(w.ids.subarray(r0 * T, (r0 + n) * T), [n, T], "int32");
    const logits = await logitsOf(model, ids); // [n, T, V]
    const [nll, pred] = tf.tidy(() => {
      const logp = tf.logSoftmax(logits); // [n, T, V]
      const tgt = tf.tensor2d(w.targets.subarray(r0 * T, (r0 + n) * T), [n, T], "int32");
      const picked = tf.sum(tf.mul(logp, tf.oneHot(tgt, logp.shape[2])), -1); // [n, T]
      return [tf.neg(picked), tf.argMax(logits, -1)];
    });
    const nllData = await nll.data(), predData = await pred.data();
    tf.dispose([ids, logits, nll, pred]);
    for (let r = 0; r < n; r++) {
      let inItem = false, allRight = true;
      for (let t = 0; t < T; t++) {
        const i = (r0 + r) * T + t, j = r * T + t;
        if (w.mask[i] > 0) {
          inItem = true;
          lossSum += nllData[j];
          tokens++;
          const ok = predData[j] === w.targets[i];
          if (ok) right++;
          else allRight = false;
        } else if (inItem) {
          correct.push(allRight);
          inItem = false;
          allRight = true;
        }
      }
      if (inItem) correct.push(allRight);
    }
  }
  const items = correct.length;
  return {
    loss: tokens ? lossSum / tokens : NaN,
    token_acc: tokens ? right / tokens : NaN,
    exact: items ? correct.filter(Boolean).length / items : NaN,
    tokens,
    items,
    correct,
  };
}

/** The answer-token accuracy of always predicting the most frequent answer token of `fit` (a majority baseline), scored on `w`. */
export function majorityTokenAccuracy(fit: LmWindows, w: LmWindows = fit): { token: number; accuracy: number } {
  const counts = new Map<number, number>();
  for (let i = 0; i < fit.mask.length; i++) if (fit.mask[i] > 0) counts.set(fit.targets[i], (counts.get(fit.targets[i]) ?? 0) + 1);
  let token = 0, best = -1;
  for (const [t, c] of counts) if (c > best) [token, best] = [t, c];
  let n = 0, right = 0;
  for (let i = 0; i < w.mask.length; i++) {
    if (w.mask[i] > 0) {
      n++;
      if (w.targets[i] === token) right++;
    }
  }
  return { token, accuracy: n ? right / n : NaN };
}

/**
 * The cross-entropy (nats) on `w`'s answer tokens of the unigram distribution of `fit`'s
 * answer tokens (add-one smoothed over the tokenizer's ids): the loss of a model that
 * ignores its input.
 */
export function unigramLoss(fit: LmWindows, w: LmWindows = fit): number {
  const V = TOKENIZER.vocabSize;
  const counts = new Float64Array(V).fill(1);
  let total = V;
  for (let i = 0; i < fit.mask.length; i++) {
    if (fit.mask[i] > 0) {
      counts[fit.targets[i]]++;
      total++;
    }
  }
  let sum = 0, n = 0;
  for (let i = 0; i < w.mask.length; i++) {
    if (w.mask[i] > 0) {
      sum -= Math.log(counts[w.targets[i]] / total);
      n++;
    }
  }
  return n ? sum / n : NaN;
}
