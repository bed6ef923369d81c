/** The deployment validator: each rejection (size, operator, vendor domain, bad target) and acceptances, on real exports. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { type CognateConfig, cognatePresetConfig } from "../models/cognate.ts";
import { createModel } from "../models/registry.ts";
import type { SavedModel } from "../models/io.ts";
import { exportHfFolder } from "./hf.ts";
import { exportOnnx, type OnnxInfo } from "./onnx.ts";
import { assertDeployable, DEFAULT_TARGETS, DEPLOY_TARGETS, PORTABLE_OPS, sizeOnDisk, validateForTarget } from "./validator.ts";

/** Exports a tiny-preset standard cognate to ONNX (both profiles) in a temp folder. */
async function exports(
  overrides: Partial<CognateConfig> = {},
): Promise<{ dynamic: OnnxInfo; portable: OnnxInfo; dir: string; params: number }> {
  await initBackend("wasm", { quiet: true });
  const config = cognatePresetConfig("tiny", "standard", overrides);
  const model = createModel("cognate-standard", config, 1);
  const meta: SavedModel = { key: "cognate-standard", config: { ...config } };
  const dir = await Deno.makeTempDir();
  const dynamic = await exportOnnx(model, meta, join(dir, "dynamic.onnx"));
  const portable = await exportOnnx(model, meta, join(dir, "portable.onnx"), { profile: "portable", maxLength: 32 });
  await exportHfFolder(model, meta, join(dir, "hf"));
  const params = model.params.count();
  model.dispose();
  return { dynamic, portable, dir, params };
}

Deno.test("accepts: the portable export everywhere, the dynamic export on local, cloud_api and edge", async () => {
  for (const overrides of [{}, { norm: "rmsnorm", mlp: "swiglu", positions: "learned", tieEmbeddings: true }] as Partial<CognateConfig>[]) {
    const { dynamic, portable, dir } = await exports(overrides);
    for (const t of DEPLOY_TARGETS) {
      const r = validateForTarget(portable, t);
      assert.deepEqual([r.ok, r.problems], [true, []], t);
      assertDeployable(portable, t);
    }
    for (const t of ["local", "cloud_api", "edge"]) assert.ok(validateForTarget(dynamic, t).ok, t);
    assert.ok(portable.opTypes.every((op) => PORTABLE_OPS.includes(op)), portable.opTypes.join(","));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rejects an unsupported operator, naming the target and the operator", async () => {
  const { dynamic, dir } = await exports();
  const r = validateForTarget(dynamic, "mobile");
  assert.equal(r.ok, false);
  for (const op of ["LayerNormalization", "Range", "Shape", "Where", "Greater"]) {
    assert.ok(r.problems.some((p) => p.startsWith("mobile: unsupported operator " + op)), `${op}: ${r.problems.join(" | ")}`);
  }
  assert.throws(() => assertDeployable(dynamic, "mobile"), /model rejected for mobile: .*unsupported operator LayerNormalization/);
  // An operator outside even the edge set, and a vendor-domain operator that only `any` targets would otherwise take.
  assert.throws(() => assertDeployable({ sizeBytes: 1000, opTypes: ["MatMul", "Loop"] }, "edge"), /edge: unsupported operator Loop/);
  assert.throws(
    () => assertDeployable({ sizeBytes: 1000, opTypes: ["com.microsoft:FastGelu"] }, "local"),
    /local: unsupported operator com\.microsoft:FastGelu/,
  );
  // An override can widen a target's set.
  assert.ok(validateForTarget(dynamic, "mobile", { ops: "any" }).ok);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("rejects a model over the budget, naming the target, the budget and the size", async () => {
  const { portable, dir, params } = await exports();
  // The f32 ONNX file is about 4 bytes per parameter: put the budget just under it.
  assert.ok(portable.sizeBytes > params * 4);
  const budget = params * 4;
  const r = validateForTarget(portable, "mobile", { budgetBytes: budget });
  assert.equal(r.ok, false);
  assert.equal(r.problems.length, 1);
  assert.match(
    r.problems[0],
    new RegExp(
      `^mobile: model is [\\d.]+ MB \\(${portable.sizeBytes} bytes\\), over the mobile budget of [\\d.]+ MB \\(${budget} bytes\\)$`,
    ),
  );
  assert.throws(() => assertDeployable(portable, "mobile", { budgetBytes: budget }), /model rejected for mobile: .*over the mobile budget/);
  // Default budgets: a 60 MB model is too big for edge (50 MB) and mobile (20 MB), fine locally.
  const big = { sizeBytes: 60_000_000, opTypes: portable.opTypes };
  assert.throws(
    () => assertDeployable(big, "edge"),
    /edge: model is 60\.0 MB \(60000000 bytes\), over the edge budget of 50\.0 MB \(50000000 bytes\)/,
  );
  assert.throws(() => assertDeployable(big, "mobile"), /over the mobile budget of 20\.0 MB \(20000000 bytes\)/);
  assertDeployable(big, "local");
  // Folder sizes (an HF export) go through the same check.
  const hf = await sizeOnDisk(join(dir, "hf"));
  assert.ok(hf > params * 4, `${hf}`);
  assert.ok(validateForTarget({ sizeBytes: hf, opTypes: [] }, "mobile").ok);
  assert.equal(validateForTarget({ sizeBytes: hf, opTypes: [] }, "mobile", { budgetBytes: hf - 1 }).ok, false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an unknown target or a bad budget is an error naming it", () => {
  assert.throws(
    () => validateForTarget({ sizeBytes: 1, opTypes: [] }, "watch"),
    /unknown deployment target 'watch'; expected one of local, cloud_api, edge, mobile/,
  );
  assert.throws(() => validateForTarget({ sizeBytes: 1, opTypes: [] }, "edge", { budgetBytes: 0 }), /target edge: budgetBytes = 0/);
  assert.ok(DEFAULT_TARGETS.mobile.budgetBytes < DEFAULT_TARGETS.edge.budgetBytes);
});
