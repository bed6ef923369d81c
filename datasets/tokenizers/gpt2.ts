/**
 * GPT-2's byte-level BPE (vocabulary 50,257; `<|endoftext|>` = 50256), from the npm
 * package js-tiktoken, which ships the merge ranks with it, so nothing is downloaded.
 *
 * Loading is lazy: the ranks (about 0.5 MB of JavaScript, parsed into a large map) are
 * imported only on the first call to `gpt2Tokenizer()`, and that one tokenizer is shared
 * by every later call. Importing this module costs nothing.
 */
import type { Tiktoken } from "js-tiktoken/lite";
import { checkId, type Tokenizer } from "./types.ts";

/** `<|endoftext|>`: GPT-2's only special token, used as both BOS and EOS. */
export const GPT2_EOT = 50256;
/** Ids in GPT-2's vocabulary: 50,000 merges + 256 bytes + `<|endoftext|>`. */
export const GPT2_VOCAB_SIZE = 50257;

/** GPT-2 BPE. `encode` treats the text `<|endoftext|>` as ordinary text; see `encodeWithSpecial`. */
export class Gpt2Tokenizer implements Tokenizer {
  readonly name = "gpt2";
  readonly vocabSize = GPT2_VOCAB_SIZE;
  readonly bos = GPT2_EOT;
  readonly eos = GPT2_EOT;
  #bpe: Tiktoken;

  /** Use `gpt2Tokenizer()`, which loads the ranks once. */
  constructor(bpe: Tiktoken) {
    this.#bpe = bpe;
  }

  /** BPE ids of `text`; a literal `<|endoftext|>` in it is split like any other text. */
  encode(text: string): number[] {
    return this.#bpe.encode(text, [], []);
  }

  /** As `encode`, except each literal `<|endoftext|>` becomes the id 50256 (document separators). */
  encodeWithSpecial(text: string): number[] {
    return this.#bpe.encode(text, "all");
  }

  /** Text of `ids`; a sequence that cuts a multi-byte character gives U+FFFD there. */
  decode(ids: ArrayLike<number>): string {
    const list = Array.from(ids);
    for (const id of list) checkId(this.name, id, this.vocabSize);
    return this.#bpe.decode(list);
  }
}

let loading: Promise<Gpt2Tokenizer> | undefined;

/** The GPT-2 tokenizer, loading its ranks on the first call (lazily, once per process). */
export function gpt2Tokenizer(): Promise<Gpt2Tokenizer> {
  loading ??= (async () => {
    const [{ Tiktoken }, ranks] = await Promise.all([import("js-tiktoken/lite"), import("js-tiktoken/ranks/gpt2")]);
    return new Gpt2Tokenizer(new Tiktoken(ranks.default));
  })();
  return loading;
}
