/** The explore sections of notebooks 02, 06 and 07 on tiny cognates saved in a fake run directory at the phases' paths. */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/mod.ts";
import { resolveConfig } from "../config/config.ts";
import { gridText } from "../../datasets/arc/text.ts";
import { exportOnnx } from "../deploy/onnx.ts";
import { arcItem } from "../eval/arc_answers.ts";
import { cognatePresetConfig } from "../models/cognate.ts";
import { type SavedModel, saveModel } from "../models/io.ts";
import { createModel, type RegistryModel } from "../models/registry.ts";
import { PHASES } from "../phases/mod.ts";
import { logitsOf } from "../text/generate.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { phase1ModelPath, stageModelPath } from "../util/run_dir.ts";
import { ARC_TRAINING_DIR } from "../../datasets/paths.ts";
import { setTextSink } from "../viz/notebook.ts";
import {
  answerConfidence,
  arcExample,
  arcExampleHtml,
  EXPORT_GRAPHS,
  mergedModel,
  onnxContinuation,
  rateDistortion,
  rateDistortionFigure,
  scoreMerge,
  taskVectorCosines,
  taskVectorFigure,
} from "./grids_merge.ts";
import type { RunLike } from "./text.ts";

await initBackend("wasm", { quiet: true });

const config = cognatePresetConfig("tiny", "standard", { initStd: 0.3 });
const meta: SavedModel = { key: "cognate-standard", config: { ...config } };

async function save(runDir: string, rel: string, model: RegistryModel) {
  await Deno.mkdir(dirname(join(runDir, rel)), { recursive: true });
  await saveModel(join(runDir, rel), model, meta);
}

/** A run directory with phase 1's base, specialists for phases 2 and 4 (other inits), phase 6's model and phase 7's ONNX exports. */
async function fakeRun(): Promise<RunLike> {
  const runDir = await Deno.makeTempDir({ prefix: "explore-grids-merge-" });
  const run = { runDir, config: resolveConfig({ preset: "tiny", phases: PHASES }) };
  const base = createModel("cognate-standard", config, 1);
  await save(runDir, phase1ModelPath("standard"), base);
  await save(runDir, stageModelPath({ id: 6, name: "integration" }), base);
  await Deno.mkdir(dirname(join(runDir, EXPORT_GRAPHS.kv)), { recursive: true });
  await exportOnnx(base, meta, join(runDir, EXPORT_GRAPHS.kv), { profile: "kv" });
  await exportOnnx(base, meta, join(runDir, EXPORT_GRAPHS.dynamic));
  base.dispose();
  for (const [id, name, seed] of [[2, "arc", 2], [4, "math", 3]] as const) {
    const m = createModel("cognate-standard", config, seed);
    await save(runDir, stageModelPath({ id, name }), m);
    m.dispose();
  }
  return run;
}

const run = await fakeRun();
globalThis.addEventListener("unload", () => Deno.removeSync(run.runDir, { recursive: true }));

Deno.test("answerConfidence: one probability in (0, 1] per cell of the grid, in its shape", async () => {
  const task = {
    train: [{ input: [[1, 0], [0, 1]], output: [[2, 0], [0, 2]] }],
    test: [{ input: [[0, 1, 1], [1, 0, 0]], output: [[0, 2, 2], [2, 0, 0]] }],
  };
  const item = arcItem(task);
  const model = createModel("cognate-standard", config, 5);
  const c = await answerConfidence(model, item.prompt, gridText(task.test[0].output));
  assert.ok(c.complete);
  assert.deepEqual(c.grid, task.test[0].output);
  assert.deepEqual(c.confidence.map((r) => r.length), [3, 3]);
  for (const p of c.confidence.flat()) assert.ok(p > 0 && p <= 1, String(p));
  // The same probability as a softmax of tfjs's logits at that position (first cell: answer index 5 after "2x3:a").
  const ids = [TOKENIZER.bos, ...TOKENIZER.encode(item.prompt + gridText(task.test[0].output))];
  const at = 1 + item.prompt.length + 5;
  const x = tf.tensor2d(ids, [1, ids.length], "int32");
  const logits = await logitsOf(model, x);
  const row = tf.tidy(() => tf.softmax(tf.slice(logits, [0, at - 1, 0], [1, 1, -1]).reshape([-1])));
  assert.ok(Math.abs((await row.data())[ids[at]] - c.confidence[0][0]) < 1e-5);
  tf.dispose([x, logits, row]);
  // An unfinished answer gives the rows written so far.
  const part = await answerConfidence(model, item.prompt, "2x3:a02");
  assert.deepEqual(part.grid, [[0, 2]]);
  assert.equal(part.complete, false);
  model.dispose();
});

Deno.test("arcExample: phase 2's model on a held-out generated task and the smallest real ARC task", async () => {
  const gen = await arcExample(run, { source: "generated", index: 0 });
  assert.ok(!("skipped" in gen));
  assert.equal(gen.predicted.grid.length, gen.predicted.confidence.length);
  gen.predicted.grid.forEach((r, i) => assert.equal(r.length, gen.predicted.confidence[i].length));
  for (const p of gen.predicted.confidence.flat()) assert.ok(p > 0 && p <= 1);
  assert.ok(gen.cellAcc >= 0 && gen.cellAcc <= 1);
  assert.match(arcExampleHtml(gen), /expected[\s\S]*predicted/);
  const real = await arcExample(run, { source: "real" });
  if ("skipped" in real) console.log(`real ARC task skipped (${ARC_TRAINING_DIR}): ${real.skipped}`);
  else {
    assert.ok(real.tokens <= real.window + 1);
    assert.match(real.title, /real ARC-AGI-1/);
  }
  const none = await arcExample(run, { source: "real", arcDir: join(run.runDir, "nope") });
  assert.ok("skipped" in none && /absent/.test(none.skipped));
});

Deno.test("taskVectorCosines: 1 on the diagonal, a symmetric heatmap", async () => {
  const c = await taskVectorCosines(run);
  assert.deepEqual(c.labels, ["phase 2 arc", "phase 4 math"]);
  assert.deepEqual(c.skipped.map((s) => s.phase), [3, 5]);
  for (let i = 0; i < 2; i++) {
    assert.ok(Math.abs(c.cosine[i][i] - 1) < 1e-9);
    for (let j = 0; j < 2; j++) assert.equal(c.cosine[i][j], c.cosine[j][i]);
  }
  assert.ok(Math.abs(c.cosine[0][1]) < 1);
  const fig = taskVectorFigure(c);
  assert.deepEqual(fig.data[0].z, c.cosine);
  assert.ok(fig.data[0].texttemplate, "annotated");
});

Deno.test("mergedModel: coefficient 0 is the base model; scoreMerge scores the stages", async () => {
  const ids = tf.tensor2d(Int32Array.from(TOKENIZER.encode("hello, merge")), [1, 12], "int32");
  const base = createModel("cognate-standard", config, 1);
  const merged = await mergedModel(run, { coeff: 0 });
  assert.deepEqual(merged.phases, [2, 4]);
  const [a, b] = [await logitsOf(base, ids), await logitsOf(merged.model, ids)];
  assert.deepEqual(Array.from(await a.data()), Array.from(await b.data()));
  const one = await mergedModel(run, { coeff: 1, rule: "sum" });
  const c = await logitsOf(one.model, ids);
  assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(a, c))).dataSync()[0]) > 1e-3, "a real merge changes the logits");
  tf.dispose([ids, a, b, c]);
  [base, merged.model, one.model].forEach((m) => m.dispose());
  const r = await scoreMerge(run, { coeff: 1, stages: [1, 2], sample: { 2: { eval_tasks: 2, votes: 1 } } });
  assert.equal(r.scale, 0.5);
  assert.deepEqual(r.scores.map((s) => [s.phase, s.metric]), [[1, "sanity_token_acc"], [2, "cell_acc"]]);
  for (const s of r.scores) assert.ok(s.merged >= 0 && s.merged <= 1, JSON.stringify(s));
});

Deno.test("rateDistortion: every compressor on l0.fc1_w, distortion falling as bits grow", async () => {
  const rd = await rateDistortion(run, { matrix: "l0.fc1_w" });
  assert.deepEqual([...new Set(rd.points.map((p) => p.method))], ["bitnet", "seedlm", "vptq"]);
  for (const p of rd.points) assert.ok(p.bits > 0 && p.relMse > 0 && p.relMse < 1.5, JSON.stringify(p));
  console.log(rd.points.map((p) => `${p.label}: ${p.bits.toFixed(3)} bits, rel MSE ${p.relMse.toFixed(4)}`).join("\n"));
  for (const [method, m] of Object.entries(rd.monotone)) {
    if (!m.ok) console.log(`${method} not monotone: ${m.note}`);
    const ps = rd.points.filter((p) => p.method === method);
    const falling = ps.every((p, i) => i === 0 || p.relMse <= ps[i - 1].relMse * (1 + 1e-9));
    assert.equal(falling, m.ok);
  }
  assert.equal(rateDistortionFigure(rd).data.length, 3);
  await assert.rejects(rateDistortion(run, { matrix: "nope" }), /no such parameter; matrices: .*l0\.fc1_w/);
});

Deno.test("onnxContinuation: the exported graph continues a prompt as our model does (KV-cache and dynamic graphs)", async () => {
  const prev = setTextSink(() => {});
  try {
    const kv = await onnxContinuation(run, { prompt: "the cat ", maxNew: 12 });
    assert.ok(!("skipped" in kv));
    assert.equal(kv.via, "kv");
    assert.equal(kv.onnx, kv.ours);
    assert.ok(kv.ours.length > 0);
    await Deno.remove(join(run.runDir, EXPORT_GRAPHS.kv));
    const dyn = await onnxContinuation(run, { prompt: "the cat ", maxNew: 12 });
    assert.ok(!("skipped" in dyn));
    assert.equal(dyn.via, "dynamic");
    assert.equal(dyn.onnx, kv.ours);
    await Deno.remove(join(run.runDir, EXPORT_GRAPHS.dynamic));
    const none = await onnxContinuation(run, { prompt: "x" });
    assert.ok("skipped" in none);
  } finally {
    setTextSink(prev);
  }
});
