/**
 * Phase 3, part (c): HRRM on grid-native puzzles (datasets/puzzles/grids.ts), the recipe of
 * HRM and TRM at CPU scale: one token per cell, every cell answered at once, deep supervision
 * over recurrent segments, Q-halting deciding how many segments a puzzle gets at inference,
 * and augmentation by the symmetries of the square (plus digit permutations for Sudoku).
 *
 * Each task gets its own fresh HRRM. Held-out puzzles share no orbit under augmentation with
 * the training puzzles. The score is the exact-solve rate (the whole grid right), by
 * difficulty, with the mean halting segments beside it, against:
 * - the same HRRM held to one segment (what recursion adds);
 * - the same HRRM run for every segment without halting;
 * - a standard cognate of about the same parameter count, trained on the same augmented
 *   batches for the same steps as a causal LM on `input SEP target` (teacher-forced exact
 *   match, which equals greedy decoding);
 * - the dataset's exact solver (the ceiling; also timed).
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { z } from "zod";
import {
  GRID_TASKS,
  gridBatch,
  type GridPuzzle,
  gridSide,
  gridSplit,
  type GridTask,
  type GridTaskConfig,
  gridVocab,
  solveGrid,
} from "../../datasets/puzzles/grids.ts";
import type { LmWindows } from "../../datasets/sanity.ts";
import { answerMetrics } from "../eval/answers.ts";
import { type CognateConfig, cognateConfig, sizeCognate } from "../models/cognate.ts";
import {
  carryList,
  carryOf,
  gridLevels,
  HALT_RULES,
  type HaltRule,
  haltTest,
  Hrrm,
  type HrrmConfig,
  hrrmConfig,
  type HrrmVariant,
} from "../models/hrrm.ts";
import { saveModel } from "../models/io.ts";
import { createModel, type RegistryModel } from "../models/registry.ts";
import { groupMeans, round } from "../util/numbers.ts";
import { deriveSeed } from "../util/rng.ts";
import { gridModelPath } from "../util/run_dir.ts";
import type { Figure } from "../viz/figures.ts";
import { esc } from "../viz/report.ts";
import { loggedLosses, phaseTrainer, trainModel } from "./common.ts";
import { COLORS, line } from "./p3_grokking.ts";
import type { PhaseContext } from "./spec.ts";
import { type PipelineConfig, sectionOf } from "../config/config.ts";
import { phaseSeed } from "../eval/stage.ts";

/** The training recipe of one grid task: the keys `grid_per_task.<task>` may set for that task alone. */
const recipe = {
  grid_steps: z.number().int().min(1),
  grid_lr: z.number().positive(),
  grid_batch_size: z.number().int().min(1),
  grid_train_puzzles: z.number().int().min(1),
  grid_d_model: z.number().int().min(8),
  grid_layers: z.number().int().min(1),
  grid_train_segments: z.number().int().min(1),
  grid_max_segments: z.number().int().min(1),
  grid_one_step_grad: z.boolean(),
  grid_mixer: z.enum(["attention", "mlp"]),
  grid_levels: z.union([z.literal(2), z.literal(3)]),
  grid_ema_decay: z.number().min(0).max(0.99999),
  grid_halt_rule: z.enum(HALT_RULES),
  grid_episodes: z.number().int().min(0),
};
const GridRecipe = z.object(recipe).partial().strict();
export type GridRecipe = z.infer<typeof GridRecipe>;
/**
 * 9x9 Sudoku's own defaults: TRM's MLP token mixing and gradient through the whole segment (with
 * attention, 1,000 steps left its blank cells at chance), 600 steps of 32, and up to 8 segments
 * at inference under TRM's halting rule: HRM's stopped after one segment, and the extra segments
 * solve more (README, phase 3 (c): the same weights 20% at 3 segments, 39% at 8; 79% at 1,200 steps and 3).
 */
const Sudoku9Recipe = GridRecipe.extend({
  grid_steps: recipe.grid_steps.default(600),
  grid_batch_size: recipe.grid_batch_size.default(32),
  grid_one_step_grad: recipe.grid_one_step_grad.default(false),
  grid_mixer: recipe.grid_mixer.default("mlp"),
  grid_max_segments: recipe.grid_max_segments.default(8),
  grid_halt_rule: recipe.grid_halt_rule.default("confident"),
}).strict();

/** `phases.3` keys of part (c), with their defaults (the small preset). */
export const GridSection = z.object({
  grid_tasks: z.array(z.enum(GRID_TASKS)).default(["sudoku4", "sudoku9"]), // (c) grid tasks, one fresh HRRM each ([] skips part c); README: why maze is not in small
  grid_steps: recipe.grid_steps.default(1500), // (c) training steps per task (HRRM and the cognate baseline alike)
  grid_lr: recipe.grid_lr.default(1e-3), // (c) peak learning rate; warmup and cosine floor from the training section
  grid_batch_size: recipe.grid_batch_size.default(64), // (c) augmented puzzles per step
  grid_train_puzzles: recipe.grid_train_puzzles.default(1000), // (c) distinct training puzzles per task (each batch augments them)
  grid_eval_puzzles: z.number().int().min(1).default(200), // (c) held-out puzzles per task, outside every training puzzle's orbit
  grid_variant: z.enum(["reasoner", "planner", "memory"]).default("reasoner"), // (c) HRRM variant (lib/models/hrrm.ts)
  grid_d_model: recipe.grid_d_model.default(64), // (c) HRRM width
  grid_layers: recipe.grid_layers.default(2), // (c) transformer blocks in each of HRRM's two levels
  grid_train_segments: recipe.grid_train_segments.default(3), // (c) deep-supervision segments per training batch (segments past it are never trained)
  grid_max_segments: recipe.grid_max_segments.default(3), // (c) most segments at inference (Q-halting stops earlier)
  grid_one_step_grad: recipe.grid_one_step_grad.default(true), // (c) HRM's one-step gradient (last L and H update of a segment); false: backprop through the whole segment, as TRM (README: what each shows)
  grid_mixer: recipe.grid_mixer.default("attention"), // (c) HRRM token mixing: self-attention, or TRM's MLP across the cells (lib/models/hrrm.ts)
  grid_levels: recipe.grid_levels.default(2), // (c) HRRM levels: 2 (HRM's high and low) or 3 (a strategic level above them, once per segment)
  grid_episodes: recipe.grid_episodes.default(0), // (c) HRRM's external memory: this many solved training puzzles, read by every high-level update of a new puzzle (0: none)
  grid_halt_rule: recipe.grid_halt_rule.default("compare"), // (c) when inference halts a puzzle: HRM's Q_halt > Q_continue ("compare") or TRM's Q_halt > 0 ("confident")
  grid_ema_decay: recipe.grid_ema_decay.default(0), // (c) EMA of the weights, the evaluated model, for the HRRM and the cognate alike (0: none; TRM: 0.999)
  grid_per_task: z.object({ sudoku4: GridRecipe.prefault({}), sudoku9: Sudoku9Recipe.prefault({}), maze: GridRecipe.prefault({}) })
    .strict().prefault({}), // (c) a task's own recipe keys, over the ones above (set one: `phases.3.grid_per_task.maze.grid_steps=800`)
  grid_sudoku4_min_clues: z.number().int().min(4).max(16).default(4), // (c) 4x4 Sudoku clue range (difficulty = 16 - clues blanks)
  grid_sudoku4_max_clues: z.number().int().min(4).max(16).default(10),
  grid_sudoku9_min_clues: z.number().int().min(17).max(81).default(45), // (c) 9x9 Sudoku clue range (difficulty = 81 - clues blanks)
  grid_sudoku9_max_clues: z.number().int().min(17).max(81).default(55),
  grid_maze_size: z.number().int().min(2).max(16).default(3), // (c) maze cells per side; the grid is 2 * size - 1 squares
  grid_cognate_baseline: z.boolean().default(true), // (c) also train the standard cognate at about equal parameters
  gate_min_grid_gain: z.number().default(0.02), // gate: per task, HRRM exact-solve rate above the one-segment HRRM and the cognate by at least this
  gate_min_sudoku4_exact: z.number().default(0.8), // gate: HRRM exact-solve rate on held-out 4x4 Sudoku at least this
});
export type GridSection = z.infer<typeof GridSection>;

/** The section as `task` trains: its `grid_per_task` keys over the shared ones. */
export function taskSection(c: GridSection, task: GridTask): GridSection {
  const own = Object.entries(c.grid_per_task[task] ?? {}).filter(([, v]) => v !== undefined);
  return { ...c, ...Object.fromEntries(own) };
}

/** A run's part (c) section as `task` trains and infers (taskSection of the run's `phases.3`). */
export function gridTaskSection(config: PipelineConfig, task: GridTask): GridSection {
  return taskSection(sectionOf(GridSection, config.phases["3"] ?? {}, 3), task);
}

/** The puzzle generator's config for `task`. */
export function gridTaskConfig(c: GridSection, task: GridTask, seed: number): GridTaskConfig {
  const s = deriveSeed(seed, `grid-${task}`);
  if (task === "sudoku4") return { task, minClues: c.grid_sudoku4_min_clues, maxClues: c.grid_sudoku4_max_clues, seed: s };
  if (task === "sudoku9") return { task, minClues: c.grid_sudoku9_min_clues, maxClues: c.grid_sudoku9_max_clues, seed: s };
  return { task, mazeSize: c.grid_maze_size, seed: s };
}

/** The HRRM for `task`: two levels of grid_layers blocks, 2 L-steps per H-step, 2 H-steps per segment, row + column positions. */
export function gridHrrmConfig(c: GridSection, task: GridTask, side: number): HrrmConfig {
  return hrrmConfig({
    variant: c.grid_variant as HrrmVariant,
    vocabSize: gridVocab(task),
    maxSeqLen: side * side,
    ...gridLevels({
      dModel: c.grid_d_model,
      layers: c.grid_layers,
      maxSegments: c.grid_max_segments,
      trainSegments: c.grid_train_segments,
    }),
    oneStepGrad: c.grid_one_step_grad,
    mixer: c.grid_mixer,
    levels: c.grid_levels,
    positions: "grid2d",
    gridSide: side,
    episodes: c.grid_episodes,
  });
}

/**
 * Fills an HRRM's external memory (grid_episodes > 0) with the first grid_episodes training
 * puzzles of `train`, as given (not augmented). The phase does it before training; a model loaded
 * from its file needs it again (`fillGridMemory`).
 */
export function setGridEpisodes(model: Hrrm, train: readonly GridPuzzle[]): void {
  const n = model.cfg.episodes;
  if (n === 0) return;
  if (n > train.length) throw new Error(`phases.3.grid_episodes = ${n}: only ${train.length} training puzzles (grid_train_puzzles)`);
  const rows = train.slice(0, n);
  model.setEpisodes(Int32Array.from(rows.flatMap((p) => [...p.input])), Int32Array.from(rows.flatMap((p) => [...p.target])), n);
}

/** A run's saved grid HRRM for `task`, its external memory (if any) filled as the phase filled it. */
export function fillGridMemory(config: PipelineConfig, task: GridTask, model: Hrrm): void {
  const c = gridTaskSection(config, task);
  setGridEpisodes(model, gridSplit(gridTaskConfig(c, task, phaseSeed(config, 3)), c.grid_train_puzzles, c.grid_eval_puzzles).train);
}

/**
 * The cognate baseline: a standard causal transformer as wide as the HRRM, its blocks and MLP
 * width sized (`sizeCognate`) to the HRRM's parameter count `hrrmParams` (the mlp mixer's
 * token maps are far smaller than attention, so matching blocks alone would not match sizes).
 * It reads `input SEP target`: vocabulary + 1 for SEP, 2 * cells positions.
 */
export function gridCognateConfig(h: HrrmConfig, hrrmParams: number): CognateConfig {
  const base = cognateConfig({
    variant: "standard",
    vocabSize: h.vocabSize + 1,
    maxSeqLen: 2 * h.maxSeqLen,
    dModel: h.dModel,
    nHeads: h.nHeads,
    nLayers: h.lowLayers + h.highLayers,
    mlpRatio: h.mlpRatio,
  });
  const sized = sizeCognate(base, "standard", hrrmParams);
  return cognateConfig({ ...base, nLayers: sized.nLayers, mlpRatio: sized.mlpRatio });
}

/** Held-out puzzles as causal-LM windows for the cognate: ids `input SEP target[..-1]`, mask on the target cells. */
export function cognateWindows(puzzles: readonly GridPuzzle[], vocab: number): LmWindows {
  const cells = puzzles[0].input.length, T = 2 * cells, n = puzzles.length;
  const ids = new Int32Array(n * T), targets = new Int32Array(n * T), mask = new Float32Array(n * T);
  puzzles.forEach((p, r) => fillCognateRow(p.input, p.target, vocab, ids, targets, mask, r * T));
  return { ids, targets, mask, count: n, seqLen: T, padId: 0 };
}

/** Writes one puzzle's cognate row at `at`: sequence = input, SEP (= vocab), target; ids and targets are its shifts. */
function fillCognateRow(
  input: ArrayLike<number>,
  target: ArrayLike<number>,
  vocab: number,
  ids: Int32Array,
  targets: Int32Array,
  mask: Float32Array,
  at: number,
) {
  const cells = input.length;
  const seq = [...Array.from(input), vocab, ...Array.from(target)]; // 2 * cells + 1
  for (let t = 0; t < 2 * cells; t++) {
    ids[at + t] = seq[t];
    targets[at + t] = seq[t + 1];
    mask[at + t] = t >= cells ? 1 : 0;
  }
}

/** One model's held-out numbers on a grid task. */
export interface GridEval {
  /** Whole grid right. */
  exact: number;
  /** Cells right, over every cell. */
  cell_acc: number;
  /** Mean segments run before halting (HRRM only). */
  mean_segments?: number;
  /** Per difficulty bin (lower edge): exact-solve rate, mean segments, puzzles. */
  by_difficulty: { difficulty: number[]; exact: number[]; mean_segments?: number[]; count: number[] };
}

/** Difficulty bin of a puzzle: Sudoku blanks as they are; maze path lengths in bins of 4 moves (lower edge). */
export function difficultyBin(p: GridPuzzle): number {
  return p.task === "maze" ? Math.floor((p.difficulty - 1) / 4) * 4 + 1 : p.difficulty;
}

/** Exact and cell accuracy of predictions `pred` [n * cells] against the puzzles' targets, with segments when given. */
export function scoreGrids(puzzles: readonly GridPuzzle[], pred: ArrayLike<number>, segments?: readonly number[]): GridEval {
  const cells = puzzles[0].input.length;
  let right = 0;
  const solved = puzzles.map((p, i) => {
    let ok = 1;
    for (let k = 0; k < cells; k++) {
      if (pred[i * cells + k] === p.target[k]) right++;
      else ok = 0;
    }
    return ok;
  });
  const bins = puzzles.map(difficultyBin);
  const ex = groupMeans(bins, solved);
  const seg = segments ? groupMeans(bins, segments) : undefined;
  return {
    exact: round(solved.reduce((a, b) => a + b, 0) / puzzles.length),
    cell_acc: round(right / (puzzles.length * cells)),
    ...(segments ? { mean_segments: round(segments.reduce((a, b) => a + b, 0) / segments.length, 3) } : {}),
    by_difficulty: {
      difficulty: ex.x,
      exact: ex.mean.map((x) => round(x)),
      ...(seg ? { mean_segments: seg.mean.map((x) => round(x, 3)) } : {}),
      count: ex.count,
    },
  };
}

/** Rows per inference batch. */
const EVAL_BATCH = 100;

/** HRRM's answers on held-out puzzles with Q-halting up to `maxSegments` (`halt: false` runs every segment). */
export async function evaluateHrrm(
  model: Hrrm,
  puzzles: readonly GridPuzzle[],
  maxSegments: number,
  halt = true,
  rule: HaltRule = "compare",
): Promise<GridEval> {
  const cells = puzzles[0].input.length;
  const pred = new Int32Array(puzzles.length * cells), segments: number[] = [];
  for (let r0 = 0; r0 < puzzles.length; r0 += EVAL_BATCH) {
    const rows = puzzles.slice(r0, r0 + EVAL_BATCH);
    const ids = tf.tensor2d(Int32Array.from(rows.flatMap((p) => [...p.input])), [rows.length, cells], "int32");
    const out = await model.infer(ids, { maxSegments, halt, rule });
    const arg = tf.argMax(out.logits, -1);
    pred.set(await arg.data() as Int32Array, r0 * cells);
    segments.push(...out.segments);
    tf.dispose([ids, out.logits, arg]);
  }
  return scoreGrids(puzzles, pred, segments);
}

/** The cognate's teacher-forced answers (equal to greedy decoding) on held-out puzzles. */
export async function evaluateCognateGrid(model: RegistryModel, puzzles: readonly GridPuzzle[], vocab: number): Promise<GridEval> {
  const w = cognateWindows(puzzles, vocab);
  const am = await answerMetrics(model, w, EVAL_BATCH);
  // answerMetrics counts items and tokens; the per-difficulty split needs each puzzle's verdict.
  const solved = am.correct.map(Number);
  const ex = groupMeans(puzzles.map(difficultyBin), solved);
  return {
    exact: round(am.exact),
    cell_acc: round(am.token_acc),
    by_difficulty: { difficulty: ex.x, exact: ex.mean.map((x) => round(x)), count: ex.count },
  };
}

/** The exact solver on held-out puzzles: the ceiling, and its time per puzzle in milliseconds. */
export function solverEval(puzzles: readonly GridPuzzle[]): { eval: GridEval; msPerPuzzle: number } {
  const cells = puzzles[0].input.length, pred = new Int32Array(puzzles.length * cells);
  const t0 = performance.now();
  puzzles.forEach((p, i) => {
    const s = solveGrid(p);
    if (s) pred.set(s, i * cells);
  });
  const ms = (performance.now() - t0) / puzzles.length;
  return { eval: scoreGrids(puzzles, pred), msPerPuzzle: round(ms, 3) };
}

/** What part (c) reports for one task. */
export interface GridTaskResult {
  task: GridTask;
  side: number;
  train_puzzles: number;
  eval_puzzles: number;
  overlap_removed: number;
  hrrm_params: number;
  cognate_params?: number;
  steps: number;
  /** How the HRRM was built and trained (after `grid_per_task`). */
  recipe?: {
    mixer: "attention" | "mlp";
    levels: number;
    one_step_grad: boolean;
    batch_size: number;
    train_segments: number;
    max_segments: number;
    /** Absent in results written before the rule was an option: "compare". */
    halt_rule?: HaltRule;
    /** Puzzles in the external memory (absent before it was an option: none). */
    episodes?: number;
  };
  train_loss_first: number;
  train_loss_last: number;
  /** HRRM with Q-halting up to grid_max_segments. */
  hrrm: GridEval;
  /** The same HRRM held to one segment. */
  one_segment: GridEval;
  /** The same HRRM running every segment, no halting. */
  all_segments: GridEval;
  cognate?: GridEval;
  solver: GridEval;
  /** Wall times: training each model, evaluating, and the exact solver per puzzle (in seconds, like the rest). */
  seconds: { hrrm: number; cognate: number; eval: number; solver_per_puzzle: number };
}

/** Trains and scores one task's HRRM and baselines; the HRRM is saved as `hrrm-<task>.safetensors` in the phase folder. */
async function runGridTask(ctx: PhaseContext, c: GridSection, task: GridTask): Promise<GridTaskResult> {
  const gc = gridTaskConfig(c, task, ctx.seed);
  const side = gridSide(gc), cells = side * side, V = gridVocab(task);
  const split = gridSplit(gc, c.grid_train_puzzles, c.grid_eval_puzzles);
  const run = { steps: c.grid_steps, lr: c.grid_lr, batch_size: c.grid_batch_size };
  // The HRRM and the cognate baseline train alike: same steps, schedule, batches and weight EMA.
  const { train: cfg, batchSize } = phaseTrainer(ctx, run, { emaDecay: c.grid_ema_decay });
  const batchSeed = deriveSeed(ctx.seed, `grid-batches-${task}`);
  const hc = gridHrrmConfig(c, task, side);
  const hrrm = new Hrrm(hc, deriveSeed(ctx.seed, `hrrm-${task}`));
  setGridEpisodes(hrrm, split.train);
  let cognate: RegistryModel | undefined;
  try {
    let t = performance.now();
    const name = `hrrm-${task}`;
    const tr = await trainModel(ctx, {
      params: hrrm.params,
      batch: (step, micro) => {
        const b = gridBatch(split.train, batchSize, batchSeed, step * cfg.gradAccum + micro);
        return { ids: tf.tensor2d(b.ids, [batchSize, cells], "int32"), targets: tf.tensor2d(b.targets, [batchSize, cells], "int32") };
      },
      loss: (b) => hrrm.loss(b.ids, b.targets),
      tokensPerBatch: batchSize * cells,
    }, { name, train: cfg });
    const hrrmSeconds = (performance.now() - t) / 1000;
    const losses = await loggedLosses(ctx, name);
    await saveModel(join(ctx.runDir, gridModelPath(task)), hrrm, { key: `hrrm-${hc.variant}`, config: { ...hc } });

    let cognateEval: GridEval | undefined, cognateParams: number | undefined, cognateSeconds = 0;
    if (c.grid_cognate_baseline) {
      t = performance.now();
      const cc = gridCognateConfig(hc, hrrm.params.count());
      cognate = createModel("cognate-standard", cc, deriveSeed(ctx.seed, `grid-cognate-${task}`));
      const m = cognate;
      await trainModel(ctx, {
        params: m.params,
        batch: (step, micro) => {
          const b = gridBatch(split.train, batchSize, batchSeed, step * cfg.gradAccum + micro), T = 2 * cells;
          const ids = new Int32Array(batchSize * T), targets = new Int32Array(batchSize * T), mask = new Float32Array(batchSize * T);
          for (let r = 0; r < batchSize; r++) {
            fillCognateRow(
              b.ids.subarray(r * cells, (r + 1) * cells),
              b.targets.subarray(r * cells, (r + 1) * cells),
              V,
              ids,
              targets,
              mask,
              r * T,
            );
          }
          return {
            ids: tf.tensor2d(ids, [batchSize, T], "int32"),
            targets: tf.tensor2d(targets, [batchSize, T], "int32"),
            mask: tf.tensor2d(mask, [batchSize, T]),
          };
        },
        loss: (b) => m.loss(b.ids, b.targets, b.mask),
        tokensPerBatch: batchSize * 2 * cells,
      }, { name: `cognate-${task}`, train: cfg });
      cognateSeconds = (performance.now() - t) / 1000;
      cognateEval = await evaluateCognateGrid(m, split.test, V);
      cognateParams = m.params.count();
    }
    t = performance.now();
    const solver = solverEval(split.test);
    const result: GridTaskResult = {
      task,
      side,
      train_puzzles: split.train.length,
      eval_puzzles: split.test.length,
      overlap_removed: split.overlapRemoved,
      hrrm_params: hrrm.params.count(),
      ...(cognateParams ? { cognate_params: cognateParams } : {}),
      steps: tr.steps,
      recipe: {
        mixer: hc.mixer,
        levels: hc.levels,
        one_step_grad: hc.oneStepGrad,
        batch_size: batchSize,
        train_segments: hc.trainSegments,
        max_segments: hc.maxSegments,
        halt_rule: c.grid_halt_rule,
        episodes: hc.episodes,
      },
      train_loss_first: round(losses[0] ?? NaN),
      train_loss_last: round(losses.at(-1) ?? NaN),
      hrrm: await evaluateHrrm(hrrm, split.test, hc.maxSegments, true, c.grid_halt_rule),
      one_segment: await evaluateHrrm(hrrm, split.test, 1),
      all_segments: await evaluateHrrm(hrrm, split.test, hc.maxSegments, false),
      ...(cognateEval ? { cognate: cognateEval } : {}),
      solver: solver.eval,
      seconds: {
        hrrm: round(hrrmSeconds, 1),
        cognate: round(cognateSeconds, 1),
        eval: 0,
        solver_per_puzzle: round(solver.msPerPuzzle / 1000, 6),
      },
    };
    result.seconds.eval = round((performance.now() - t) / 1000, 1);
    return result;
  } finally {
    hrrm.dispose();
    cognate?.dispose();
  }
}

/** Part (c) for every configured task, in order. */
export async function runGrids(ctx: PhaseContext, c: GridSection): Promise<GridTaskResult[]> {
  const out: GridTaskResult[] = [];
  for (const task of c.grid_tasks) out.push(await runGridTask(ctx, taskSection(c, task), task));
  return out;
}

/** Part (c)'s numbers flattened for gates and tables: `grid_<task>_<model>_exact`. */
export function gridNumbers(results: readonly GridTaskResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) {
    out[`grid_${r.task}_exact`] = r.hrrm.exact;
    out[`grid_${r.task}_one_segment_exact`] = r.one_segment.exact;
    out[`grid_${r.task}_all_segments_exact`] = r.all_segments.exact;
    if (r.cognate) out[`grid_${r.task}_cognate_exact`] = r.cognate.exact;
    out[`grid_${r.task}_solver_exact`] = r.solver.exact;
    out[`grid_${r.task}_mean_segments`] = r.hrrm.mean_segments ?? NaN;
  }
  return out;
}

/** The best baseline a task's HRRM must beat: the one-segment HRRM and the cognate. */
export function gridBaseline(r: GridTaskResult): number {
  return Math.max(r.one_segment.exact, r.cognate?.exact ?? 0);
}

// ---------------------------------------------------------------------------------------------
// Report

const pct = (x: number | undefined) => (typeof x === "number" && Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : "-");
const row = (cells: unknown[], tag = "td") => `<tr>${cells.map((x) => `<${tag}>${x}</${tag}>`).join("")}</tr>`;

const TASK_NAMES: Record<GridTask, string> = { sudoku4: "4x4 Sudoku", sudoku9: "9x9 Sudoku", maze: "maze" };

/** How a task's HRRM was built, for the table's notes (results written before the recipe was recorded have none). */
function recipeText(r: GridTaskResult["recipe"] | undefined): string {
  if (!r) return "";
  return `, batches of ${r.batch_size}, ${r.levels} levels, ${r.mixer === "mlp" ? "MLP token mixing" : "attention"}, ` +
    `${r.one_step_grad ? "one-step gradient" : "gradient through the whole segment"}, ` +
    `${r.train_segments} supervised segments (at most ${r.max_segments} at inference, halting when ${
      (r.halt_rule ?? "compare") === "compare" ? "Q_halt > Q_continue" : "Q_halt > 0"
    })` + (r.episodes ? `, an external memory of ${r.episodes} solved training puzzles` : "");
}

/** Difficulty axis names. */
function difficultyName(r: GridTaskResult): string {
  return r.task === "maze" ? "shortest path, moves (bins of 4)" : "blank cells";
}

/** The phase 3 (c) table: per task and difficulty, exact-solve rate of HRRM and every baseline, and HRRM's mean halting segments. */
export function gridTableHtml(results: readonly GridTaskResult[]): string {
  const head = row(
    [
      "task",
      "difficulty",
      "puzzles",
      "HRRM (Q-halting)",
      "mean segments",
      "HRRM, 1 segment",
      "HRRM, all segments",
      "cognate",
      "exact solver",
    ],
    "th",
  );
  const body = results.flatMap((r) => {
    const d = r.hrrm.by_difficulty;
    const at = (e: GridEval | undefined, i: number) =>
      e ? pct(e.by_difficulty.exact[e.by_difficulty.difficulty.indexOf(d.difficulty[i])]) : "-";
    const rows = d.difficulty.map((x, i) =>
      row([
        esc(TASK_NAMES[r.task]),
        r.task === "maze" ? `${x}-${x + 3}` : x,
        d.count[i],
        at(r.hrrm, i),
        d.mean_segments?.[i]?.toFixed(2) ?? "-",
        at(r.one_segment, i),
        at(r.all_segments, i),
        at(r.cognate, i),
        at(r.solver, i),
      ])
    );
    rows.push(row([
      `<b>${esc(TASK_NAMES[r.task])}, all</b>`,
      "",
      r.eval_puzzles,
      `<b>${pct(r.hrrm.exact)}</b>`,
      r.hrrm.mean_segments?.toFixed(2) ?? "-",
      pct(r.one_segment.exact),
      pct(r.all_segments.exact),
      pct(r.cognate?.exact),
      `${pct(r.solver.exact)} (${(r.seconds.solver_per_puzzle * 1000).toFixed(2)} ms each)`,
    ]));
    return rows;
  });
  const notes = results.map((r) =>
    `${esc(TASK_NAMES[r.task])}: ${r.side}x${r.side} grid, ${r.train_puzzles} training puzzles (augmented), ${r.eval_puzzles} held out ` +
    `(${r.overlap_removed} candidates skipped as symmetries of training puzzles), ${r.steps} steps; ` +
    `HRRM ${r.hrrm_params} parameters${recipeText(r.recipe)}` +
    (r.cognate_params ? `, cognate ${r.cognate_params}` : "") +
    `; difficulty: ${difficultyName(r)}; cell accuracy HRRM ${pct(r.hrrm.cell_acc)}` +
    (r.cognate ? `, cognate ${pct(r.cognate.cell_acc)}` : "") + "."
  );
  return `<p>Exact-solve rate: the whole grid right, on held-out puzzles. HRRM halts a puzzle when its Q head says so (at most ` +
    `the configured segments); "1 segment" holds the same trained model to one, "all segments" runs every one. The cognate is a ` +
    `standard causal transformer of about equal parameters trained on the same batches as <code>input SEP solution</code> ` +
    `(teacher-forced, equal to greedy decoding).</p><table>${head}${body.join("")}</table><p>${notes.join("<br>")}</p>`;
}

/** Mean halting segments against difficulty, one line per task (hover: exact-solve rate). */
export function gridHaltingFigure(results: readonly GridTaskResult[]): Figure {
  const data = results.map((r, i) => {
    const d = r.hrrm.by_difficulty;
    const text = d.count.map((n, j) => `${n} puzzles, solved ${pct(d.exact[j])}`);
    return line(`${TASK_NAMES[r.task]} (x: ${difficultyName(r)})`, d.difficulty, d.mean_segments ?? [], COLORS[i % COLORS.length], {
      mode: "lines+markers",
      text,
    });
  });
  return {
    data,
    layout: {
      title: { text: "HRRM: mean segments before Q-halting vs difficulty (held-out puzzles)" },
      xaxis: { title: { text: "difficulty (Sudoku: blank cells; maze: path length)" } },
      yaxis: { title: { text: "mean segments" } },
      height: 400,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Exploring one puzzle (notebook 03): what the HRRM answers after each segment

/** The held-out puzzles of `task` in a run with `config`, rebuilt from its config and seed. */
export function heldOutGrids(config: PipelineConfig, task: GridTask): GridPuzzle[] {
  const c = gridTaskSection(config, task);
  return gridSplit(gridTaskConfig(c, task, phaseSeed(config, 3)), c.grid_train_puzzles, c.grid_eval_puzzles).test;
}

/** One segment of a traced puzzle: the answer grid, each cell's probability of its answer, and the Q head. */
export interface GridTraceStep {
  pred: number[];
  confidence: number[];
  qHalt: number;
  qContinue: number;
}

/** A puzzle run segment by segment up to `maxSegments`, and where Q-halting would have stopped it. */
export interface GridTrace {
  puzzle: GridPuzzle;
  steps: GridTraceStep[];
  /** The segment Q-halting stops at (1-based): the first that the halting rule accepts, else the last. */
  haltedAt: number;
}

/** Runs `model` on one puzzle segment by segment, keeping every segment's answer and confidence. */
export function traceGrid(model: Hrrm, puzzle: GridPuzzle, maxSegments = model.cfg.maxSegments, rule: HaltRule = "compare"): GridTrace {
  const cells = puzzle.input.length;
  const ids = tf.tensor2d(puzzle.input, [1, cells], "int32");
  let carry = model.initialCarry(1, cells);
  const steps: GridTraceStep[] = [];
  for (let s = 0; s < maxSegments; s++) {
    const prev = carry;
    const [pred, conf, qh, qc, ...next] = tf.tidy(() => {
      const o = model.segment(ids, prev);
      return [tf.argMax(o.logits, -1), tf.max(tf.softmax(o.logits), -1), o.qHalt, o.qContinue, ...carryList(o.carry)];
    });
    steps.push({
      pred: Array.from(pred.dataSync()),
      confidence: Array.from(conf.dataSync()),
      qHalt: qh.dataSync()[0],
      qContinue: qc.dataSync()[0],
    });
    tf.dispose([pred, conf, qh, qc, ...carryList(prev)]);
    carry = carryOf(next);
  }
  tf.dispose([ids, ...carryList(carry)]);
  const stops = haltTest(rule);
  const first = steps.findIndex((st) => stops(st.qHalt, st.qContinue));
  return { puzzle, steps, haltedAt: first < 0 ? steps.length : first + 1 };
}

const MAZE_GLYPH = ["█", "·", "S", "G", "●"];

/** One grid as an HTML table: clues bold, wrong cells red, and each cell shaded by `confidence` when given. */
function gridHtml(p: GridPuzzle, values: readonly number[], title: string, confidence?: readonly number[]): string {
  const cell = (k: number) => {
    const v = values[k], wrong = v !== p.target[k], clue = p.task !== "maze" && p.input[k] !== 0;
    const text = p.task === "maze" ? MAZE_GLYPH[v] ?? "?" : v === 0 ? "" : String(v);
    const shade = confidence ? `background:rgba(31,119,180,${(0.05 + 0.4 * confidence[k]).toFixed(2)});` : "";
    const color = wrong ? "color:#d62728;font-weight:bold;" : clue ? "font-weight:bold;" : "";
    const tip = confidence ? ` title="p = ${confidence[k].toFixed(3)}"` : "";
    return `<td style="width:1.6em;height:1.6em;text-align:center;border:1px solid #bbb;${shade}${color}"${tip}>${text}</td>`;
  };
  const rows = Array.from(
    { length: p.side },
    (_, r) => `<tr>${Array.from({ length: p.side }, (_, c) => cell(r * p.side + c)).join("")}</tr>`,
  );
  return `<div style="display:inline-block;margin:0 1em 1em 0;vertical-align:top"><div>${esc(title)}</div>` +
    `<table style="border-collapse:collapse">${rows.join("")}</table></div>`;
}

/** A traced puzzle drawn as grids: the input, the answer after each segment (shaded by confidence, wrong cells red), the solution. */
export function gridTraceHtml(t: GridTrace): string {
  const p = t.puzzle;
  const segs = t.steps.map((s, i) => {
    const right = s.pred.every((v, k) => v === p.target[k]);
    const halt = i + 1 === t.haltedAt ? ", Q-halting stops here" : "";
    return gridHtml(p, s.pred, `segment ${i + 1}: ${right ? "solved" : "not solved"}${halt}`, s.confidence);
  });
  const what = p.task === "maze" ? `shortest path ${p.difficulty} moves` : `${p.difficulty} blanks`;
  return `<p>${esc(TASK_NAMES[p.task])}, ${what}. Shading: the model's probability of its answer in each cell.</p>` +
    gridHtml(p, Array.from(p.input), "input") + segs.join("") + gridHtml(p, Array.from(p.target), "solution");
}
