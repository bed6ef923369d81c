/**
 * The pipeline's text: one byte tokenizer for every stage (so every stage's items fit one
 * model), text items (a prompt and the answer a model must write), training windows of items,
 * and a deterministic batch stream over them.
 */
import * as tf from "@tensorflow/tfjs";
import { ByteTokenizer } from "../../datasets/tokenizers/byte.ts";
import { type LmWindows, lmWindows } from "../../datasets/sanity.ts";
import { deriveSeed, Rng } from "../util/rng.ts";
import { admissibleCount, type RowCurriculum } from "../train/curriculum.ts";

/** The pipeline's tokenizer: UTF-8 bytes + PAD 256, BOS 257, EOS 258 (261 ids), so every phase's text fits one vocabulary. */
export const TOKENIZER = new ByteTokenizer();

/** A text item: the model reads `prompt` and must write `answer`. */
export interface TextItem {
  prompt: string;
  answer: string;
  /** Which task or dataset the item comes from (for per-task metrics and messages). */
  task?: string;
  /** The generator's difficulty knob (grid size, clue count, calculation steps...): higher is harder; a curriculum orders by it. */
  difficulty?: number;
}

/** Windows of items for the byte tokenizer at `seqLen` (items packed, answer-only loss mask). */
export function windowsOf(items: readonly TextItem[], seqLen: number, pack = true): LmWindows {
  return lmWindows(items, TOKENIZER, { seqLen, pack });
}

/**
 * A deterministic batch stream over windows: batch (step, micro) is `batchSize` windows
 * drawn from a permutation of epoch floor(step * batchSize / count), a pure function of
 * (seed, step, micro) as the trainer's resume needs. With a curriculum, batch (step, micro) is
 * drawn uniformly (with replacement) from the windows whose level is below the step's competence
 * (lib/train/curriculum.ts), still a pure function of (seed, step, micro).
 */
export function windowBatches(w: LmWindows, batchSize: number, seed: number, curriculum?: RowCurriculum) {
  if (curriculum && curriculum.rowLevel.length !== w.count) {
    throw new Error(`windowBatches: the curriculum has ${curriculum.rowLevel.length} row levels for ${w.count} windows`);
  }
  const easiestFirst = curriculum
    ? Int32Array.from(curriculum.rowLevel.keys()).sort((a, b) => curriculum.rowLevel[a] - curriculum.rowLevel[b])
    : undefined;
  const sortedLevels = easiestFirst ? Float64Array.from(easiestFirst, (r) => curriculum!.rowLevel[r]) : undefined;
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
    const admissible = curriculum ? admissibleCount(sortedLevels!, curriculum.competence(step)) : 0;
    const rng = curriculum ? new Rng(deriveSeed(seed, `curriculum-${step}-${micro}`)) : undefined;
    for (let b = 0; b < batchSize; b++) {
      const k = (step * gradAccum + micro) * batchSize + b;
      const row = rng ? easiestFirst![rng.int(admissible)] : perm(Math.floor(k / w.count))[k % w.count];
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
