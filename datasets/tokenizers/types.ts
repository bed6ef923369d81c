/**
 * The interface every tokenizer in `datasets/tokenizers/` implements, so datasets and
 * models can take any of them: text in, integer ids in `[0, vocabSize)` out, and back.
 */

/** A text tokenizer. `decode(encode(text)) === text` for the text it covers. */
export interface Tokenizer {
  /** A short identifier, e.g. "byte", "char", "gpt2". */
  readonly name: string;
  /** Number of ids; every id is in `[0, vocabSize)`. */
  readonly vocabSize: number;
  /** Ids of `text`. Never emits special tokens: add those explicitly. */
  encode(text: string): number[];
  /** Text of `ids`; throws on an id outside the vocabulary. */
  decode(ids: ArrayLike<number>): string;
  /** Padding id, where the vocabulary has one. */
  readonly pad?: number;
  /** Beginning-of-sequence id, where the vocabulary has one. */
  readonly bos?: number;
  /** End-of-sequence id, where the vocabulary has one. */
  readonly eos?: number;
  /** Separator id (e.g. between prompt and answer), where the vocabulary has one. */
  readonly sep?: number;
  /** Mask id (for masked-token objectives), where the vocabulary has one. */
  readonly mask?: number;
  /** Unknown-symbol id, for tokenizers that cannot encode every string. */
  readonly unk?: number;
}

/** Throws unless `id` is an integer id of a vocabulary of `vocabSize` ids. */
export function checkId(tokenizer: string, id: number, vocabSize: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw new Error(`${tokenizer}.decode: id ${id} is outside the vocabulary [0, ${vocabSize})`);
  }
}
