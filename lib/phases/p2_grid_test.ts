/** Phase 2 (b): the real-task folder (skipped when the default is absent, an error when a named one is), training batches that fit and skip held-out tasks. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { generateTask } from "../../datasets/arc/generator.ts";
import { taskHash } from "../../datasets/arc/serialize.ts";
import { arcGridBatch, ArcGridKeys, arcTaskFiles, realGridTasks } from "./p2_grid.ts";
import { z } from "zod";
import { deriveSeed } from "../util/rng.ts";

const section = z.object(ArcGridKeys).parse({});

Deno.test("real ARC folders: the default may be absent (skipped with the reason), phases.2.arc_dir must exist", async () => {
  const dir = await Deno.makeTempDir({ prefix: "af-arcdir-" });
  const missing = join(dir, "nope");
  assert.match((await arcTaskFiles(missing, false) as { skipped: string }).skipped, /is absent/);
  await assert.rejects(() => arcTaskFiles(missing, true), /phases\.2\.arc_dir = .*nope: not a folder/);
  const t = generateTask("flip", 1, { maxSize: 6, trainPairs: 3 });
  await Deno.writeTextFile(join(dir, "b.json"), JSON.stringify({ train: t.train, test: t.test }));
  await Deno.writeTextFile(join(dir, "a.json"), JSON.stringify({ train: t.train.slice(0, 2), test: t.test }));
  await Deno.writeTextFile(join(dir, "notes.txt"), "not a task");
  assert.deepEqual(await arcTaskFiles(dir, true), { names: ["a.json", "b.json"] });
  const real = await realGridTasks(dir, { n: 5, votes: 3, seed: 1, named: true });
  assert.deepEqual(real.tasks.map((x) => [x.id, x.task.train.length, x.views.length]), [["a", 2, 3], ["b", 3, 3]]);
  assert.equal((await realGridTasks(dir, { n: 0, votes: 3, seed: 1, named: true })).skipped, "phases.2.grid_real_tasks = 0");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("training batches: deterministic in the seed, within the token budget, never a held-out task", () => {
  const a = arcGridBatch(section, ["flip", "colour_map"], new Set(), 7, 6);
  assert.deepEqual(arcGridBatch(section, ["flip", "colour_map"], new Set(), 7, 6), a);
  for (const s of a) assert.ok(s.targets.length <= section.grid_max_tokens && s.mask.some((m) => m === 1));
  // With one family, draw i is generateTask("flip", deriveSeed(seed, `task-${i}`)): hold out draw 0 and the batch changes.
  const gen = { minSize: 3, maxSize: section.grid_max_size, trainPairs: section.grid_demos, testPairs: 1 };
  const draw = (i: number) => taskHash(generateTask("flip", deriveSeed(7, `task-${i}`), gen));
  const free = arcGridBatch(section, ["flip"], new Set(), 7, 1), held = arcGridBatch(section, ["flip"], new Set([draw(0)]), 7, 1);
  assert.notDeepEqual(held, free);
  // Every draw held out: no batch, and the error says why.
  const all = new Set(Array.from({ length: 40 }, (_, i) => draw(i)));
  assert.throws(() => arcGridBatch(section, ["flip"], all, 7, 1), /no generated task outside the held-out set fits/);
});
