/**
 * Grid-native ARC for the HRRM (positions = "cells"): a task becomes one token per cell of every
 * grid, demonstrations and query alike, each cell carrying its colour, its row and column (counted
 * from both edges), its grid's kind (demonstration input/output, query input/output) and its
 * pair's index. The query output's cells enter in the shape the shape step predicts: as a draft
 * holding the query input's colours where that shape is the input's, else blank; the model
 * answers all of them at once. Grids up to 30x30 fit; a task longer than the token budget drops
 * demonstrations (the last first) until it fits, and one that does not fit with a single
 * demonstration is left unanswered.
 *
 * Also here: the output-shape step, training sequences (any pair of a task can be the query),
 * answering under augmented views with a vote (pass@2), and test-time training: the model
 * fine-tuned on a task's own demonstrations, each in turn the query and the others its context
 * (leave-one-out), as given or under random augmentations.
 */
import * as tf from "@tensorflow/tfjs";
import { type Augmentation, augmentTask, IDENTITY_AUGMENTATION, randomAugmentation, vote } from "../../datasets/arc/augment.ts";
import { gridsEqual, gridShape } from "../../datasets/arc/grid.ts";
import type { ArcPair, ArcTask, Grid } from "../../datasets/arc/types.ts";
import { cellAccuracy } from "../eval/arc_answers.ts";
import { CELL_PAIRS, type CellToken, Hrrm, packCell } from "../models/hrrm.ts";
import { Rng } from "../util/rng.ts";

/** Values of a cell token: colours 0-9, then the blank of an unanswered query cell and padding. */
export const BLANK = 10, PAD = 11, ARC_VOCAB = 12;
/** Grid kinds of a cell token. */
export const KIND = { demoIn: 0, demoOut: 1, queryIn: 2, queryOut: 3 } as const;

// ---------------------------------------------------------------------------------------------
// The output-shape step

/** A rule for the output's shape, read off the demonstrations. */
export type ShapeRule = "same" | "constant" | "transpose" | "scale" | "offset" | "none";

/** The first rule (in this order) that every demonstration obeys, and the query's shape under it. */
export function predictShape(demos: readonly ArcPair[], queryInput: Grid): { rule: ShapeRule; shape: [number, number] } {
  const shapes = demos.map((p) => [gridShape(p.input), gridShape(p.output)] as const);
  const [qh, qw] = gridShape(queryInput);
  const all = (f: (i: readonly [number, number], o: readonly [number, number]) => boolean) => shapes.every(([i, o]) => f(i, o));
  if (all((i, o) => i[0] === o[0] && i[1] === o[1])) return { rule: "same", shape: [qh, qw] };
  const [o0h, o0w] = shapes[0][1];
  if (all((_, o) => o[0] === o0h && o[1] === o0w)) return { rule: "constant", shape: [o0h, o0w] };
  if (all((i, o) => i[0] === o[1] && i[1] === o[0])) return { rule: "transpose", shape: [qw, qh] };
  const [i0h, i0w] = shapes[0][0];
  // Output = input x (a/b) per axis, the same factors in every demonstration, an integer for the query.
  const rh = o0h / i0h, rw = o0w / i0w;
  const close = (a: number, b: number) => Math.abs(a - b) < 1e-9;
  if (all((i, o) => close(o[0] / i[0], rh) && close(o[1] / i[1], rw))) {
    const h = qh * rh, w = qw * rw;
    if (close(h, Math.round(h)) && close(w, Math.round(w))) return { rule: "scale", shape: [Math.round(h), Math.round(w)] };
  }
  const dh = o0h - i0h, dw = o0w - i0w;
  if (all((i, o) => o[0] - i[0] === dh && o[1] - i[1] === dw) && qh + dh >= 1 && qw + dw >= 1) {
    return { rule: "offset", shape: [qh + dh, qw + dw] };
  }
  return { rule: "none", shape: [qh, qw] };
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** A task laid out as cell tokens. */
export interface CellSequence {
  /** Packed cell ids (packCell: two per token), targets (the query output's colours, else PAD) and mask (1 on the query output). */
  ids: number[];
  targets: number[];
  mask: number[];
  /** Demonstrations kept within the budget. */
  demos: number;
  /** Shape of the query output as laid out. */
  shape: [number, number];
}

function pushGrid(s: CellSequence, g: Grid | null, shape: [number, number], kind: number, pair: number, target?: Grid): void {
  const [h, w] = shape;
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const cell: CellToken = { value: g ? g[r][c] : BLANK, row: r, col: c, height: h, width: w, kind, pair };
      s.ids.push(...packCell(cell));
      const t = target && r < target.length && c < target[0].length ? target[r][c] : -1;
      s.targets.push(t >= 0 ? t : PAD);
      s.mask.push(kind === KIND.queryOut && t >= 0 ? 1 : 0);
    }
  }
}

const cellsOf = (g: Grid) => g.length * g[0].length;

/**
 * The cell tokens of `demos` then the query input and its blank output of `shape` (target: the
 * query output, when known and where it overlaps `shape`). Demonstrations beyond the budget
 * `maxTokens` (or CELL_PAIRS - 1) are dropped from the end; null when not even one fits.
 */
export function encodeTask(
  demos: readonly ArcPair[],
  query: { input: Grid; output?: Grid },
  shape: [number, number],
  maxTokens: number,
): CellSequence | null {
  const fixed = cellsOf(query.input) + shape[0] * shape[1];
  let keep = Math.min(demos.length, CELL_PAIRS - 1),
    total = fixed + demos.slice(0, keep).reduce((a, p) => a + cellsOf(p.input) + cellsOf(p.output), 0);
  while (keep > 1 && total > maxTokens) {
    keep--;
    total -= cellsOf(demos[keep].input) + cellsOf(demos[keep].output);
  }
  if (total > maxTokens || keep < 1) return null;
  const s: CellSequence = { ids: [], targets: [], mask: [], demos: keep, shape };
  demos.slice(0, keep).forEach((p, i) => {
    pushGrid(s, p.input, gridShape(p.input), KIND.demoIn, i);
    pushGrid(s, p.output, gridShape(p.output), KIND.demoOut, i);
  });
  pushGrid(s, query.input, gridShape(query.input), KIND.queryIn, keep);
  // The answer's cells start as a draft: the query input where the shapes agree (most tasks edit
  // their input in place, so copying is where the model starts from), else blank.
  const [qh, qw] = gridShape(query.input);
  pushGrid(s, qh === shape[0] && qw === shape[1] ? query.input : null, shape, KIND.queryOut, keep, query.output);
  return s;
}

/** The PAD token (a padding cell: value PAD, every position field 0). */
export const PAD_ID = packCell({ value: PAD, row: 0, col: 0, height: 1, width: 1, kind: 0, pair: 0 });

/** Sequences padded to the longest into tensors: ids int32 [B, T, 2], targets int32 [B, T], mask float [B, T]. */
export function batchTensors(seqs: readonly CellSequence[]): { ids: tf.Tensor3D; targets: tf.Tensor2D; mask: tf.Tensor2D } {
  const b = seqs.length, t = Math.max(...seqs.map((s) => s.targets.length));
  const ids = new Int32Array(b * t * 2), targets = new Int32Array(b * t).fill(PAD), mask = new Float32Array(b * t);
  for (let i = 0; i < b * t; i++) ids.set(PAD_ID, 2 * i);
  seqs.forEach((s, r) => {
    ids.set(s.ids, 2 * r * t);
    targets.set(s.targets, r * t);
    mask.set(s.mask, r * t);
  });
  return { ids: tf.tensor3d(ids, [b, t, 2], "int32"), targets: tf.tensor2d(targets, [b, t], "int32"), mask: tf.tensor2d(mask, [b, t]) };
}

/**
 * A training sequence from a task's pairs: pair `query` is the query (its true output shape), the
 * others its demonstrations. Null when the budget cannot hold it.
 */
export function trainingSequence(pairs: readonly ArcPair[], query: number, maxTokens: number): CellSequence | null {
  const q = pairs[query];
  return encodeTask(pairs.filter((_, i) => i !== query), q, gridShape(q.output), maxTokens);
}

/** A random augmentation of a task (dihedral, colours keeping 0), the same for all its grids. */
export function augmentedPairs(task: ArcTask, rng: Rng): ArcPair[] {
  const a = augmentTask(task, randomAugmentation(rng, task, { colours: true }));
  return [...a.train, ...a.test];
}

// ---------------------------------------------------------------------------------------------
// Answering

/** The grid of a query output's answer: argmax colour at each query-output cell. */
function readAnswer(pred: ArrayLike<number>, offset: number, seq: CellSequence): Grid {
  const [h, w] = seq.shape, start = offset + seq.targets.length - h * w;
  return Array.from({ length: h }, (_, r) => Array.from({ length: w }, (_, c) => Math.min(9, pred[start + r * w + c])));
}

/** One answered view: the grid on the augmented task, with its augmentation, and the halting segments. */
export interface ViewAnswer {
  grid: Grid;
  aug: Augmentation;
  segments: number;
}

/**
 * Answers a task's first test input under each view (the identity first): shape step, encoding,
 * HRRM inference with Q-halting. Views that do not fit the budget give no answer.
 */
export async function answerViews(
  model: Hrrm,
  task: ArcTask,
  views: readonly Augmentation[],
  o: { maxTokens: number; batch: number; maxSegments?: number },
): Promise<(ViewAnswer | null)[]> {
  const seqs = views.map((aug) => {
    const v = augmentTask(task, aug);
    return encodeTask(v.train, { input: v.test[0].input }, predictShape(v.train, v.test[0].input).shape, o.maxTokens);
  });
  const out: (ViewAnswer | null)[] = views.map(() => null);
  const live = seqs.flatMap((s, i) => (s ? [i] : []));
  for (let i = 0; i < live.length; i += o.batch) {
    const idx = live.slice(i, i + o.batch), batch = idx.map((j) => seqs[j]!);
    const { ids, targets, mask } = batchTensors(batch);
    const inf = await model.infer(ids, { maxSegments: o.maxSegments });
    const pred = tf.tidy(() => tf.argMax(inf.logits, -1));
    const flat = await pred.data(), t = ids.shape[1];
    idx.forEach((j, k) => (out[j] = { grid: readAnswer(flat, k * t, seqs[j]!), aug: views[j], segments: inf.segments[k] }));
    tf.dispose([ids, targets, mask, inf.logits, pred]);
  }
  return out;
}

/** A task's score: identity view's cell accuracy and exact match, voted pass@2, shape. */
export interface CellTaskScore {
  id: string;
  family: string;
  cell: number;
  exact: boolean;
  pass2: boolean;
  shape: boolean;
  /** The identity view answered (it fit the budget). */
  answered: boolean;
  /** Mean halting segments over the answered views. */
  segments: number;
  /** The identity view's answer and the top two voted candidates. */
  pred: Grid | null;
  candidates: Grid[];
}

/** Scores one task from its answered views. */
export function scoreViews(id: string, family: string, want: Grid, answers: readonly (ViewAnswer | null)[]): CellTaskScore {
  const first = answers[0] ? (vote([answers[0]], 1)[0]?.grid ?? null) : null;
  const given = answers.filter((a): a is ViewAnswer => a !== null);
  const cands = vote(given, 2).map((c) => c.grid);
  const segs = given.map((a) => a.segments);
  return {
    id,
    family,
    cell: cellAccuracy(first, want),
    exact: first !== null && gridsEqual(first, want),
    pass2: cands.some((g) => gridsEqual(g, want)),
    shape: first !== null && first.length === want.length && first[0].length === want[0].length,
    answered: answers[0] !== null,
    segments: segs.length ? segs.reduce((a, b) => a + b, 0) / segs.length : NaN,
    pred: first,
    candidates: cands,
  };
}

/** Views of a task: the identity, then `n - 1` random augmentations (dihedral and colours). */
export function taskViews(task: ArcTask, n: number, rng: Rng): Augmentation[] {
  return [IDENTITY_AUGMENTATION, ...Array.from({ length: n - 1 }, () => randomAugmentation(rng, task, { colours: true }))];
}

// ---------------------------------------------------------------------------------------------
// Test-time training

/** Options of `testTimeTrain`. */
export interface TttOptions {
  /** Optimizer steps (0: none). */
  steps: number;
  /** Leave-one-out sequences per step, each under its own random augmentation. */
  batch: number;
  /** Adam learning rate. */
  lr: number;
  maxTokens: number;
  seed: number;
  /** Draw each sequence under a random dihedral transform and colour permutation (default true); false: the demonstrations as given. */
  augment?: boolean;
}

/**
 * Fine-tunes `model` in place on the task's own demonstrations: each step a batch of
 * leave-one-out sequences (one demonstration the query, the others its context), as given or
 * each under a random augmentation (`augment`). Needs at least two demonstrations; returns the
 * losses of every step.
 */
export async function testTimeTrain(model: Hrrm, task: ArcTask, o: TttOptions): Promise<number[]> {
  if (o.steps === 0 || task.train.length < 2) return [];
  const rng = new Rng(o.seed);
  const opt = tf.train.adam(o.lr);
  const vars = [...model.params.vars.values()];
  const losses: number[] = [];
  try {
    for (let s = 0; s < o.steps; s++) {
      const seqs: CellSequence[] = [];
      for (let tries = 0; seqs.length < o.batch && tries < 4 * o.batch; tries++) {
        const a = o.augment === false
          ? task
          : augmentTask({ train: task.train, test: [] }, randomAugmentation(rng, task, { colours: true }));
        const seq = trainingSequence(a.train, rng.int(a.train.length), o.maxTokens);
        if (seq) seqs.push(seq);
      }
      if (seqs.length === 0) break;
      const b = batchTensors(seqs);
      const loss = opt.minimize(() => model.loss(b.ids, b.targets, b.mask), true, vars) as tf.Scalar;
      losses.push((await loss.data())[0]);
      tf.dispose([loss, b.ids, b.targets, b.mask]);
    }
  } finally {
    opt.dispose();
  }
  return losses;
}
