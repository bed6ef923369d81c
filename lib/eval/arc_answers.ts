/**
 * Phase 2's answers: an ARC task as a text item, greedy decoding of grid answers (restricted to
 * the grid grammar, sped up by lossless speculative decoding), and scoring against the expected
 * grid (exact match, cell accuracy, pass@2 by augmentation voting) and against baselines. Used
 * by the phase (p2_arc.ts) and the inference server's ARC endpoint.
 */
import * as tf from "@tensorflow/tfjs";
import { type Augmentation, augmentTask, vote } from "../../datasets/arc/augment.ts";
import { gridsEqual } from "../../datasets/arc/grid.ts";
import type { ArcTask, Grid } from "../../datasets/arc/types.ts";
import { GRID_CHARS, gridAllowed, gridText, parseGrid, taskText } from "../../datasets/arc/text.ts";
import type { RegistryModel } from "../models/registry.ts";
import { logitsOf } from "../text/generate.ts";
import { round } from "../util/numbers.ts";
import { type TextItem, TOKENIZER } from "../text/tokens.ts";

/** A task (its first test pair) as a text item labelled with its family. */
export function arcItem(task: ArcTask, label?: string): TextItem {
  return { ...taskText(task), task: label };
}

/** A held-out task with the augmented views it is answered under (views[0] is the identity). */
export interface EvalTask {
  id: string;
  family: string;
  task: ArcTask;
  views: Augmentation[];
}

// Decoding: greedy, sped up by a copy-the-input draft (lossless), stopped once the text cannot be a grid

const EOS = TOKENIZER.eos;
/** The tokens a grid answer is written with (`GRID_CHARS` and EOS). */
const GRID_IDS = [...TOKENIZER.encode(GRID_CHARS), EOS];

/** True once a written shape header `HxW:` asks for more tokens than `maxNew` (the answer cannot fit the window). */
function tooLong(ids: readonly number[], maxNew: number): boolean {
  const m = ids.at(-1) === 58 ? /^(\d+)x(\d+):$/.exec(String.fromCharCode(...ids)) : null;
  return m !== null && ids.length + Number(m[1]) * (Number(m[2]) + 1) + 1 > maxNew;
}

/** One generation request: the prompt, a draft answer to verify, and the most tokens to write (EOS included). */
export interface GenRequest {
  prompt: string;
  draft: string;
  maxNew: number;
}

/**
 * Greedy decoding of each request, the same tokens as decoding one token per forward pass, in
 * fewer passes: each pass also scores a guess of the next tokens appended to the text so far, and
 * every guessed token equal to the model's own greedy choice is accepted at once (lossless
 * speculative decoding). The first guess is the test input (many ARC answers copy most of it);
 * later guesses are the model's choices past the first rejected token (Jacobi iteration), padded
 * with the test input. With `constrained`, each choice is the best token the grid grammar allows
 * (`gridAllowed`: the model picks the shape and every colour, the grammar writes the labels, `x`,
 * `:` and EOS); without it, the argmax over the vocabulary. Stops at EOS, at `maxNew` tokens, or
 * once the answer leaves the grammar. Returns the answer ids (without EOS) and whether EOS came.
 */
export async function greedyGrids(model: RegistryModel, reqs: readonly GenRequest[], batchSize: number, constrained: boolean) {
  const rows = reqs.map((r) => {
    const copy = [...TOKENIZER.encode(r.draft), EOS];
    return {
      ids: [TOKENIZER.bos, ...TOKENIZER.encode(r.prompt)],
      start: r.prompt.length + 1,
      copy,
      guess: copy,
      maxNew: r.maxNew,
      done: r.maxNew <= 0,
      eos: false,
    };
  });
  const K = GRID_IDS.length;
  // Batches of similar prompt lengths (less padding); a row's tokens do not depend on its batch.
  const order = rows.map((_, i) => i).sort((a, b) => rows[a].ids.length - rows[b].ids.length);
  for (let b0 = 0; b0 < rows.length; b0 += batchSize) {
    const chunk = order.slice(b0, b0 + batchSize).map((i) => rows[i]);
    for (let active = chunk.filter((r) => !r.done); active.length; active = active.filter((r) => !r.done)) {
      const seqs = active.map((r) => [...r.ids, ...r.guess.slice(0, r.maxNew - (r.ids.length - r.start))]);
      const T = Math.max(...seqs.map((s) => s.length));
      const flat = new Int32Array(active.length * T).fill(TOKENIZER.pad);
      seqs.forEach((s, i) => flat.set(s, i * T));
      const ids = tf.tensor2d(flat, [active.length, T], "int32"); // [n, T]
      const logits = await logitsOf(model, ids); // [n, T, V]
      const [best, picked] = tf.tidy(() => [tf.argMax(logits, -1), tf.gather(logits, GRID_IDS, 2)]); // [n, T], [n, T, K]
      const top = await best.data(), grid = await picked.data();
      tf.dispose([ids, logits, best, picked]);
      active.forEach((r, i) => {
        // The greedy choice at position q after answer tokens `answer`, and whether the grammar allows it.
        const choose = (q: number, answer: number[]) => {
          const allowed = gridAllowed(answer, EOS), score = (id: number) => grid[(i * T + q) * K + GRID_IDS.indexOf(id)];
          const tok = constrained ? allowed.reduce((a, b) => (score(b) > score(a) ? b : a), allowed[0] ?? EOS) : top[i * T + q];
          return { tok, ok: allowed.includes(tok) };
        };
        const p = r.ids.length - 1, d = seqs[i].length - r.ids.length;
        let k = 0;
        for (;; k++) {
          const { tok, ok } = choose(p + k, r.ids.slice(r.start));
          if (tok === EOS) [r.done, r.eos] = [true, ok];
          else r.ids.push(tok);
          if (!ok || r.ids.length - r.start >= r.maxNew || tooLong(r.ids.slice(r.start), r.maxNew)) r.done = true;
          if (r.done || k >= d || tok !== seqs[i][p + k + 1]) break;
        }
        const guess: number[] = [];
        for (let j = k + 1; j <= d && !r.done && guess.at(-1) !== EOS; j++) {
          const { tok, ok } = choose(p + j, [...r.ids.slice(r.start), ...guess]);
          if (!ok) break;
          guess.push(tok);
        }
        r.guess = [...guess, ...r.copy.slice(r.ids.length - r.start + guess.length)];
      });
    }
  }
  return rows.map((r) => ({ ids: r.ids.slice(r.start), eos: r.eos }));
}

// ---------------------------------------------------------------------------------------------
// Scoring

/**
 * Cell accuracy of a predicted grid: cells where it agrees with the expected grid, over the cells
 * of the expected grid plus the predicted cells outside it (a wrong shape costs). Null scores 0.
 */
export function cellAccuracy(pred: Grid | null, want: Grid): number {
  if (!pred) return 0;
  let right = 0, extra = 0;
  for (let r = 0; r < pred.length; r++) {
    for (let c = 0; c < pred[r].length; c++) {
      if (r < want.length && c < want[r].length) right += pred[r][c] === want[r][c] ? 1 : 0;
      else extra++;
    }
  }
  return right / (want.length * want[0].length + extra);
}

/** True when a (predicted) grid has the shape of the expected one. */
const sameShape = (a: Grid | null, b: Grid) => a !== null && a.length === b.length && a[0].length === b[0].length;

/** The majority-colour baseline: the test input's shape filled with the most frequent colour of the demonstration outputs (ties: the smaller colour). */
export function majorityGrid(task: ArcTask): Grid {
  const counts = new Array<number>(10).fill(0);
  for (const p of task.train) for (const row of p.output) for (const v of row) counts[v]++;
  const colour = counts.indexOf(Math.max(...counts));
  return task.test[0].input.map((row) => row.map(() => colour));
}

/** The score of one task. */
export interface TaskScore {
  id: string;
  family: string;
  /** Cell accuracy and exact match of the identity view's answer. */
  cell: number;
  exact: boolean;
  /** The expected grid is among the top two voted candidates / is the top one. */
  pass2: boolean;
  vote1: boolean;
  /** The identity view's answer parsed as a grid / has the expected shape. */
  wellFormed: boolean;
  shape: boolean;
  pred: Grid | null;
  /** The identity view's answer text (cut where it stopped being a grid). */
  got: string;
}

/** Scores a model on tasks: one greedy answer per view, inverted and voted. */
export async function scoreModel(
  model: RegistryModel,
  tasks: readonly EvalTask[],
  o: { seqLen: number; batchSize: number; constrained: boolean },
): Promise<TaskScore[]> {
  const { seqLen, batchSize, constrained } = o;
  const reqs: GenRequest[] = [], views: { task: number; aug: Augmentation }[] = [];
  tasks.forEach((t, ti) =>
    t.views.forEach((aug) => {
      const v = augmentTask(t.task, aug), item = arcItem(v);
      reqs.push({ prompt: item.prompt, draft: gridText(v.test[0].input), maxNew: seqLen + 1 - item.prompt.length - 1 });
      views.push({ task: ti, aug });
    })
  );
  const outs = await greedyGrids(model, reqs, batchSize, constrained);
  const preds = outs.map((o) => (o.eos ? parseGrid(TOKENIZER.decode(o.ids)) : null));
  return tasks.map((t, ti) => {
    const mine = views.map((v, i) => ({ ...v, i })).filter((v) => v.task === ti);
    const want = t.task.test[0].output, first = mine[0].i;
    const voted = vote(mine.flatMap((v) => (preds[v.i] ? [{ grid: preds[v.i]!, aug: v.aug }] : [])), 2);
    return {
      id: t.id,
      family: t.family,
      cell: cellAccuracy(preds[first], want),
      exact: preds[first] !== null && gridsEqual(preds[first]!, want),
      pass2: voted.some((c) => gridsEqual(c.grid, want)),
      vote1: voted.length > 0 && gridsEqual(voted[0].grid, want),
      wellFormed: preds[first] !== null,
      shape: sameShape(preds[first], want),
      pred: preds[first],
      got: TOKENIZER.decode(outs[first].ids.filter((id) => id < 256)) + (outs[first].eos ? "" : " [stopped]"),
    };
  });
}

/** Scores a fixed prediction per task (the copy-input and majority-colour baselines). */
export function scoreBaseline(tasks: readonly EvalTask[], predict: (t: ArcTask) => Grid): TaskScore[] {
  return tasks.map((t) => {
    const want = t.task.test[0].output, pred = predict(t.task), exact = gridsEqual(pred, want);
    return {
      id: t.id,
      family: t.family,
      cell: cellAccuracy(pred, want),
      exact,
      pass2: exact,
      vote1: exact,
      wellFormed: true,
      shape: sameShape(pred, want),
      pred,
      got: gridText(pred),
    };
  });
}

/** Means of a list of task scores. */
export function summarize(s: readonly TaskScore[]) {
  const mean = (f: (x: TaskScore) => number) => (s.length ? round(s.reduce((a, x) => a + f(x), 0) / s.length) : NaN);
  return {
    tasks: s.length,
    cell_acc: mean((x) => x.cell),
    exact: mean((x) => +x.exact),
    pass_at_2: mean((x) => +x.pass2),
    vote_exact: mean((x) => +x.vote1),
    well_formed: mean((x) => +x.wellFormed),
    shape_acc: mean((x) => +x.shape),
  };
}
