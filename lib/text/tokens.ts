/**
 * The pipeline's text: one byte tokenizer for every stage (so every stage's items fit one
 * model), text items (a prompt and the answer a model must write), training windows of items,
 * and a deterministic batch stream over them.
 */
import * as tf from "@tensorflow/tfjs";
import { ByteTokenizer } from "../../datasets/tokenizers/byte.ts";
import { type LmWindows, lmWindows } from "../../datasets/sanity.ts";
import { deriveSeed, Rng } from "../util/rng.ts";

/** The pipeline's tokenizer: UTF-8 bytes + PAD 256, BOS 257, EOS 258 (261 ids), so every phase's text fits one vocabulary. */
export const TOKENIZER = new ByteTokenizer();

/** A text item: the model reads `prompt` and must write `answer`. */
export interface TextItem {
  prompt: string;
  answer: string;
  /** Which task or dataset the item comes from (for per-task metrics and messages). */
  task?: string;
}

/** Windows of items for the byte tokenizer at `seqLen` (items packed, answer-only loss mask). */
export function windowsOf(items: readonly TextItem[], seqLen: number, pack = true): LmWindows {
  return lmWindows(items, TOKENIZER, { seqLen, pack });
}

/**
 * A deterministic batch stream over windows: batch (step, micro) is `batchSize` windows
 * drawn from a permutation of epoch floor(step * batchSize / count), a pure function of
 * (seed, step, micro) as the trainer's resume needs.
 */
export function windowBatches(w: LmWindows, batchSize: number, seed: number) {
  const perms = new Map<number, Int32Array>();
  const perm = (epoch: number) => {
    let p = perms.get(epoch);
    if (!p) {
      if (perms.size > 4) perms.clear();
      p = new Rng(deriveSeed(seed, `epoch-${epoch}`)).permutation(w.count);
      perms.set(epoch, p);
    }
    return p;
  };
  return (step: number, micro: number, gradAccum = 1) => {
    const T = w.seqLen;
    const ids = new Int32Array(batchSize * T), targets = new Int32Array(batchSize * T), mask = new Float32Array(batchSize * T);
    for (let b = 0; b < batchSize; b++) {
      const k = (step * gradAccum + micro) * batchSize + b;
      const row = perm(Math.floor(k / w.count))[k % w.count];
      ids.set(w.ids.subarray(row * T, (row + 1) * T), b * T);
      targets.set(w.targets.subarray(row * T, (row + 1) * T), b * T);
      mask.set(w.mask.subarray(row * T, (row + 1) * T), b * T);
    }
    return {
      ids: tf.tensor2d(ids, [batchSize, T], "int32"), // [B, T]
      targets: tf.tensor2d(targets, [batchSize, T], "int32"), // [B, T]
      mask: tf.tensor2d(mask, [batchSize, T], "float32"), // [B, T]
    };
  };
}
