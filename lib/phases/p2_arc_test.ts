/** Phase 2: scoring and baselines, exact inverses under voting, held-out data, lossless fast greedy decoding, and a tiny run (learning, stage evaluation, report, reproducibility). */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { augmentGrid, augmentTask, vote } from "../../datasets/arc/augment.ts";
import { generateTask } from "../../datasets/arc/generator.ts";
import { taskHash } from "../../datasets/arc/serialize.ts";
import { createModel } from "../models/registry.ts";
import type { RegistryModel } from "../models/registry.ts";
import { type PipelineConfig, resolveConfig } from "../config/config.ts";
import { stageContext } from "../eval/stage.ts";
import { cognateFor } from "./common.ts";
import { loadModel } from "../models/io.ts";
import { logitsOf } from "../text/generate.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { gridAllowed, gridText } from "../../datasets/arc/text.ts";
import { arcData, outputWindows, phase2 } from "./p2_arc.ts";
import { arcItem, cellAccuracy, type GenRequest, greedyGrids, majorityGrid } from "../eval/arc_answers.ts";
import { fakePhase1, testContext, testRun } from "./testing.ts";
import { haveArcTraining } from "../../datasets/arc/testing.ts";

await initBackend("wasm");

const enc = (s: string) => TOKENIZER.encode(s);

Deno.test("cell accuracy charges a wrong shape; the majority baseline takes the test input's shape", () => {
  const want = [[1, 0], [0, 1]];
  assert.deepEqual(cellAccuracy(want, want), 1);
  assert.deepEqual(cellAccuracy(null, want), 0);
  assert.deepEqual(cellAccuracy([[1, 0, 5], [0, 1, 5]], want), 4 / 6);
  assert.deepEqual(cellAccuracy([[1]], want), 1 / 4);
  const task = { train: [{ input: [[1]], output: [[2, 2, 0]] }], test: [{ input: [[1, 1], [1, 1], [1, 1]], output: [[0]] }] };
  assert.deepEqual(majorityGrid(task), [[2, 2], [2, 2], [2, 2]]);
});

Deno.test("a prediction on every augmented view votes back to the original answer (exact inverses)", () => {
  const { eval: tasks } = arcData(stageContext(phase2ConfigTiny(), 2));
  for (const t of tasks.slice(0, 6)) {
    assert(t.views.length >= 2);
    const preds = t.views.map((aug) => ({ grid: augmentGrid(t.task.test[0].output, aug), aug }));
    const [top] = vote(preds, 2);
    assert.deepEqual(top.grid, t.task.test[0].output);
    assert.deepEqual(top.votes, t.views.length);
  }
});

Deno.test("held-out tasks differ from training by seed and by content hash; training windows score every output grid", () => {
  const data = arcData(stageContext(phase2ConfigTiny(), 2));
  assert(data.train.length > 100 && data.eval.length > 0);
  for (const t of data.eval) assert(!data.trainHashes.has(taskHash(t.task)), t.id);
  const families = new Set(data.eval.map((t) => t.family));
  assert.deepEqual(families.size, data.eval.length); // tiny: one held-out task per family
  // The same (config, seed) rebuilds the same sets.
  assert.deepEqual(arcData(stageContext(phase2ConfigTiny(), 2)).train.slice(0, 5), data.train.slice(0, 5));
  const task = generateTask("flip", 7, { maxSize: 6, trainPairs: 2 });
  const item = arcItem(task);
  const w = outputWindows([item], 256, true), answerOnly = outputWindows([item], 256, false);
  const outputs = task.train.reduce((n, p) => n + gridText(p.output).length + 1, 0); // each demo output and its `\n`
  assert.deepEqual(answerOnly.mask.reduce((a, b) => a + b, 0), item.answer.length + 1);
  assert.deepEqual(w.mask.reduce((a, b) => a + b, 0), item.answer.length + 1 + outputs);
});

/** Requests for the identity and augmented views of the first `n` held-out tasks. */
function requests(config: PipelineConfig, n: number, maxNew: number): GenRequest[] {
  return arcData(stageContext(config, 2)).eval.slice(0, n).flatMap((t) =>
    t.views.map((aug) => {
      const v = augmentTask(t.task, aug), it = arcItem(v);
      return { prompt: it.prompt, draft: gridText(v.test[0].input), maxNew };
    })
  );
}

/** Asserts that `greedyGrids` writes what decoding one token per forward pass writes (same choice and stopping rules). */
async function assertLikeOneTokenAtATime(model: RegistryModel, reqs: GenRequest[], constrained: boolean): Promise<void> {
  const fast = await greedyGrids(model, reqs, 4, constrained);
  for (const [i, r] of reqs.entries()) {
    const ids = [TOKENIZER.bos, ...enc(r.prompt)], out: number[] = [];
    let eos = false;
    while (out.length < r.maxNew) {
      const x = tf.tensor2d([ids], [1, ids.length], "int32");
      const logits = await logitsOf(model, x);
      const row = (await logits.data()).slice((ids.length - 1) * logits.shape[2], ids.length * logits.shape[2]);
      tf.dispose([x, logits]);
      const allowed = gridAllowed(out, TOKENIZER.eos);
      const tok = constrained ? allowed.reduce((a, b) => (row[b] > row[a] ? b : a), allowed[0]) : row.indexOf(Math.max(...row));
      if (tok === TOKENIZER.eos) {
        eos = allowed.includes(tok);
        break;
      }
      out.push(tok);
      ids.push(tok);
      if (!allowed.includes(tok)) break;
      const m = /^(\d+)x(\d+):$/.exec(String.fromCharCode(...out));
      if (m && out.length + Number(m[1]) * (Number(m[2]) + 1) + 1 > r.maxNew) break;
    }
    assert.deepEqual(fast[i].ids, out, `request ${i}, constrained ${constrained}`);
    assert.equal(fast[i].eos, eos);
  }
}

Deno.test("fast greedy decoding (guess and verify) writes exactly what one-token-at-a-time decoding writes", async () => {
  const config = phase2ConfigTiny();
  const model = createModel("cognate-standard", cognateFor(config, "standard"), 5);
  for (const constrained of [true, false]) await assertLikeOneTokenAtATime(model, requests(config, 3, 24), constrained);
  model.dispose();
});

/** The tiny preset's config with phase 2's section. */
function phase2ConfigTiny() {
  return resolveConfig({ preset: "tiny", phases: [phase2] });
}

Deno.test("phase 2 fine-tunes past its base model, resumes mid-training to the same numbers, evaluates its stage and reports", async () => {
  const sets = [
    "phases.2.steps=40",
    "phases.2.eval_tasks=6",
    "phases.2.real_tasks=1",
    "phases.2.train_tasks=400",
    "phases.2.grid_steps=30",
    "phases.2.grid_ttt_steps=4",
    "phases.2.grid_real_tasks=1",
  ];
  const runs = [];
  for (let k = 0; k < 2; k++) {
    const { runDir, config } = await testRun([phase2], "tiny", sets);
    await fakePhase1(runDir, config);
    if (k === 1) {
      // A run killed after its step-20 checkpoint (tiny saves every 20 steps): the second run starts from the first's.
      const from = join(runs[0].runDir, "phase-2-arc", "ckpt", "arc"), to = join(runDir, "phase-2-arc", "ckpt", "arc");
      await Deno.mkdir(join(to, "step-000020"), { recursive: true });
      for await (const f of Deno.readDir(join(from, "step-000020"))) {
        await Deno.copyFile(join(from, "step-000020", f.name), join(to, "step-000020", f.name));
      }
      await Deno.writeTextFile(join(to, "latest.json"), JSON.stringify({ step: 20, path: "step-000020" }));
    }
    const ctx = testContext(phase2, runDir, config, k === 1);
    runs.push({ out: await phase2.run(ctx), ctx, runDir });
  }
  const [a, b] = runs;
  const { timing: ta, ...ma } = a.out.metrics, { timing: tb, ...mb } = b.out.metrics;
  assert.deepEqual([(ta as { resumed_from_step: number }).resumed_from_step, (tb as { resumed_from_step: number }).resumed_from_step], [
    0,
    20,
  ]);
  assert.deepEqual(ma, mb); // same seed, same numbers, whether or not the run was interrupted
  const m = ma as Record<string, number> & { base: Record<string, number>; real_arc: Record<string, unknown> };
  console.log(
    JSON.stringify({ cell: m.cell_acc, base: m.base.cell_acc, tok: m.heldout_token_acc, maj: m.majority_token_acc, shape: m.shape_acc }),
  );
  // Learning that a stub would not show: the held-out answer tokens and cells beat the untrained base.
  assert.ok(m.heldout_token_acc > m.base_heldout_token_acc + 0.2, `token acc ${m.heldout_token_acc} vs base ${m.base_heldout_token_acc}`);
  assert.ok(m.cell_acc > m.base.cell_acc, `cell acc ${m.cell_acc} vs base ${m.base.cell_acc}`);
  assert.equal(m.heldout_hash_overlap, 0);
  assert.ok(m.real_arc.status === (haveArcTraining("p2_arc_test.ts") ? "evaluated" : "skipped"));
  const checks = phase2.validate(a.out, a.ctx);
  assert.ok(checks.find((c) => c.name.startsWith("cell_acc - base"))!.passed);
  assert.deepEqual(a.out.artifacts, ["phase-2-arc/model.safetensors", "phase-2-arc/hrrm-arc.safetensors"]);
  // Part (b): the grid HRRM trained, was scored with and without test-time training, and is gated against copy and majority.
  const g = m.grid as unknown as { steps: number; heldout: { tasks: number }; no_ttt: { tasks: number }; real_arc: { status: string } };
  assert.equal(g.steps, 30);
  assert.equal(g.heldout.tasks, m.tasks);
  assert.equal(g.no_ttt.tasks, m.tasks);
  assert.equal(g.real_arc.status, haveArcTraining("p2_arc_test.ts") ? "evaluated" : "skipped");
  assert.ok(checks.some((c) => c.name.startsWith("grid HRRM cell_acc - max(copy input, majority colour)")));
  // The stage rebuilds the held-out set from (config, seed) alone and scores the saved model the same.
  const { model } = await loadModel(join(a.runDir, "phase-2-arc", "model.safetensors"));
  const stage = await phase2.stage!.evaluate(model, stageContext(a.ctx.config, 2));
  assert.equal(stage.cell_acc, m.cell_acc);
  // A trained model accepts long guesses; decoding must still match one token at a time.
  await assertLikeOneTokenAtATime(model, requests(a.ctx.config, 2, 64), true);
  model.dispose();
  const result = {
    phase: 2,
    name: "arc",
    status: "completed" as const,
    seconds: 0,
    metrics: a.out.metrics,
    validation: { passed: true, checks },
    artifacts: [],
  };
  assert.ok(phase2.report!(result).length >= 4);
  for (const r of runs) await Deno.remove(r.runDir, { recursive: true });
});
