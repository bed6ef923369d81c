/** The server's onnxruntime path: the Batcher over an exported ONNX decoder writes what it writes over the tfjs model. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { cognatePresetConfig } from "../models/cognate.ts";
import { createModel } from "../models/registry.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { Batcher } from "./batcher.ts";
import { exportOnnx } from "./onnx.ts";
import { OnnxRows, openOnnxKv } from "./onnx_rows.ts";

Deno.test("OnnxRows: continuous batching through onnxruntime gives the tfjs model's tokens", async () => {
  await initBackend("wasm", { quiet: true });
  const config = cognatePresetConfig("tiny", "standard", { initStd: 0.3 });
  const model = createModel("cognate-standard", config, 9);
  const dir = await Deno.makeTempDir();
  const path = join(dir, "model.onnx");
  await exportOnnx(model, { key: "cognate-standard", config: { ...config } }, path, { profile: "kv" });
  const onnx = await openOnnxKv(path, 1);
  assert.equal(onnx.meta.key, "cognate-standard");
  // One long row stays while rows with long prompts come and go: their padding piles up and is compacted.
  const prompts = [
    "a",
    "hello there, a long prompt",
    "1+1=",
    "zz and more text here",
    "the longest prompt of them all",
    "q",
    "x y z w v u t",
  ];
  const budgets = [40, 3, 2, 1, 2, 3, 2];
  const run = async (b: Batcher) => {
    const out: Promise<string>[] = [];
    for (const [i, p] of prompts.entries()) {
      out.push(b.submit({ ids: [TOKENIZER.bos, ...TOKENIZER.encode(p)], maxNew: budgets[i] }).then((r) => r.text));
      await new Promise((r) => setTimeout(r, 1));
    }
    return await Promise.all(out);
  };
  const rows = new OnnxRows(onnx);
  const viaOrt = await run(new Batcher(rows, { context: 64, maxBatch: 3, batchWaitMs: 0 }));
  assert.ok(rows.compactions > 0, "padding-only slots were dropped");
  const viaTfjs = await run(new Batcher(model, { context: 64, maxBatch: 3, batchWaitMs: 0 }));
  assert.deepEqual(viaOrt, viaTfjs);
  assert.ok(viaOrt.some((t) => new Set(t).size >= 4), JSON.stringify(viaOrt));
  await assert.rejects(openOnnxKv(join(dir, "nope.onnx")), /nope\.onnx/);
  await exportOnnx(model, { key: "cognate-standard", config: { ...config } }, path); // the dynamic profile, no past
  await assert.rejects(openOnnxKv(path), /ONNX profile 'dynamic', expected 'kv'/);
  await onnx.session.release();
  model.dispose();
  await Deno.remove(dir, { recursive: true });
});
