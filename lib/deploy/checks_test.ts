/** Phase 7's export checks: each deployment verdict comes from a runtime that ran the artifact, and can fail. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { cognatePresetConfig } from "../models/cognate.ts";
import { createModel } from "../models/registry.ts";
import { exportAll, targetVerdicts } from "./checks.ts";

Deno.test("exportAll: runtimes judge the targets; Transformers.js reloads the HF folder with our greedy tokens", async () => {
  await initBackend("wasm", { quiet: true });
  const config = cognatePresetConfig("tiny", "standard", { initStd: 0.2 });
  const model = createModel("cognate-standard", config, 4);
  const dir = await Deno.makeTempDir();
  const out = await exportAll(model, { key: "cognate-standard", config: { ...config } }, join(dir, "export"), ["hf", "onnx"], dir);
  const targets = out.targets as Record<string, string>;
  assert.match(targets.local, /^ok \(onnxruntime-node CPU ran model\.onnx: max \|logits diff\| /);
  assert.match(targets.cloud_api, /^ok \(onnxruntime-node CPU \(GPU providers not checked\)/);
  assert.match(targets.edge, /^ok \(onnxruntime-web wasm .* ran model\.portable\.onnx/);
  assert.match(targets.mobile, /^not checked: no mobile runtime/);
  assert.equal(out.hf_architecture, "gpt_neox");
  assert.match(String(out.hf_transformers_js), /^ok: loaded offline; greedy tokens identical/);
  assert.ok(out.files.includes("export/hf/onnx/model.onnx"), out.files.join(", "));
  model.dispose();
  // A memory cognate has no standard architecture: the folder says why, and no Transformers.js check runs.
  const memCfg = cognatePresetConfig("tiny", "memory");
  const mem = createModel("cognate-memory", memCfg, 4);
  const memOut = await exportAll(mem, { key: "cognate-memory", config: { ...memCfg } }, join(dir, "mem"), ["hf"], dir);
  assert.match(String(memOut.hf_architecture), /^none \(our own format: 'cognate-memory' adds modules/);
  assert.equal(memOut.hf_transformers_js, undefined);
  mem.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("targetVerdicts: a runtime that answered differently, could not run, or a target the artifact does not fit, fails", () => {
  const info = { sizeBytes: 1000, opTypes: ["MatMul", "Add"], opset: 17, irVersion: 8, metadata: {} };
  const ok = targetVerdicts(info, info, { node: 1e-6, web: 2e-6 });
  assert.match(ok.local, /^ok/);
  const off = targetVerdicts(info, info, { node: 0.5, web: "onnxruntime-web could not run it: boom" });
  assert.match(off.local, /^failed: onnxruntime-node CPU ran model\.onnx but its logits differ from ours by 0\.5/);
  assert.match(off.edge, /^failed: onnxruntime-web could not run it: boom/);
  const huge = { ...info, sizeBytes: 1e13, opTypes: ["MatMul", "com.microsoft:FusedMatMul"] };
  assert.match(targetVerdicts(huge, huge, { node: 0, web: 0 }).local, /^failed: onnxruntime-node CPU ran model\.onnx, but /);
});
