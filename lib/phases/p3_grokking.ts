/**
 * Phase 3, part (a): grokking on modular arithmetic.
 *
 * A fresh small decoder learns `x o y mod p` (datasets/modular.ts) from a share of all
 * equations, scored on the answer only, with Adam (L2 decay), a constant learning rate and
 * the GrokFast EMA filter, as the Grokfast paper's setting (bench/grokfast.ts). Train and
 * validation accuracy every `mod_eval_every` steps form the grokking curve and feed the
 * GrokkingDetector (memorization and generalization steps). Optionally the same model, seed
 * and data without GrokFast, for as many steps, for comparison.
 *
 * Measured at the small preset (x + y mod 47, width 64, the registry decoder's 0.02 init;
 * validation accuracy at step 600): train and validation accuracy rise nearly together, and
 * the filter slows generalization rather than speeding it (three seeds: 0.92 / 0.61 / 0.39
 * with lambda 1, 0.56 / 0.59 / 0.27 with the paper's lambda 2; without it 0.98 and 0.97 in
 * the two seeds run). The paper's speed-up is for a model that memorizes first and
 * generalizes thousands of steps later (PyTorch's larger init, `mod_init: "torch"`, x * y
 * mod 97, width 128): the `seed` preset runs that regime. Measured with phase 3's seed on
 * this 2-core CPU (small preset otherwise): GrokFast (lambda 2) memorized at step 1,820
 * (validation 0.34) and generalized at 1,980 ("grokked", validation 0.95 when it stopped at
 * 2,080); the same model without the filter was still at chance after 2,080 steps. About 10-13
 * minutes per run here, more than the small preset's budget. (With p = 59 and the torch init:
 * memorized at ~420 steps, validation still below 95% at 1,000.) The GrokFast run stops
 * `mod_stop_after` steps after first reaching `grok_val_threshold`.
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { z } from "zod";
import { epochBatch, MODULAR_OPS, type ModularDataset, modularDataset, type ModularOp, type ModularSplit } from "../../datasets/modular.ts";
import { sectionOf } from "../config/config.ts";
import { SMALL_DECODER } from "../nn/decoder.ts";
import { crossEntropy } from "../nn/layers.ts";
import { torchDefaultInit } from "../nn/torch_init.ts";
import { createModel, type RegistryModel } from "../models/registry.ts";
import type { PhaseContext } from "./spec.ts";
import type { StageContext } from "../eval/stage.ts";
import { GrokkingDetector, type GrokkingReport } from "../train/detectors.ts";
import { grokfastFromConfig, grokfastSection } from "../train/grokfast.ts";
import { train } from "../train/trainer.ts";
import { exists, readJson, writeJsonAtomic } from "../util/fs.ts";
import { deriveSeed } from "../util/rng.ts";
import type { Figure } from "../viz/figures.ts";
import { round } from "../util/numbers.ts";
import { phaseTrainer } from "./common.ts";

/** The modular operations' names, for the section's enum. */
const MODULAR_OP_NAMES = Object.keys(MODULAR_OPS) as [ModularOp, ...ModularOp[]];

/** The `phases.3` keys of part (a), the grokking run: type, defaults (the small preset) and validation (p3_puzzles.ts extends it with part (b)'s). */
export const GrokkingSection = z.strictObject({
  mod_p: z.number().int().min(3).default(47), // (a) prime modulus of the equations `x o y mod p`; chance accuracy is 1/p
  mod_op: z.enum(MODULAR_OP_NAMES).default("add"), // (a) operation: add, sub, mul, div, sq_sum, quad, cubic (datasets/modular.ts)
  mod_train_fraction: z.number().gt(0).max(0.95).default(0.5), // (a) share of all equations used for training; the rest is validation
  mod_width: z.number().int().min(4).default(64), // (a) width of the fresh decoder that learns the equations
  mod_layers: z.number().int().min(1).default(2), // (a) its transformer blocks
  mod_heads: z.number().int().min(1).default(4), // (a) its attention heads
  mod_init: z.enum(["torch", "registry"]).default("registry"), // (a) registry: the decoder's N(0, 0.02); torch: PyTorch's default init (the paper's, lib/nn/torch_init.ts)
  mod_steps: z.number().int().min(2).default(600), // (a) most optimizer steps of the GrokFast run
  mod_stop_after: z.number().int().min(-1).default(100), // (a) steps the GrokFast run continues once validation reaches grok_val_threshold (-1: never stop early)
  mod_batch_size: z.number().int().min(1).default(512), // (a) equations per step (each epoch is a fresh shuffle cut into batches)
  mod_lr: z.number().gt(0).default(1e-3), // (a) Adam learning rate, constant after a 10-step warmup (the Grokfast paper's)
  mod_weight_decay: z.number().min(0).default(0.005), // (a) L2 weight decay added to the gradient (torch.optim.Adam's, as the paper)
  mod_eval_every: z.number().int().min(1).default(20), // (a) steps between train/validation accuracy evaluations (the grokking curve)
  mod_baseline: z.boolean().default(true), // (a) also train the same model from the same seed without GrokFast, as many steps, for comparison
  grokfast: grokfastSection({ enabled: true, kind: "ema", alpha: 0.98, lambda: 1, window: 100, warmup: 0 }).prefault({}), // (a) GrokFast of the grokking run: on, lambda 1 (training.grokfast has 2: slower here, see the module comment)
  grok_train_threshold: z.number().gt(0).max(1).default(0.99), // (a) detector: train accuracy that counts as memorized
  grok_val_threshold: z.number().gt(0).max(1).default(0.95), // (a) detector: validation accuracy that counts as generalized
});
export type GrokkingSection = z.infer<typeof GrokkingSection>;

/** Tokens of a modular equation's input (x, op, y, =): the answer is read at the last one. */
export const MOD_LEN = 4;

/** The modular dataset of a stage (the same split feeds part (a) and the text task of part (b)). */
export function modularData(s: StageContext): ModularDataset {
  const c = sectionOf(GrokkingSection.strip(), s.phaseConfig, 3);
  return modularDataset({
    p: c.mod_p,
    op: c.mod_op,
    trainFraction: c.mod_train_fraction,
    seed: deriveSeed(s.seed, "modular"),
  });
}

/** A model that maps ids [B, T] to logits [B, T, V]: a registry model or a bare Decoder. */
type LogitsModel = Pick<RegistryModel, "forward">;

/** Logits at the `=` position of modular equations (answer-only scoring). ids int32 [B, 4] -> [B, V]. */
export function equationLogits(model: LogitsModel, ids: tf.Tensor2D): tf.Tensor2D {
  const logits = model.forward!(ids).logits; // [B, 4, V]
  const V = logits.shape[2];
  return tf.reshape(tf.slice(logits, [0, MOD_LEN - 1, 0], [-1, 1, -1]), [ids.shape[0], V]); // [B, V]
}

/** Answer accuracy of `model` over a whole split, in chunks (also bench/grokfast.ts's). */
export async function equationAccuracy(model: LogitsModel, split: ModularSplit, chunk = 2048): Promise<number> {
  let correct = 0;
  for (let i = 0; i < split.size; i += chunk) {
    const n = Math.min(chunk, split.size - i);
    const hits = tf.tidy(() => {
      const ids = tf.tensor2d(split.inputs.subarray(i * MOD_LEN, (i + n) * MOD_LEN), [n, MOD_LEN], "int32");
      const pred = tf.argMax(equationLogits(model, ids), -1); // [n]
      return tf.sum(tf.cast(tf.equal(pred, tf.tensor1d(split.targets.subarray(i, i + n), "int32")), "int32"));
    });
    correct += (await hits.data())[0];
    hits.dispose();
  }
  return correct / split.size;
}

/** A grokking curve: one entry per evaluation. */
export interface GrokCurve {
  step: number[];
  train_acc: number[];
  val_acc: number[];
  loss: number[];
}

/** What one grokking run hands back (rounded for result.json). */
export interface GrokRun {
  name: string;
  grokfast: boolean;
  steps: number;
  train_acc: number;
  val_acc: number;
  seconds: number;
  report: GrokkingReport;
  curve: GrokCurve;
}

/** Replays a curve into a GrokkingDetector (so a resumed run reports exactly what an uninterrupted one would). */
export function detectGrokking(curve: GrokCurve, trainThreshold: number, valThreshold: number): GrokkingReport {
  const det = new GrokkingDetector({ trainThreshold, valThreshold });
  curve.step.forEach((s, i) => det.update(s, curve.train_acc[i], curve.val_acc[i]));
  return det.report();
}

/**
 * Trains a fresh decoder (registry `decoder`, seeded by the phase) on the equations, with or
 * without GrokFast, for at most `budget` steps, stopping `stopAfter` steps after validation
 * first reaches `grok_val_threshold` (-1: never). The curve is kept in
 * `<phase dir>/<name>_curve.json` beside the trainer's checkpoints, so a resumed run continues
 * it (entries past the checkpoint are recomputed).
 */
export async function grokRun(
  ctx: PhaseContext,
  data: ModularDataset,
  name: string,
  withGrokfast: boolean,
  budget: number,
  stopAfter: number,
): Promise<GrokRun> {
  const c = sectionOf(GrokkingSection.strip(), ctx.phaseConfig, 3);
  const model = createModel("decoder", {
    ...SMALL_DECODER,
    vocabSize: data.vocabSize,
    maxSeqLen: MOD_LEN,
    dModel: c.mod_width,
    nHeads: c.mod_heads,
    nLayers: c.mod_layers,
  }, deriveSeed(ctx.seed, "modular-model"));
  if (c.mod_init === "torch") {
    model.params.load(torchDefaultInit(model.params, deriveSeed(ctx.seed, "modular-init")), { source: "torchDefaultInit" });
  }
  const filter = withGrokfast ? grokfastFromConfig(c.grokfast) : undefined;
  const curveFile = join(ctx.dir, `${name}_curve.json`);
  const curve: GrokCurve = (await exists(curveFile))
    ? await readJson<GrokCurve>(curveFile)
    : { step: [], train_acc: [], val_acc: [], loss: [] };
  // Early stop, a pure function of the curve: at the first evaluation `stopAfter` or more steps
  // past the first one at or above the validation threshold (evaluations are where training can
  // stop). A resumed run whose curve already says so trains to that step and no further.
  const stopStep = (cv: GrokCurve) => {
    const i = stopAfter < 0 ? -1 : cv.val_acc.findIndex((v) => v >= c.grok_val_threshold);
    return i < 0 ? undefined : Math.ceil((cv.step[i] + stopAfter) / c.mod_eval_every) * c.mod_eval_every;
  };
  const steps = Math.min(budget, stopStep(curve) ?? budget);
  const batchSeed = deriveSeed(ctx.seed, "modular-batches");
  const t0 = performance.now();
  try {
    const res = await train(
      {
        params: model.params,
        tokensPerBatch: Math.min(c.mod_batch_size, data.train.size) * MOD_LEN,
        batch: (step) => {
          const b = epochBatch(data.train, c.mod_batch_size, step, batchSeed);
          return { ids: tf.tensor2d(b.inputs, [b.size, MOD_LEN], "int32"), y: tf.tensor1d(b.targets, "int32") };
        },
        loss: (b) => crossEntropy(equationLogits(model, b.ids), b.y),
      },
      phaseTrainer(ctx, { steps, lr: c.mod_lr }, {
        minLr: c.mod_lr, // constant after warmup, as the paper
        warmupSteps: Math.min(10, steps - 1),
        weightDecay: c.mod_weight_decay,
        weightDecayMode: "l2",
        beta1: 0.9,
        beta2: 0.98,
        gradClip: 0,
        gradAccum: 1,
        evalEvery: c.mod_eval_every,
        logEvery: c.mod_eval_every,
      }).train,
      {
        checkpointDir: join(ctx.dir, "ckpt", name),
        resume: true,
        config: ctx.config,
        gradFilter: filter,
        label: `phase 3 ${name}`,
        shouldStop: (step, _loss, evals) => evals !== undefined && step >= (stopStep(curve) ?? Infinity),
        evaluate: async () => ({ train_acc: await equationAccuracy(model, data.train), val_acc: await equationAccuracy(model, data.val) }),
        onLog: async (rec) => {
          await ctx.log({ model: name, ...rec });
          if (typeof rec.val_acc !== "number") return;
          // After a resume, entries from the interrupted run past its checkpoint are stale.
          const keep = curve.step.findIndex((s) => s >= rec.step);
          if (keep >= 0) { for (const k of ["step", "train_acc", "val_acc", "loss"] as const) curve[k].length = keep; }
          curve.step.push(rec.step);
          curve.train_acc.push(round(rec.train_acc as number));
          curve.val_acc.push(round(rec.val_acc));
          curve.loss.push(round(rec.loss));
          await writeJsonAtomic(curveFile, curve);
        },
      },
    );
    return {
      name,
      grokfast: filter !== undefined,
      steps: res.steps,
      train_acc: round(await equationAccuracy(model, data.train)),
      val_acc: round(await equationAccuracy(model, data.val)),
      seconds: round((performance.now() - t0) / 1000, 1),
      report: detectGrokking(curve, c.grok_train_threshold, c.grok_val_threshold),
      curve,
    };
  } finally {
    filter?.dispose();
    model.dispose();
  }
}

export const COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];
/** A plotly line trace; `extra.line` is merged into the line style. */
export function line(name: string, x: unknown, y: unknown, color: string, extra: Record<string, unknown> = {}) {
  return { type: "scatter", mode: "lines", name, x, y, ...extra, line: { color, ...(extra.line as object) } };
}

/** Train/validation accuracy against step (log x), the detector's steps marked, chance as a line. */
export function grokkingFigure(m: Record<string, unknown>): Figure {
  const data: Record<string, unknown>[] = [];
  const shapes: Record<string, unknown>[] = [
    { type: "line", xref: "paper", x0: 0, x1: 1, y0: m.mod_chance, y1: m.mod_chance, line: { dash: "dot", color: "#999" } },
  ];
  (m.grok_runs as GrokRun[]).forEach((r, i) => {
    const color = COLORS[i % COLORS.length], label = r.grokfast ? "GrokFast" : "no GrokFast";
    data.push(line(`${label} validation`, r.curve.step, r.curve.val_acc, color));
    data.push(line(`${label} train`, r.curve.step, r.curve.train_acc, color, { line: { dash: "dot" } }));
    for (const [key, dash] of [["memorizationStep", "dot"], ["generalizationStep", "dash"]] as const) {
      const s = r.report[key];
      if (s !== undefined) shapes.push({ type: "line", yref: "paper", x0: s, x1: s, y0: 0, y1: 1, line: { color, dash, width: 1 } });
    }
  });
  const title =
    `${m.mod_op}(x, y) mod ${m.mod_p}: solid validation, dotted train; vertical lines: memorized (dotted), generalized (dashed)`;
  return {
    data,
    layout: {
      title: { text: title },
      xaxis: { title: { text: "optimization step" }, type: "log" },
      yaxis: { title: { text: "accuracy" }, range: [0, 1.02] },
      shapes,
      height: 440,
    },
  };
}
