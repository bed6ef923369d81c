/** Phase 4 (math): data disjointness, a real tiny run with its gate, stage evaluation of the saved model, reproducibility. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { calcRationale, isCorrect } from "../../datasets/math.ts";
import { stageContext } from "../eval/stage.ts";
import { exists } from "../util/fs.ts";
import { loadModel } from "../models/io.ts";
import { fitsWindow, majorityAnswer, mathData, mathItem, phase4 } from "./p4_math.ts";
import { fakePhase1, testContext, testRun } from "./testing.ts";

await initBackend("wasm");

Deno.test("phase 4 data: deterministic, held-out disjoint from training by content, k-step buckets that fit the window", async () => {
  const { config } = await testRun([phase4], "tiny");
  const s = stageContext(config, 4), c = s.phaseConfig as { seq_len: number; max_calc_steps: number; test_per_step: number };
  const d = mathData(s);
  assert.deepEqual(mathData(s), d);
  assert.equal(d.test.length, c.max_calc_steps);
  const trainQ = new Set(d.train.map((p) => p.question));
  d.test.forEach((rows, k) => {
    assert.equal(rows.length, c.test_per_step);
    for (const p of rows) {
      assert.equal(p.steps.length, k + 1);
      assert.ok(!trainQ.has(p.question), `held-out problem seen in training: ${p.question}`);
      assert.ok(fitsWindow(mathItem(p), c.seq_len));
    }
  });
  assert.equal(new Set(d.test.flat().map((p) => p.question)).size, d.test.flat().length, "held-out problems are distinct");
  assert.ok(d.train.every((p) => fitsWindow(mathItem(p), c.seq_len) && p.steps.length <= c.max_calc_steps));
  // The item is question + newline -> calc rationale, whose extracted answer is the problem's.
  const it = mathItem(d.train[0]);
  assert.equal(it.prompt, `${d.train[0].question}\n`);
  assert.ok(it.answer.endsWith(`#### ${d.train[0].answer}`) && isCorrect(it.answer, d.train[0].answer));
  assert.deepEqual(phase4.stage!.replay(s), d.train.map(mathItem));
  // The chance reference is the most common training answer.
  const maj = majorityAnswer(d.train, d.test);
  const count = (a: number) => d.train.filter((p) => p.answer === a).length;
  assert.ok(d.train.every((p) => count(p.answer) <= count(maj.answer)));
});

Deno.test("phase 4 tiny: fine-tuning beats the base model and input-blind baselines, the gate passes, the saved model re-scores the same", async () => {
  const { runDir, config } = await testRun([phase4], "tiny");
  await fakePhase1(runDir, config);
  const ctx = testContext(phase4, runDir, config);
  const out = await phase4.run(ctx);
  const m = out.metrics as Record<string, number & number[]>;
  const checks = phase4.validate(out, ctx);
  assert.ok(checks.every((k) => k.passed), JSON.stringify(checks));
  assert.ok(m.token_acc > m.base_token_acc + 0.1 && m.token_acc > m.majority_token_acc + 0.1, `${m.token_acc}`);
  assert.ok(m.loss < m.unigram_loss && m.loss < m.base_loss);
  // The held-out curve rises: the last evaluation beats the first.
  const curve = m.curve as unknown as { step: number; token_acc: number; loss: number }[];
  assert.ok(curve.at(-1)!.loss < curve[0].loss, JSON.stringify(curve));
  assert.equal(m.exact_by_steps.length, 2);
  assert.equal(m.base_exact_by_steps.length, 2);
  // Generation was real: samples hold the model's text and their verdict matches extraction.
  const samples = out.metrics.samples as { expected: string; got: string; correct: boolean }[];
  assert.equal(samples.length, 2);
  for (const s of samples) assert.equal(s.correct, isCorrect(s.got, s.expected));
  assert.ok(["scored", "skipped"].includes(out.metrics.gsm8k_status as string));
  if (out.metrics.gsm8k_status === "skipped") assert.match(String(out.metrics.gsm8k_reason), /gsm8k/);
  else assert.equal(out.metrics.gsm8k_count, 4);
  // A stub (the base model's numbers as the fine-tuned ones) fails the gate.
  const stub = { metrics: { ...out.metrics, token_acc: m.base_token_acc, loss: m.base_loss } };
  assert.ok(phase4.validate(stub, ctx).some((k) => !k.passed));
  // The artifact reloads, and the stage rebuilds the same held-out set: same numbers.
  assert.deepEqual(out.artifacts, ["phase-4-math/model.safetensors"]);
  assert.ok(await exists(join(runDir, out.artifacts![0])));
  const { model } = await loadModel(join(runDir, out.artifacts![0]));
  const st = await phase4.stage!.evaluate(model, stageContext(config, 4));
  model.dispose();
  assert.deepEqual(st, {
    token_acc: m.token_acc,
    loss: m.loss,
    tf_exact: m.tf_exact,
    exact: m.exact,
    exact_1_steps: m.exact_by_steps[0],
    exact_2_steps: m.exact_by_steps[1],
  });
  assert.equal(phase4.stage!.seqLen(stageContext(config, 4)), 160);
  // The report is built from the metrics alone.
  const sections = phase4.report!({ metrics: out.metrics } as never);
  const bars = sections.find((x) => x.figure?.layout && JSON.stringify(x.figure.layout).includes("by number of steps"))!;
  assert.deepEqual(bars.figure!.data[0].y, m.exact_by_steps);
  assert.ok(sections.some((x) => x.html?.includes(calcRationale(mathData(stageContext(config, 4)).test[0][0]).split("\n")[0])));
});

Deno.test("phase 4: same seed, same metrics (a short run twice); GSM8K skipped with the reason when gsm8k_count = 0", async () => {
  const sets = ["phases.4.steps=3", "phases.4.train_count=60", "phases.4.test_per_step=2", "phases.4.gsm8k_count=0"];
  const once = async () => {
    const { runDir, config } = await testRun([phase4], "tiny", sets);
    await fakePhase1(runDir, config);
    const out = await phase4.run(testContext(phase4, runDir, config));
    const { seconds: _, ...rest } = out.metrics;
    return rest;
  };
  const a = await once(), b = await once();
  assert.deepEqual(a, b);
  assert.equal(a.gsm8k_status, "skipped");
  assert.match(String(a.gsm8k_reason), /gsm8k_count = 0/);
  assert.equal(a.train_steps, 3);
});
