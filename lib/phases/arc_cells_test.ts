/** Grid-native ARC: the shape step, cell-token layout, the cells embedding, voting and test-time training. */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/mod.ts";
import { generateTask } from "../../datasets/arc/generator.ts";
import { augmentGrid, augmentTask } from "../../datasets/arc/augment.ts";
import type { ArcPair, Grid } from "../../datasets/arc/types.ts";
import { CELL_PAIRS, Hrrm, hrrmConfig, packCell } from "../models/hrrm.ts";
import { Rng } from "../util/rng.ts";
import {
  answerViews,
  ARC_VOCAB,
  batchTensors,
  BLANK,
  encodeTask,
  KIND,
  PAD,
  predictShape,
  scoreViews,
  taskViews,
  testTimeTrain,
  trainingSequence,
} from "./arc_cells.ts";

await initBackend("wasm");

const grid = (h: number, w: number, v = 1): Grid =>
  Array.from({ length: h }, (_, r) => Array.from({ length: w }, (_, c) => (r + c + v) % 10));
const pair = (i: [number, number], o: [number, number]): ArcPair => ({ input: grid(...i), output: grid(...o, 3) });

Deno.test("predictShape: the first rule every demonstration obeys, applied to the query", () => {
  const q = grid(4, 5);
  assert.deepEqual(predictShape([pair([2, 3], [2, 3]), pair([3, 3], [3, 3])], q), { rule: "same", shape: [4, 5] });
  assert.deepEqual(predictShape([pair([2, 3], [1, 1]), pair([3, 3], [1, 1])], q), { rule: "constant", shape: [1, 1] });
  assert.deepEqual(predictShape([pair([2, 3], [3, 2]), pair([4, 1], [1, 4])], q), { rule: "transpose", shape: [5, 4] });
  assert.deepEqual(predictShape([pair([2, 3], [4, 9]), pair([1, 2], [2, 6])], q), { rule: "scale", shape: [8, 15] });
  assert.deepEqual(predictShape([pair([2, 3], [4, 4]), pair([1, 2], [3, 3])], q), { rule: "offset", shape: [6, 6] });
  assert.equal(predictShape([pair([2, 3], [4, 4]), pair([1, 2], [5, 5])], q).rule, "none");
});

Deno.test("encodeTask: one token per cell, the answer's cells start as a draft of the input or blank, demonstrations dropped to fit", () => {
  const demos = [pair([2, 3], [2, 3]), pair([3, 3], [3, 3])], query = { input: grid(2, 2), output: grid(2, 2, 5) };
  const s = encodeTask(demos, query, [2, 2], 1000)!;
  assert.equal(s.targets.length, 6 + 6 + 9 + 9 + 4 + 4);
  assert.equal(s.ids.length, 2 * s.targets.length);
  assert.equal(s.demos, 2);
  // Only the answer is scored, with the query output's colours; it starts as the query input.
  assert.deepEqual(s.mask.slice(-4), [1, 1, 1, 1]);
  assert.equal(s.mask.slice(0, -4).reduce((a, b) => a + b, 0), 0);
  assert.deepEqual(s.targets.slice(-4), query.output.flat());
  assert.ok(s.targets.slice(0, -4).every((t) => t === PAD));
  const last = s.ids.slice(-8);
  for (let k = 0; k < 4; k++) {
    const [r, c] = [k >> 1, k & 1];
    const want = packCell({ value: query.input[r][c], row: r, col: c, height: 2, width: 2, kind: KIND.queryOut, pair: 2 });
    assert.deepEqual(last.slice(2 * k, 2 * k + 2), want);
  }
  // Another shape: blank cells.
  const blank = encodeTask(demos, query, [1, 3], 1000)!;
  assert.deepEqual(blank.ids.slice(-2), packCell({ value: BLANK, row: 0, col: 2, height: 1, width: 3, kind: KIND.queryOut, pair: 2 }));
  // A budget that holds one demonstration keeps the first; one that holds none gives null.
  assert.equal(encodeTask(demos, query, [2, 2], 8 + 12)?.demos, 1);
  assert.equal(encodeTask(demos, query, [2, 2], 19), null);
  // At most CELL_PAIRS - 1 demonstrations.
  assert.equal(encodeTask(Array.from({ length: 12 }, () => pair([1, 1], [1, 1])), query, [2, 2], 1000)?.demos, CELL_PAIRS - 1);
});

Deno.test("the cells embedding is the sum of its seven table rows (packing and unpacking agree)", async () => {
  const m = new Hrrm(hrrmConfig({ vocabSize: ARC_VOCAB, maxSeqLen: 8, dModel: 8, nHeads: 2, positions: "cells", gridSide: 30 }), 1);
  const cells = [
    { value: 7, row: 3, col: 29, height: 30, width: 30, kind: 1, pair: 6 },
    { value: 11, row: 0, col: 0, height: 1, width: 1, kind: 3, pair: 7 },
    { value: 0, row: 12, col: 4, height: 20, width: 9, kind: 2, pair: 0 },
  ];
  const ids = tf.tensor3d(cells.flatMap((c) => packCell(c)), [1, 3, 2], "int32");
  const got = await m.embed(ids).array();
  const row = async (name: string, i: number) => (await m.params.get(name).array() as number[][])[i];
  for (const [k, c] of cells.entries()) {
    const parts = [
      await row("tok", c.value),
      await row("pos_kind", c.kind),
      await row("pos_pair", c.pair),
      await row("pos_row", c.row),
      await row("pos_col", c.col),
      await row("pos_row_end", c.height - 1 - c.row),
      await row("pos_col_end", c.width - 1 - c.col),
    ];
    const want = parts[0].map((_, j) => parts.reduce((a, p) => a + p[j], 0));
    want.forEach((v, j) => assert.ok(Math.abs(v - got[0][k][j]) < 1e-5, `cell ${k} dim ${j}: ${got[0][k][j]} vs ${v}`));
  }
  assert.throws(() => m.embed(tf.tensor2d([[1, 2]], [1, 2], "int32")), /cells positions need ids \[B, T, 2\]/);
  assert.throws(() => packCell({ value: 16, row: 0, col: 0, height: 1, width: 1, kind: 0, pair: 0 }), /outside 0\.\.15/);
  m.dispose();
});

Deno.test("answers are read at the answer cells in the predicted shape and voted back through each view's inverse", async () => {
  const task = generateTask("flip", 3, { maxSize: 6, trainPairs: 2, testPairs: 1 });
  const m = new Hrrm(hrrmConfig({ vocabSize: ARC_VOCAB, maxSeqLen: 512, dModel: 16, nHeads: 2, positions: "cells", gridSide: 30 }), 1);
  const views = taskViews(task, 3, new Rng(1)), want = task.test[0].output;
  const answers = await answerViews(m, task, views, { maxTokens: 512, batch: 2 });
  answers.forEach((a, i) => {
    const v = augmentTask(task, views[i]);
    assert.deepEqual([a!.grid.length, a!.grid[0].length], predictShape(v.train, v.test[0].input).shape);
  });
  assert.equal(scoreViews(task.id, "flip", want, answers).answered, true);
  // The true answer given under every view maps back to one candidate: exact and pass@2.
  const right = scoreViews(task.id, "flip", want, views.map((aug) => ({ grid: augmentGrid(want, aug), aug, segments: 1 })));
  assert.ok(right.exact && right.pass2 && right.candidates.length === 1 && right.cell === 1);
  // A view that does not fit the budget gives no answer.
  assert.deepEqual(await answerViews(m, task, views, { maxTokens: 4, batch: 2 }), [null, null, null]);
  m.dispose();
});

Deno.test("test-time training lowers the leave-one-out loss on the task's own demonstrations", async () => {
  const task = generateTask("colour_map", 5, { maxSize: 6, trainPairs: 3, testPairs: 1 });
  const m = new Hrrm(hrrmConfig({ vocabSize: ARC_VOCAB, maxSeqLen: 512, dModel: 16, nHeads: 2, positions: "cells", gridSide: 30 }), 2);
  const held = batchTensors([0, 1, 2].map((q) => trainingSequence(task.train, q, 512)!));
  const loss = async () => (await m.loss(held.ids, held.targets, held.mask).data())[0];
  const before = await loss();
  const losses = await testTimeTrain(m, task, { steps: 40, batch: 3, lr: 1e-2, maxTokens: 512, seed: 1 });
  assert.equal(losses.length, 40);
  const after = await loss();
  assert.ok(after < 0.8 * before, `leave-one-out loss ${before.toFixed(3)} -> ${after.toFixed(3)}`);
  // One demonstration: nothing to leave out, nothing trained.
  assert.deepEqual(
    await testTimeTrain(m, { train: task.train.slice(0, 1), test: task.test }, { steps: 5, batch: 2, lr: 1e-3, maxTokens: 512, seed: 1 }),
    [],
  );
  m.dispose();
});
