/**
 * Phase 1 sanity set: small algorithmic tasks a char- or byte-level model should learn
 * quickly, to check that a model and its training loop work before real data.
 *
 * Every item is a prompt and an answer, both plain strings; the prompt names the task and
 * ends with `=`, and the model is scored on the answer only:
 *
 * - copy: `copy:hello=` -> `hello` (size: symbols)
 * - reverse: `reverse:abc=` -> `cba` (size: symbols)
 * - sort: `sort:dbca=` -> `abcd` (size: symbols, sorted by code point)
 * - addition: `addition:123+989=` -> `1112` (size: digits per operand)
 * - parity: `parity:10110=` -> `1` (size: bits; the answer is the count of 1s mod 2)
 * - recall: `recall:a3c7b1|c=` -> `7` (size: key-value pairs with distinct keys a-z, then `|` and a key)
 *
 * Also here: a plain-text corpus loader split into train and validation, and
 * `lmWindows`, which packs tokenized items into fixed-length windows for next-token
 * training with the loss mask on the answers.
 */
import { deriveSeed, Rng } from "../lib/util/rng.ts";
import type { Tokenizer } from "./tokenizers/types.ts";

/** The sanity tasks. */
export const SANITY_TASKS = ["copy", "reverse", "sort", "addition", "parity", "recall"] as const;
export type SanityTask = typeof SANITY_TASKS[number];

/** One problem: the model reads `prompt` and must produce `answer`. */
export interface SanityItem {
  task: SanityTask;
  prompt: string;
  answer: string;
}

export interface SanityConfig {
  /** Tasks to draw from, each item uniformly among them. Default: all six. */
  tasks: readonly SanityTask[];
  /** Smallest problem size (see the table above), drawn uniformly per item in [minSize, maxSize]. Default 2. */
  minSize: number;
  /** Largest problem size. Default 8. Recall has at most 26 pairs (the keys are a-z). */
  maxSize: number;
  /** Symbols of copy, reverse and sort sequences; no `:`, `=`, `+` or `|`. Default "abcdefghijklmnopqrstuvwxyz". */
  alphabet: string;
  /** Write addition answers least significant digit first (easier to learn left to right). Default false. */
  reverseSum: boolean;
  seed: number;
}

export const DEFAULT_SANITY: SanityConfig = {
  tasks: SANITY_TASKS,
  minSize: 2,
  maxSize: 8,
  alphabet: "abcdefghijklmnopqrstuvwxyz",
  reverseSum: false,
  seed: 0,
};

/** Characters the prompts use besides the alphabet and digits. */
const RESERVED = ":=+|";
const DIGITS = "0123456789";
const KEYS = "abcdefghijklmnopqrstuvwxyz";

function validate(cfg: SanityConfig): void {
  const { tasks, minSize, maxSize, alphabet } = cfg;
  if (tasks.length === 0) throw new Error("sanity.tasks: expected at least one of " + SANITY_TASKS.join(", "));
  for (const t of tasks) {
    if (!SANITY_TASKS.includes(t)) throw new Error(`sanity.tasks: ${JSON.stringify(t)} is not one of ${SANITY_TASKS.join(", ")}`);
  }
  if (!Number.isInteger(minSize) || minSize < 1) throw new Error(`sanity.minSize = ${minSize}: expected an integer >= 1`);
  if (!Number.isInteger(maxSize) || maxSize < minSize) {
    throw new Error(`sanity.maxSize = ${maxSize}: expected an integer >= minSize (${minSize})`);
  }
  if (tasks.includes("recall") && maxSize > KEYS.length) {
    throw new Error(`sanity.maxSize = ${maxSize}: recall has at most ${KEYS.length} key-value pairs`);
  }
  const chars = [...alphabet];
  if (chars.length < 2) throw new Error(`sanity.alphabet = ${JSON.stringify(alphabet)}: expected at least 2 characters`);
  if (new Set(chars).size !== chars.length) throw new Error(`sanity.alphabet = ${JSON.stringify(alphabet)}: characters must be distinct`);
  for (const c of chars) {
    if (RESERVED.includes(c)) throw new Error(`sanity.alphabet: ${JSON.stringify(c)} is reserved (not allowed: ${RESERVED})`);
  }
}

/** Every character a prompt or answer under `cfg` can contain, e.g. to build a `CharTokenizer`. */
export function sanityAlphabet(cfg: SanityConfig = DEFAULT_SANITY): string {
  const all = new Set([...cfg.tasks.join(""), ...RESERVED, ...DIGITS, ...KEYS, ...cfg.alphabet]);
  return [...all].sort().join("");
}

/** `n` random symbols of `chars`. */
function symbols(rng: Rng, chars: readonly string[], n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(chars[rng.int(chars.length)]);
  return out;
}

/** A random `n`-digit number as a string (no leading zero unless n = 1). */
function number(rng: Rng, n: number): string {
  let s = n === 1 ? DIGITS[rng.int(10)] : DIGITS[1 + rng.int(9)];
  for (let i = 1; i < n; i++) s += DIGITS[rng.int(10)];
  return s;
}

/** Schoolbook addition of two decimal strings (any length). */
export function addDecimal(a: string, b: string): string {
  let out = "", carry = 0;
  for (let i = a.length - 1, j = b.length - 1; i >= 0 || j >= 0 || carry; i--, j--) {
    const d = (i >= 0 ? a.charCodeAt(i) - 48 : 0) + (j >= 0 ? b.charCodeAt(j) - 48 : 0) + carry;
    out = String(d % 10) + out;
    carry = d >= 10 ? 1 : 0;
  }
  return out;
}

/** One item of `task` with problem size `size`, drawn from `rng`. */
export function sanityItem(task: SanityTask, size: number, rng: Rng, cfg: SanityConfig = DEFAULT_SANITY): SanityItem {
  const alphabet = [...cfg.alphabet];
  switch (task) {
    case "copy": {
      const s = symbols(rng, alphabet, size).join("");
      return { task, prompt: `copy:${s}=`, answer: s };
    }
    case "reverse": {
      const s = symbols(rng, alphabet, size);
      return { task, prompt: `reverse:${s.join("")}=`, answer: s.toReversed().join("") };
    }
    case "sort": {
      const s = symbols(rng, alphabet, size);
      const sorted = s.toSorted((x, y) => x.codePointAt(0)! - y.codePointAt(0)!);
      return { task, prompt: `sort:${s.join("")}=`, answer: sorted.join("") };
    }
    case "addition": {
      const a = number(rng, size), b = number(rng, size);
      const sum = addDecimal(a, b);
      return { task, prompt: `addition:${a}+${b}=`, answer: cfg.reverseSum ? [...sum].reverse().join("") : sum };
    }
    case "parity": {
      const bits = symbols(rng, ["0", "1"], size);
      const ones = bits.filter((b) => b === "1").length;
      return { task, prompt: `parity:${bits.join("")}=`, answer: String(ones % 2) };
    }
    case "recall": {
      const keys = rng.permutation(KEYS.length).subarray(0, size);
      const pairs = Array.from(keys, (k) => KEYS[k] + DIGITS[rng.int(10)]);
      const q = pairs[rng.int(size)];
      return { task, prompt: `recall:${pairs.join("")}|${q[0]}=`, answer: q[1] };
    }
  }
}

/**
 * `n` items, each task uniform among `cfg.tasks` and each size uniform in
 * [minSize, maxSize]; deterministic in `cfg.seed`, and the first k items do not depend
 * on `n`.
 */
export function sanityItems(n: number, cfg: SanityConfig = DEFAULT_SANITY): SanityItem[] {
  if (!Number.isInteger(n) || n < 0) throw new Error(`sanityItems: n = ${n}: expected an integer >= 0`);
  validate(cfg);
  const rng = new Rng(deriveSeed(cfg.seed, "sanity"));
  const out: SanityItem[] = [];
  for (let i = 0; i < n; i++) {
    const task = cfg.tasks[rng.int(cfg.tasks.length)];
    const size = cfg.minSize + rng.int(cfg.maxSize - cfg.minSize + 1);
    out.push(sanityItem(task, size, rng, cfg));
  }
  return out;
}

/** Where the tinyshakespeare corpus lives on this project's machines. */
export { TINYSHAKESPEARE_PATH } from "./paths.ts";

/** A plain-text corpus cut in two: the first part for training, the rest for validation. */
export interface TextCorpus {
  path: string;
  train: string;
  val: string;
}

/**
 * Reads the UTF-8 text at `path` and splits it at `1 - valFraction` of its length
 * (contiguous, never inside a surrogate pair). Throws an error naming the path when it
 * cannot be read.
 */
export async function loadTextCorpus(path: string, valFraction = 0.1): Promise<TextCorpus> {
  if (!(valFraction >= 0 && valFraction < 1)) throw new Error(`loadTextCorpus.valFraction = ${valFraction}: expected in [0, 1)`);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "no such file" : String(e);
    throw new Error(`text corpus ${path}: cannot read it (${why})`);
  }
  let cut = Math.round(text.length * (1 - valFraction));
  const code = text.charCodeAt(cut);
  if (code >= 0xdc00 && code <= 0xdfff) cut++; // keep a surrogate pair together
  return { path, train: text.slice(0, cut), val: text.slice(cut) };
}

export interface WindowConfig {
  /** Tokens per window (the model's context length). */
  seqLen: number;
  /** Put `tokenizer.bos` before each item, if it has one. Default true. */
  bos?: boolean;
  /** Put `tokenizer.eos` after each answer, if it has one, scored with the answer so the model learns to stop. Default true. */
  eos?: boolean;
  /** Several items per window, back to back (an item never straddles two windows); else one item per window. Default true. */
  pack?: boolean;
}

/** Fixed-length training windows, row-major [count, seqLen]. */
export interface LmWindows {
  /** Input ids. */
  ids: Int32Array;
  /** The next token at each position (ids shifted left by one). */
  targets: Int32Array;
  /** 1 where the target is an answer token (or the EOS after it), else 0: multiply into the loss. */
  mask: Float32Array;
  count: number;
  seqLen: number;
  /** Id used to fill the rest of a window: `pad`, else `eos`, else 0. */
  padId: number;
  /** The window each item was packed into (item order), when built from items. */
  itemRow?: Int32Array;
}

/**
 * Tokenizes the items (prompt and answer separately, so the answer's tokens are exact)
 * and lays them into windows of `seqLen` inputs. Each item is the token run
 * [bos] prompt answer [eos]; a window holds `seqLen + 1` tokens of such runs, then padding,
 * and yields ids = tokens[0..seqLen), targets = tokens[1..seqLen]. The mask is 1 exactly
 * where the target is an answer token (or its eos). Throws if an item does not fit.
 */
export function lmWindows(
  items: readonly { prompt: string; answer: string; task?: string }[],
  tokenizer: Tokenizer,
  cfg: WindowConfig,
): LmWindows {
  const { seqLen } = cfg;
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new Error(`lmWindows.seqLen = ${seqLen}: expected an integer >= 2`);
  const bos = (cfg.bos ?? true) ? tokenizer.bos : undefined;
  const eos = (cfg.eos ?? true) ? tokenizer.eos : undefined;
  const pack = cfg.pack ?? true;
  const padId = tokenizer.pad ?? tokenizer.eos ?? 0;
  const width = seqLen + 1;

  // Windows of width tokens, each with a flag per token: is it an answer token?
  const rows: { tokens: number[]; answer: boolean[] }[] = [];
  let row: { tokens: number[]; answer: boolean[] } | undefined;
  const itemRow = new Int32Array(items.length);
  for (const [i, item] of items.entries()) {
    const prompt = tokenizer.encode(item.prompt), answer = tokenizer.encode(item.answer);
    if (bos !== undefined) prompt.unshift(bos);
    if (eos !== undefined) answer.push(eos);
    const len = prompt.length + answer.length;
    if (len > width) {
      throw new Error(`lmWindows: item ${i}${item.task ? ` (${item.task})` : ""} has ${len} tokens, more than seqLen + 1 = ${width}`);
    }
    if (!row || !pack || row.tokens.length + len > width) rows.push(row = { tokens: [], answer: [] });
    itemRow[i] = rows.length - 1;
    row.tokens.push(...prompt, ...answer);
    row.answer.push(...prompt.map(() => false), ...answer.map(() => true));
  }

  const count = rows.length;
  const ids = new Int32Array(count * seqLen).fill(padId);
  const targets = new Int32Array(count * seqLen).fill(padId);
  const mask = new Float32Array(count * seqLen);
  rows.forEach(({ tokens, answer }, r) => {
    const o = r * seqLen;
    for (let t = 0; t < tokens.length; t++) {
      if (t < seqLen) ids[o + t] = tokens[t];
      if (t > 0) {
        targets[o + t - 1] = tokens[t];
        mask[o + t - 1] = answer[t] ? 1 : 0;
      }
    }
  });
  return { ids, targets, mask, count, seqLen, padId, itemRow };
}
