/** Long-context tasks: lengths on target, needles at their depth, answers recoverable by an independent parser. */
import assert from "node:assert/strict";
import {
  copyDrill,
  type CountTokens,
  DEFAULT_LONG_CONTEXT,
  grid,
  type LongContextConfig,
  type LongContextItem,
  longContextItem,
  type LongContextTask,
  utf8Bytes,
} from "./long_context.ts";

const encoder = new TextEncoder();
const bytes: CountTokens = (t) => encoder.encode(t).length;
const words: CountTokens = (t) => t.split(/\s+/).filter(Boolean).length;

/** The prompt's parts: intro, context, question. */
function parts(item: LongContextItem): { context: string; question: string } {
  const p = item.prompt.split("\n\n");
  assert.equal(p.length, 3, "a prompt is intro, context and question separated by blank lines");
  return { context: p[1], question: p[2] };
}

/** Reads the answer back from the prompt, knowing only the task's surface formats. */
function solve(item: LongContextItem): string[] {
  const { context, question } = parts(item);
  switch (item.task) {
    case "passkey": {
      const keys = [...context.matchAll(/The pass key is (\d+)\./g)].map((m) => m[1]);
      assert.equal(keys.length, 1);
      return keys;
    }
    case "multi_needle": {
      const table = new Map([...context.matchAll(/The number for ([a-z]+) is (\d+)\./g)].map((m) => [m[1], m[2]]));
      const one = /What is the number for ([a-z]+)\?/.exec(question);
      const asked = one ? [one[1]] : /What are the numbers for ([a-z, ]+)\?/.exec(question)![1].split(", ");
      return asked.map((k) => table.get(k)!);
    }
    case "variable_tracking": {
      const value = new Map<string, string>(), order: string[] = [];
      for (const [, name, ref, num] of context.matchAll(/VAR ([A-Z]+) = (?:VAR ([A-Z]+)|(\d+))\./g)) {
        assert.ok(!value.has(name), `${name} assigned twice`);
        assert.ok(num !== undefined || value.has(ref), `${name} refers to ${ref} before it is assigned`);
        value.set(name, num ?? value.get(ref)!);
        order.push(name);
      }
      const want = /Which variables hold (\d+)\?/.exec(question)![1];
      return order.filter((n) => value.get(n) === want);
    }
    case "associative_recall": {
      const lines = context.split("\n").map((l) => /^([a-z]+): (\d+)$/.exec(l));
      assert.ok(lines.every((m) => m !== null), "every context line is a key: value pair");
      const table = new Map(lines.map((m) => [m![1], m![2]]));
      assert.equal(table.size, lines.length, "keys are unique");
      return [table.get(/the key ([a-z]+)\?/.exec(question)![1])!];
    }
  }
}

const NEEDLE: Record<Exclude<LongContextTask, "associative_recall">, RegExp> = {
  passkey: /The pass key is \d+\. Remember it: \d+\./g,
  multi_needle: /The number for [a-z]+ is \d+\./g,
  variable_tracking: /VAR [A-Z]+ = (?:VAR [A-Z]+|\d+)\./g,
};

/** The asked needle's depth measured from the text: haystack before it over the whole haystack, needles removed. */
function measuredDepth(item: LongContextItem, count: CountTokens): { depth: number; haystack: number } {
  const { context, question } = parts(item);
  if (item.task === "associative_recall") {
    const lines = context.split("\n"), key = /the key ([a-z]+)\?/.exec(question)![1];
    const q = lines.findIndex((l) => l.startsWith(`${key}: `));
    const rest = count([...lines.slice(0, q), ...lines.slice(q + 1)].join("\n"));
    return { depth: count(lines.slice(0, q).join("\n")) / rest, haystack: rest };
  }
  const asked = item.task === "passkey"
    ? "The pass key is"
    : item.task === "multi_needle"
    ? `The number for ${/numbers? for ([a-z]+)/.exec(question)![1]} is`
    : `= ${/hold (\d+)\?/.exec(question)![1]}.`;
  const strip = (t: string) => t.replace(NEEDLE[item.task as keyof typeof NEEDLE], " ").replace(/\s+/g, " ").trim();
  const at = context.indexOf(asked);
  assert.ok(at >= 0);
  // Back up to the start of the needle holding `asked` (variable tracking: "VAR NAME = value.").
  const start = item.task === "variable_tracking" ? context.lastIndexOf("VAR", at) : at;
  const haystack = count(strip(context));
  return { depth: count(strip(context.slice(0, start))) / haystack, haystack };
}

const LENGTHS = [256, 512, 1024, 2048, 4096, 8192];
const DEPTHS = [0, 0.25, 0.5, 0.75, 1];
const TASKS: LongContextTask[] = ["passkey", "multi_needle", "variable_tracking", "associative_recall"];
/** Bytes of the longest filler sentence ("The distant orchard leans beside the orchard."), plus a space. */
const SENTENCE = 48;

Deno.test("every task, 256..8192 bytes, every depth: length within tolerance, needle at its depth, answer recoverable", () => {
  for (const task of TASKS) {
    for (const length of LENGTHS) {
      for (const [i, depth] of DEPTHS.entries()) {
        const cfg: LongContextConfig = { ...DEFAULT_LONG_CONTEXT, task, length, depth, askAll: i % 2 === 1, seed: i + length };
        const item = longContextItem(cfg);
        const where = `${task} ${length} @${depth}`;
        assert.equal(item.length, bytes(item.prompt), where);
        assert.ok(Math.abs(item.length - length) <= Math.max(2, Math.round(0.02 * length)), `${where}: ${item.length} tokens`);
        // Filler is cut at a word (at most half a word off); the last key-value pair is tuned to land exactly.
        assert.ok(Math.abs(item.length - length) <= (task === "associative_recall" ? 0 : 4), `${where}: ${item.length} tokens`);
        assert.deepEqual(solve(item), item.answers, where);
        assert.equal(item.answer, item.answers.join(", "));
        assert.deepEqual([item.task, item.targetLength, item.targetDepth], [task, length, depth]);
        const m = measuredDepth(item, bytes);
        assert.ok(Math.abs(m.depth - item.depth) <= 2 / m.haystack, `${where}: reported ${item.depth}, measured ${m.depth}`);
        // Needles go between sentences (pairs between lines), so the error is at most half a sentence (a line).
        const step = task === "associative_recall" ? 32 : SENTENCE;
        assert.ok(Math.abs(m.depth - depth) <= (step / 2 + 2) / m.haystack, `${where}: depth ${m.depth} over ${m.haystack} bytes`);
        if (length >= 2048) assert.ok(Math.abs(m.depth - depth) <= 0.02, `${where}: depth ${m.depth}`);
      }
    }
  }
});

Deno.test("the token count is the given tokenizer's: a whitespace word count gives word lengths and word depths", () => {
  for (const task of TASKS) {
    for (const length of [256, 1024, 4096]) {
      const item = longContextItem({ ...DEFAULT_LONG_CONTEXT, task, length, depth: 0.3, countTokens: words, seed: 5 });
      assert.equal(item.length, words(item.prompt));
      assert.ok(Math.abs(item.length - length) <= Math.max(2, Math.round(0.02 * length)), `${task} ${length}: ${item.length} words`);
      assert.ok(bytes(item.prompt) > 3 * length, "a word is several bytes");
      assert.deepEqual(solve(item), item.answers);
      const m = measuredDepth(item, words);
      assert.ok(Math.abs(m.depth - 0.3) <= 6 / m.haystack, `${task} ${length}: depth ${m.depth}`);
    }
  }
});

Deno.test("utf8Bytes agrees with TextEncoder", () => {
  for (const t of ["", "abc", "caf\u00e9", "\u65e5\u672c\u8a9e", "a\u{1F600}b", "lone \ud800 high", "lone \udc00 low", "end \ud83d"]) {
    assert.equal(utf8Bytes(t), bytes(t), JSON.stringify(t));
  }
});

Deno.test("multi-needle and variable-tracking options: needle counts, ask-all order, distractor chains", () => {
  const many = longContextItem({ ...DEFAULT_LONG_CONTEXT, task: "multi_needle", length: 2048, needles: 7, askAll: true, seed: 3 });
  const { context, question } = parts(many);
  assert.equal([...context.matchAll(NEEDLE.multi_needle)].length, 7);
  assert.equal(many.answers.length, 7);
  assert.equal(new Set(many.answers).size, 7, "values are distinct");
  assert.deepEqual(solve(many), many.answers);
  assert.match(question, /^What are the numbers for [a-z]+(, [a-z]+){6}\?/);

  const vt = longContextItem({ ...DEFAULT_LONG_CONTEXT, task: "variable_tracking", length: 4096, hops: 5, distractors: 3, seed: 8 });
  const statements = [...parts(vt).context.matchAll(NEEDLE.variable_tracking)].map((m) => m[0]);
  assert.equal(statements.length, 5 * 4);
  assert.equal(statements.filter((s) => /= \d+\.$/.test(s)).length, 4, "one numeric assignment per chain");
  assert.equal(vt.answers.length, 5);
  assert.deepEqual(solve(vt), vt.answers);
});

Deno.test("deterministic in the seed", () => {
  for (const task of TASKS) {
    const cfg = { ...DEFAULT_LONG_CONTEXT, task, length: 1024, depth: 0.4, seed: 17 };
    assert.deepEqual(longContextItem(cfg), longContextItem({ ...cfg }));
    assert.notEqual(longContextItem({ ...cfg, seed: 18 }).prompt, longContextItem(cfg).prompt);
  }
});

Deno.test("grid: lengths x depths x n items in order, each cell on target, seeds distinct", () => {
  const items = grid([256, 1024], [0, 0.5, 1], 2, { task: "passkey", seed: 4 });
  assert.equal(items.length, 12);
  assert.deepEqual(
    items.map((it) => [it.targetLength, it.targetDepth]),
    [256, 1024].flatMap((l) => [0, 0.5, 1].flatMap((d) => [[l, d], [l, d]])),
  );
  assert.equal(new Set(items.map((it) => it.seed)).size, 12);
  assert.equal(new Set(items.map((it) => it.answer)).size, 12);
  for (const it of items) {
    assert.ok(Math.abs(it.length - it.targetLength) <= Math.max(2, Math.round(0.02 * it.targetLength)));
    assert.deepEqual(solve(it), it.answers);
  }
  assert.deepEqual(
    grid([512], [0.5], 1, { task: "associative_recall", seed: 4 }),
    grid([512], [0.5], 1, { task: "associative_recall", seed: 4 }),
  );
  assert.throws(() => grid([], [0.5], 1), /grid lengths is empty/);
  assert.throws(() => grid([256], [], 1), /grid depths is empty/);
  assert.throws(() => grid([256], [0.5], 0), /long_context.grid n = 0: expected an integer in 1\.\./);
});

Deno.test("validation names the field and what is accepted; lengths too short for the task are refused", () => {
  const bad = (over: Partial<LongContextConfig>, re: RegExp) =>
    assert.throws(() => longContextItem({ ...DEFAULT_LONG_CONTEXT, ...over }), re);
  bad({ task: "summarize" as LongContextTask }, /long_context.task = summarize: expected one of passkey, multi_needle/);
  bad({ length: 10 }, /long_context.length = 10: expected an integer in 32\.\./);
  bad({ length: 1000.5 }, /long_context.length = 1000.5/);
  bad({ depth: 1.5 }, /long_context.depth = 1.5: expected a fraction in \[0, 1\]/);
  bad({ depth: NaN }, /long_context.depth = NaN/);
  bad({ tolerance: -0.1 }, /long_context.tolerance = -0.1/);
  bad({ needles: 0 }, /long_context.needles = 0: expected an integer in 1\.\.256/);
  bad({ hops: 0 }, /long_context.hops = 0/);
  bad({ distractors: -1 }, /long_context.distractors = -1/);
  bad({ countTokens: 5 as unknown as CountTokens }, /long_context.countTokens: expected a function/);
  bad(
    { task: "multi_needle", needles: 20, length: 256 },
    /long_context.length = 256: multi_needle reaches \d+ tokens, outside the tolerance of 5/,
  );
  bad({ task: "variable_tracking", length: 64 }, /long_context.length = 64: variable_tracking reaches/);
});

Deno.test("compact passkey: short contexts on target, the key of keyDigits digits once, needles between words at their depth", () => {
  for (const keyDigits of [1, 2, 4]) {
    for (const length of [32, 48, 64, 100, 128, 256, 512]) {
      for (const depth of DEPTHS) {
        const item = longContextItem({ ...DEFAULT_LONG_CONTEXT, compact: true, keyDigits, length, depth, seed: length + keyDigits });
        const where = `compact ${keyDigits} digits ${length} @${depth}`;
        const { context, question } = parts(item);
        assert.ok(Math.abs(item.length - length) <= 2, `${where}: ${item.length} tokens`);
        assert.equal(item.length, bytes(item.prompt));
        assert.equal(question, "key=");
        const keys = [...context.matchAll(/key=(\d+)\./g)].map((m) => m[1]);
        assert.deepEqual(keys, [item.answer], where);
        assert.match(item.answer, new RegExp(`^[1-9]\\d{${keyDigits - 1}}$`));
        // Between words: the depth error is at most half a word (filler words are at most 9 bytes with the space).
        const strip = (t: string) => t.replace(/key=\d+\./, " ").replace(/\s+/g, " ").trim();
        const haystack = bytes(strip(context)), before = bytes(strip(context.slice(0, context.indexOf("key="))));
        if (haystack > 0) assert.ok(Math.abs(before / haystack - depth) <= 6 / haystack, `${where}: depth ${before / haystack}`);
      }
    }
  }
  assert.throws(
    () => longContextItem({ ...DEFAULT_LONG_CONTEXT, task: "multi_needle", compact: true }),
    /long_context.compact = true: only the passkey task has a compact form/,
  );
  assert.throws(
    () => longContextItem({ ...DEFAULT_LONG_CONTEXT, keyDigits: 0 }),
    /long_context.keyDigits = 0: expected an integer in 1\.\.15/,
  );
});

Deno.test("passkey decoys: other numbers of the key's length under other labels, distinct from the key; the key keeps its depth", () => {
  for (const compact of [true, false]) {
    for (const length of compact ? [128, 256, 512] : [512, 2048]) {
      for (const depth of DEPTHS) {
        const cfg = { ...DEFAULT_LONG_CONTEXT, compact, keyDigits: 5, decoys: 3, length, depth, seed: length };
        const item = longContextItem(cfg), where = `${compact ? "compact" : "full"} ${length} @${depth}`;
        const { context } = parts(item);
        assert.ok(Math.abs(item.length - length) <= Math.max(2, 0.02 * length), `${where}: ${item.length} tokens`);
        const numbers = [...context.matchAll(/\d+/g)].map((m) => m[0]);
        const decoys = compact
          ? [...context.matchAll(/\b(?!key=)([a-z]+)=(\d+)\./g)].map((m) => m[2])
          : [...context.matchAll(/The [a-z]+ number is (\d+)\./g)].map((m) => m[1]);
        assert.equal(decoys.length, 3, `${where}: ${context}`);
        assert.ok(decoys.every((d) => /^[1-9]\d{4}$/.test(d) && d !== item.answer), where);
        assert.equal(new Set(decoys).size, 3, `${where}: decoys are distinct`);
        // Every number in the context is the key or a decoy: nothing else looks like an answer.
        assert.deepEqual(numbers.filter((n) => n !== item.answer).sort(), [...decoys].sort(), where);
        assert.deepEqual(compact ? [...context.matchAll(/\bkey=(\d+)\./g)].map((m) => m[1]) : solve(item), [item.answer], where);
        // The key's depth counts the haystack without any needle, decoys included.
        const needle = compact ? /\b[a-z]+=\d+\./g : /The pass key is \d+\. Remember it: \d+\.|The [a-z]+ number is \d+\./g;
        const strip = (t: string) => t.replace(needle, " ").replace(/\s+/g, " ").trim();
        const at = context.indexOf(compact ? "key=" : "The pass key is");
        const haystack = bytes(strip(context)), before = bytes(strip(context.slice(0, at)));
        const slack = compact ? 6 : SENTENCE;
        assert.ok(Math.abs(before / haystack - depth) <= slack / haystack + 1e-9, `${where}: depth ${before / haystack}`);
      }
    }
  }
  const bad = (over: Partial<LongContextConfig>, re: RegExp) =>
    assert.throws(() => longContextItem({ ...DEFAULT_LONG_CONTEXT, ...over }), re);
  bad({ decoys: -1 }, /long_context.decoys = -1: expected an integer in 0\.\.64/);
  bad({ task: "multi_needle", decoys: 2 }, /long_context.decoys = 2: only the passkey task has decoys/);
  bad({ keyDigits: 1, decoys: 9, compact: true, length: 256 }, /long_context.decoys = 9: keys of 1 digit\(s\) leave too few/);
});

Deno.test("copy drill: a digit string within the lengths, a newline, the same string as the answer; deterministic in the seed", () => {
  const lengths = new Set<number>();
  for (let seed = 0; seed < 200; seed++) {
    const { prompt, answer } = copyDrill(seed, 3, 6);
    assert.match(answer, /^\d{3,6}$/);
    assert.equal(prompt, `${answer}\n`);
    lengths.add(answer.length);
  }
  assert.deepEqual([...lengths].sort(), [3, 4, 5, 6]);
  assert.deepEqual(copyDrill(7, 8, 27), copyDrill(7, 8, 27));
  assert.notEqual(copyDrill(1, 20, 20).answer, copyDrill(2, 20, 20).answer);
  assert.throws(() => copyDrill(1, 5, 4), /copyDrill: lengths 5..4, expected integers with 1 <= min <= max/);
});
