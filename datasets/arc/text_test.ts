import assert from "node:assert/strict";
import { generateTasks } from "./generator.ts";
import { gridAllowed, gridText, inputText, parseGrid, taskText } from "./text.ts";

const code = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
const END = 258;
const allowed = (s: string) => gridAllowed(code(s), END);

Deno.test("grids round-trip through text; malformed answers parse as null", () => {
  const g = [[0, 1, 2], [3, 4, 5]];
  assert.equal(gridText(g), "2x3:a012b345");
  assert.equal(inputText(g), "a012b345:2x3");
  assert.deepEqual(parseGrid(gridText(g)), g);
  for (const t of generateTasks(48, 3)) for (const p of [...t.train, ...t.test]) assert.deepEqual(parseGrid(gridText(p.output)), p.output);
  for (const bad of ["2x3:a012b34", "2x3:a012", "3x3:a012b345", "2x3a012b345", "2x3:b012a345", "2x3:a012b34x", "0x1:", "31x1:a0", ""]) {
    assert.equal(parseGrid(bad), null, bad);
  }
});

Deno.test("a task's text puts the answer's shape right after the test input's", () => {
  const task = { train: [{ input: [[1]], output: [[2, 2]] }], test: [{ input: [[3, 0]], output: [[4], [4]] }] };
  assert.deepEqual(taskText(task), { prompt: "a1:1x1>1x2:a22\na30:1x2>", answer: "2x1:a4b4" });
});

Deno.test("the answer grammar: a shape with sides 1-30, then labels and EOS where the shape puts them", () => {
  assert.deepEqual(allowed(""), code("123456789"));
  assert.deepEqual(allowed("3"), code("0x"));
  assert.deepEqual(allowed("4"), code("x"));
  assert.deepEqual(allowed("31"), []);
  assert.deepEqual(allowed("2x"), code("123456789"));
  assert.deepEqual(allowed("2x3"), code("0:"));
  assert.deepEqual(allowed("2x3:"), code("a"));
  assert.deepEqual(allowed("2x3:a01"), code("0123456789"));
  assert.deepEqual(allowed("2x3:a012"), code("b"));
  assert.deepEqual(allowed("2x3:a012b345"), [END]);
  assert.deepEqual(allowed("2x3:a012b3456"), []);
  assert.deepEqual(allowed("2x3:a01b"), []);
  assert.deepEqual(gridAllowed([300], END), []);
  // Following the grammar always yields a grid that parses.
  const g = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 0, 0]], text = gridText(g), ids = code(text);
  ids.forEach((id, i) => assert.ok(gridAllowed(ids.slice(0, i), END).includes(id), text.slice(0, i)));
  assert.deepEqual(gridAllowed(ids, END), [END]);
});
