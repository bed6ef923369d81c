import assert from "node:assert/strict";
import { ByteTokenizer, CharTokenizer, charTokenizerFromCorpus } from "./byte.ts";

const TEXTS = ["", "hello world", "héllo wörld 🌍 — 日本語", "  tabs\tand\nnewlines\r\n", "fn main() { return x[0] + 1; }"];

Deno.test("byte tokenizer: ids are the UTF-8 bytes and round-trip", () => {
  const tok = new ByteTokenizer();
  assert.equal(tok.vocabSize, 261);
  assert.deepEqual([tok.pad, tok.bos, tok.eos, tok.sep, tok.mask], [256, 257, 258, 259, 260]);
  assert.deepEqual(tok.encode("Aé"), [0x41, 0xc3, 0xa9]);
  assert.deepEqual(tok.encode("🌍"), [0xf0, 0x9f, 0x8c, 0x8d]);
  for (const t of TEXTS) {
    const ids = tok.encode(t);
    assert.ok(ids.every((id) => id >= 0 && id < 256));
    assert.equal(tok.decode(ids), t);
  }
});

Deno.test("byte tokenizer: specials decode to nothing, bad ids throw", () => {
  const tok = new ByteTokenizer();
  assert.equal(tok.decode([tok.bos, ...tok.encode("hi"), tok.sep, tok.pad, tok.mask, tok.eos]), "hi");
  assert.equal(tok.decode(new Int32Array([104, 105])), "hi");
  assert.throws(() => tok.decode([261]), /outside the vocabulary/);
  assert.throws(() => tok.decode([-1]), /outside the vocabulary/);
  assert.throws(() => tok.decode([1.5]), /outside the vocabulary/);
});

Deno.test("char tokenizer: alphabet order fixes the ids, specials follow, round trip", () => {
  const tok = new CharTokenizer("ab😀c");
  assert.deepEqual(tok.chars, ["a", "b", "😀", "c"]);
  assert.equal(tok.vocabSize, 10);
  assert.deepEqual([tok.pad, tok.bos, tok.eos, tok.sep, tok.mask, tok.unk], [4, 5, 6, 7, 8, 9]);
  assert.deepEqual(tok.encode("c😀ba"), [3, 2, 1, 0]);
  assert.equal(tok.decode(tok.encode("abc😀cab")), "abc😀cab");
  assert.equal(tok.decode([tok.bos, 0, tok.eos, tok.pad]), "a");
});

Deno.test("char tokenizer: unknown characters become UNK, which decodes to U+FFFD", () => {
  const tok = new CharTokenizer(["x", "y"]);
  assert.deepEqual(tok.encode("xzy"), [0, tok.unk, 1]);
  assert.equal(tok.decode(tok.encode("xzy")), "x\uFFFDy");
  assert.equal(tok.covers("xyyx"), true);
  assert.equal(tok.covers("xyz"), false);
});

Deno.test("char tokenizer: rejects bad alphabets naming the problem", () => {
  assert.throws(() => new CharTokenizer(""), /at least one character/);
  assert.throws(() => new CharTokenizer("aba"), /"a" appears twice/);
  assert.throws(() => new CharTokenizer(["a", "bc"]), /"bc" is not a single character/);
});

Deno.test("char tokenizer from a corpus: sorted distinct characters, round-trips the corpus", () => {
  for (const t of TEXTS.slice(1)) {
    const tok = charTokenizerFromCorpus(t);
    assert.equal(tok.chars.length, new Set(t).size);
    assert.equal(tok.decode(tok.encode(t)), t);
    assert.ok(tok.encode(t).every((id) => id < tok.chars.length));
  }
  assert.deepEqual(charTokenizerFromCorpus("banana").chars, ["a", "b", "n"]);
  assert.throws(() => charTokenizerFromCorpus(""), /empty/);
});
