/**
 * Phase glue every phase shares: the cognate config a run's model section gives, the base model
 * phase 1 hands on, training a model on text windows with checkpoints and resume, and the losses
 * a phase logged. The library parts phases use (tokenizer, windows, answer metrics, model files)
 * live in lib/text, lib/eval and lib/models; this file keeps only what needs a phase context.
 */
import { join } from "node:path";
import type { LmWindows } from "../../datasets/sanity.ts";
import type { PipelineConfig } from "../config/config.ts";
import {
  cognateBaseFromModel,
  type CognateConfig,
  cognateConfig,
  cognateParamCount,
  type CognateVariant,
  decoderPart,
  sizeCognate,
} from "../models/cognate.ts";
import { type CogmentConfig, cogmentConfig, sizeCogment } from "../models/cogment.ts";
import { loadModel, type SavedModel } from "../models/io.ts";
import type { RegistryModel } from "../models/registry.ts";
import { type TextItem, TOKENIZER, windowBatches } from "../text/tokens.ts";
import { competence, difficultyLevels, type RowCurriculum, rowLevels } from "../train/curriculum.ts";
import { z } from "zod";
import { type PhaseRun, trainerConfig } from "../train/config.ts";
import type { GradFilter, PersistentGradFilter, TrainConfig, TrainResult, TrainTask } from "../train/trainer.ts";
import { train } from "../train/trainer.ts";
import { type MetricRecord, phase1ModelPath, readMetrics } from "../util/run_dir.ts";
import { throwIfStopRequested } from "../util/stop.ts";
import type { PhaseContext } from "./spec.ts";

/** The cognate config of `variant` at the run's model section, sized to the standard model's parameter count. */
export function cognateFor(config: PipelineConfig, variant: CognateVariant, overrides: Partial<CognateConfig> = {}): CognateConfig {
  if (config.model.vocab_size < TOKENIZER.vocabSize) {
    throw new Error(`model.vocab_size = ${config.model.vocab_size}: the byte tokenizer needs at least ${TOKENIZER.vocabSize}`);
  }
  const base = cognateBaseFromModel(config.model);
  const s = sizeCognate(base, variant);
  return cognateConfig({ ...base, variant, nLayers: s.nLayers, mlpRatio: s.mlpRatio, ...overrides });
}

/** Cogment at the run's model section (decoder part), its MLP sized to the standard cognate's parameter count. */
export function cogmentFor(config: PipelineConfig): CogmentConfig {
  const standard = cognateFor(config, "standard");
  return sizeCogment(cogmentConfig({ ...decoderPart(standard) }), cognateParamCount(standard));
}

/**
 * The model phase 1 handed on (`metrics.base_variant` of its result, default `standard`),
 * loaded fresh. Throws, naming the file, when phase 1 has not completed in this run.
 */
export async function loadBase(
  ctx: Pick<PhaseContext, "previous" | "phase" | "runDir">,
  variant?: CognateVariant,
): Promise<{ model: RegistryModel; meta: SavedModel }> {
  const p1 = await ctx.previous(1);
  if (!p1) {
    throw new Error(
      `phase ${ctx.phase}: needs phase 1's model, but ${ctx.runDir}/phase-1-cognate/result.json is missing or failed; run phase 1 first`,
    );
  }
  const v = variant ?? (p1.metrics.base_variant as CognateVariant | undefined) ?? "standard";
  return await loadModel(join(ctx.runDir, phase1ModelPath(v)));
}

/**
 * The trainer config and batch size of this phase's run: the run's training section with the
 * phase's own steps, peak lr and batch size (0 = the training section's), through the one rule
 * every phase shares (lib/train/config.ts); `over` sets phase-specific trainer fields last.
 */
export function phaseTrainer(ctx: Pick<PhaseContext, "config" | "phase">, run: PhaseRun, over: Partial<TrainConfig> = {}) {
  return trainerConfig(ctx.config.training, run, `phases.${ctx.phase}`, over);
}

/** What `trainModel` needs besides the batches: names, the trainer config, hooks. */
export interface TrainModelOptions {
  /** Names the model in metrics.jsonl, the checkpoint folder and progress lines. */
  name: string;
  train: TrainConfig;
  evaluate?: (step: number) => Promise<Record<string, number>>;
  shouldStop?: (step: number, loss: number, evals?: Record<string, number>) => boolean;
  /** On a resume, with the checkpoint's step (rebuild state kept outside the trainer; see TrainOptions.onResume). */
  onResume?: (step: number) => void | Promise<void>;
  gradFilter?: GradFilter | PersistentGradFilter;
}

export interface TrainTextOptions extends TrainModelOptions {
  model: RegistryModel;
  windows: LmWindows;
  batchSize: number;
  /** Seed of the batch order. */
  seed: number;
  /** Easy windows first on a competence schedule (`curriculumWindows`); uniform sampling without. */
  curriculum?: RowCurriculum;
}

/** The curriculum keys of phases 2-4's sections (lib/train/curriculum.ts). */
export const CurriculumKeys = {
  curriculum: z.enum(["uniform", "competence"]).default("uniform"), // training order: uniform sampling, or easy items first on a competence schedule
  curriculum_start: z.number().gt(0).max(1).default(0.2), // competence at step 0: windows below this difficulty level are admissible
  curriculum_full_at: z.number().gt(0).max(1).default(0.5), // fraction of the steps after which every window is admissible
};
export type CurriculumSection = { curriculum: "uniform" | "competence"; curriculum_start: number; curriculum_full_at: number };

/**
 * A phase's training windows of `items` (built by `windows`), and under `curriculum: competence`
 * their curriculum: items sorted by level (each item's difficulty ranked within its group, e.g.
 * its task), so windows pack items of like difficulty, and each window's level the mean of its
 * items'. Uniform keeps the items' order. Items without a difficulty count as the easiest.
 */
export function curriculumWindows(
  items: readonly TextItem[],
  windows: (items: readonly TextItem[]) => LmWindows,
  sec: CurriculumSection,
  steps: number,
  group: (it: TextItem) => string = () => "",
): { windows: LmWindows; curriculum?: RowCurriculum } {
  if (sec.curriculum === "uniform") return { windows: windows(items) };
  const level = difficultyLevels(items.map((it) => it.difficulty ?? 0), items.map(group));
  const order = Array.from(items.keys()).sort((a, b) => level[a] - level[b] || a - b);
  const w = windows(order.map((i) => items[i]));
  if (!w.itemRow) throw new Error("curriculumWindows: the windows do not say which window holds each item");
  const schedule = { start: sec.curriculum_start, fullAt: Math.max(1, Math.round(sec.curriculum_full_at * steps)) };
  return {
    windows: w,
    curriculum: {
      rowLevel: rowLevels(Float64Array.from(order, (i) => level[i]), w.itemRow, w.count),
      competence: (s) => competence(s, schedule),
    },
  };
}

/**
 * Trains `task` with checkpoints in `<phase dir>/ckpt/<name>`; always continues from the newest
 * checkpoint there (so a killed phase resumes where it stopped and a finished model is not
 * trained again). Every logged step goes to metrics.jsonl with `model: name`.
 */
export async function trainModel<B>(ctx: PhaseContext, task: TrainTask<B>, o: TrainModelOptions): Promise<TrainResult> {
  const result = await train(task, o.train, {
    checkpointDir: join(ctx.dir, "ckpt", o.name),
    resume: true,
    config: ctx.config,
    onLog: (rec) => ctx.log({ model: o.name, ...rec }),
    evaluate: o.evaluate,
    shouldStop: o.shouldStop,
    onResume: o.onResume,
    gradFilter: o.gradFilter,
    label: `phase ${ctx.phase} ${o.name}`,
  });
  // A safe point: the model is checkpointed; a stop asked for during the last step ends the phase here.
  throwIfStopRequested();
  return result;
}

/** `trainModel` on text windows: a causal LM's loss on the answer tokens of packed windows. */
export function trainText(ctx: PhaseContext, o: TrainTextOptions): Promise<TrainResult> {
  const batch = windowBatches(o.windows, o.batchSize, o.seed, o.curriculum);
  const model = o.model;
  return trainModel(ctx, {
    params: model.params,
    batch: (step, micro) => batch(step, micro, o.train.gradAccum),
    loss: (b) => model.loss(b.ids, b.targets, b.mask),
    tokensPerBatch: o.batchSize * o.windows.seqLen,
  }, o);
}

/**
 * The records of model `name` in this phase as logged to metrics.jsonl, by step (the later
 * record of a step logged twice wins): unlike what a phase collects in memory while it trains,
 * they survive a resume, so a resumed phase reports the same numbers as an uninterrupted one.
 */
export async function loggedRecords(ctx: PhaseContext, name: string): Promise<MetricRecord[]> {
  const records = await readMetrics(ctx.runDir, { phase: ctx.phase, model: name }); // one record per step already
  return records.filter((r) => typeof r.step === "number").sort((a, b) => a.step - b.step);
}

/** The logged training losses of model `name` in this phase, by step (see loggedRecords). */
export async function loggedLosses(ctx: PhaseContext, name: string): Promise<number[]> {
  return (await loggedRecords(ctx, name)).filter((r) => typeof r.loss === "number").map((r) => r.loss as number);
}
