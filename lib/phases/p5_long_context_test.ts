/** Phase 5: context extension + passkey fine-tuning beats the base past its window; stage, report, reproducibility. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { stageContext } from "../eval/stage.ts";
import { loadModel } from "../models/io.ts";
import { windowsOf } from "../text/tokens.ts";
import {
  chanceExact,
  drillItems,
  drillWindow,
  evalItems,
  evalLengths,
  extendedConfig,
  phase5,
  Phase5Section,
  shortestPrompt,
  trainItems,
} from "./p5_long_context.ts";
import { fakePhase1, testContext, testRun } from "./testing.ts";

await initBackend("wasm");

/** A tiny run of phase 5 on an untrained stand-in base. */
async function runPhase(sets: string[] = []) {
  const { runDir, config } = await testRun([phase5], "tiny", sets);
  await fakePhase1(runDir, config);
  const ctx = testContext(phase5, runDir, config);
  const out = await phase5.run(ctx);
  return { runDir, config, ctx, out, m: out.metrics as Record<string, unknown> };
}

Deno.test("phase 5 (tiny): extended + fine-tuned model retrieves the key past the trained context; gate, stage, report", async () => {
  const { runDir, config, ctx, out, m } = await runPhase();
  const checks = phase5.validate(out, ctx);
  assert.ok(checks.every((c) => c.passed), JSON.stringify(checks));
  const base = m.base as Record<string, number>;
  const beyond = m.beyond_exact as number;
  assert.ok(beyond >= base.beyond_exact + 0.3, `beyond ${beyond} vs base ${base.beyond_exact}`);
  assert.ok(beyond > (m.chance_exact as number) + 0.3, `beyond ${beyond} vs chance ${m.chance_exact}`);
  assert.equal(m.chance_exact, Math.round(chanceExact(1) * 1e6) / 1e6);

  // The mechanism: the saved specialist is the base with interpolated RoPE positions and a doubled window.
  const s = Phase5Section.parse(config.phases["5"]);
  const trained = config.model.max_seq_len;
  assert.deepEqual([m.trained_context, m.extended_context, m.rope_scale], [trained, s.factor * trained, s.factor]);
  const { model, meta } = await loadModel(join(runDir, "phase-5-long-context", "model.safetensors"));
  assert.deepEqual([meta.config.ropeScale, meta.config.maxSeqLen], [s.factor, s.factor * trained]);

  // Heatmap data: lengths x depths matrices for the three models; a length beyond the extended window.
  const h = m.heatmap as { lengths: number[]; depths: number[]; exact: Record<string, number[][]> };
  assert.deepEqual(h.lengths, s.eval_length_factors.map((f) => f * trained));
  assert.ok(Math.max(...h.lengths) > s.factor * trained);
  for (const k of ["base", "extended", "finetuned"]) {
    assert.equal(h.exact[k].length, h.lengths.length);
    assert.ok(h.exact[k].every((r) => r.length === h.depths.length));
  }

  // Stage: the held-out evaluation of the saved model gives the phase's metric back; replay fits seqLen.
  const sc = stageContext(config, 5);
  const ev = await phase5.stage!.evaluate(model, sc);
  assert.equal(Math.round(ev.beyond_exact * 1e4) / 1e4, beyond);
  model.dispose();
  const replay = phase5.stage!.replay(sc);
  assert.equal(replay.length, (s.short_steps + s.long_steps) * s.batch_size);
  assert.ok(replay.every((it) => /^\d+$/.test(it.answer) && it.prompt.includes(`key=${it.answer}.`)));
  windowsOf(replay, phase5.stage!.seqLen(sc), false); // throws if an item does not fit

  const sections = phase5.report!({
    phase: 5,
    name: "long-context",
    status: "completed",
    seconds: 0,
    metrics: m,
    validation: { passed: true, checks },
    artifacts: out.artifacts ?? [],
  });
  assert.ok(sections.some((x) => x.figure?.data.filter((d) => d.type === "heatmap").length === 3));
  assert.ok(sections.some((x) => x.html?.includes("beyond extended")));
  assert.deepEqual(out.artifacts, ["phase-5-long-context/model.safetensors"]);
});

Deno.test("phase 5: same seed -> identical metrics, also when resumed from its checkpoints (few steps)", async () => {
  const sets = ["phases.5.short_steps=4", "phases.5.long_steps=2", "phases.5.eval_items=1", "phases.5.eval_depths=[0,1]"];
  const a = await runPhase(sets), b = await runPhase(sets);
  assert.deepEqual(a.m, b.m);
  // Run again in the same folder: both stages resume from their final checkpoints and nothing changes.
  const again = await phase5.run(testContext(phase5, a.runDir, a.config, true));
  assert.deepEqual(again.metrics, a.m);
});

Deno.test("phase 5: config errors name the key", () => {
  assert.throws(() => extendedConfig({ positions: "learned" }, 2, 128), /model.positions = rope/);
  assert.deepEqual(extendedConfig({ positions: "rope", ropeScale: 1, maxSeqLen: 64 }, 2, 128), {
    positions: "rope",
    ropeScale: 2,
    maxSeqLen: 128,
  });
  const s = Phase5Section.parse({});
  assert.throws(
    () => evalLengths({ ...s, eval_length_factors: [0.25] }, 64),
    /phases.5.eval_length_factors: 0.25 x model.max_seq_len 64 = 16/,
  );
  const decoys = { ...s, key_digits: 5, decoys: 2 };
  assert.throws(
    () => trainItems({ ...decoys, min_length: 32 }, 128, 4, 1),
    /phases.5.min_length = 32: prompts with key_digits 5 and decoys 2 need at least 55/,
  );
  assert.ok(
    trainItems({ ...decoys, min_length: 0 }, 128, 20, 1).every((it) => it.prompt.length >= 55),
    "min_length 0: the shortest the task builds",
  );
  assert.throws(() => evalLengths(decoys, 64), /= 32 tokens, below the task's minimum 55 \(key_digits 5, decoys 2\)/);
});

Deno.test("phase 5: decoys go into training and evaluation items; the shortest prompt the phase allows builds", () => {
  for (const [key_digits, decoys] of [[1, 0], [1, 3], [5, 2], [6, 4]]) {
    const s = { ...Phase5Section.parse({}), key_digits, decoys };
    const floor = shortestPrompt(s);
    const train = trainItems({ ...s, min_length: floor }, floor + key_digits + 3, 6, 7); // every prompt exactly `floor` tokens long
    const held = evalItems({ ...s, eval_items: 1 }, [floor, 2 * floor], 7);
    for (const it of [...train, ...held]) {
      const numbers = it.prompt.match(/\d+/g) ?? [];
      assert.equal(numbers.length, 1 + decoys, `${key_digits} digits, ${decoys} decoys: ${it.prompt}`);
      assert.ok(numbers.every((n) => n.length === key_digits));
      assert.equal(it.prompt.match(/\bkey=(\d+)\./)![1], "answer" in it ? it.answer : "");
    }
  }
});

Deno.test("phase 5: copy-drill items fill their window at the longest string; every answer digit and EOS is scored", () => {
  const s = { ...Phase5Section.parse({}), drill_min_length: 4, drill_max_length: 9 };
  const items = drillItems(s, 300, 5);
  assert.ok(items.every((it) => it.prompt === `${it.answer}\n` && it.answer.length >= 4 && it.answer.length <= 9));
  assert.ok(items.some((it) => it.answer.length === 9));
  const w = windowsOf(items, drillWindow(s), false); // would throw if the longest item did not fit
  assert.equal(w.count, items.length);
  assert.equal(w.mask.reduce((a, b) => a + b, 0), items.reduce((a, it) => a + it.answer.length + 1, 0));
  assert.throws(
    () => drillItems({ ...s, drill_min_length: 10 }, 1, 5),
    /phases.5.drill_max_length = 9: expected at least drill_min_length \(10\)/,
  );
});
