/**
 * Byte- and character-level tokenizers, for small models on the sanity tasks and on
 * plain-text corpora.
 *
 * - `ByteTokenizer`: ids 0..255 are the UTF-8 bytes of the text, followed by the specials
 *   PAD=256, BOS=257, EOS=258, SEP=259, MASK=260 (vocabulary 261). Covers every string.
 * - `CharTokenizer`: one id per character (Unicode code point) of a fixed alphabet, in the
 *   alphabet's order, followed by PAD, BOS, EOS, SEP, MASK, UNK. Characters outside the
 *   alphabet encode as UNK.
 *
 * Special ids decode to nothing, except UNK, which decodes to U+FFFD.
 */
import { checkId, type Tokenizer } from "./types.ts";

/** UTF-8 bytes plus five specials; round-trips every well-formed string. */
export class ByteTokenizer implements Tokenizer {
  readonly name = "byte";
  readonly vocabSize = 261;
  readonly pad = 256;
  readonly bos = 257;
  readonly eos = 258;
  readonly sep = 259;
  readonly mask = 260;
  #enc = new TextEncoder();
  #dec = new TextDecoder();

  /** The UTF-8 bytes of `text` (a lone surrogate becomes the bytes of U+FFFD). */
  encode(text: string): number[] {
    return Array.from(this.#enc.encode(text));
  }

  /** Text of the byte ids (specials skipped); malformed UTF-8 becomes U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      checkId(this.name, id, this.vocabSize);
      if (id < 256) bytes.push(id);
    }
    return this.#dec.decode(new Uint8Array(bytes));
  }
}

/** One id per character of a fixed alphabet, then PAD, BOS, EOS, SEP, MASK, UNK. */
export class CharTokenizer implements Tokenizer {
  readonly name = "char";
  readonly vocabSize: number;
  readonly pad: number;
  readonly bos: number;
  readonly eos: number;
  readonly sep: number;
  readonly mask: number;
  readonly unk: number;
  /** The alphabet: `chars[id]` is the character of ordinary id `id`. */
  readonly chars: readonly string[];
  #ids = new Map<string, number>();

  /**
   * @param alphabet the characters, as a string or a list of single characters (code
   *   points); order fixes the ids; duplicates and empty alphabets are rejected.
   */
  constructor(alphabet: string | Iterable<string>) {
    const chars = [...(typeof alphabet === "string" ? alphabet : alphabet)];
    if (chars.length === 0) throw new Error("charTokenizer.alphabet: expected at least one character");
    for (const c of chars) {
      if ([...c].length !== 1) throw new Error(`charTokenizer.alphabet: ${JSON.stringify(c)} is not a single character`);
      if (this.#ids.has(c)) throw new Error(`charTokenizer.alphabet: ${JSON.stringify(c)} appears twice`);
      this.#ids.set(c, this.#ids.size);
    }
    this.chars = chars;
    const n = chars.length;
    [this.pad, this.bos, this.eos, this.sep, this.mask, this.unk] = [n, n + 1, n + 2, n + 3, n + 4, n + 5];
    this.vocabSize = n + 6;
  }

  /** Ids of the characters of `text`; characters outside the alphabet give `unk`. */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const c of text) out.push(this.#ids.get(c) ?? this.unk);
    return out;
  }

  /** The characters of the ids; `unk` gives U+FFFD, the other specials nothing. */
  decode(ids: ArrayLike<number>): string {
    let s = "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      checkId(this.name, id, this.vocabSize);
      if (id < this.chars.length) s += this.chars[id];
      else if (id === this.unk) s += "\uFFFD";
    }
    return s;
  }

  /** Whether every character of `text` is in the alphabet (so it round-trips). */
  covers(text: string): boolean {
    for (const c of text) if (!this.#ids.has(c)) return false;
    return true;
  }
}

/** A char tokenizer over the distinct characters of `corpus`, sorted by code point. */
export function charTokenizerFromCorpus(corpus: string): CharTokenizer {
  const set = new Set(corpus);
  if (set.size === 0) throw new Error("charTokenizerFromCorpus: the corpus is empty");
  return new CharTokenizer([...set].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
}
