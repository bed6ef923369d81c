import assert from "node:assert/strict";
import { deriveSeed, Rng } from "../lib/util/rng.ts";
import { ByteTokenizer, CharTokenizer } from "./tokenizers/byte.ts";
import type { Tokenizer } from "./tokenizers/types.ts";
import {
  addDecimal,
  DEFAULT_SANITY,
  lmWindows,
  loadTextCorpus,
  SANITY_TASKS,
  sanityAlphabet,
  type SanityConfig,
  type SanityItem,
  sanityItem,
  sanityItems,
  TINYSHAKESPEARE_PATH,
} from "./sanity.ts";

/** Recomputes the answer of an item from its prompt alone, independently of sanity.ts. */
function solve(item: SanityItem, reverseSum = false): string {
  const m = item.prompt.match(/^([a-z]+):(.*)=$/su);
  assert.ok(m, `prompt format: ${item.prompt}`);
  assert.equal(m[1], item.task);
  const body = m[2];
  switch (item.task) {
    case "copy":
      return body;
    case "reverse":
      return Array.from(body).reverse().join("");
    case "sort":
      return Array.from(body).sort().join("");
    case "addition": {
      const [a, b] = body.split("+");
      const sum = (BigInt(a) + BigInt(b)).toString();
      return reverseSum ? Array.from(sum).reverse().join("") : sum;
    }
    case "parity":
      return String(Array.from(body).reduce((acc, b) => acc ^ Number(b), 0));
    case "recall": {
      const [pairs, key] = body.split("|");
      const map = new Map<string, string>();
      for (let i = 0; i < pairs.length; i += 2) map.set(pairs[i], pairs[i + 1]);
      assert.equal(map.size, pairs.length / 2, "recall keys are distinct");
      return map.get(key)!;
    }
  }
}

/** The size of an item's problem, read back from its prompt. */
function sizeOf(item: SanityItem): number {
  const body = item.prompt.slice(item.prompt.indexOf(":") + 1, -1);
  if (item.task === "addition") return body.split("+")[0].length;
  if (item.task === "recall") return body.split("|")[0].length / 2;
  return [...body].length;
}

Deno.test("sanity: every task's answer matches an independent solver", () => {
  const items = sanityItems(3000, { ...DEFAULT_SANITY, minSize: 1, maxSize: 12, seed: 7 });
  for (const item of items) assert.equal(item.answer, solve(item), JSON.stringify(item));
  for (const t of SANITY_TASKS) assert.ok(items.filter((i) => i.task === t).length > 300, `task ${t} is drawn`);
});

Deno.test("sanity: reversed sums, and long additions beyond float precision", () => {
  const cfg: SanityConfig = { ...DEFAULT_SANITY, tasks: ["addition"], minSize: 20, maxSize: 30, reverseSum: true };
  for (const item of sanityItems(200, cfg)) assert.equal(item.answer, solve(item, true));
  assert.equal(addDecimal("999", "1"), "1000");
  assert.equal(addDecimal("0", "0"), "0");
  assert.equal(addDecimal("12345678901234567890", "98765432109876543210"), "111111111011111111100");
});

Deno.test("sanity: sizes stay in [minSize, maxSize] and cover the range", () => {
  const cfg = { ...DEFAULT_SANITY, minSize: 3, maxSize: 6 };
  const items = sanityItems(2000, cfg);
  for (const t of SANITY_TASKS) {
    const sizes = new Set(items.filter((i) => i.task === t).map(sizeOf));
    assert.deepEqual([...sizes].sort(), [3, 4, 5, 6], t);
  }
  for (const item of items.filter((i) => i.task === "addition")) {
    const [a, b] = item.prompt.slice(9, -1).split("+");
    assert.equal(a.length, b.length);
    assert.ok(a[0] !== "0" && b[0] !== "0", "no leading zeros");
  }
  const rng = new Rng(1);
  assert.equal(sizeOf(sanityItem("copy", 17, rng)), 17);
  assert.equal(sizeOf(sanityItem("recall", 26, rng)), 26);
  assert.equal(sanityItem("parity", 40, rng).answer.length, 1);
});

Deno.test("sanity: deterministic in the seed, prefixes independent of n", () => {
  const a = sanityItems(500, { ...DEFAULT_SANITY, seed: 3 });
  assert.deepEqual(sanityItems(500, { ...DEFAULT_SANITY, seed: 3 }), a);
  assert.deepEqual(sanityItems(100, { ...DEFAULT_SANITY, seed: 3 }), a.slice(0, 100));
  const b = sanityItems(500, { ...DEFAULT_SANITY, seed: 4 });
  assert.ok(a.filter((x, i) => x.prompt === b[i].prompt).length < 50);
  const r1 = new Rng(deriveSeed(9, "x")), r2 = new Rng(deriveSeed(9, "x"));
  assert.deepEqual(sanityItem("sort", 10, r1), sanityItem("sort", 10, r2));
});

Deno.test("sanity: custom alphabet is used and validated", () => {
  const cfg = { ...DEFAULT_SANITY, tasks: ["copy", "sort"] as const, alphabet: "XYZ🙂" };
  for (const item of sanityItems(200, cfg)) {
    assert.ok([...item.answer].every((c) => "XYZ🙂".includes(c)));
    assert.equal(item.answer, solve(item));
  }
  assert.throws(() => sanityItems(1, { ...DEFAULT_SANITY, alphabet: "a" }), /sanity.alphabet.*at least 2/);
  assert.throws(() => sanityItems(1, { ...DEFAULT_SANITY, alphabet: "ab=" }), /sanity.alphabet: "=" is reserved/);
  assert.throws(() => sanityItems(1, { ...DEFAULT_SANITY, alphabet: "abca" }), /distinct/);
  assert.throws(() => sanityItems(1, { ...DEFAULT_SANITY, minSize: 0 }), /sanity.minSize = 0/);
  assert.throws(() => sanityItems(1, { ...DEFAULT_SANITY, maxSize: 1 }), /sanity.maxSize = 1/);
  assert.throws(() => sanityItems(1, { ...DEFAULT_SANITY, maxSize: 27 }), /recall has at most 26/);
  assert.throws(() => sanityItems(1, { ...DEFAULT_SANITY, tasks: [] }), /sanity.tasks/);
  assert.throws(() => sanityItems(1, { ...DEFAULT_SANITY, tasks: ["nope" as "copy"] }), /"nope" is not one of/);
});

Deno.test("sanity: sanityAlphabet covers every prompt and answer", () => {
  const tok = new CharTokenizer(sanityAlphabet());
  for (const item of sanityItems(1000)) {
    assert.ok(tok.covers(item.prompt + item.answer), item.prompt);
    assert.equal(tok.decode(tok.encode(item.prompt)), item.prompt);
  }
});

/** Checks windows: shift by one, and the mask is exactly the answer (+eos) tokens. */
function checkWindows(items: SanityItem[], tok: Tokenizer, seqLen: number, pack: boolean, eos: boolean) {
  const w = lmWindows(items, tok, { seqLen, pack, eos });
  assert.equal(w.ids.length, w.count * seqLen);
  assert.equal(w.targets.length, w.count * seqLen);
  assert.equal(w.mask.length, w.count * seqLen);
  if (!pack) assert.equal(w.count, items.length);
  else assert.ok(w.count < items.length);
  // Walk the windows, re-finding each item in order.
  let k = 0, scored = 0;
  for (let r = 0; r < w.count; r++) {
    const ids = Array.from(w.ids.subarray(r * seqLen, (r + 1) * seqLen));
    const tg = Array.from(w.targets.subarray(r * seqLen, (r + 1) * seqLen));
    const mk = Array.from(w.mask.subarray(r * seqLen, (r + 1) * seqLen));
    for (let t = 0; t + 1 < seqLen; t++) assert.equal(tg[t], ids[t + 1], "targets are ids shifted by one");
    let t = 0;
    while (k < items.length && ids[t] === tok.bos) {
      const p = tok.encode(items[k].prompt), a = tok.encode(items[k].answer);
      if (eos) a.push(tok.eos!);
      assert.deepEqual(ids.slice(t + 1, t + 1 + p.length), p);
      const start = t + p.length; // position whose target is the first answer token
      assert.deepEqual(tg.slice(start, start + a.length), a);
      assert.ok(mk.slice(t, start).every((m) => m === 0), "prompt unmasked");
      assert.ok(mk.slice(start, start + a.length).every((m) => m === 1), "answer masked");
      assert.equal(tok.decode(tg.slice(start, start + a.length)), items[k].answer);
      scored += a.length;
      t = start + a.length + 1; // the next item's bos
      k++;
      if (!pack) break;
    }
    assert.ok(mk.slice(t - 1).every((m) => m === 0), "padding unmasked");
    assert.ok(ids.slice(t).every((id) => id === w.padId), "rest is padding");
  }
  assert.equal(k, items.length, "every item placed, in order");
  assert.equal(w.mask.reduce((s, m) => s + m, 0), scored, "mask covers exactly the answers");
}

Deno.test("lmWindows: packed and unpacked, byte and char tokenizers, with and without eos", () => {
  const items = sanityItems(300, { ...DEFAULT_SANITY, seed: 11 });
  for (const tok of [new ByteTokenizer(), new CharTokenizer(sanityAlphabet())]) {
    for (const pack of [true, false]) for (const eos of [true, false]) checkWindows(items, tok, 64, pack, eos);
  }
});

Deno.test("lmWindows: concrete layout and errors", () => {
  const tok = new CharTokenizer("ab:=cpy");
  const item: SanityItem = { task: "copy", prompt: "copy:ab=", answer: "ab" };
  const w = lmWindows([item], tok, { seqLen: 12 });
  const B = tok.bos, E = tok.eos, P = tok.pad;
  const enc = (s: string) => tok.encode(s);
  assert.deepEqual(Array.from(w.ids), [B, ...enc("copy:ab=ab"), E]);
  assert.deepEqual(Array.from(w.targets), [...enc("copy:ab=ab"), E, P]);
  assert.deepEqual(Array.from(w.mask), [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0]);
  assert.equal(w.padId, P);
  assert.equal(lmWindows([item, item], tok, { seqLen: 23 }).count, 1, "two items of 12 tokens fill 24 exactly");
  assert.equal(lmWindows([item, item], tok, { seqLen: 22 }).count, 2, "an item never straddles windows");
  assert.throws(() => lmWindows([item], tok, { seqLen: 10 }), /item 0 \(copy\) has 12 tokens, more than seqLen \+ 1 = 11/);
  assert.throws(() => lmWindows([item], tok, { seqLen: 1 }), /lmWindows.seqLen = 1/);
  const nb = lmWindows([item], tok, { seqLen: 10, bos: false, eos: false });
  assert.deepEqual(Array.from(nb.ids), enc("copy:ab=ab"));
  assert.deepEqual(Array.from(nb.targets), [...enc("opy:ab=ab"), P]);
  assert.deepEqual(Array.from(nb.mask), [0, 0, 0, 0, 0, 0, 0, 1, 1, 0]);
});

Deno.test("loadTextCorpus: a clear error naming a missing path, and the split", async () => {
  await assert.rejects(
    () => loadTextCorpus("/nonexistent/dir/input.txt"),
    /text corpus \/nonexistent\/dir\/input.txt: cannot read it \(no such file\)/,
  );
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, "0123456789");
    assert.deepEqual(await loadTextCorpus(path, 0.3), { path, train: "0123456", val: "789" });
    assert.deepEqual(await loadTextCorpus(path, 0), { path, train: "0123456789", val: "" });
    await Deno.writeTextFile(path, "ab🌍cd"); // the cut at 3 of 6 code units falls inside the emoji
    const c = await loadTextCorpus(path, 0.5);
    assert.equal(c.train + c.val, "ab🌍cd");
    assert.equal(c.train, "ab🌍");
    await assert.rejects(() => loadTextCorpus(path, 1), /loadTextCorpus.valFraction = 1/);
  } finally {
    await Deno.remove(path);
  }
});

const present = await Deno.stat(TINYSHAKESPEARE_PATH).then(() => true, () => false);
if (!present) console.log(`skipping the tinyshakespeare test: ${TINYSHAKESPEARE_PATH} is absent`);

Deno.test({
  name: "loadTextCorpus: tinyshakespeare splits 90/10 and round-trips through the char tokenizer",
  ignore: !present,
  fn: async () => {
    const c = await loadTextCorpus(TINYSHAKESPEARE_PATH, 0.1);
    const n = c.train.length + c.val.length;
    assert.ok(n > 1_000_000, `corpus has ${n} chars`);
    assert.ok(Math.abs(c.val.length / n - 0.1) < 1e-5);
    assert.ok(c.train.startsWith("First Citizen"));
    const tok = new CharTokenizer([...new Set(c.train + c.val)].sort());
    assert.equal(tok.vocabSize - 6, 65, "tinyshakespeare has 65 distinct characters");
    const sample = c.val.slice(0, 5000);
    assert.equal(tok.decode(tok.encode(sample)), sample);
  },
});
