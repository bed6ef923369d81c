/**
 * The explore functions on a fake run directory: tiny untrained models saved where the phases
 * save theirs, the tiny preset's config. Each check compares with what the model itself reports
 * (extras.steps, extras.writes and surprise, greedy outputs), so placeholder data would fail.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_LONG_CONTEXT, longContextItem, utf8Bytes } from "../../datasets/long_context.ts";
import { calcRationale } from "../../datasets/math.ts";
import { initBackend } from "../backend/mod.ts";
import { resolveConfig } from "../config/config.ts";
import { stageContext } from "../eval/stage.ts";
import { type Cognate, COGNATE_VARIANTS, cognatePresetConfig } from "../models/cognate.ts";
import { loadModel, saveModel } from "../models/io.ts";
import { createModel } from "../models/registry.ts";
import { PHASES } from "../phases/mod.ts";
import { mathData, mathItem, phase4 } from "../phases/p4_math.ts";
import { phase5 } from "../phases/p5_long_context.ts";
import { generateGreedy } from "../text/generate.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { phase1ModelPath, stageModelPath } from "../util/run_dir.ts";
import {
  actSteps,
  compareRationale,
  fillerWords,
  heldOutSanity,
  ltmTrace,
  mathRationale,
  needlePrompt,
  needleSweep,
  rationaleHtml,
  type RunLike,
  sampleCognates,
} from "./text.ts";

await initBackend("cpu", { quiet: true });

let fixture: Promise<RunLike> | undefined;

/** A run directory with the tiny preset's config and untrained tiny models at the phases' paths (built once). */
function fakeRun(): Promise<RunLike> {
  fixture ??= (async () => {
    const runDir = await Deno.makeTempDir({ prefix: "explore-test-" });
    const config = resolveConfig({ preset: "tiny", phases: PHASES });
    const save = async (path: string, variant: (typeof COGNATE_VARIANTS)[number], over: Record<string, unknown> = {}, seed = 1) => {
      const cfg = { ...cognatePresetConfig("tiny", variant), ...over };
      const model = createModel(`cognate-${variant}`, cfg, seed);
      await saveModel(join(runDir, path), model, { key: `cognate-${variant}`, config: { ...cfg } });
      model.dispose();
    };
    for (const v of COGNATE_VARIANTS) await save(phase1ModelPath(v), v);
    await save(stageModelPath(phase4), "standard", {}, 4);
    await save(stageModelPath(phase5), "standard", { ropeScale: 2, maxSeqLen: 128 }, 5); // the extended model, as phase 5 saves it
    return { runDir, config };
  })();
  return fixture;
}

Deno.test("sampleCognates: one row per prompt, a column per cognate, each the model's own greedy answer", async () => {
  const run = await fakeRun();
  const rows = await sampleCognates(run, { count: 3, maxNew: 5 });
  const held = heldOutSanity(run, 3);
  assert.equal(rows.length, 3);
  assert.deepEqual(Object.keys(rows[0]), ["prompt", "expected", "standard", "memory", "reasoning"]);
  assert.deepEqual(rows.map((r) => r.prompt), held.map((h) => h.prompt));
  assert.deepEqual(rows.map((r) => r.expected), held.map((h) => h.answer));
  const { model } = await loadModel(join(run.runDir, phase1ModelPath("reasoning")));
  assert.deepEqual(rows.map((r) => r.reasoning), await generateGreedy(model, held.map((h) => h.prompt), 5));
  model.dispose();
  // Own prompts: no expected column; a prompt past the window is clipped, not an error.
  const own = await sampleCognates(run, { prompts: ["copy:abc=", "x".repeat(300)], maxNew: 4, variants: ["standard"] });
  assert.deepEqual(Object.keys(own[0]), ["prompt", "standard"]);
  assert.equal(own.length, 2);
});

Deno.test("ltmTrace: per-chunk surprise and writes are the memory cognate's own, clipped to its window", async () => {
  const run = await fakeRun();
  const t = await ltmTrace(run, { text: "recall:a1b2c3d4|b=2\n".repeat(20) });
  assert.equal(t.tokens, 64, "BOS + text clipped to the tiny window");
  assert.equal(t.chunks.length, Math.ceil(t.tokens / t.chunkSize));
  assert.deepEqual(t.chunks.map((c) => c.start), t.chunks.map((_, i) => i * t.chunkSize));
  assert.equal(t.writes, t.chunks.filter((c) => c.wrote).length);
  assert.ok(t.chunks.every((c) => c.wrote === c.surprise > t.threshold));
  // What the model itself reports on the same ids.
  const { model } = await loadModel(join(run.runDir, phase1ModelPath("memory")));
  const ids = tf.tensor2d([[TOKENIZER.bos, ...TOKENIZER.encode(t.text)]], [1, t.tokens], "int32");
  const [writes, surprise] = tf.tidy(() => {
    const e = (model as unknown as Cognate).forward(ids).extras;
    return [e.writes!.dataSync()[0], Array.from(e.surprise!.dataSync())];
  });
  tf.dispose(ids);
  model.dispose();
  assert.equal(t.writes, writes);
  t.chunks.forEach((c, i) => assert.ok(Math.abs(c.surprise - surprise[i]) < 1e-5, `chunk ${i}: ${c.surprise} vs ${surprise[i]}`));
  // One remember(): the store holds at most storeWritesPerCall (4) of the written chunks.
  if (t.writes === 0) assert.equal(t.storeWrites, 0);
  assert.ok(t.storeWrites <= Math.min(4, t.writes));
  assert.ok(t.stats.slotsUsed <= t.storeWrites && t.stats.calls === 1 && t.stats.memoryWrites === t.writes);
  // The chart: one bar per chunk, the threshold line, a marker per write.
  assert.deepEqual(t.figure.data[0].y, t.chunks.map((c) => c.surprise));
  assert.deepEqual(t.figure.data[1].y, [t.threshold, t.threshold]);
  assert.equal((t.figure.data[2].x as number[]).length, t.writes);
  // Default input: held-out sanity items filling the window.
  const d = await ltmTrace(run);
  assert.equal(d.tokens, 64);
});

Deno.test("actSteps: the heatmap's values are the reasoning cognate's extras.steps per token", async () => {
  const run = await fakeRun();
  const texts = ["copy:abc=abc", "sort:" + "dcba".repeat(30)];
  const a = await actSteps(run, { texts });
  assert.equal(a.rows.length, 2);
  assert.equal(a.rows[0].steps.length, 1 + texts[0].length);
  assert.equal(a.rows[1].steps.length, 64, "clipped to the window");
  assert.deepEqual(a.rows[0].tokens.slice(0, 3), ["<s>", "c", "o"]);
  const { model } = await loadModel(join(run.runDir, phase1ModelPath("reasoning")));
  for (const [i, text] of texts.entries()) {
    const ids = [TOKENIZER.bos, ...TOKENIZER.encode(text)].slice(0, 64);
    const x = tf.tensor2d([ids], [1, ids.length], "int32");
    const steps = tf.tidy(() => Array.from((model as unknown as Cognate).forward(x).extras.steps!.dataSync()));
    x.dispose();
    assert.deepEqual(a.rows[i].steps, steps);
    assert.ok(steps.every((n) => n >= 1 && n <= a.maxSteps));
  }
  model.dispose();
  const z = a.figure.data[0].z as number[][];
  assert.deepEqual(z[1], a.rows[1].steps);
  assert.deepEqual(z[0].slice(0, a.rows[0].steps.length), a.rows[0].steps);
  assert.ok(z[0].slice(a.rows[0].steps.length).every((v) => Number.isNaN(v)), "short rows padded with gaps");
  assert.equal(a.figure.data[0].type, "heatmap");
});

Deno.test("compareRationale: the first line that differs from the reference is the first wrong step", () => {
  const ref = "3*4=12\n12+5=17\n#### 17";
  const same = compareRationale(ref, ref);
  assert.equal(same.firstWrong, -1);
  assert.ok(same.correct && same.rows.every((r) => r.same && r.arithmetic === true));

  const miscalc = compareRationale("3*4=12\n12+5=18\n#### 18", ref);
  assert.equal(miscalc.firstWrong, 1);
  assert.deepEqual(miscalc.rows.map((r) => r.arithmetic), [true, false]);
  assert.deepEqual([miscalc.finalGot, miscalc.finalWant, miscalc.correct], ["18", "17", false]);
  const html = rationaleHtml(miscalc, "How many?");
  assert.match(html, /background: #ffd6d6; font-weight: bold"><td[^>]*>2</);
  assert.match(html, /first wrong step: differs, arithmetic wrong/);

  const operand = compareRationale("3*5=15\n15+5=20\n#### 20", ref); // right arithmetic on a wrong operand
  assert.equal(operand.firstWrong, 0);
  assert.deepEqual(operand.rows.map((r) => r.arithmetic), [true, true]);

  const short = compareRationale("3*4=12\n#### 12", ref);
  assert.equal(short.firstWrong, 1);
  assert.equal(short.rows[1].generated, "");
  const long = compareRationale("3*4=12\n12+5=17\n17+1=18\n#### 18", ref);
  assert.equal(long.firstWrong, 2);
  assert.equal(long.rows[2].reference, "");
  const none = compareRationale("no numbers here", ref);
  assert.equal(none.finalGot, null);
  assert.equal(none.correct, false);
});

Deno.test("mathRationale: a held-out problem of phase 4, the model's greedy rationale against the reference", async () => {
  const run = await fakeRun();
  const r = await mathRationale(run, { steps: 2, index: 1 });
  const p = mathData(stageContext(run.config, 4)).test[1][1];
  assert.equal(r.question, p.question);
  assert.equal(r.reference, calcRationale(p));
  const { model } = await loadModel(join(run.runDir, stageModelPath(phase4)));
  const maxNew = TOKENIZER.encode(r.reference).length + 4;
  assert.deepEqual([r.generated], await generateGreedy(model, [mathItem(p).prompt], maxNew));
  model.dispose();
  assert.deepEqual(r.rows, compareRationale(r.generated, r.reference).rows);
  assert.ok(r.rows.length >= 2);
  assert.equal(r.finalWant, String(p.answer));
  assert.ok(r.html.includes("<table") && r.html.includes("question"));
  await assert.rejects(() => mathRationale(run, { steps: 9 }), /held-out problems have 1\.\./);
});

Deno.test("needlePrompt: the dataset's filler and key at its depth give the dataset's compact passkey prompt back", () => {
  for (const depth of [0, 0.3, 0.5, 0.75, 1]) {
    const it = longContextItem({ ...DEFAULT_LONG_CONTEXT, task: "passkey", compact: true, keyDigits: 2, length: 90, depth, seed: 7 });
    const words = it.prompt.split("\n\n")[1].split(" ").filter((w) => w !== `key=${it.answer}.`);
    const p = needlePrompt(words, it.answer, depth);
    assert.equal(p.prompt, it.prompt);
    assert.ok(Math.abs(p.measuredDepth - it.depth) < 1e-12);
    assert.equal(p.length, it.length);
  }
  const words = fillerWords("The river is calm and the road is long", 100, 3);
  const p = needlePrompt(words, "123", 0.5);
  assert.ok(p.length <= 101 && p.length >= 90, `length ${p.length}`);
  assert.ok(p.prompt.startsWith("Find the key.\n\nThe river") && p.prompt.endsWith("\n\nkey="));
  assert.ok(p.prompt.includes(" key=123. "));
  assert.throws(() => fillerWords("word", 20, 3), /no room for filler/);
});

Deno.test("needleSweep: exact match of phase 5's model per depth, over the keys", async () => {
  const run = await fakeRun();
  const depths = [0, 0.5, 1];
  const s = await needleSweep(run, { keys: ["4", "7"], depths });
  assert.equal(s.window, 128);
  assert.ok(s.length <= 128 - 1 - 2 && s.length >= 110, `length ${s.length}`);
  assert.deepEqual(s.figure.data[0].x, depths);
  assert.deepEqual(s.figure.data[0].y, s.accuracy);
  assert.equal(s.rows.length, 6);
  assert.ok(s.accuracy.every((a) => a >= 0 && a <= 1));
  assert.equal(s.chance, 1 / 9);
  assert.ok(s.rows.every((r) => r.exact === (r.got === r.key)));
  assert.deepEqual(s.accuracy, depths.map((d) => s.rows.filter((r) => r.depth === d && r.exact).length / 2));
  // Every prompt hides its key at its depth; the answers are the model's own.
  const row = s.rows[3]; // key "7", depth 0
  assert.equal(row.key, "7");
  assert.ok(row.prompt.startsWith("Find the key.\n\nkey=7. ") && row.prompt.endsWith("\n\nkey="));
  assert.ok(s.rows[5].prompt.endsWith(" key=7.\n\nkey="), "depth 1: the needle last");
  const { model } = await loadModel(join(run.runDir, stageModelPath(phase5)));
  assert.deepEqual(s.rows.map((r) => r.got), await generateGreedy(model, s.rows.map((r) => r.prompt), 2));
  model.dispose();
  // Own filler, default keys (3, of phases.5.key_digits digits) and the phase's depths.
  const own = await needleSweep(run, { filler: "The sky is gray.", length: 60 });
  assert.equal(own.keys.length, 3);
  assert.deepEqual(own.depths, run.config.phases["5"].eval_depths);
  assert.ok(own.length <= 61 && own.length >= 60 - 6, `length ${own.length}`); // whole words: within a word of the target
  assert.ok(own.rows.every((r) => r.measuredDepth >= 0 && r.measuredDepth <= 1));
  assert.ok(utf8Bytes(own.keys[0]) === (run.config.phases["5"].key_digits as number));
  await Deno.remove(run.runDir, { recursive: true });
});
