/**
 * ONNX export parity: the exported graph, run by onnxruntime-node (an independent runtime), gives our
 * logits within 1e-4 (f32) for rope and learned positions, both norms, GELU and SwiGLU, tied and
 * untied heads, both profiles, on random and briefly trained weights. The test is skipped, with the
 * reason printed, only when onnxruntime-node cannot be loaded on this machine.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { type CognateConfig, cognatePresetConfig } from "../models/cognate.ts";
import { createModel, type RegistryModel } from "../models/registry.ts";
import { logitsOf } from "../text/generate.ts";
import type { SavedModel } from "../models/io.ts";
import { train } from "../train/trainer.ts";
import { Rng } from "../util/rng.ts";
import { exportOnnx, ONNX_OPSET, type OnnxExportOptions, onnxInfo, readOnnxInfo } from "./onnx.ts";

type Ort = typeof import("onnxruntime-node");
let ort: Ort | undefined;
let ortError = "";
try {
  ort = await import("onnxruntime-node");
} catch (e) {
  ortError = (e as Error).message;
  console.error(`onnx_test: onnxruntime-node cannot load here, parity tests skipped: ${ortError}`);
}

/** A tiny-preset standard cognate (64 wide, 2 layers, the byte vocabulary) with `overrides`; no previous-token tables unless they add them (the kv profile has none). */
function tinyCognate(seed: number, overrides: Partial<CognateConfig> = {}): { model: RegistryModel; meta: SavedModel } {
  const config = cognatePresetConfig("tiny", "standard", { prevTokens: 0, ...overrides });
  return { model: createModel("cognate-standard", config, seed), meta: { key: "cognate-standard", config: { ...config } } };
}

function randomIds(b: number, t: number, vocab: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: b * t }, () => rng.int(vocab));
}

/** Max |ours - onnxruntime's| over the logits of `ids` [b, t]. */
async function maxDiff(session: import("onnxruntime-node").InferenceSession, model: RegistryModel, ids: Int32Array, b: number, t: number) {
  const x = tf.tensor2d(ids, [b, t], "int32");
  const logits = await logitsOf(model, x);
  const ours = (await logits.data()) as Float32Array;
  tf.dispose([x, logits]);
  const out = await session.run({ input_ids: new ort!.Tensor("int64", BigInt64Array.from(ids, BigInt), [b, t]) });
  const theirs = out.logits.data as Float32Array;
  assert.deepEqual(out.logits.dims, [b, t, logits.shape[2]]);
  let d = 0;
  for (let i = 0; i < ours.length; i++) d = Math.max(d, Math.abs(ours[i] - theirs[i]));
  assert.ok(Number.isFinite(d), "non-finite logits");
  return d;
}

/** Exports to a temp file, opens it in onnxruntime, returns the worst difference over `lengths`. */
async function parity(model: RegistryModel, meta: SavedModel, opts: OnnxExportOptions, lengths: number[], label: string) {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "model.onnx");
  const info = await exportOnnx(model, meta, path, opts);
  assert.equal(info.opset, ONNX_OPSET);
  const session = await ort!.InferenceSession.create(path, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  let worst = 0;
  for (const [i, t] of lengths.entries()) {
    const vocab = (meta.config as unknown as CognateConfig).vocabSize;
    worst = Math.max(worst, await maxDiff(session, model, randomIds(2, t, vocab, 100 + i), 2, t));
  }
  await session.release();
  await Deno.remove(dir, { recursive: true });
  console.log(`onnx parity ${label}: max |diff| = ${worst.toExponential(2)} (lengths ${lengths.join(", ")})`);
  assert.ok(worst <= 1e-4, `${label}: max abs difference ${worst} > 1e-4`);
  return { worst, info };
}

const VARIANTS: [string, Partial<CognateConfig>][] = [
  ["rope, layernorm, gelu, bias, untied", {}],
  ["rope x2 interpolation, rmsnorm, swiglu, no bias, tied", {
    ropeScale: 2,
    norm: "rmsnorm",
    mlp: "swiglu",
    bias: false,
    tieEmbeddings: true,
  }],
  ["learned, layernorm, gelu, tied", { positions: "learned", tieEmbeddings: true }],
  ["learned, rmsnorm, swiglu, untied", { positions: "learned", norm: "rmsnorm", mlp: "swiglu" }],
  ["rope, embeddings of 2 preceding tokens", { prevTokens: 2 }],
];

for (const [label, overrides] of VARIANTS) {
  Deno.test({
    name: `onnx parity through onnxruntime (random weights): ${label}`,
    ignore: !ort,
    fn: async () => {
      await initBackend("wasm", { quiet: true });
      const { model, meta } = tinyCognate(11, overrides);
      const dyn = await parity(model, meta, {}, [1, 9, 64], `${label}, dynamic`);
      assert.ok(dyn.info.opTypes.includes("Range") && dyn.info.opTypes.includes("Where"), dyn.info.opTypes.join(","));
      const port = await parity(model, meta, { profile: "portable", maxLength: 16 }, [16], `${label}, portable`);
      for (const op of ["Shape", "Range", "Where", "LayerNormalization", "Greater"]) assert.ok(!port.info.opTypes.includes(op), op);
      model.dispose();
    },
  });
}

/** Logits [V] of the last token of `row`, from our forward pass of the row alone. */
async function lastLogits(model: RegistryModel, row: number[]): Promise<Float32Array> {
  const x = tf.tensor2d([row], [1, row.length], "int32");
  const logits = await logitsOf(model, x);
  const V = logits.shape[2];
  const out = (await logits.data()).slice((row.length - 1) * V) as Float32Array;
  tf.dispose([x, logits]);
  return out;
}

for (const [label, overrides] of [VARIANTS[0], VARIANTS[1], VARIANTS[2]]) {
  Deno.test({
    name: `onnx kv profile through onnxruntime: left-padded prefill, then steps with past key values: ${label}`,
    ignore: !ort,
    fn: async () => {
      await initBackend("wasm", { quiet: true });
      // A wide init (0.3, not 0.02) so that logits vary by whole units and a wrong mask or position shows.
      const { model, meta } = tinyCognate(13, { ...overrides, initStd: 0.3 });
      const cfg = meta.config as unknown as CognateConfig;
      const [H, hd, nLayers, V] = [cfg.nHeads, cfg.dModel / cfg.nHeads, cfg.nLayers, cfg.vocabSize];
      const dir = await Deno.makeTempDir();
      const path = join(dir, "model.onnx");
      const info = await exportOnnx(model, meta, path, { profile: "kv" });
      assert.equal(info.metadata.profile, "kv");
      const session = await ort!.InferenceSession.create(path, { intraOpNumThreads: 1, interOpNumThreads: 1 });
      assert.ok(session.inputNames.includes("past_key_values.0.key") && session.outputNames.includes(`present.${nLayers - 1}.value`));
      const rng = new Rng(3);
      const rows = [Array.from({ length: 7 }, () => rng.int(V)), Array.from({ length: 3 }, () => rng.int(V))];
      const i64 = (v: number[], dims: number[]) => new ort!.Tensor("int64", BigInt64Array.from(v, BigInt), dims);
      // Prefill: rows left-padded to 7, the padding masked, positions counted from each row's first token.
      const T = 7;
      const ids = rows.flatMap((r) => [...Array(T - r.length).fill(0), ...r]);
      const mask = rows.flatMap((r) => [...Array(T - r.length).fill(0), ...Array(r.length).fill(1)]);
      const pos = rows.flatMap((r) => [...Array(T - r.length).fill(0), ...r.map((_, i) => i)]);
      let feeds: Record<string, import("onnxruntime-node").Tensor> = {
        input_ids: i64(ids, [2, T]),
        attention_mask: i64(mask, [2, T]),
        position_ids: i64(pos, [2, T]),
      };
      for (let l = 0; l < nLayers; l++) {
        for (const n of ["key", "value"]) {
          feeds[`past_key_values.${l}.${n}`] = new ort!.Tensor("float32", new Float32Array(0), [2, H, 0, hd]);
        }
      }
      let worst = 0;
      let width = T;
      const fullMask = [...mask];
      for (let step = 0; step < 4; step++) {
        const out = await session.run(feeds);
        const t = out.logits.dims[1] as number;
        for (const [b, r] of rows.entries()) {
          const theirs = (out.logits.data as Float32Array).subarray((b * t + t - 1) * V, (b * t + t) * V);
          const ours = await lastLogits(model, r);
          for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs(ours[i] - theirs[i]));
        }
        assert.deepEqual(out["present.0.key"].dims, [2, H, width, hd]);
        // Next step: one token per row, the present keys and values as past.
        const next = rows.map(() => rng.int(V));
        next.forEach((tok, b) => rows[b].push(tok));
        width += 1;
        fullMask.splice(0, fullMask.length, ...rows.flatMap((_, b) => [...fullMask.slice(b * (width - 1), (b + 1) * (width - 1)), 1]));
        feeds = {
          input_ids: i64(next, [2, 1]),
          attention_mask: i64(fullMask, [2, width]),
          position_ids: i64(rows.map((r) => r.length - 1), [2, 1]),
        };
        for (let l = 0; l < nLayers; l++) {
          for (const n of ["key", "value"]) feeds[`past_key_values.${l}.${n}`] = out[`present.${l}.${n}`];
        }
      }
      await session.release();
      await Deno.remove(dir, { recursive: true });
      console.log(`onnx kv parity ${label}: max |diff| = ${worst.toExponential(2)} over 4 steps`);
      assert.ok(worst <= 1e-4, `${label}: max abs difference ${worst} > 1e-4`);
      model.dispose();
    },
  });
}

/** A few AdamW steps on sequences counting up mod 32, so the weights are no longer their random init. */
async function trainFew(model: RegistryModel, steps: number): Promise<number[]> {
  const batch = (step: number) => {
    const rng = new Rng(1000 + step);
    const x: number[] = [], y: number[] = [];
    for (let r = 0; r < 8; r++) {
      let v = rng.int(32);
      for (let t = 0; t < 16; t++) {
        x.push(v);
        v = (v + 1) % 32;
        y.push(v);
      }
    }
    return { x: tf.tensor2d(x, [8, 16], "int32"), y: tf.tensor2d(y, [8, 16], "int32") };
  };
  const cfg = { steps, lr: 1e-2, minLr: 1e-3, warmupSteps: 2, weightDecay: 0, beta1: 0.9, beta2: 0.99, eps: 1e-8, gradClip: 1 };
  const res = await train({ params: model.params, batch, loss: (b) => model.loss(b.x, b.y) }, {
    ...cfg,
    gradAccum: 1,
    evalEvery: 0,
    saveEvery: 0,
    logEvery: steps,
  }, { quiet: true });
  return res.losses;
}

Deno.test({
  name: "onnx parity through onnxruntime after a few training steps (rope and learned positions)",
  ignore: !ort,
  fn: async () => {
    await initBackend("wasm", { quiet: true });
    for (const [label, overrides] of [VARIANTS[0], VARIANTS[3]]) {
      const { model, meta } = tinyCognate(5, overrides);
      const losses = await trainFew(model, 25);
      assert.ok(losses.at(-1)! < losses[0] - 1, `training moved the loss: ${losses[0]} -> ${losses.at(-1)}`);
      await parity(model, meta, {}, [16, 64], `trained 25 steps, ${label}, dynamic`);
      await parity(model, meta, { profile: "portable", maxLength: 32 }, [32], `trained 25 steps, ${label}, portable`);
      model.dispose();
    }
  },
});

Deno.test("onnx export refuses models its graph does not cover, and bad options, naming them", async () => {
  await initBackend("wasm", { quiet: true });
  const config = cognatePresetConfig("tiny", "memory");
  const mem = createModel("cognate-memory", config, 1);
  await assert.rejects(exportOnnx(mem, { key: "cognate-memory", config: { ...config } }, "/nonexistent/x.onnx"), /cognate-memory/);
  mem.dispose();
  const { model, meta } = tinyCognate(1, { positions: "learned" });
  await assert.rejects(exportOnnx(model, meta, "/nonexistent/x.onnx", { maxLength: 65 }), /maxLength = 65 exceeds maxSeqLen 64/);
  model.dispose();
  const prev = tinyCognate(1, { prevTokens: 1 });
  await assert.rejects(
    exportOnnx(prev.model, prev.meta, "/nonexistent/x.onnx", { profile: "kv" }),
    /profile kv cannot run a model that embeds preceding tokens \(prevTokens = 1\)/,
  );
  prev.model.dispose();
  assert.throws(() => onnxInfo(new Uint8Array([1, 2, 3, 250]), "bad.onnx"), /bad\.onnx/);
});

Deno.test("readOnnxInfo reports size, operators and metadata of an exported file", async () => {
  await initBackend("wasm", { quiet: true });
  const { model, meta } = tinyCognate(2, { mlp: "swiglu", norm: "rmsnorm" });
  const dir = await Deno.makeTempDir();
  const path = join(dir, "m.onnx");
  const written = await exportOnnx(model, meta, path);
  const info = await readOnnxInfo(path);
  assert.equal(info.sizeBytes, (await Deno.stat(path)).size);
  assert.deepEqual(info, written);
  // f32 weights dominate the file: 4 bytes per parameter, plus the rope tables and the graph.
  assert.ok(info.sizeBytes > model.params.count() * 4 && info.sizeBytes < model.params.count() * 4 * 1.1, `${info.sizeBytes}`);
  assert.equal(info.metadata["agent_forge.registry_key"], "cognate-standard");
  assert.deepEqual(JSON.parse(info.metadata["agent_forge.config"]), meta.config);
  assert.ok(info.opTypes.includes("ReduceMean") && !info.opTypes.includes("LayerNormalization"), info.opTypes.join(","));
  model.dispose();
  await Deno.remove(dir, { recursive: true });
});
