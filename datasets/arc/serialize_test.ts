/** Task <-> token sequence: exact layout and loss mask, round trips (also every real ARC task), hashing for leakage checks. */
import assert from "node:assert/strict";
import { Rng } from "../../lib/util/rng.ts";
import { GRID_TOKENS, GRID_VOCAB_SIZE, textToTokens } from "../tokenizers/grid.ts";
import { generateTasks } from "./generator.ts";
import {
  canonicalTokens,
  decodeAnswer,
  fnv1a64,
  parseTask,
  serializeAll,
  serializePrompt,
  serializeTask,
  sharedTasks,
  taskHash,
} from "./serialize.ts";
import { haveArcTraining, realArcTasks } from "./testing.ts";
import type { ArcTask } from "./types.ts";

const haveArc = haveArcTraining("serialize_test.ts");
const { PAD, EOS } = GRID_TOKENS;

const TASK: ArcTask = {
  id: "tiny",
  train: [{ input: [[1, 0]], output: [[0, 1]] }, { input: [[2], [3]], output: [[2, 3]] }],
  test: [{ input: [[4, 5]], output: [[5], [4]] }, { input: [[6]], output: [[7]] }],
};

Deno.test("serializeTask: exact layout, and the loss mask covers the test output and EOS only", () => {
  const { tokens, lossMask } = serializeTask(TASK);
  const expected = textToTokens("<bos> <in> 1 0 / <out> 0 1 / <sep> <in> 2 / 3 / <out> 2 3 / <sep> <in> 4 5 / <out> 5 / 4 / <eos>");
  assert.deepEqual([...tokens], expected);
  assert.deepEqual([...lossMask], expected.map((_, i) => (i >= expected.length - 5 ? 1 : 0)));
  assert.ok(tokens.every((t) => t >= 0 && t < GRID_VOCAB_SIZE));
  // The prompt is the unmasked prefix, ending at the test pair's OUTPUT marker.
  const prompt = serializePrompt(TASK);
  assert.deepEqual(prompt, expected.slice(0, expected.length - 5));
  assert.equal(prompt.at(-1), GRID_TOKENS.OUTPUT);
  // One sequence per test pair.
  const all = serializeAll(TASK);
  assert.equal(all.length, 2);
  assert.deepEqual([...all[1].tokens.slice(-4)], textToTokens("<out> 7 / <eos>"));
  assert.throws(() => serializeTask(TASK, 2), /test\[2\] does not exist \(2 test pairs\)/);
});

Deno.test("parseTask inverts serializeTask (with trailing PAD) on generated tasks", () => {
  for (const t of generateTasks(96, 3, { maxSize: 14, testPairs: 2 })) {
    for (let i = 0; i < t.test.length; i++) {
      const { tokens, lossMask } = serializeTask(t, i);
      assert.deepEqual(parseTask(tokens), { train: t.train, test: [t.test[i]] });
      assert.deepEqual(parseTask([...tokens, PAD, PAD]), { train: t.train, test: [t.test[i]] });
      const answerStart = lossMask.indexOf(1);
      assert.deepEqual(decodeAnswer(tokens, answerStart), t.test[i].output);
    }
  }
});

Deno.test("parseTask names the position of malformed sequences; decodeAnswer returns null on bad answers", () => {
  const ok = [...serializeTask(TASK).tokens];
  assert.throws(() => parseTask(ok.slice(1)), /token 0 = <in>, expected <bos>/);
  assert.throws(() => parseTask(ok.slice(0, -1)), /token 29 = the end, expected <eos>/);
  assert.throws(() => parseTask([...ok, 3]), /token 30 = 3, expected <pad> \(only PAD may follow EOS\)/);
  const noOut = ok.slice();
  noOut[5] = GRID_TOKENS.PAIR_SEP;
  assert.throws(() => parseTask(noOut), /token 5 = <sep>, expected <out>/);
  assert.throws(() => parseTask(textToTokens("<bos> <in> 1 / <out> 2 / <eos>")), /at least one demonstration/);
  assert.throws(() => parseTask(textToTokens("<bos> <in> 1 2 / 3 / <out> 2 / <eos>")), /row 1 at token 5 has 1 cells, row 0 has 2/);
  assert.deepEqual(decodeAnswer(textToTokens("1 2 / 3 4 / <eos> <pad>")), [[1, 2], [3, 4]]);
  assert.equal(decodeAnswer(textToTokens("1 2 / 3 / <eos>")), null);
  assert.equal(decodeAnswer(textToTokens("1 2 / 3 4 /")), null, "no EOS");
  assert.equal(decodeAnswer([EOS]), null);
});

/** Reference 64-bit FNV-1a with BigInt, to check the two-halves implementation. */
function fnvBig(bytes: number[]): string {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = BigInt.asUintN(64, (h ^ BigInt(b & 0xff)) * 0x100000001b3n);
  return h.toString(16).padStart(16, "0");
}

Deno.test("fnv1a64 matches the published test vectors and a BigInt reference", () => {
  const bytes = (s: string) => [...new TextEncoder().encode(s)];
  assert.equal(fnv1a64([]), "cbf29ce484222325");
  assert.equal(fnv1a64(bytes("a")), "af63dc4c8601ec8c");
  assert.equal(fnv1a64(bytes("foobar")), "85944171f73967e8");
  const rng = new Rng(6);
  for (let i = 0; i < 200; i++) {
    const data = Array.from({ length: rng.int(300) }, () => rng.int(256));
    assert.equal(fnv1a64(data), fnvBig(data));
  }
});

Deno.test("taskHash depends on content only; sharedTasks finds leaked tasks between splits", () => {
  const copy: ArcTask = JSON.parse(JSON.stringify({ ...TASK, id: "renamed" }));
  assert.equal(taskHash(copy), taskHash(TASK), "the id is not content");
  assert.match(taskHash(TASK), /^[0-9a-f]{16}$/);
  copy.test[1].output[0][0] = 8;
  assert.notEqual(taskHash(copy), taskHash(TASK), "one cell changes the hash");
  // Moving a pair from train to test is a different task.
  const moved: ArcTask = { train: TASK.train.slice(0, 1), test: [TASK.train[1], ...TASK.test] };
  assert.notDeepEqual(canonicalTokens(moved), canonicalTokens(TASK));
  assert.notEqual(taskHash(moved), taskHash(TASK));
  const a = generateTasks(48, 1), b = generateTasks(48, 2);
  assert.equal(new Set(a.map(taskHash)).size, 48);
  assert.deepEqual(sharedTasks(a, b), []);
  const leaked = sharedTasks(a, [...b, { ...a[7], id: "copy-of-7" }]);
  assert.equal(leaked.length, 1);
  assert.equal(leaked[0].a.id, a[7].id);
  assert.equal(leaked[0].b.id, "copy-of-7");
});

Deno.test({
  name: "every real ARC task survives serialize -> parse for each test pair; all 400 hashes are distinct",
  ignore: !haveArc,
  fn: async () => {
    const tasks = await realArcTasks();
    assert.equal(tasks.length, 400);
    let sequences = 0, longest = 0;
    for (const task of tasks) {
      serializeAll(task).forEach(({ tokens, lossMask }, i) => {
        assert.deepEqual(parseTask(tokens), { train: task.train, test: [task.test[i]] }, String(task.id));
        const out = task.test[i].output;
        assert.equal(lossMask.reduce((s, v) => s + v, 0), out.length * (out[0].length + 1) + 1, String(task.id));
        sequences++;
        longest = Math.max(longest, tokens.length);
      });
    }
    assert.ok(sequences >= 400);
    assert.equal(new Set(tasks.map(taskHash)).size, 400);
    console.log(`${sequences} sequences, longest ${longest} tokens`);
  },
});
