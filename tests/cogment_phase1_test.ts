/** Phase 1 with Cogment as its reasoning variant (phases.1.reasoning_model = cogment), at the tiny preset. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRun, runPhase } from "../lib/pipeline/session.ts";
import { loadModel } from "../lib/models/io.ts";
import { phase1ModelPath } from "../lib/util/run_dir.ts";

Deno.test("reasoning_model = cogment: the reasoning variant is a Cogment at the standard's budget; it learns and reports its halting and memory use", async () => {
  const dir = await Deno.makeTempDir({ prefix: "af-p1-cogment-" });
  const run = await openRun({
    runDir: dir,
    preset: "tiny",
    backend: "wasm",
    log: () => {},
    sets: ["phases.1.reasoning_model=cogment", `pipeline.baseline_file=${join(dir, "b.json")}`],
  });
  const r = await runPhase(run, 1, { live: false });
  const v = r.metrics.variants as Record<string, { model: string; params: number; test_loss: number; cogment?: Record<string, number> }>;
  assert.equal(v.reasoning.model, "cogment");
  assert.equal(v.standard.model, "cognate-standard");
  assert.ok(Math.abs(v.reasoning.params / v.standard.params - 1) < 0.01, `${v.reasoning.params} vs ${v.standard.params} parameters`);
  const use = v.reasoning.cogment!;
  assert.ok(use.depth_steps >= 1 && use.depth_steps <= 4, JSON.stringify(use));
  assert.ok(use.refine_steps >= 1 && use.refine_steps <= 4, JSON.stringify(use));
  assert.ok(use.slot_utilization > 0 && use.slot_utilization <= 1, JSON.stringify(use));
  assert.ok(use.ltm_write_rate >= 0 && use.ltm_write_rate <= 1, JSON.stringify(use));
  const gate = r.validation.checks.find((c) => c.name === "reasoning: unigram_loss - test_loss")!;
  assert.ok(gate.passed, `the Cogment learned: ${JSON.stringify(gate)}`);
  const { model, meta } = await loadModel(join(dir, phase1ModelPath("reasoning")));
  assert.equal(meta.key, "cogment");
  model.dispose();
  await Deno.remove(dir, { recursive: true });
});
