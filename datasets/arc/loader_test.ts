/** ARC loader: the real ARC-AGI-1 training set when present, and exact messages for malformed files. */
import assert from "node:assert/strict";
import { ArcFormatError, gridProblem, loadTaskFile, loadTaskFolder, parseTaskJson, validateTask } from "./loader.ts";
import { ARC_TRAINING_DIR, haveArcTraining } from "./testing.ts";

const haveArc = haveArcTraining("loader_test.ts");

const PAIR = { input: [[1, 2], [3, 4]], output: [[0]] };

/** The error message for a task value, or "ok". */
function problem(json: unknown): string {
  try {
    validateTask(json, "0a938d79.json");
    return "ok";
  } catch (e) {
    assert.ok(e instanceof ArcFormatError);
    return e.message;
  }
}

Deno.test({
  name: "reads the 400 real ARC-AGI-1 training tasks",
  ignore: !haveArc,
  fn: async () => {
    const { tasks, skipped } = await loadTaskFolder(ARC_TRAINING_DIR);
    assert.equal(tasks.length, 400);
    assert.equal(skipped.length, 0);
    const ids = tasks.map((t) => t.id!);
    assert.deepEqual(ids, [...ids].sort());
    assert.equal(ids[0], "007bbfb7");
    // 007bbfb7: a 3x3 input becomes a 9x9 output; the first test input is known.
    const t = tasks[0];
    assert.equal(t.train.length, 5);
    assert.deepEqual(t.test[0].input, [[7, 0, 7], [7, 0, 7], [7, 7, 0]]);
    assert.equal(t.test[0].output.length, 9);
    let pairs = 0;
    for (const task of tasks) {
      assert.ok(task.train.length >= 1 && task.test.length >= 1);
      pairs += task.train.length + task.test.length;
    }
    assert.ok(pairs > 1500, `${pairs} pairs`);
    assert.deepEqual(await loadTaskFile(`${ARC_TRAINING_DIR}/007bbfb7.json`), t);
  },
});

Deno.test("a good task is returned with its id", () => {
  const t = parseTaskJson(JSON.stringify({ train: [PAIR, PAIR], test: [PAIR] }), "abc.json");
  assert.deepEqual(t, { id: "abc", train: [PAIR, PAIR], test: [PAIR] });
});

Deno.test("malformed tasks: the message names the file, the JSON path and what was expected", () => {
  const grid = (g: unknown) => ({ train: [PAIR, PAIR, { input: [[1]], output: g }], test: [PAIR] });
  const bad = [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 12]];
  assert.equal(problem(grid(bad)), "0a938d79.json: train[2].output[3][4] = 12, colours are 0-9");
  assert.equal(problem(grid([[1, 2], [3]])), "0a938d79.json: train[2].output[1] has 1 cells but row 0 has 2 (ragged rows)");
  assert.equal(problem(grid([])), "0a938d79.json: train[2].output = [], grids are 1x1 to 30x30");
  assert.equal(problem(grid([[]])), "0a938d79.json: train[2].output[0] = [], grids are 1x1 to 30x30");
  assert.equal(problem(grid(Array(31).fill([0]))), "0a938d79.json: train[2].output has 31 rows, grids are 1x1 to 30x30");
  assert.equal(problem(grid([Array(31).fill(0)])), "0a938d79.json: train[2].output[0] has 31 cells, grids are 1x1 to 30x30");
  assert.equal(problem(grid([[1.5]])), "0a938d79.json: train[2].output[0][0] = 1.5, colours are 0-9");
  assert.equal(problem(grid([["3"]])), '0a938d79.json: train[2].output[0][0] = "3", colours are 0-9');
  assert.equal(problem(grid([[-1]])), "0a938d79.json: train[2].output[0][0] = -1, colours are 0-9");
  assert.equal(problem(grid("abc")), '0a938d79.json: train[2].output = "abc", expected a grid (an array of rows)');
  assert.equal(problem(grid([5])), "0a938d79.json: train[2].output[0] = 5, expected a row (an array of colours)");
  assert.equal(problem(grid(undefined)), "0a938d79.json: train[2].output is missing, expected a grid");
  assert.equal(problem({ test: [PAIR] }), '0a938d79.json: train is missing, expected an array of {"input", "output"} pairs');
  assert.equal(problem({ train: [PAIR] }), '0a938d79.json: test is missing, expected an array of {"input", "output"} pairs');
  assert.equal(problem({ train: [PAIR], test: [] }), "0a938d79.json: test = [], expected at least one pair");
  assert.equal(problem({ train: {}, test: [PAIR] }), '0a938d79.json: train = {}, expected an array of {"input", "output"} pairs');
  assert.equal(problem({ train: [PAIR], test: [7] }), '0a938d79.json: test[0] = 7, expected {"input": grid, "output": grid}');
  assert.equal(problem([1, 2]), '0a938d79.json: is [1,2], expected an object {"train": [...], "test": [...]}');
  assert.throws(() => parseTaskJson("{oops", "x.json"), /^ArcFormatError: x\.json: is not valid JSON/);
  assert.throws(() => validateTask(grid(bad), "0a938d79.json"), (e: unknown) => {
    assert.ok(e instanceof ArcFormatError);
    assert.equal(e.file, "0a938d79.json");
    assert.equal(e.path, "train[2].output[3][4]");
    return true;
  });
  assert.equal(gridProblem([[1, 2], [3, 4]], "g"), null);
});

Deno.test("a folder with malformed files: throws on the first, or skips them and reports which", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arc_loader_test_" });
  try {
    await Deno.writeTextFile(`${dir}/a.json`, JSON.stringify({ train: [PAIR], test: [PAIR] }));
    await Deno.writeTextFile(`${dir}/b.json`, JSON.stringify({ train: [{ input: [[1, 2], [3]], output: [[1]] }], test: [PAIR] }));
    await Deno.writeTextFile(`${dir}/c.json`, "not json");
    await Deno.writeTextFile(`${dir}/d.json`, JSON.stringify({ train: [PAIR], test: [PAIR] }));
    await Deno.writeTextFile(`${dir}/notes.txt`, "ignored");
    await assert.rejects(() => loadTaskFolder(dir), /b\.json: train\[0\]\.input\[1\] has 1 cells but row 0 has 2/);
    const r = await loadTaskFolder(dir, { skipInvalid: true });
    assert.deepEqual(r.tasks.map((t) => t.id), ["a", "d"]);
    assert.deepEqual(r.skipped.map((s) => s.file), ["b.json", "c.json"]);
    assert.match(r.skipped[1].error, /^c\.json: is not valid JSON/);
    assert.deepEqual((await loadTaskFolder(dir, { limit: 1 })).tasks.map((t) => t.id), ["a"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
