import assert from "node:assert/strict";
import { join } from "node:path";
import { appendMetric, dropMetrics, readMetrics, RUN_FILES } from "./run_dir.ts";

Deno.test("metrics.jsonl: a torn last line (a kill mid-append) is skipped, and the next record still reads back whole", async () => {
  const dir = await Deno.makeTempDir({ prefix: "af-rundir-" });
  await appendMetric(dir, 1, { model: "m", step: 20, loss: 2 });
  await Deno.writeTextFile(join(dir, RUN_FILES.metrics), '{"phase":1,"model":"m","st', { append: true }); // torn
  await appendMetric(dir, 1, { model: "m", step: 25, loss: 1.5 });
  await appendMetric(dir, 1, { model: "m", step: 30, loss: 1 });
  assert.deepEqual((await readMetrics(dir)).map((r) => r.step), [20, 25, 30]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("metrics.jsonl: a step logged again after a resume replaces the earlier record in place; filters and drop by phase", async () => {
  const dir = await Deno.makeTempDir({ prefix: "af-rundir-" });
  for (const [phase, step, loss] of [[1, 5, 3], [1, 10, 2], [2, 5, 9], [1, 10, 1.5], [1, 15, 1]]) {
    await appendMetric(dir, phase, { model: "m", step, loss });
  }
  assert.deepEqual((await readMetrics(dir, { phase: 1 })).map((r) => [r.step, r.loss]), [[5, 3], [10, 1.5], [15, 1]]);
  await dropMetrics(dir, 1);
  assert.deepEqual((await readMetrics(dir)).map((r) => r.phase), [2]);
  await Deno.remove(dir, { recursive: true });
});
