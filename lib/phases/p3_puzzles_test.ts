/** Phase 3: puzzle data (held out, checkable), grokking curve replay, a tiny run through its gate, stage evaluation, reproducibility and resume. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { createModel } from "../models/registry.ts";
import type { PipelineConfig } from "../config/config.ts";
import { stageContext } from "../eval/stage.ts";
import { cognateFor } from "./common.ts";
import { loadModel, saveModel } from "../models/io.ts";
import { gridModelPath, phase1ModelPath } from "../util/run_dir.ts";
import type { Hrrm } from "../models/hrrm.ts";
import { evaluateHrrm, type GridTaskResult, gridTaskSection, heldOutGrids } from "./p3_grids.ts";
import { detectGrokking } from "./p3_grokking.ts";
import { phase3, puzzleData } from "./p3_puzzles.ts";
import { groupMeans } from "../util/numbers.ts";
import { fakePhase1, testContext, testRun } from "./testing.ts";

await initBackend("wasm");

/** Stand-in phase 1 with an untrained reasoning cognate beside the standard one (phase 1 saves all three variants). */
async function fakeReasoning(runDir: string, config: PipelineConfig): Promise<void> {
  await fakePhase1(runDir, config);
  const cfg = cognateFor(config, "reasoning");
  const m = createModel("cognate-reasoning", cfg, 1);
  await saveModel(join(runDir, phase1ModelPath("reasoning")), m, { key: "cognate-reasoning", config: { ...cfg } });
  m.dispose();
}

/** The metrics without wall times and what only the training call itself sees (its first and last batch loss, where it resumed). */
function numbers(metrics: Record<string, unknown>): Record<string, unknown> {
  const { seconds: _s, grok_runs, grids, resumed_from: _r, train_loss_first: _f, train_loss_last: _l, ...rest } = metrics;
  const timeless = ({ seconds: _t, ...r }: Record<string, unknown>) => r;
  return {
    ...rest,
    grok_runs: (grok_runs as Record<string, unknown>[]).map(timeless),
    grids: (grids as Record<string, unknown>[]).map(timeless),
  };
}

Deno.test("puzzle data: deterministic, held-out prompts unseen in training, every expected answer passes its checker", async () => {
  const { config } = await testRun([phase3], "tiny");
  const s = stageContext(config, 3);
  const a = puzzleData(s), b = puzzleData(s);
  assert.deepEqual(a.train.map((it) => it.prompt + it.answer), b.train.map((it) => it.prompt + it.answer));
  assert.deepEqual(Object.keys(a.test), ["sudoku", "maze", "listops", "modular"]);
  const seen = new Set(a.train.map((it) => it.prompt));
  for (const [task, items] of Object.entries(a.test)) {
    assert.equal(items.length, s.phaseConfig.eval_items, task);
    for (const it of items) {
      assert.ok(!seen.has(it.prompt), `${task}: held-out prompt seen in training`);
      assert.ok(it.check(it.answer), `${task}: expected answer rejected`);
      assert.ok(!it.check(it.answer === "1" ? "2" : "1"), `${task}: a wrong answer accepted`);
    }
  }
  // Difficulty is the task's own measure: Sudoku blanks, maze path length, ListOps depth.
  for (const it of a.test.sudoku) assert.equal(it.difficulty, [...it.prompt.slice(7, 23)].filter((ch) => ch === "0").length);
  for (const it of a.test.maze) assert.equal(it.difficulty, it.answer.length);
  assert.throws(
    () => puzzleData(stageContext({ ...config, phases: { 3: { ...s.phaseConfig, tasks: ["chess"] } } }, 3)),
    /phases\.3\.tasks\[0\]: 'chess' is not accepted; expected one of sudoku, maze, listops, modular/,
  );
});

Deno.test("grokking detection replays a curve: memorized, then generalized after a gap", () => {
  const curve = { step: [10, 20, 30, 40], train_acc: [0.5, 1, 1, 1], val_acc: [0.1, 0.2, 0.6, 0.97], loss: [1, 0.1, 0.05, 0.01] };
  assert.deepEqual(detectGrokking(curve, 0.99, 0.95), {
    phase: "grokked",
    memorizationStep: 20,
    valAtMemorization: 0.2,
    generalizationStep: 40,
    gap: 20,
  });
  assert.deepEqual(groupMeans([3, 1, 3], [2, 5, 4]), { x: [1, 3], mean: [5, 3], count: [1, 2] });
});

Deno.test("phase 3 tiny: grokking above chance, puzzles above majority and base, halting curves, stage evaluation", async () => {
  const { runDir, config } = await testRun([phase3], "tiny");
  await fakeReasoning(runDir, config);
  const ctx = testContext(phase3, runDir, config);
  const out = await phase3.run(ctx);
  const checks = phase3.validate(out, ctx);
  assert.ok(checks.every((c) => c.passed), JSON.stringify(checks));
  const m = out.metrics as Record<string, number>, raw = out.metrics;
  assert.ok(m.mod_val_acc > m.mod_chance && m.mod_train_acc > m.mod_chance);
  const curve = (raw.grok_runs as { curve: { step: number[]; val_acc: number[] } }[])[0].curve;
  assert.equal(curve.step.length, config.phases["3"].mod_steps as number / (config.phases["3"].mod_eval_every as number));
  assert.equal(curve.val_acc.at(-1), m.mod_val_acc);
  // ACT steps come from the model's forward pass: within 1..maxRefinementSteps, per difficulty.
  const maxSteps = cognateFor(config, "reasoning").maxRefinementSteps;
  for (const task of ["sudoku", "maze", "listops"]) {
    const h = (raw.halting as Record<string, { difficulty: number[]; mean_steps: number[]; count: number[] }>)[task];
    assert.ok(h.difficulty.length > 1, task);
    assert.equal(h.count.reduce((a, b) => a + b, 0), config.phases["3"].eval_items);
    assert.ok(h.mean_steps.every((s) => s >= 1 && s <= maxSteps), `${task}: ${h.mean_steps}`);
  }
  assert.ok(m.token_acc > m.majority_token_acc && m.token_acc > m.base_token_acc);
  // The saved specialist scores the same through the stage's evaluation (rebuilt from config and seed).
  const { model } = await loadModel(join(runDir, "phase-3-puzzles", "model.safetensors"));
  const e = await phase3.stage!.evaluate(model, stageContext(config, 3));
  model.dispose();
  assert.equal(e.token_acc, m.token_acc);
  assert.equal(e.sudoku_exact, m.sudoku_exact);
  assert.ok(phase3.stage!.replay(stageContext(config, 3)).length > 1000);
  // (c) The saved HRRM solves the held-out grids as reported; a gain over one segment, a tested halting curve.
  const grids = raw.grids as GridTaskResult[];
  assert.deepEqual(grids.map((g) => g.task), config.phases["3"].grid_tasks);
  for (const g of grids) {
    assert.equal(g.solver.exact, 1);
    assert.equal(g.hrrm.by_difficulty.count.reduce((a, b) => a + b, 0), g.eval_puzzles);
    assert.ok(g.hrrm.exact > g.one_segment.exact, `${g.task}: ${g.hrrm.exact} vs one segment ${g.one_segment.exact}`);
    const saved = await loadModel(join(runDir, gridModelPath(g.task)));
    const c = gridTaskSection(config, g.task);
    assert.deepEqual(
      await evaluateHrrm(saved.model as Hrrm, heldOutGrids(config, g.task), c.grid_max_segments, true, c.grid_halt_rule),
      g.hrrm,
    );
    saved.model.dispose();
  }
  const sections = phase3.report!({
    ...out,
    phase: 3,
    name: "puzzles",
    status: "completed",
    seconds: 0,
    validation: { passed: true, checks },
    artifacts: [],
  });
  assert.equal(sections.filter((s) => s.figure).length, 3);
});

Deno.test("phase 3: same seed, same metrics; a rerun in the same folder resumes from the checkpoints without retraining", async () => {
  const sets = [
    "phases.3.steps=4",
    "phases.3.train_items=60",
    "phases.3.eval_items=6",
    "phases.3.gen_items=2",
    "phases.3.mod_baseline=true",
    "phases.3.mod_init=torch",
    // Stop the GrokFast run at the first evaluation 7 or more steps after its first one at >= 1%
    // validation (chance is 1/23): evaluations every 5 steps, so 10 steps after it.
    "phases.3.mod_steps=40",
    "phases.3.mod_eval_every=5",
    "phases.3.grok_val_threshold=0.01",
    "phases.3.mod_stop_after=7",
    "phases.3.grid_steps=3",
    "phases.3.grid_train_puzzles=30",
    "phases.3.grid_eval_puzzles=6",
  ];
  const runs = [];
  for (let i = 0; i < 2; i++) {
    const { runDir, config } = await testRun([phase3], "tiny", sets);
    await fakeReasoning(runDir, config);
    runs.push({ runDir, config, out: await phase3.run(testContext(phase3, runDir, config)) });
  }
  assert.deepEqual(numbers(runs[0].out.metrics), numbers(runs[1].out.metrics));
  // The GrokFast run stopped early; the baseline trained exactly as many steps.
  const grok = runs[0].out.metrics.grok_runs as { steps: number; curve: { step: number[]; val_acc: number[] } }[];
  assert.equal(grok.length, 2);
  const first = grok[0].curve.step[grok[0].curve.val_acc.findIndex((v) => v >= 0.01)];
  assert.ok(first + 10 < 40, `validation first >= 1% at step ${first}`);
  assert.equal(grok[0].steps, first + 10);
  assert.equal(grok[1].steps, grok[0].steps);
  const again = await phase3.run(testContext(phase3, runs[0].runDir, runs[0].config, true));
  assert.equal(again.metrics.resumed_from, 4);
  assert.deepEqual(numbers(again.metrics), numbers(runs[0].out.metrics));
});
