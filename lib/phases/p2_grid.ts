/**
 * Phase 2, part (b): a grid-native HRRM for ARC, trained from scratch beside the text model of
 * part (a). One token per cell of every grid of a task (lib/phases/arc_cells.ts), the answer's
 * shape from the shape step, every answer cell at once, deep supervision over recurrent segments
 * and Q-halting. Training tasks are generated afresh for every batch (any pair of a task can be
 * its query, under a random dihedral transform and colour permutation); no training task shares
 * a hash with a held-out one.
 *
 * Scored on part (a)'s held-out generated tasks (the same tasks, views drawn alike) against
 * copying the test input and the majority colour, and held to one segment (what recursion adds).
 * Real ARC-AGI-1 tasks (a fixed sample, file-name order) are scored with test-time training:
 * a copy of the model fine-tuned on each task's own demonstrations before it answers.
 */
import { join } from "node:path";
import { z } from "zod";
import { type Augmentation, augmentTask } from "../../datasets/arc/augment.ts";
import { generateTask, type GeneratorConfig } from "../../datasets/arc/generator.ts";
import { loadTaskFile } from "../../datasets/arc/loader.ts";
import { taskHash } from "../../datasets/arc/serialize.ts";
import type { ArcTask, Grid } from "../../datasets/arc/types.ts";
import { gridLevels, Hrrm, type HrrmConfig, hrrmConfig } from "../models/hrrm.ts";
import { saveModel } from "../models/io.ts";
import { round } from "../util/numbers.ts";
import { deriveSeed, Rng } from "../util/rng.ts";
import { phaseDirName } from "../util/run_dir.ts";
import {
  answerViews,
  ARC_VOCAB,
  batchTensors,
  type CellSequence,
  type CellTaskScore,
  scoreViews,
  taskViews,
  testTimeTrain,
  trainingSequence,
} from "./arc_cells.ts";
import { loggedLosses, phaseTrainer, trainModel } from "./common.ts";
import type { PhaseContext } from "./spec.ts";

/** `phases.2` keys of part (b), with their defaults (the small preset). */
export const ArcGridKeys = {
  grid_steps: z.number().int().min(0).default(800), // (b) optimizer steps of the grid-native HRRM (0 skips part b)
  grid_batch_size: z.number().int().min(1).default(16), // (b) generated tasks per step, each under its own augmentation
  grid_lr: z.number().positive().default(2e-3), // (b) peak learning rate; warmup and cosine floor from the training section
  grid_d_model: z.number().int().min(8).default(64), // (b) HRRM width
  grid_layers: z.number().int().min(1).default(1), // (b) transformer blocks in each of HRRM's two levels
  grid_train_segments: z.number().int().min(1).default(2), // (b) deep-supervision segments per training batch
  grid_max_segments: z.number().int().min(1).default(3), // (b) most segments at inference (Q-halting stops earlier)
  grid_demos: z.number().int().min(1).max(6).default(3), // (b) demonstrations per generated training task (plus one more pair: any pair can be the query)
  grid_max_size: z.number().int().min(6).max(30).default(6), // (b) largest side of a generated training grid
  grid_max_tokens: z.number().int().min(64).default(1024), // (b) cell tokens of one task at most (demonstrations are dropped to fit)
  grid_votes: z.number().int().min(1).max(16).default(3), // (b) augmented views answered per task for the voted pass@2 (the first is the identity)
  grid_ttt_steps: z.number().int().min(0).default(48), // (b) test-time training steps on each real task's demonstrations (0: none)
  grid_ttt_batch: z.number().int().min(1).default(4), // (b) leave-one-out sequences per test-time step
  grid_ttt_lr: z.number().positive().default(3e-3), // (b) test-time learning rate (Adam)
  grid_ttt_augment: z.boolean().default(false), // (b) test-time sequences under random dihedral + colour views (false: the demonstrations as given, which the model can fit directly)
  grid_real_tasks: z.number().int().min(0).default(8), // (b) real ARC-AGI-1 tasks scored with test-time training (0: none)
  gate_grid_min_cell_gain: z.number().gt(0).max(1).default(0.02), // (b) cell accuracy - max(copy input, majority colour) must reach this; small measured 0.034 (0.552 against copying's 0.518), tiny 0.13
  gate_grid_min_exact_gain: z.number().gt(0).max(1).default(0.02), // (b) exact match - max(copy input, majority colour) must reach this; small measured 0.146 (7 of 48, the baselines 0), tiny 0.27
};
const ArcGridSection = z.object(ArcGridKeys);
export type ArcGridSection = z.infer<typeof ArcGridSection>;

/** Where part (b) saves its HRRM, relative to the run directory. */
export const ARC_HRRM_PATH = join(phaseDirName({ id: 2, name: "arc" }), "hrrm-arc.safetensors");

/** The HRRM of part (b): cells positions up to 30x30, two levels of grid_layers blocks. */
export function arcHrrmConfig(c: ArcGridSection): HrrmConfig {
  return hrrmConfig({
    vocabSize: ARC_VOCAB,
    maxSeqLen: c.grid_max_tokens,
    ...gridLevels({
      dModel: c.grid_d_model,
      layers: c.grid_layers,
      maxSegments: c.grid_max_segments,
      trainSegments: c.grid_train_segments,
    }),
    positions: "cells",
    gridSide: 30,
  });
}

/** The test-time training of a section. */
export const gridTtt = (c: ArcGridSection, seed: number): GridTtt => ({
  steps: c.grid_ttt_steps,
  batch: c.grid_ttt_batch,
  lr: c.grid_ttt_lr,
  augment: c.grid_ttt_augment,
  seed,
});

/** A held-out task of part (b): the task, its family and its views (the identity first). */
export interface GridEvalTask {
  id: string;
  family: string;
  task: ArcTask;
  views: readonly Augmentation[];
}

/** The training sequences of one micro-batch: generated tasks not held out, augmented, a random pair as the query. */
export function arcGridBatch(
  c: ArcGridSection,
  families: readonly string[],
  heldOut: ReadonlySet<string>,
  seed: number,
  batchSize: number,
): CellSequence[] {
  const rng = new Rng(seed);
  const gen: Partial<GeneratorConfig> = { minSize: 3, maxSize: c.grid_max_size, trainPairs: c.grid_demos, testPairs: 1 };
  const out: CellSequence[] = [];
  for (let i = 0; out.length < batchSize; i++) {
    if (i >= 20 * batchSize) {
      throw new Error(`phase 2 (b): no generated task outside the held-out set fits phases.2.grid_max_tokens = ${c.grid_max_tokens}`);
    }
    const task = generateTask(families[rng.int(families.length)], deriveSeed(seed, `task-${i}`), gen);
    if (heldOut.has(taskHash(task))) continue;
    const a = augmentTask(task, { dihedral: rng.int(8), colours: [0, ...shuffled(rng, [1, 2, 3, 4, 5, 6, 7, 8, 9])], dy: 0, dx: 0 });
    const pairs = [...a.train, ...a.test];
    const seq = trainingSequence(pairs, rng.int(pairs.length), c.grid_max_tokens);
    if (seq) out.push(seq);
  }
  return out;
}

function shuffled(rng: Rng, xs: number[]): number[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** Scores of a list of tasks. */
export function summarizeCells(s: readonly CellTaskScore[]) {
  const mean = (f: (x: CellTaskScore) => number) => (s.length ? round(s.reduce((a, x) => a + f(x), 0) / s.length) : NaN);
  return {
    tasks: s.length,
    exact: mean((x) => +x.exact),
    pass_at_2: mean((x) => +x.pass2),
    cell_acc: mean((x) => x.cell),
    shape_acc: mean((x) => +x.shape),
    answered: mean((x) => +x.answered),
    mean_segments: round(s.filter((x) => x.answered).reduce((a, x) => a + x.segments, 0) / Math.max(1, s.filter((x) => x.answered).length)),
  };
}
export type CellSummary = ReturnType<typeof summarizeCells>;

/** Test-time training settings of `scoreGridTasks`. */
export interface GridTtt {
  steps: number;
  batch: number;
  lr: number;
  augment: boolean;
  seed: number;
}

/**
 * Answers and scores each task (the first test pair), after test-time training on a fresh copy of
 * `model` per task when `ttt` has steps. `oneSegment` also scores the same weights held to one
 * segment (recursion's own effect). The model's weights are restored at the end.
 */
export async function scoreGridTasks(
  model: Hrrm,
  tasks: readonly GridEvalTask[],
  o: { maxTokens: number; ttt?: GridTtt; oneSegment?: boolean; onTask?: (i: number, score: CellTaskScore) => void },
): Promise<{ scores: CellTaskScore[]; oneSegment: CellTaskScore[] }> {
  const base = o.ttt && o.ttt.steps > 0 ? await model.params.toHost() : undefined;
  const scores: CellTaskScore[] = [], oneSegment: CellTaskScore[] = [];
  const answer = async (t: GridEvalTask, maxSegments?: number) =>
    scoreViews(
      t.id,
      t.family,
      t.task.test[0].output,
      await answerViews(model, t.task, t.views, { maxTokens: o.maxTokens, batch: 8, maxSegments }),
    );
  try {
    for (const [i, t] of tasks.entries()) {
      if (base) {
        model.params.load(base);
        await testTimeTrain(model, t.task, { ...o.ttt!, maxTokens: o.maxTokens, seed: deriveSeed(o.ttt!.seed, t.id) });
      }
      scores.push(await answer(t));
      if (o.oneSegment) oneSegment.push(await answer(t, 1));
      o.onTask?.(i, scores[i]);
    }
  } finally {
    if (base) model.params.load(base);
  }
  return { scores, oneSegment };
}

/**
 * The `*.json` files of a folder of real ARC tasks, in name order, or why there are none: the
 * default folder may be absent (skipped), a folder named by `phases.2.arc_dir` must exist.
 */
export async function arcTaskFiles(dir: string, named: boolean): Promise<{ names: string[] } | { skipped: string }> {
  let ok = false;
  try {
    ok = (await Deno.stat(dir)).isDirectory;
  } catch {
    ok = false;
  }
  if (!ok && named) throw new Error(`phases.2.arc_dir = ${dir}: not a folder (expected ARC task JSON files)`);
  if (!ok) return { skipped: `${dir} is absent (the real ARC-AGI-1 training tasks go there)` };
  return { names: [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".json")).map((e) => e.name).sort() };
}

/** The first `n` real ARC tasks of `dir` (file-name order), all demonstrations, first test pair; none, with the reason, when skipped. */
export async function realGridTasks(
  dir: string,
  o: { n: number; votes: number; seed: number; named: boolean },
): Promise<{ tasks: GridEvalTask[]; skipped?: string }> {
  if (o.n === 0) return { tasks: [], skipped: "phases.2.grid_real_tasks = 0" };
  const files = await arcTaskFiles(dir, o.named);
  if ("skipped" in files) return { tasks: [], skipped: files.skipped };
  const tasks: GridEvalTask[] = [];
  for (const name of files.names.slice(0, o.n)) {
    const t = await loadTaskFile(join(dir, name));
    const task: ArcTask = { train: t.train, test: t.test.slice(0, 1) };
    tasks.push({ id: t.id!, family: "real", task, views: taskViews(task, o.votes, new Rng(deriveSeed(o.seed, `real-views-${t.id}`))) });
  }
  return { tasks };
}

/** What part (b) reports. */
export interface ArcGridResult {
  params: number;
  steps: number;
  train_loss_first: number;
  train_loss_last: number;
  /** Test-time training steps per task before every score below except `no_ttt`. */
  ttt_steps: number;
  heldout: CellSummary;
  one_segment: CellSummary;
  no_ttt: CellSummary;
  per_family: ({ family: string } & CellSummary)[];
  real_arc:
    | { status: "skipped"; reason: string }
    | ({ status: "evaluated"; dir: string; ids: string[]; solved: string[]; ttt_steps: number } & CellSummary);
  /** Wall times (the phase moves them to its timing). */
  seconds?: { train: number; eval: number; real: number };
  /** Pictures for the report: the first held-out answers, then the real tasks solved or nearest to it. */
  samples: GridSample[];
}

/** A task's test input, expected and predicted grids (identity view) and its scores. */
export interface GridSample {
  id: string;
  family: string;
  input: Grid;
  want: Grid;
  pred: Grid | null;
  cell_acc: number;
  exact: boolean;
  pass2: boolean;
}

/** Samples of scored tasks (same order). */
export function gridSamples(tasks: readonly GridEvalTask[], scores: readonly CellTaskScore[]): GridSample[] {
  return scores.map((s, i) => ({
    id: s.id,
    family: s.family,
    input: tasks[i].task.test[0].input,
    want: tasks[i].task.test[0].output,
    pred: s.pred,
    cell_acc: round(s.cell),
    exact: s.exact,
    pass2: s.pass2,
  }));
}

/** Part (b): trains (or resumes) the grid-native HRRM, saves it, scores it. */
export async function runArcGrid(
  ctx: PhaseContext,
  c: ArcGridSection,
  o: {
    families: readonly string[];
    heldOut: readonly GridEvalTask[];
    heldOutHashes: ReadonlySet<string>;
    realDir: string;
    realDirNamed?: boolean;
  },
): Promise<ArcGridResult> {
  const hc = arcHrrmConfig(c);
  const model = new Hrrm(hc, deriveSeed(ctx.seed, "hrrm-arc"));
  try {
    const { train: cfg, batchSize } = phaseTrainer(ctx, { steps: c.grid_steps, lr: c.grid_lr, batch_size: c.grid_batch_size });
    let t = performance.now();
    const tr = await trainModel(ctx, {
      params: model.params,
      batch: (step, micro) =>
        batchTensors(arcGridBatch(c, o.families, o.heldOutHashes, deriveSeed(ctx.seed, `grid-batch-${step}-${micro}`), batchSize)),
      loss: (b) => model.loss(b.ids, b.targets, b.mask), // batches vary in length, so no fixed tokensPerBatch (no tok/s)
    }, { name: "hrrm-arc", train: cfg });
    const trainSeconds = (performance.now() - t) / 1000;
    await saveModel(join(ctx.runDir, ARC_HRRM_PATH), model, { key: "hrrm-reasoner", config: { ...hc } });
    const losses = await loggedLosses(ctx, "hrrm-arc");
    t = performance.now();
    const ttt = gridTtt(c, deriveSeed(ctx.seed, "ttt"));
    const zeroShot = (await scoreGridTasks(model, o.heldOut, { maxTokens: c.grid_max_tokens })).scores;
    const { scores: scored, oneSegment: one } = await scoreGridTasks(model, o.heldOut, {
      maxTokens: c.grid_max_tokens,
      ttt,
      oneSegment: true,
    });
    const evalSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    const real = await realGridTasks(o.realDir, {
      n: c.grid_real_tasks,
      votes: c.grid_votes,
      seed: ctx.seed,
      named: o.realDirNamed ?? false,
    });
    const realScores = real.skipped ? [] : (await scoreGridTasks(model, real.tasks, { maxTokens: c.grid_max_tokens, ttt })).scores;
    const families = [...new Set(o.heldOut.map((x) => x.family))];
    return {
      params: model.params.count(),
      steps: tr.steps,
      train_loss_first: round(losses[0] ?? NaN),
      train_loss_last: round(mean(losses.slice(-20))),
      ttt_steps: c.grid_ttt_steps,
      heldout: summarizeCells(scored),
      one_segment: summarizeCells(one),
      no_ttt: summarizeCells(zeroShot),
      per_family: families.map((f) => ({ family: f, ...summarizeCells(scored.filter((s) => s.family === f)) })),
      real_arc: real.skipped ? { status: "skipped", reason: real.skipped } : {
        status: "evaluated",
        dir: o.realDir,
        ids: real.tasks.map((x) => x.id),
        solved: realScores.filter((s) => s.pass2).map((s) => s.id),
        ttt_steps: c.grid_ttt_steps,
        ...summarizeCells(realScores),
      },
      seconds: { train: round(trainSeconds, 1), eval: round(evalSeconds, 1), real: round((performance.now() - t) / 1000, 1) },
      samples: [
        ...gridSamples(o.heldOut, scored).slice(0, 4),
        ...gridSamples(real.tasks, realScores).sort((a, b) => +b.pass2 - +a.pass2 || b.cell_acc - a.cell_acc).slice(0, 4),
      ],
    };
  } finally {
    model.dispose();
  }
}
