/** The data manager: phase mapping, every generator behind one call, hash splits without leakage, batching. */
import assert from "node:assert/strict";
import {
  arcToText,
  assertNoLeakage,
  batchExamples,
  DATASET_NAMES,
  type Example,
  exampleKey,
  findLeaks,
  generateExamples,
  PHASE_DATASETS,
  phaseExamples,
  splitExamples,
} from "./manager.ts";
import { ByteTokenizer } from "./tokenizers/byte.ts";
import { generateTask } from "./arc/mod.ts";

Deno.test("every phase maps to datasets, and every dataset generates n deterministic text items", () => {
  for (const phase of [1, 2, 3, 4, 5, 6, 7] as const) assert.ok(PHASE_DATASETS[phase].length > 0, `phase ${phase}`);
  assert.deepEqual(PHASE_DATASETS[3], ["modular", "sudoku", "maze", "listops"]);
  for (const name of DATASET_NAMES) {
    const a = generateExamples(name, 6, 1);
    assert.equal(a.length, 6, name);
    for (const e of a) {
      assert.equal(e.dataset, name);
      assert.ok(e.prompt.length > 0 && e.answer.length > 0, `${name}: empty prompt or answer`);
    }
    assert.deepEqual(generateExamples(name, 6, 1), a, `${name} is not deterministic`);
    assert.notDeepEqual(generateExamples(name, 6, 2), a, `${name} ignores the seed`);
  }
  assert.throws(() => generateExamples("nope" as "arc", 1, 0), /unknown dataset 'nope'/);
});

Deno.test("arcToText renders demonstrations and the test input as digit rows, the test output as the answer", () => {
  const task = generateTask("flip", 3, { minSize: 3, maxSize: 6 });
  const { prompt, answer } = arcToText(task);
  assert.equal(prompt.split("\nin\n").length, task.train.length + 1);
  assert.ok(prompt.endsWith("out\n"));
  assert.deepEqual(answer.split("\n").map((r) => r.split("").map(Number)), task.test[0].output);
});

Deno.test("hash splits over every dataset: fractions, no leakage, order-independent, duplicates dropped", () => {
  const items = phaseExamples(7, 40, 0);
  const s = splitExamples([...items, ...items.slice(0, 10)], { val: 0.1, test: 0.1 }, 5);
  assertNoLeakage(s);
  assert.equal(s.duplicates, 10 + items.length - new Set(items.map(exampleKey)).size);
  assert.equal(s.train.length + s.val.length + s.test.length, new Set(items.map(exampleKey)).size);
  const total = s.train.length + s.val.length + s.test.length;
  assert.ok(s.val.length > total * 0.04 && s.val.length < total * 0.18, `val ${s.val.length} of ${total}`);
  assert.ok(s.test.length > total * 0.04 && s.test.length < total * 0.18, `test ${s.test.length} of ${total}`);
  // The same item lands in the same split whatever the order.
  const r = splitExamples([...items].reverse(), { val: 0.1, test: 0.1 }, 5);
  const keyset = (xs: Example[]) => new Set(xs.map((e) => `${e.dataset}|${e.prompt}`));
  assert.deepEqual(keyset(r.test), keyset(s.test));
  assert.deepEqual(keyset(r.val), keyset(s.val));
  // A planted leak is found and named.
  const leaky = { ...s, test: [...s.test, s.train[0]] };
  assert.equal(findLeaks(leaky).length, 1);
  assert.throws(
    () => assertNoLeakage(leaky),
    new RegExp(`leakage: 1 item\\(s\\) in more than one split, e.g. ${s.train[0].dataset} item in train and test`),
  );
  assert.throws(() => splitExamples(items, { val: 0.6, test: 0.5 }, 0), /val \+ test < 1/);
});

Deno.test("batches: padded windows whose loss mask covers exactly the answers", () => {
  const tok = new ByteTokenizer();
  const items = generateExamples("sanity", 5, 3);
  const w = batchExamples(items, tok, { seqLen: 64, pack: false });
  assert.equal(w.count, 5);
  for (let r = 0; r < w.count; r++) {
    const masked: number[] = [];
    for (let t = 0; t < w.seqLen; t++) if (w.mask[r * w.seqLen + t]) masked.push(w.targets[r * w.seqLen + t]);
    assert.equal(tok.decode(masked), items[r].answer);
  }
});
