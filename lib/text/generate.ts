/** Logits of any registry model and batched greedy decoding, with a KV cache where the model has one. */
import * as tf from "@tensorflow/tfjs";
import type { Tokenizer } from "../../datasets/tokenizers/types.ts";
import type { RegistryModel } from "../models/registry.ts";
import { type CachedModel, hasKvCache, KvCache } from "../nn/kv_cache.ts";
import { TOKENIZER } from "./tokens.ts";

/** The logits of a registry model (forward or async infer). ids [B, T] -> [B, T, V]. */
export async function logitsOf(model: RegistryModel, ids: tf.Tensor2D): Promise<tf.Tensor3D> {
  if (model.forward) return tf.tidy(() => model.forward!(ids).logits);
  if (model.infer) {
    const out = await model.infer(ids);
    return out.logits;
  }
  throw new Error("logitsOf: the model has neither forward nor infer");
}

/** How `generateGreedy` decodes. */
export interface GreedyOptions {
  /** The tokenizer of the prompts and outputs. Default: the pipeline's byte tokenizer. */
  tokenizer?: Tokenizer;
  /** Decode with a KV cache where the model has one (default true); false recomputes the prefix every token. */
  cache?: boolean;
}

/**
 * Greedy decoding of each prompt (bos + prompt), batched: up to `maxNew` tokens or EOS.
 * Returns the generated text of each prompt (without the prompt). Only the tokenizer's ids are
 * candidates (the model's vocabulary may be rounded up past them).
 *
 * Models with a KV cache (`hasKvCache`) prefill every prompt once and then run one position per
 * token, dropping rows as they finish; the others recompute the whole prefix each token, rows
 * right-padded (a causal model's position t never sees later positions, so padding changes nothing).
 */
export async function generateGreedy(
  model: RegistryModel,
  prompts: readonly string[],
  maxNew: number,
  batchSize = 32,
  opts: GreedyOptions = {},
): Promise<string[]> {
  const tok = opts.tokenizer ?? TOKENIZER;
  const out: string[] = [];
  for (let b0 = 0; b0 < prompts.length; b0 += batchSize) {
    const rows = prompts.slice(b0, b0 + batchSize).map((p) => [...(tok.bos === undefined ? [] : [tok.bos]), ...tok.encode(p)]);
    const ids = opts.cache !== false && hasKvCache(model)
      ? await greedyCached(model, rows, maxNew, tok)
      : await greedyFull(model, rows, maxNew, tok);
    for (const r of ids) out.push(tok.decode(r));
  }
  return out;
}

/** Argmax over the tokenizer's ids (the first `vocab`) of each row of logits [n, V]. */
async function argmaxRows(logits: tf.Tensor2D, vocab: number): Promise<Int32Array> {
  const next = tf.tidy(() => tf.argMax(tf.slice(logits, [0, 0], [-1, vocab]), -1)); // [n]
  const data = await next.data() as Int32Array;
  next.dispose();
  return data;
}

/** Greedy continuations of token rows with a KV cache: one prefill, then one position per token. */
export async function greedyCached(
  model: CachedModel,
  rows: readonly number[][],
  maxNew: number,
  tok: Tokenizer = TOKENIZER,
): Promise<number[][]> {
  const outs: number[][] = rows.map(() => []);
  if (maxNew <= 0) return outs;
  const cache = new KvCache();
  cache.addRows(rows.length);
  let active = rows.map((_, i) => i); // cache row j holds prompt active[j]
  let logits = cache.feed(model, rows, tok.pad ?? 0); // [n, V]
  try {
    for (let k = 0; k < maxNew; k++) {
      const next = await argmaxRows(logits, tok.vocabSize);
      logits.dispose();
      const keep: number[] = [];
      active.forEach((i, j) => {
        if (next[j] === tok.eos) return;
        outs[i].push(next[j]);
        if (k + 1 < maxNew) keep.push(j);
      });
      if (keep.length === 0) return outs;
      if (keep.length < active.length) cache.keepRows(keep);
      active = keep.map((j) => active[j]);
      logits = cache.feed(model, active.map((i) => [outs[i][outs[i].length - 1]]));
    }
    logits.dispose();
    return outs;
  } finally {
    cache.dispose();
  }
}

/** Greedy continuations without a cache: the whole prefix is recomputed for every token. */
export async function greedyFull(model: RegistryModel, prompts: readonly number[][], maxNew: number, tok: Tokenizer): Promise<number[][]> {
  const rows = prompts.map((r) => [...r]);
  const start = rows.map((r) => r.length);
  const done = rows.map(() => false);
  for (let k = 0; k < maxNew && done.some((d) => !d); k++) {
    const T = Math.max(...rows.map((r) => r.length));
    const flat = new Int32Array(rows.length * T).fill(tok.pad ?? 0);
    rows.forEach((r, i) => flat.set(r, i * T));
    const ids = tf.tensor2d(flat, [rows.length, T], "int32");
    const logits = await logitsOf(model, ids); // [n, T, V]
    // Each row's newest position, then the argmax over the tokenizer's ids.
    const last = tf.tidy(() =>
      tf.gatherND(logits, tf.tensor2d(rows.map((r, i) => [i, r.length - 1]), [rows.length, 2], "int32"))
    ) as tf.Tensor2D; // [n, V]
    const next = await argmaxRows(last, tok.vocabSize);
    tf.dispose([ids, logits, last]);
    rows.forEach((r, i) => {
      if (done[i]) return;
      if (next[i] === tok.eos) done[i] = true;
      else r.push(next[i]);
    });
  }
  return rows.map((r, i) => r.slice(start[i]));
}
