/**
 * What every phase shares: the one tokenizer of the pipeline (bytes), the base model that
 * phase 1 hands on, training a model on text windows with checkpoints and resume, and the
 * answer metrics (teacher-forced loss and token accuracy, exact match per item, greedy
 * generation). Phases stay plain async functions over their context; this file keeps them
 * short and keeps their numbers comparable.
 */
import * as tf from "@tensorflow/tfjs";
import { basename, join } from "node:path";
import { ByteTokenizer } from "../../datasets/tokenizers/byte.ts";
import { type LmWindows, lmWindows } from "../../datasets/sanity.ts";
import { cognateBaseFromModel, type CognateConfig, cognateConfig, type CognateVariant, sizeCognate } from "../models/cognate.ts";
import { createModel, type ModelKey, type RegistryModel } from "../models/registry.ts";
import type { PipelineConfig } from "../pipeline/config.ts";
import type { PhaseContext } from "../pipeline/phase.ts";
import type { GradFilter, PersistentGradFilter, TrainConfig, TrainResult } from "../train/trainer.ts";
import { train } from "../train/trainer.ts";
import { decodeSafetensors, encodeSafetensors } from "../train/safetensors.ts";
import { exists, writeAtomic } from "../util/fs.ts";
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

// ---------------------------------------------------------------------------------------------
// Models: the base handed on by phase 1, saving and loading

/** The cognate config of `variant` at the run's model section, sized to the standard model's parameter count. */
export function cognateFor(config: PipelineConfig, variant: CognateVariant, overrides: Partial<CognateConfig> = {}): CognateConfig {
  if (config.model.vocab_size < TOKENIZER.vocabSize) {
    throw new Error(`model.vocab_size = ${config.model.vocab_size}: the byte tokenizer needs at least ${TOKENIZER.vocabSize}`);
  }
  const base = cognateBaseFromModel(config.model);
  const s = sizeCognate(base, variant);
  return cognateConfig({ ...base, variant, nLayers: s.nLayers, mlpRatio: s.mlpRatio, ...overrides });
}

/** A model file: registry key + config in the safetensors metadata, so it loads without anything else. */
export interface SavedModel {
  key: ModelKey;
  config: Record<string, unknown>;
}

/** Writes `model`'s parameters with its registry key and config (atomically). */
export async function saveModel(path: string, model: RegistryModel, meta: SavedModel): Promise<void> {
  const tensors = await model.params.toHost();
  await writeAtomic(path, encodeSafetensors(tensors, { key: meta.key, config: JSON.stringify(meta.config) }));
}

/** Loads a file written by `saveModel`: builds the model from its key and config, then its weights. */
export async function loadModel(path: string): Promise<{ model: RegistryModel; meta: SavedModel }> {
  if (!(await exists(path))) throw new Error(`${path}: model file not found`);
  const { tensors, metadata } = decodeSafetensors(await Deno.readFile(path), path);
  if (!metadata.key || !metadata.config) throw new Error(`${path}: no model key/config in the safetensors metadata`);
  const meta: SavedModel = { key: metadata.key as ModelKey, config: JSON.parse(metadata.config) };
  const model = createModel(meta.key, meta.config, 0);
  model.params.load(tensors, { source: path });
  return { model, meta };
}

/** Where phase 1 writes each variant (relative to the run directory). */
export const phase1ModelPath = (variant: CognateVariant) => join("phase-1-cognate", `${variant}.safetensors`);

/**
 * The model phase 1 handed on (`metrics.base_variant` of its result, default `standard`),
 * loaded fresh. Throws, naming the file, when phase 1 has not completed in this run.
 */
export async function loadBase(ctx: PhaseContext, variant?: CognateVariant): Promise<{ model: RegistryModel; meta: SavedModel }> {
  const p1 = await ctx.previous(1);
  if (!p1) {
    const self = basename(ctx.dir);
    throw new Error(
      `${self}: needs phase 1's model, but ${ctx.runDir}/phase-1-cognate/result.json is missing or failed; run phase 1 first`,
    );
  }
  const v = variant ?? (p1.metrics.base_variant as CognateVariant | undefined) ?? "standard";
  return await loadModel(join(ctx.runDir, phase1ModelPath(v)));
}

/** The logits of a registry model (forward or async infer). ids [B, T] -> [B, T, V]. */
export async function logitsOf(model: RegistryModel, ids: tf.Tensor2D): Promise<tf.Tensor3D> {
  if (model.forward) return tf.tidy(() => model.forward!(ids).logits);
  if (model.infer) {
    const out = await model.infer(ids);
    return out.logits;
  }
  throw new Error("logitsOf: the model has neither forward nor infer");
}

// ---------------------------------------------------------------------------------------------
// Training on text windows

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

/** The run's training section as a TrainConfig, with a phase's own step count and overrides. */
export function trainConfigFor(config: PipelineConfig, steps: number, over: Partial<TrainConfig> = {}): TrainConfig {
  const t = config.training;
  return {
    steps,
    lr: t.lr,
    minLr: t.min_lr,
    warmupSteps: Math.min(t.warmup_steps, Math.max(0, steps - 1)),
    weightDecay: t.weight_decay,
    beta1: t.beta1,
    beta2: t.beta2,
    eps: 1e-8,
    gradClip: t.grad_clip,
    gradAccum: t.grad_accum,
    evalEvery: t.eval_every,
    saveEvery: t.save_every,
    logEvery: t.log_every,
    ...over,
  };
}

export interface TrainTextOptions {
  /** Names the model in metrics.jsonl, the checkpoint folder and progress lines. */
  name: string;
  model: RegistryModel;
  windows: LmWindows;
  train: TrainConfig;
  batchSize: number;
  /** Seed of the batch order. */
  seed: number;
  evaluate?: (step: number) => Promise<Record<string, number>>;
  shouldStop?: (step: number, loss: number, evals?: Record<string, number>) => boolean;
  gradFilter?: GradFilter | PersistentGradFilter;
}

/**
 * Trains `model` on text windows with checkpoints in `<phase dir>/ckpt/<name>`; always
 * continues from the newest checkpoint there (so a killed phase resumes where it stopped and
 * a finished model is not trained again). Every logged step goes to metrics.jsonl with `model`.
 */
export async function trainText(ctx: PhaseContext, o: TrainTextOptions): Promise<TrainResult> {
  const batch = windowBatches(o.windows, o.batchSize, o.seed);
  const model = o.model;
  return await train(
    {
      params: model.params,
      batch: (step, micro) => batch(step, micro, o.train.gradAccum),
      loss: (b) => model.loss(b.ids, b.targets, b.mask),
      tokensPerBatch: o.batchSize * o.windows.seqLen,
    },
    o.train,
    {
      checkpointDir: join(ctx.dir, "ckpt", o.name),
      resume: true,
      config: ctx.config,
      onLog: (rec) => ctx.log({ model: o.name, ...rec }),
      evaluate: o.evaluate,
      shouldStop: o.shouldStop,
      gradFilter: o.gradFilter,
      label: `phase ${basename(ctx.dir).match(/^phase-(\d+)-/)?.[1] ?? "?"} ${o.name}`,
    },
  );
}

/**
 * The losses of model `name` in this phase as logged to metrics.jsonl, by step (the later record
 * of a step logged twice wins): unlike the trainer's in-memory list they survive a resume, so a
 * resumed phase reports the same numbers as an uninterrupted one.
 */
export async function loggedLosses(ctx: PhaseContext, name: string): Promise<number[]> {
  const phase = Number(basename(ctx.dir).match(/^phase-(\d+)-/)?.[1]);
  const file = join(ctx.runDir, "metrics.jsonl");
  if (!(await exists(file))) return [];
  const byStep = new Map<number, number>();
  for (const line of (await Deno.readTextFile(file)).split("\n")) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line);
      if (r.phase === phase && r.model === name && typeof r.step === "number" && typeof r.loss === "number") byStep.set(r.step, r.loss);
    } catch { /* a torn last line after a kill */ }
  }
  return [...byStep].sort((a, b) => a[0] - b[0]).map(([, loss]) => loss);
}

/** Mean of the last `n` values (NaN for none). */
export function tailMean(xs: readonly number[], n = 5): number {
  const t = xs.slice(-n);
  return t.length ? t.reduce((a, b) => a + b, 0) / t.length : NaN;
}

// ---------------------------------------------------------------------------------------------
// Metrics on answers

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

/**
 * Greedy decoding of each prompt (bos + prompt), batched: up to `maxNew` tokens or EOS.
 * Returns the generated text of each prompt (without the prompt). Rows are right-padded;
 * a causal model's position t never sees later positions, so padding does not change them.
 */
export async function generateGreedy(model: RegistryModel, prompts: readonly string[], maxNew: number, batchSize = 32): Promise<string[]> {
  const out: string[] = [];
  for (let b0 = 0; b0 < prompts.length; b0 += batchSize) {
    const rows = prompts.slice(b0, b0 + batchSize).map((p) => [TOKENIZER.bos, ...TOKENIZER.encode(p)]);
    const start = rows.map((r) => r.length);
    const done = rows.map(() => false);
    for (let k = 0; k < maxNew && done.some((d) => !d); k++) {
      const T = Math.max(...rows.map((r) => r.length));
      const flat = new Int32Array(rows.length * T).fill(TOKENIZER.pad);
      rows.forEach((r, i) => flat.set(r, i * T));
      const ids = tf.tensor2d(flat, [rows.length, T], "int32");
      const logits = await logitsOf(model, ids); // [n, T, V]
      // Only the tokenizer's ids can be generated (the model's vocabulary may be rounded up past them).
      const next = tf.tidy(() => tf.argMax(logits.slice([0, 0, 0], [-1, -1, TOKENIZER.vocabSize]), -1)); // [n, T]
      const data = await next.data();
      tf.dispose([ids, logits, next]);
      rows.forEach((r, i) => {
        if (done[i]) return;
        const tok = data[i * T + r.length - 1];
        if (tok === TOKENIZER.eos) done[i] = true;
        else r.push(tok);
      });
    }
    rows.forEach((r, i) => out.push(TOKENIZER.decode(r.slice(start[i]))));
  }
  return out;
}

/** Reads `ctx.phaseConfig` as the phase's typed section (the config system has already checked its keys and types). */
export function sectionOf<T>(ctx: PhaseContext): T {
  return ctx.phaseConfig as T;
}

/** Rounds for result.json (keeps files readable; numbers stay exact enough to compare). */
export function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
