/**
 * GPT-2's byte-level BPE written as a Hugging Face `tokenizers` tokenizer.json object (plus a
 * matching tokenizer_config.json), so that a model folder exported for a model trained on GPT-2
 * ids loads in Transformers.js / `tokenizers` and tokenizes exactly as `gpt2Tokenizer()` does.
 *
 * Nothing is downloaded or copied: the vocabulary and the merges are derived from the merge
 * ranks that js-tiktoken ships (the same source as `gpt2.ts`).
 *
 * - js-tiktoken stores the ranks as text: lines of `<label> <first rank> <token> <token> ...`,
 *   each token its bytes in base64 and ranked one after the other from the first rank.
 *   GPT-2's ids are those ranks: 0..255 are the single bytes, 256..50255 the merged tokens.
 * - tokenizer.json spells each token as its bytes through GPT-2's byte-to-character table
 *   (`byteLevelAlphabet`), e.g. a space is "Ġ".
 * - tiktoken keeps only token ranks, while tokenizer.json needs merge *pairs*. The pair of the
 *   token of rank r is recovered by running BPE on its bytes with only the ranks below r: that
 *   stops at exactly two parts: the pair of merge r - 256 (counting from 0), which makes the token.
 * - Merges are written as "left right" strings, the format every `tokenizers` reader accepts
 *   (byte-level symbols never hold a space, so the split is unambiguous); the pair-array format
 *   of newer writers is read by @huggingface/tokenizers too, but not by `tokenizers` < 0.20.
 *
 * Building is the ranks import plus one short BPE run per token (a fraction of a second); each
 * call builds a fresh object, so callers may change it freely.
 */

/** `<|endoftext|>`: GPT-2's one special token (BOS, EOS and UNK), id 50256. */
const EOT_TEXT = "<|endoftext|>";
const EOT_ID = 50256;

/** The ranks object as js-tiktoken's rank modules export it. */
interface TiktokenRanks {
  pat_str: string;
  special_tokens: Record<string, number>;
  bpe_ranks: string;
}

/** A byte is printed as itself in GPT-2's table when it is a visible Latin-1 character (not space, not soft hyphen). */
function isVisibleByte(b: number): boolean {
  return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

/**
 * GPT-2's `bytes_to_unicode`: the character that stands for each byte (index = byte value). Visible
 * bytes stand for themselves; the other 68 take U+0100, U+0101, ... in byte order, so every byte gets
 * a printable, non-space character (space 0x20 -> "Ġ", newline 0x0a -> "Ċ").
 */
export function byteLevelAlphabet(): string[] {
  const out: string[] = [];
  let next = 0x100;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(isVisibleByte(b) ? b : next++));
  return out;
}

/** The bytes of a base64 string. */
function base64Bytes(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * The token bytes of js-tiktoken's compressed `bpe_ranks`, indexed by rank. Each line is
 * `<label> <first rank> <base64 token>...`, the tokens ranked consecutively from the first rank.
 * Throws when a rank is missing or given twice.
 */
export function parseTiktokenRanks(bpeRanks: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const line of bpeRanks.split("\n")) {
    if (line === "") continue;
    const [, firstStr, ...tokens] = line.split(" ");
    const first = Number.parseInt(firstStr, 10);
    tokens.forEach((token, i) => {
      if (out[first + i] !== undefined) throw new Error(`tiktoken ranks: rank ${first + i} given twice`);
      out[first + i] = base64Bytes(token);
    });
  }
  for (let r = 0; r < out.length; r++) {
    if (out[r] === undefined) throw new Error(`tiktoken ranks: rank ${r} is missing`);
  }
  return out;
}

/** A token's bytes spelled in the byte-level alphabet (one UTF-16 unit per byte). */
function byteLevelString(bytes: Uint8Array, alphabet: readonly string[]): string {
  let s = "";
  for (const b of bytes) s += alphabet[b];
  return s;
}

/**
 * Runs tiktoken-style BPE on `symbols` (one string per byte): repeatedly joins the adjacent pair
 * whose join has the lowest rank, leftmost on ties, considering only ranks below `maxRank`.
 * Returns the parts left when no such pair remains.
 */
export function bpeBelow(symbols: readonly string[], ranks: ReadonlyMap<string, number>, maxRank: number): string[] {
  const parts = [...symbols];
  while (parts.length > 1) {
    let best = -1;
    let bestRank = maxRank;
    for (let i = 0; i < parts.length - 1; i++) {
      const rank = ranks.get(parts[i] + parts[i + 1]);
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        best = i;
      }
    }
    if (best < 0) break;
    parts.splice(best, 2, parts[best] + parts[best + 1]);
  }
  return parts;
}

/**
 * The merge pairs of a byte-level vocabulary given in rank order (`tokens[r]` is the token of rank r),
 * in merge order: one pair per multi-symbol token, found by `bpeBelow` on the token with the ranks
 * below its own. Throws when a token does not end in exactly two parts (it could not be built by BPE).
 */
export function reconstructMerges(tokens: readonly string[]): [string, string][] {
  const ranks = new Map<string, number>();
  tokens.forEach((t, r) => ranks.set(t, r));
  const merges: [string, string][] = [];
  tokens.forEach((token, rank) => {
    if (token.length < 2) return;
    const parts = bpeBelow(token.split(""), ranks, rank);
    if (parts.length !== 2) throw new Error(`BPE merges: token ${rank} (${JSON.stringify(token)}) ends in ${parts.length} parts, not 2`);
    merges.push([parts[0], parts[1]]);
  });
  return merges;
}

/** The vocabulary and merges of GPT-2 in tokenizer.json's spelling, derived from js-tiktoken's ranks. */
async function gpt2VocabAndMerges(): Promise<{ tokens: string[]; merges: [string, string][] }> {
  const ranks: TiktokenRanks = (await import("js-tiktoken/ranks/gpt2")).default;
  const alphabet = byteLevelAlphabet();
  const tokens = parseTiktokenRanks(ranks.bpe_ranks).map((bytes) => byteLevelString(bytes, alphabet));
  if (tokens.length !== EOT_ID || ranks.special_tokens[EOT_TEXT] !== EOT_ID) {
    throw new Error(
      `gpt2 ranks: expected ${EOT_ID} tokens and ${EOT_TEXT} = ${EOT_ID}, got ${tokens.length} and ${ranks.special_tokens[EOT_TEXT]}`,
    );
  }
  return { tokens, merges: reconstructMerges(tokens) };
}

/** ByteLevel settings of the GPT-2 pipeline: the GPT-2 split regex, no prefix space. */
/**
 * The `model` section of a byte-level BPE tokenizer.json: `vocab` (byte-level string -> id) and
 * `merges` as "left right" strings (the format every `tokenizers` reader accepts).
 */
export function bpeModelJson(vocab: Record<string, number>, merges: readonly [string, string][]): Record<string, unknown> {
  return {
    type: "BPE",
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
    vocab,
    merges: merges.map(([a, b]) => `${a} ${b}`),
  };
}

function byteLevel(trimOffsets: boolean): Record<string, unknown> {
  return { type: "ByteLevel", add_prefix_space: false, trim_offsets: trimOffsets, use_regex: true };
}

/** `<|endoftext|>` as an added token, less its id (tokenizer_config's added_tokens_decoder keys it by id). */
function eotToken(): Record<string, unknown> {
  return { content: EOT_TEXT, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/**
 * GPT-2's tokenizer as a tokenizer.json object: no normalizer, ByteLevel pre-tokenizer (GPT-2 regex,
 * no prefix space), BPE with the 50,257-entry vocabulary and the 50,000 merges, ByteLevel decoder, and
 * `<|endoftext|>` (50256) as a special added token. As in Hugging Face's GPT-2, a literal
 * "<|endoftext|>" in the text is read as that token (`Gpt2Tokenizer.encodeWithSpecial`, not `encode`).
 */
export async function gpt2TokenizerJson(): Promise<Record<string, unknown>> {
  const { tokens, merges } = await gpt2VocabAndMerges();
  const vocab: Record<string, number> = {};
  tokens.forEach((t, id) => vocab[t] = id);
  vocab[EOT_TEXT] = EOT_ID;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [{ id: EOT_ID, ...eotToken() }],
    normalizer: null,
    pre_tokenizer: byteLevel(true),
    post_processor: byteLevel(false),
    decoder: byteLevel(true),
    model: bpeModelJson(vocab, merges),
  };
}

/**
 * tokenizer_config.json for `gpt2TokenizerJson`: a GPT2Tokenizer whose BOS, EOS and UNK are
 * `<|endoftext|>`, no BOS added to inputs, no clean-up of spaces on decode (so decode inverts encode),
 * and `modelMaxLength` as the context length.
 */
export function gpt2TokenizerConfigJson(modelMaxLength: number): Record<string, unknown> {
  return {
    tokenizer_class: "GPT2Tokenizer",
    bos_token: EOT_TEXT,
    eos_token: EOT_TEXT,
    unk_token: EOT_TEXT,
    added_tokens_decoder: { [String(EOT_ID)]: eotToken() },
    add_bos_token: false,
    add_prefix_space: false,
    clean_up_tokenization_spaces: false,
    errors: "replace",
    model_max_length: modelMaxLength,
    pad_token: EOT_TEXT, // GPT-2 has no padding token; batched generation pads with <|endoftext|>, masked
    padding_side: "left", // batched generation: each row's newest token last
  };
}
