import assert from "node:assert/strict";
import { Tokenizer } from "@huggingface/tokenizers";
import { gpt2Tokenizer } from "./gpt2.ts";
import {
  bpeBelow,
  byteLevelAlphabet,
  gpt2TokenizerConfigJson,
  gpt2TokenizerJson,
  parseTiktokenRanks,
  reconstructMerges,
} from "./gpt2_json.ts";
import { TINYSHAKESPEARE_PATH } from "../paths.ts";

let loading: Promise<{ json: Record<string, unknown>; hf: Tokenizer }> | undefined;

/** The tokenizer.json object, and `@huggingface/tokenizers` reading it as written to disk (JSON text), built once. */
function hfGpt2(): Promise<{ json: Record<string, unknown>; hf: Tokenizer }> {
  loading ??= (async () => {
    const json = await gpt2TokenizerJson();
    const hf = new Tokenizer(JSON.parse(JSON.stringify(json)), JSON.parse(JSON.stringify(gpt2TokenizerConfigJson(1024))));
    return { json, hf };
  })();
  return loading;
}

/** Asserts that `@huggingface/tokenizers` gives js-tiktoken's GPT-2 ids for `text` and decodes them back to it. */
async function assertSameAsTiktoken(text: string): Promise<void> {
  const { hf } = await hfGpt2();
  const ids = (await gpt2Tokenizer()).encode(text);
  assert.deepEqual(hf.encode(text).ids, ids, JSON.stringify(text.slice(0, 200)));
  if (ids.length > 0) assert.equal(hf.decode(ids), text, JSON.stringify(text.slice(0, 200)));
}

Deno.test("byteLevelAlphabet: GPT-2's bytes_to_unicode", () => {
  const a = byteLevelAlphabet();
  assert.equal(a.length, 256);
  assert.equal(new Set(a).size, 256);
  assert.equal(a[0x20], "Ġ");
  assert.equal(a[0x0a], "Ċ");
  assert.equal(a[0x00], "Ā");
  assert.equal(a[0x41], "A");
  assert.equal(a[0xad], "Ń", "soft hyphen is remapped");
  assert.ok(a.every((c) => c.length === 1 && c !== " "), "one UTF-16 unit each, never a space");
});

Deno.test("parseTiktokenRanks and reconstructMerges on a toy vocabulary", () => {
  // "a" "b" "c" "ab" "abc" "bc", in base64, over two lines.
  const tokens = parseTiktokenRanks("! 0 YQ== Yg== Yw==\n! 3 YWI= YWJj\n! 5 YmM=\n").map((b) => new TextDecoder().decode(b));
  assert.deepEqual(tokens, ["a", "b", "c", "ab", "abc", "bc"]);
  assert.deepEqual(reconstructMerges(tokens), [["a", "b"], ["ab", "c"], ["b", "c"]]);
  const ranks = new Map(tokens.map((t, r) => [t, r]));
  assert.deepEqual(bpeBelow(["a", "b", "c"], ranks, Infinity), ["abc"]);
  assert.deepEqual(bpeBelow(["b", "c", "a"], ranks, 5), ["b", "c", "a"]);
  assert.throws(() => parseTiktokenRanks("! 0 YQ==\n! 2 Yg=="), /rank 1 is missing/);
  assert.throws(() => reconstructMerges(["a", "b", "c", "abc"]), /ends in 3 parts/);
});

Deno.test("gpt2TokenizerJson: 50,257 ids, 50,000 merges, GPT-2's pipeline", async () => {
  const { json, hf } = await hfGpt2();
  const model = json.model as { type: string; vocab: Record<string, number>; merges: string[] };
  assert.equal(model.type, "BPE");
  assert.equal(Object.keys(model.vocab).length, 50257);
  assert.deepEqual(new Set(Object.values(model.vocab)).size, 50257);
  assert.equal(model.merges.length, 50000);
  // The head and tail of GPT-2's published merges.txt.
  assert.deepEqual(model.merges.slice(0, 5), ["Ġ t", "Ġ a", "h e", "i n", "r e"]);
  assert.equal(model.merges.at(-1), "Ġg azed");
  assert.ok(model.merges.every((m) => m.split(" ").length === 2), "each merge is two space-free symbols");
  assert.equal(json.normalizer, null);
  assert.deepEqual(json.pre_tokenizer, { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true });
  assert.equal((json.decoder as { type: string }).type, "ByteLevel");
  assert.deepEqual(json.added_tokens, [{
    id: 50256,
    content: "<|endoftext|>",
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }]);
  assert.equal(hf.token_to_id("<|endoftext|>"), 50256);
  assert.equal(hf.token_to_id("Ġthe"), 262);
  assert.equal(hf.token_to_id("!"), 0);
  assert.equal(hf.id_to_token(50255), "Ġgazed");
  const config = gpt2TokenizerConfigJson(1024);
  assert.equal(config.tokenizer_class, "GPT2Tokenizer");
  assert.deepEqual([config.bos_token, config.eos_token, config.unk_token], ["<|endoftext|>", "<|endoftext|>", "<|endoftext|>"]);
  assert.deepEqual([config.model_max_length, config.add_bos_token, config.clean_up_tokenization_spaces], [1024, false, false]);
  assert.notEqual(await gpt2TokenizerJson(), json, "a fresh object each call");
});

Deno.test("gpt2TokenizerJson: @huggingface/tokenizers gives js-tiktoken's GPT-2 ids on varied text", async () => {
  const texts = [
    "Hello world",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog. It's a dog's life, isn't it? We'll see; they'd've known.",
    "She said 'yes' and he said \"no\" -- it's THE END's END'S end'll",
    "function f(x: number): number {\n  return x ** 2 + 1; // comment\n}\n",
    "def main():\n    print(f'{a!r:>10}')\n\n\n    return None  \n",
    "1234567890 3.14159 -42 1e-9 2024-01-31 0x1F 1,000,000.00 $19.99",
    '!!!??? ... --- ===> <<<>>> (((()))) [[0,1],[2,3]] {"a": [1, 2]} @#$%^&*_+|~`',
    "héllo wörld 🌍 — 日本語のテキスト, emoji 👩‍👩‍👧 and Ελληνικά, Привет мир, مرحبا",
    "🙂🚀🔥 💯\u200b zero\u00a0width\u00adsoft \u0000\u007f\u0085 tab\there",
    " leading space",
    "   three leading spaces",
    "trailing spaces   ",
    "multiple    spaces   between  words\t\t and\ttabs",
    "\n\nnewlines\r\n\r\nand CRLF\n \n  \n",
    " ",
    "\n",
    "a",
    "",
    "                                                                                        wide indent",
    "----------------------------------------------------------------",
    "ÃÂÃÂÃÂÃÂÃÂÃÂÃÂÃÂ mojibake",
  ];
  for (const text of texts) await assertSameAsTiktoken(text);
});

Deno.test("gpt2TokenizerJson: the same ids on pseudo-random mixes of tricky characters", async () => {
  const pieces = [..."aeZ09 \n\t'sS.,!?-_/\\\"éßñ日本👍🏽\u00a0\u200b", "'s", "'re", "'ll", " the", "  ", "   ", "ing", "\r\n", "..."];
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) % pieces.length;
  for (let n = 0; n < 300; n++) {
    let text = "";
    for (let k = 0; k < 1 + (n % 40); k++) text += pieces[next()];
    await assertSameAsTiktoken(text);
  }
});

Deno.test("gpt2TokenizerJson: a literal <|endoftext|> is the special token, as encodeWithSpecial reads it", async () => {
  const { hf } = await hfGpt2();
  const gpt2 = await gpt2Tokenizer();
  const text = "first doc.<|endoftext|>Second doc<|endoftext|>";
  const ids = gpt2.encodeWithSpecial(text);
  assert.deepEqual(hf.encode(text).ids, ids);
  assert.equal(hf.decode(ids), text);
  assert.equal(hf.decode(ids, { skip_special_tokens: true }), "first doc.Second doc");
});

Deno.test("gpt2TokenizerJson: the same ids on the first 200 KB of Tiny Shakespeare", async () => {
  let corpus: string;
  try {
    corpus = await Deno.readTextFile(TINYSHAKESPEARE_PATH);
  } catch {
    console.log(`skipped: no corpus at ${TINYSHAKESPEARE_PATH}`);
    return;
  }
  await assertSameAsTiktoken(corpus.slice(0, 200_000));
});
