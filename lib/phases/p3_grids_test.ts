/** Phase 3 (c): grid scoring, the cognate baseline's layout and size, HRRM inference with and without halting. */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/mod.ts";
import { gridPuzzle, gridSide, gridVocab, MAZE_TOKENS } from "../../datasets/puzzles/grids.ts";
import { Hrrm } from "../models/hrrm.ts";
import { createModel } from "../models/registry.ts";
import {
  cognateWindows,
  difficultyBin,
  evaluateCognateGrid,
  evaluateHrrm,
  gridCognateConfig,
  gridHrrmConfig,
  GridSection,
  gridTaskConfig,
  gridTraceHtml,
  scoreGrids,
  setGridEpisodes,
  solverEval,
  taskSection,
  traceGrid,
} from "./p3_grids.ts";

await initBackend("wasm");

const section = GridSection.parse({});
const sudoku = Array.from({ length: 6 }, (_, i) => gridPuzzle(gridTaskConfig(section, "sudoku4", 1), i));

Deno.test("grid_per_task: a task's own recipe keys win (9x9 Sudoku has defaults of its own), the rest come from the section; unknown keys are named", () => {
  const c = GridSection.parse({ grid_steps: 300, grid_per_task: { sudoku9: { grid_steps: 1200, grid_mixer: "mlp" } } });
  assert.equal(taskSection(c, "sudoku9").grid_steps, 1200);
  assert.equal(taskSection(c, "sudoku9").grid_mixer, "mlp");
  assert.equal(taskSection(c, "sudoku9").grid_lr, c.grid_lr);
  assert.equal(taskSection(c, "sudoku9").grid_batch_size, 32, "setting one key keeps 9x9's other defaults");
  assert.equal(taskSection(GridSection.parse({}), "sudoku9").grid_steps, 600);
  assert.equal(taskSection(c, "sudoku4").grid_steps, 300);
  assert.equal(taskSection(c, "sudoku4").grid_mixer, "attention");
  assert.throws(() => GridSection.parse({ grid_per_task: { sudoku9: { grid_stepz: 1 } } }), /grid_stepz/);
  assert.throws(() => GridSection.parse({ grid_per_task: { sudoku16: {} } }), /sudoku16/);
});

Deno.test("scoreGrids: a grid counts only when every cell is right; bins by difficulty", () => {
  const pred = Int32Array.from(sudoku.flatMap((p) => [...p.target]));
  pred[0] = 0; // puzzle 0 misses one cell
  const e = scoreGrids(sudoku, pred, [1, 2, 3, 4, 1, 1]);
  assert.equal(e.exact, Math.round((5 / 6) * 1e4) / 1e4);
  assert.equal(e.cell_acc, Math.round((1 - 1 / 96) * 1e4) / 1e4);
  assert.equal(e.mean_segments, 2);
  assert.equal(e.by_difficulty.count.reduce((a, b) => a + b, 0), 6);
  assert.deepEqual(e.by_difficulty.difficulty, [...new Set(sudoku.map((p) => p.difficulty))].sort((a, b) => a - b));
  // Maze difficulty bins are 4 moves wide, named by their lower edge.
  assert.deepEqual([1, 4, 5, 8, 9].map((d) => difficultyBin({ ...sudoku[0], task: "maze", difficulty: d })), [1, 1, 5, 5, 9]);
});

Deno.test("the exact solver scores 1 on every task", () => {
  for (const task of ["sudoku4", "sudoku9", "maze"] as const) {
    const ps = Array.from({ length: 3 }, (_, i) => gridPuzzle(gridTaskConfig(section, task, 2), i));
    assert.equal(solverEval(ps).eval.exact, 1, task);
  }
});

Deno.test("cognate windows: input, SEP, solution; the mask covers exactly the solution cells", () => {
  const w = cognateWindows(sudoku.slice(0, 2), 5);
  assert.equal(w.seqLen, 32);
  const p = sudoku[1], row = 32;
  assert.deepEqual([...w.ids.subarray(row, row + 16)], [...p.input]);
  assert.equal(w.ids[row + 16], 5); // SEP
  assert.deepEqual([...w.targets.subarray(row + 16, row + 32)], [...p.target]);
  assert.deepEqual([...w.mask.subarray(row, row + 32)], [...Array(16).fill(0), ...Array(16).fill(1)]);
});

Deno.test("the cognate baseline has about the HRRM's parameters, with either mixer", () => {
  for (const task of ["sudoku4", "sudoku9", "maze"] as const) {
    for (const mixer of ["attention", "mlp"] as const) {
      const side = gridSide(gridTaskConfig(section, task, 0));
      const hc = gridHrrmConfig({ ...section, grid_mixer: mixer }, task, side);
      const h = new Hrrm(hc, 1), c = createModel("cognate-standard", gridCognateConfig(hc, h.params.count()), 1);
      const ratio = c.params.count() / h.params.count();
      assert.ok(ratio > 0.97 && ratio < 1.03, `${task} ${mixer}: cognate/HRRM parameters ${ratio}`);
      h.dispose();
      c.dispose();
    }
  }
});

Deno.test("HRRM inference: one segment, halting, or every segment; an untrained model solves nothing", async () => {
  const side = 4, hc = gridHrrmConfig(section, "sudoku4", side);
  const h = new Hrrm(hc, 3);
  const one = await evaluateHrrm(h, sudoku, 1);
  assert.equal(one.mean_segments, 1);
  const all = await evaluateHrrm(h, sudoku, hc.maxSegments, false);
  assert.equal(all.mean_segments, hc.maxSegments);
  assert.equal(all.exact, 0);
  const halted = await evaluateHrrm(h, sudoku, hc.maxSegments);
  assert.ok(halted.mean_segments! >= 1 && halted.mean_segments! <= hc.maxSegments);
  const c = createModel("cognate-standard", gridCognateConfig(hc, h.params.count()), 1);
  const ce = await evaluateCognateGrid(c, sudoku, gridVocab("sudoku4"));
  assert.equal(ce.exact, 0);
  assert.ok(ce.cell_acc < 0.5);
  h.dispose();
  c.dispose();
  assert.equal(tf.memory().numTensors < 1e5, true);
});

Deno.test("the external memory holds the first grid_episodes training puzzles, as given; the answers read them", async () => {
  const hc = gridHrrmConfig({ ...section, grid_episodes: 4 }, "sudoku4", 4);
  assert.equal(hc.episodes, 4);
  const a = new Hrrm(hc, 3), b = new Hrrm(hc, 3);
  assert.throws(() => setGridEpisodes(a, sudoku.slice(0, 3)), /phases.3.grid_episodes = 4: only 3 training puzzles/);
  for (const h of [a, b]) h.params.get("epi_o_w").assign(tf.mul(tf.randomNormal([hc.dModel, hc.dModel], 0, 1, "float32", 8), 0.5));
  setGridEpisodes(a, sudoku);
  setGridEpisodes(b, sudoku);
  const ea = await evaluateHrrm(a, sudoku.slice(4), 2, false), eb = await evaluateHrrm(b, sudoku.slice(4), 2, false);
  assert.deepEqual(ea, eb, "filled from the same puzzles, the same answers");
  // Other stored puzzles, other cell answers: the memory is read.
  setGridEpisodes(b, [...sudoku].reverse());
  const x = tf.tensor2d(Int32Array.from(sudoku.slice(4).flatMap((p) => [...p.input])), [2, 16], "int32");
  const la = await (await a.infer(x, { halt: false })).logits.data(), lb = await (await b.infer(x, { halt: false })).logits.data();
  assert.ok(la.some((v, i) => Math.abs(v - lb[i]) > 1e-4));
  a.dispose();
  b.dispose();
});

Deno.test("maze grids use their own tokens", () => {
  const p = gridPuzzle(gridTaskConfig(section, "maze", 0), 0);
  assert.equal(p.side, 2 * section.grid_maze_size - 1);
  assert.equal(p.input.filter((t) => t === MAZE_TOKENS.start).length, 1);
  assert.equal(p.input.filter((t) => t === MAZE_TOKENS.path).length, 0);
});

Deno.test("tracing a puzzle segment by segment agrees with inference, and draws every segment's grid", async () => {
  const hc = gridHrrmConfig(section, "sudoku4", 4);
  const h = new Hrrm(hc, 4);
  // A Q head that halts some puzzles early, so the halting segment is tested, not just the last.
  h.params.get("q_w").assign(tf.mul(tf.randomNormal([hc.dModel, 2], 0, 1, "float32", 5), 2));
  h.params.get("q_b").assign(tf.tensor1d([0, 0]));
  const ids = tf.tensor2d(Int32Array.from(sudoku.flatMap((p) => [...p.input])), [sudoku.length, 16], "int32");
  // The halt bias at the median first-segment margin: about half the puzzles halt after segment 1.
  const o = h.segment(ids, h.initialCarry(sudoku.length, 16));
  const d = Array.from(await tf.sub(o.qHalt, o.qContinue).data()).sort((a, b) => a - b);
  h.params.get("q_b").assign(tf.tensor1d([-(d[2] + d[3]) / 2, 0]));
  const all = await h.infer(ids, { halt: false }), halted = await h.infer(ids);
  const last = await tf.argMax(all.logits, -1).array() as number[][];
  sudoku.forEach((p, i) => {
    const t = traceGrid(h, p);
    assert.equal(t.steps.length, hc.maxSegments);
    assert.deepEqual(t.steps.at(-1)!.pred, last[i]);
    assert.equal(t.haltedAt, halted.segments[i], `puzzle ${i}`);
    assert.ok(t.steps.every((s) => s.confidence.every((c) => c > 0 && c <= 1)));
    const html = gridTraceHtml(t);
    assert.equal(html.match(/<td /g)!.length, 16 * (hc.maxSegments + 2));
    assert.equal(html.match(/Q-halting stops here/g)!.length, 1);
  });
  // TRM's rule: the trace stops where inference under it does.
  const confident = await h.infer(ids, { rule: "confident" });
  sudoku.forEach((p, i) => assert.equal(traceGrid(h, p, hc.maxSegments, "confident").haltedAt, confident.segments[i], `puzzle ${i}`));
  assert.ok(new Set(halted.segments).size > 1, `segments ${halted.segments}: expected early and late halts`);
  tf.dispose([ids, all.logits, halted.logits]);
  h.dispose();
});
