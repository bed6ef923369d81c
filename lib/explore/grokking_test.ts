/** Notebook 03's grokking rerun: the phase's own training at another weight decay, in its own folder, redrawn live. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { openRun } from "../pipeline/session.ts";
import { setTextSink } from "../viz/notebook.ts";
import { rerunGrokking } from "./grokking.ts";

Deno.test("rerunGrokking: trains at the chosen weight decay in its own folder and shows the curve", async () => {
  await initBackend("wasm", { quiet: true });
  const base = await Deno.makeTempDir({ prefix: "af-explore-grok-" });
  const run = await openRun({
    runDir: join(base, "run"),
    preset: "tiny",
    backend: "wasm",
    log: () => {},
    sets: [`pipeline.baseline_file=${join(base, "baselines.json")}`, "phases.3.mod_eval_every=10"],
  });
  const shown: string[] = [];
  const prev = setTextSink((t) => shown.push(t));
  let r;
  try {
    r = await rerunGrokking(run, { weightDecay: 0.5, steps: 40 });
  } finally {
    setTextSink(prev);
  }
  assert.equal(r.steps, 40);
  assert.deepEqual(r.curve.step, [10, 20, 30, 40]);
  assert.ok(r.curve.train_acc.every((a) => a >= 0 && a <= 1));
  assert.ok(r.train_acc >= 0 && r.val_acc >= 0);
  // Its own folder; the run's metrics.jsonl is untouched.
  assert.ok((await Deno.stat(join(run.runDir, "phase-3-puzzles", "explore", "wd-0.5", "rerun_curve.json"))).isFile);
  assert.equal(shown.length, 1);
  assert.match(shown[0], /grokking rerun, weight decay 0\.5/);
  // A different decay trains a different model from the same start.
  const other = await rerunGrokking(run, { weightDecay: 5, steps: 40, live: false });
  assert.notDeepEqual(other.curve.loss, r.curve.loss);
  await assert.rejects(rerunGrokking(run, { weightDecay: -1 }), /weightDecay = -1/);
  await Deno.remove(base, { recursive: true });
});
