import assert from "node:assert/strict";
import { GPT2_EOT, GPT2_VOCAB_SIZE, gpt2Tokenizer } from "./gpt2.ts";

Deno.test("gpt2: vocabulary and special token", async () => {
  const tok = await gpt2Tokenizer();
  assert.equal(tok.vocabSize, 50257);
  assert.equal(GPT2_VOCAB_SIZE, 50257);
  assert.equal(tok.eos, 50256);
  assert.equal(tok.bos, GPT2_EOT);
  assert.equal(tok.decode([GPT2_EOT]), "<|endoftext|>");
  assert.equal(tok.decode([50255]).length > 0, true);
  assert.throws(() => tok.decode([50257]), /outside the vocabulary/);
  assert.equal(await gpt2Tokenizer(), tok, "loaded once and shared");
});

Deno.test("gpt2: known token ids", async () => {
  const tok = await gpt2Tokenizer();
  assert.deepEqual(tok.encode("Hello world"), [15496, 995]);
  assert.deepEqual(tok.encode("Hello, world!"), [15496, 11, 995, 0]);
  assert.deepEqual(tok.encode(" the"), [262]);
  assert.deepEqual(tok.encode("the"), [1169]);
  assert.deepEqual(tok.encode(""), []);
});

Deno.test("gpt2: round trip on varied text", async () => {
  const tok = await gpt2Tokenizer();
  const texts = [
    "The quick brown fox jumps over the lazy dog.",
    "héllo wörld 🌍 — 日本語のテキスト, emoji 👩‍👩‍👧 and Ελληνικά",
    "  leading spaces\tand\ttabs\n\n\nand   runs   of   spaces  \r\n",
    "function f(x: number): number {\n  return x ** 2 + 1; // comment\n}\n",
    "def main():\n    print(f'{a!r:>10}')\n",
    "1234567890 3.14159 -42 1e-9",
  ];
  for (const t of texts) {
    const ids = tok.encode(t);
    assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 50256), t);
    assert.equal(tok.decode(ids), t);
  }
  // BPE merges: far fewer tokens than bytes on English text.
  assert.ok(tok.encode(texts[0]).length < new TextEncoder().encode(texts[0]).length / 3);
});

Deno.test("gpt2: <|endoftext|> is plain text in encode, the special id in encodeWithSpecial", async () => {
  const tok = await gpt2Tokenizer();
  const ids = tok.encode("a<|endoftext|>b");
  assert.ok(!ids.includes(GPT2_EOT));
  assert.equal(tok.decode(ids), "a<|endoftext|>b");
  assert.deepEqual(tok.encodeWithSpecial("a<|endoftext|>b"), [...tok.encode("a"), GPT2_EOT, ...tok.encode("b")]);
});
