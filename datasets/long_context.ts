/**
 * Synthetic long-context tasks (phase 5), in the style of passkey retrieval (Mohtashami &
 * Jaggi, 2023) and RULER (Hsieh et al., 2024): a fact hidden in a long context at a chosen
 * depth, asked about at the end.
 *
 *  - passkey: one number hidden in filler text. Its `compact` form fits contexts of a few
 *    dozen tokens (tiny models): a short intro, the needle `key=<digits>.` between any two
 *    filler words, the question `key=`; `keyDigits` sets the key's length. `decoys` hides
 *    other numbers of the same length under other labels (`pin=48213.`), so copying any
 *    number fails: only the one after `key=` is right.
 *  - multi_needle: several `The number for <key> is <value>.` needles; ask one, or all.
 *  - variable_tracking: a chain `VAR A = 12345.`, `VAR B = VAR A.`, ... plus distractor
 *    chains; ask which variables hold the value.
 *  - associative_recall: a context made only of `key: value` lines; ask a key's value.
 *
 * A prompt is `<intro>\n\n<context>\n\n<question>`; needles go between filler sentences. Its length is counted by a given
 * tokenizer (`countTokens`; default one token per UTF-8 byte) and comes within a small
 * tolerance of the target by choosing how much filler (or how many pairs) to use.
 *
 * Depth is the fraction of the haystack (the context without the needles) that comes before
 * the needle, in tokens: 0 puts it first, 1 last. With several needles, `depth` places the
 * one asked about (for multi_needle with askAll, the first; for variable_tracking, the
 * assignment of the number, the chain's later links spread evenly after it).
 */
import { deriveSeed, Rng } from "../lib/util/rng.ts";

export const LONG_CONTEXT_TASKS = ["passkey", "multi_needle", "variable_tracking", "associative_recall"] as const;
export type LongContextTask = typeof LONG_CONTEXT_TASKS[number];

/** Tokens in a text, for some tokenizer. */
export type CountTokens = (text: string) => number;

/** Bytes in the UTF-8 encoding of a text: the default token count (one token per byte). */
export function utf8Bytes(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4; // a surrogate pair: one code point above U+FFFF
      i++;
    } else n += 3; // includes lone surrogates, encoded as U+FFFD
  }
  return n;
}

export interface LongContextConfig {
  task: LongContextTask;
  /** Target prompt length in tokens of `countTokens` (1024). */
  length: number;
  /** Fraction of the haystack before the asked needle, in [0, 1] (0.5). */
  depth: number;
  /** Allowed |prompt tokens - length| as a fraction of length, at least 2 tokens (0.02). */
  tolerance: number;
  /** The tokenizer's count (utf8Bytes). */
  countTokens: CountTokens;
  /** multi_needle: number of needles (4). */
  needles: number;
  /** multi_needle: ask for every needle's value instead of one (false). */
  askAll: boolean;
  /** variable_tracking: variables in the chain that holds the asked value (3). */
  hops: number;
  /** variable_tracking: distractor chains holding other values (1). */
  distractors: number;
  /** passkey: digits of the pass key, the first non-zero (5). */
  keyDigits: number;
  /** passkey: the compact form for short contexts (see the module doc); needles go between words, not sentences (false). */
  compact: boolean;
  /** passkey: decoy numbers of `keyDigits` digits hidden in the filler under other labels, at random depths (0). */
  decoys: number;
  seed: number;
}

export const DEFAULT_LONG_CONTEXT: LongContextConfig = {
  task: "passkey",
  length: 1024,
  depth: 0.5,
  tolerance: 0.02,
  countTokens: utf8Bytes,
  needles: 4,
  askAll: false,
  hops: 3,
  distractors: 1,
  keyDigits: 5,
  compact: false,
  decoys: 0,
  seed: 0,
};

export interface LongContextItem {
  task: LongContextTask;
  prompt: string;
  /** The expected reply: the value, or several values / variable names joined by ", ". */
  answer: string;
  /** The expected items one by one (a single one for passkey, associative_recall and multi_needle asking one). */
  answers: string[];
  /** Prompt length in tokens. */
  length: number;
  /** Measured depth of the asked needle (see the module doc). */
  depth: number;
  targetLength: number;
  targetDepth: number;
  seed: number;
}

/** A needle and the depth it should sit at. */
interface Needle {
  text: string;
  depth: number;
}

/** What a filler task puts around the haystack; `needles[0]` is the one whose depth is reported. */
interface Spec {
  intro: string;
  question: string;
  needles: Needle[];
  answers: string[];
}

// ---------------------------------------------------------------------------------------
// Filler text
// ---------------------------------------------------------------------------------------

const ADJECTIVES = ["green", "quiet", "old", "bright", "small", "long", "warm", "gray", "calm", "busy", "tall", "soft", "distant"];
const NOUNS = [
  "grass",
  "river",
  "sky",
  "garden",
  "road",
  "forest",
  "harbor",
  "meadow",
  "village",
  "lantern",
  "window",
  "market",
  "bridge",
  "orchard",
];
const VERBS = ["rests", "shines", "waits", "bends", "glows", "drifts", "sleeps", "turns", "grows", "hums", "leans"];
const PLACES = ["near", "under", "beside", "beyond", "above", "behind", "along", "past"];

/** One filler sentence as words (no digits, so it never looks like a needle). */
function fillerSentence(rng: Rng): string[] {
  const a = ADJECTIVES[rng.int(ADJECTIVES.length)], n = NOUNS[rng.int(NOUNS.length)], m = NOUNS[rng.int(NOUNS.length)];
  if (rng.next() < 0.3) return ["The", n, "is", `${a}.`];
  return ["The", a, n, VERBS[rng.int(VERBS.length)], PLACES[rng.int(PLACES.length)], "the", `${m}.`];
}

/** Filler words whose text alone has at least `tokens` tokens. */
function fillerWords(rng: Rng, tokens: number, count: CountTokens): string[] {
  const words: string[] = [];
  let batch = 64;
  while (count(words.join(" ")) < tokens) {
    for (let i = 0; i < batch; i++) words.push(...fillerSentence(rng));
    batch *= 2;
  }
  return words;
}

// ---------------------------------------------------------------------------------------
// Placement
// ---------------------------------------------------------------------------------------

/** The prompt from its parts. */
function assemble(intro: string, context: string, question: string): string {
  return `${intro}\n\n${context}\n\n${question}`;
}

/**
 * The index i in [0, n] whose prefix fraction `prefix(i) / total` is closest to `depth`,
 * by bisection over the (non-decreasing) prefix token count.
 */
function indexAtDepth(n: number, depth: number, prefix: (i: number) => number, total: number): number {
  if (total === 0) return Math.round(depth * n);
  let lo = 0, hi = n; // invariant: prefix(lo) <= depth * total, or lo = 0
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (prefix(mid) <= depth * total) lo = mid;
    else hi = mid - 1;
  }
  if (lo < n && Math.abs(prefix(lo + 1) - depth * total) < Math.abs(prefix(lo) - depth * total)) lo++;
  return lo;
}

/** The largest k in [0, n] with f(k) <= target, for a non-decreasing f (0 if none). */
function countAtMost(n: number, target: number, f: (k: number) => number): number {
  let lo = 0, hi = n;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (f(mid) <= target) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The k in [0, n] with f(k) nearest the target, for a non-decreasing f. */
function nearestCount(n: number, target: number, f: (k: number) => number): number {
  const k = countAtMost(n, target, f);
  return k < n && Math.abs(f(k + 1) - target) < Math.abs(f(k) - target) ? k + 1 : k;
}

/** The context: words with each needle inserted before word `at[j]` (ties keep needle order). */
function weave(words: string[], needles: Needle[], at: number[]): string {
  const order = needles.map((_, j) => j).sort((x, y) => at[x] - at[y] || x - y);
  const out: string[] = [];
  let k = 0;
  for (let i = 0; i <= words.length; i++) {
    while (k < order.length && at[order[k]] === i) out.push(needles[order[k++]].text);
    if (i < words.length) out.push(words[i]);
  }
  return out.join(" ");
}

/** The largest allowed |prompt tokens - target|: `tolerance` of the target, at least 2 tokens. */
function allowed(cfg: LongContextConfig): number {
  return Math.max(2, Math.round(cfg.tolerance * cfg.length));
}

function tooShort(cfg: LongContextConfig, got: number): Error {
  return new Error(
    `long_context.length = ${cfg.length}: ${cfg.task} reaches ${got} tokens, outside the tolerance of ${allowed(cfg)}; ` +
      `expected a length that fits the task's fixed text (intro, needles, question)`,
  );
}

/** The first `n` words, the last one given a full stop if it is cut mid-sentence. */
function cut(words: string[], n: number): string[] {
  const out = words.slice(0, n);
  if (n > 0 && !out[n - 1].endsWith(".")) out[n - 1] += ".";
  return out;
}

/** Word indices where a needle may go: the start, after each sentence, and the end. */
function sentenceStarts(words: string[]): number[] {
  const at = [0];
  words.forEach((w, i) => {
    if (w.endsWith(".") && i + 1 < words.length) at.push(i + 1);
  });
  if (at.at(-1) !== words.length) at.push(words.length);
  return at;
}

/** Word indices where a needle may go in the compact form: between any two words, and at both ends. */
function wordStarts(words: string[]): number[] {
  return Array.from({ length: words.length + 1 }, (_, i) => i);
}

/**
 * The compact form's filler: the most whole words that fit `target`, then the prefix of the
 * next word (with a full stop) that lands nearest it, since a word is a large step in a
 * context of a few dozen tokens.
 */
function fitCompact(pool: string[], target: number, tokensOf: (words: string[]) => number): string[] {
  const n = countAtMost(pool.length, target, (k) => tokensOf(cut(pool, k)));
  let best = cut(pool, n), bestErr = Math.abs(tokensOf(best) - target);
  const next = pool[n]?.replace(".", "") ?? "";
  for (let len = 1; len <= next.length && bestErr > 0; len++) {
    const words = [...cut(pool, n), `${next.slice(0, len)}.`], err = Math.abs(tokensOf(words) - target);
    if (err < bestErr) [best, bestErr] = [words, err];
  }
  return best;
}

/**
 * Builds a filler task's prompt: the number of filler words is fitted to the target length,
 * then each needle goes to the sentence boundary (compact: word boundary) nearest its depth.
 */
function fillerPrompt(spec: Spec, cfg: LongContextConfig, rng: Rng): { prompt: string; length: number; depth: number } {
  const count = cfg.countTokens, pool = fillerWords(rng, cfg.length, count);
  // Fit the amount of filler with needles placed by word count (cheap), then place them by tokens.
  const tokensOf = (ws: string[]) => {
    const rough = spec.needles.map((n) => Math.round(n.depth * ws.length));
    return count(assemble(spec.intro, weave(ws, spec.needles, rough), spec.question));
  };
  const words = cfg.compact
    ? fitCompact(pool, cfg.length, tokensOf)
    : cut(pool, nearestCount(pool.length, cfg.length, (w) => tokensOf(cut(pool, w))));
  const starts = cfg.compact ? wordStarts(words) : sentenceStarts(words), total = count(words.join(" "));
  const prefix = (j: number) => count(words.slice(0, starts[j]).join(" "));
  const at = spec.needles.map((n) => starts[indexAtDepth(starts.length - 1, n.depth, prefix, total)]);
  const prompt = assemble(spec.intro, weave(words, spec.needles, at), spec.question), length = count(prompt);
  if (Math.abs(length - cfg.length) > allowed(cfg)) throw tooShort(cfg, length);
  return { prompt, length, depth: total === 0 ? spec.needles[0].depth : count(words.slice(0, at[0]).join(" ")) / total };
}

// ---------------------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------------------

/** A uniform integer with `digits` digits (no leading zero). */
function number(rng: Rng, digits: number): number {
  const lo = 10 ** (digits - 1);
  return lo + rng.int(9 * lo);
}

/** `n` distinct values drawn by `draw`, none in `taken` (which they join). */
function distinct<T>(n: number, draw: () => T, taken = new Set<T>()): T[] {
  const out: T[] = [];
  while (out.length < n) {
    const v = draw();
    if (!taken.has(v)) {
      taken.add(v);
      out.push(v);
    }
  }
  return out;
}

const SYLLABLES = ["ka", "lo", "mi", "ru", "ta", "ve", "zo", "ni", "pe", "sa", "du", "fo", "ge", "bi", "xu", "wa"];

/** A made-up lowercase word of 2 or 3 syllables. */
function madeUpWord(rng: Rng): string {
  const n = 2 + rng.int(2);
  return Array.from({ length: n }, () => SYLLABLES[rng.int(SYLLABLES.length)]).join("");
}

/** `n` random depths in [0, 1]. */
function randomDepths(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.next());
}

/** Labels of passkey decoys: other numbers the filler holds, none of them the key (compact form: `<label>=<digits>.`). */
const DECOY_LABELS = ["id", "pin", "box", "room", "code", "row", "lot", "page"];

/**
 * Tokens (bytes) of the shortest compact passkey prompt: intro, the needles with no filler
 * and the question, each decoy under the longest label. Any target length from here up fits.
 */
export function compactPasskeyMinLength(keyDigits: number, decoys: number): number {
  const label = Math.max(...DECOY_LABELS.map((l) => l.length));
  return "Find the key.\n\n".length + `key=.`.length + keyDigits + decoys * (1 + label + keyDigits + 2) + "\n\nkey=".length;
}

/**
 * A copy drill: a random digit string of `minLength`..`maxLength` digits, then a newline, then
 * the same string again as the answer. Every answer digit is found by matching the digit just
 * written to its earlier occurrence and copying the one after it (an induction circuit), so one
 * item trains that circuit at every answer token, where a passkey trains it at `keyDigits`.
 */
export function copyDrill(seed: number, minLength: number, maxLength: number): { prompt: string; answer: string } {
  if (!(Number.isInteger(minLength) && Number.isInteger(maxLength) && minLength >= 1 && maxLength >= minLength)) {
    throw new Error(`copyDrill: lengths ${minLength}..${maxLength}, expected integers with 1 <= min <= max`);
  }
  const rng = new Rng(seed);
  const n = minLength + rng.int(maxLength - minLength + 1);
  const digits = Array.from({ length: n }, () => String(rng.int(10))).join("");
  return { prompt: `${digits}\n`, answer: digits };
}

function passkeySpec(cfg: LongContextConfig, rng: Rng): Spec {
  const [key, ...others] = distinct(1 + cfg.decoys, () => String(number(rng, cfg.keyDigits)));
  const labels = others.map(() => DECOY_LABELS[rng.int(DECOY_LABELS.length)]);
  const decoys = others.map((v, j) => ({
    text: cfg.compact ? `${labels[j]}=${v}.` : `The ${labels[j]} number is ${v}.`,
    depth: rng.next(),
  }));
  if (cfg.compact) {
    return { intro: "Find the key.", question: "key=", needles: [{ text: `key=${key}.`, depth: cfg.depth }, ...decoys], answers: [key] };
  }
  return {
    intro: "A pass key is hidden in the text below. Find it and remember it.",
    question: "What is the pass key? The pass key is",
    needles: [{ text: `The pass key is ${key}. Remember it: ${key}.`, depth: cfg.depth }, ...decoys],
    answers: [key],
  };
}

function multiNeedleSpec(cfg: LongContextConfig, rng: Rng): Spec {
  const keys = distinct(cfg.needles, () => madeUpWord(rng));
  const values = distinct(cfg.needles, () => String(number(rng, 5)));
  const depths = randomDepths(rng, cfg.needles);
  const asked = cfg.askAll ? 0 : rng.int(cfg.needles);
  depths[asked] = cfg.depth;
  const needles = keys.map((k, j) => ({ text: `The number for ${k} is ${values[j]}.`, depth: depths[j] }));
  // The asked needle goes first: its depth is the one reported.
  [needles[0], needles[asked]] = [needles[asked], needles[0]];
  const intro = "Remember the numbers hidden in this text.";
  if (cfg.askAll) {
    return { intro, question: `What are the numbers for ${keys.join(", ")}? List them in order.`, needles, answers: values };
  }
  const key = keys[asked];
  return { intro, question: `What is the number for ${key}? It is`, needles, answers: [values[asked]] };
}

/** A variable name: five capital letters. */
function varName(rng: Rng): string {
  return Array.from({ length: 5 }, () => String.fromCharCode(65 + rng.int(26))).join("");
}

function variableTrackingSpec(cfg: LongContextConfig, rng: Rng): Spec {
  const chains = 1 + cfg.distractors;
  const names = distinct(chains * cfg.hops, () => varName(rng));
  const values = distinct(chains, () => String(number(rng, 5)));
  const needles: Needle[] = [];
  for (let c = 0; c < chains; c++) {
    const own = names.slice(c * cfg.hops, (c + 1) * cfg.hops);
    // The asked chain starts at `depth` and spreads evenly to the end; distractors sit at random, in order.
    const depths = c === 0
      ? own.map((_, j) => cfg.depth + ((1 - cfg.depth) * j) / cfg.hops)
      : randomDepths(rng, cfg.hops).sort((a, b) => a - b);
    own.forEach((name, j) => needles.push({ text: `VAR ${name} = ${j === 0 ? values[c] : `VAR ${own[j - 1]}`}.`, depth: depths[j] }));
  }
  return {
    intro: "Track the variables in this text.",
    question: `Which variables hold ${values[0]}? List them all.`,
    needles,
    answers: names.slice(0, cfg.hops),
  };
}

interface Pair {
  key: string;
  value: string;
}

/** A random lowercase key of `len` letters. */
function letters(rng: Rng, len: number): string {
  return Array.from({ length: len }, () => String.fromCharCode(97 + rng.int(26))).join("");
}

/**
 * Associative recall: the context is `key: value` lines only. The most pairs that fit the
 * target are drawn, then the last pair's key and value lengths are tuned to land on it.
 */
function associativeRecall(cfg: LongContextConfig, rng: Rng): { prompt: string; length: number; depth: number; answers: string[] } {
  const count = cfg.countTokens, taken = new Set<string>();
  const newPair = (keyLen: number, digits: number): Pair => {
    const [key] = distinct(1, () => letters(rng, keyLen), taken);
    return { key, value: String(number(rng, digits)) };
  };
  const intro = "Below is a list of keys, each with its value. Remember them.";
  const question = (key: string) => `What is the value of the key ${key}? The value is`;
  const lines = (ps: Pair[]) => ps.map((p) => `${p.key}: ${p.value}`);
  const build = (ps: Pair[], q: number) => assemble(intro, lines(ps).join("\n"), question(ps[q]?.key ?? "xxxx"));
  const pool: Pair[] = [];
  while (count(lines(pool).join("\n")) < cfg.length) for (let i = 0; i < 64; i++) pool.push(newPair(3 + rng.int(4), 3 + rng.int(4)));
  const k = Math.max(1, countAtMost(pool.length, cfg.length, (n) => count(build(pool.slice(0, n), -1))));
  const pairs = pool.slice(0, k);
  // The asked pair, at the depth over the other pairs' lines.
  const depthOf = (ps: Pair[], q: number) => {
    const all = lines(ps), rest = count([...all.slice(0, q), ...all.slice(q + 1)].join("\n"));
    return rest === 0 ? cfg.depth : count(all.slice(0, q).join("\n")) / rest;
  };
  const q = indexAtDepth(
    k - 1,
    cfg.depth,
    (i) => count(lines(pairs.slice(0, i)).join("\n")),
    count(lines(pairs.slice(0, k - 1)).join("\n")),
  );
  // Tune the last pair: over key and value lengths up to 14, shortest first, keep the one nearest the target.
  let best = pairs, bestErr = Infinity;
  for (let size = 3; size <= 14 && bestErr > 0; size++) {
    for (let other = 3; other <= size && bestErr > 0; other++) {
      for (const [keyLen, digits] of other === size ? [[size, size]] : [[size, other], [other, size]]) {
        const ps = [...pairs.slice(0, k - 1), newPair(keyLen, digits)];
        const err = Math.abs(count(build(ps, q)) - cfg.length);
        if (err < bestErr) [best, bestErr] = [ps, err];
      }
    }
  }
  const prompt = build(best, q), length = count(prompt);
  if (Math.abs(length - cfg.length) > allowed(cfg)) throw tooShort(cfg, length);
  return { prompt, length, depth: depthOf(best, q), answers: [best[q].value] };
}

// ---------------------------------------------------------------------------------------
// Items and grids
// ---------------------------------------------------------------------------------------

function checkInt(field: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`long_context.${field} = ${v}: expected an integer in ${lo}..${hi}`);
}

function validate(cfg: LongContextConfig): void {
  if (!(LONG_CONTEXT_TASKS as readonly string[]).includes(cfg.task)) {
    throw new Error(`long_context.task = ${cfg.task}: expected one of ${LONG_CONTEXT_TASKS.join(", ")}`);
  }
  checkInt("length", cfg.length, 32, 1 << 24);
  if (!(cfg.depth >= 0 && cfg.depth <= 1)) throw new Error(`long_context.depth = ${cfg.depth}: expected a fraction in [0, 1]`);
  if (!(cfg.tolerance >= 0 && cfg.tolerance < 1)) {
    throw new Error(`long_context.tolerance = ${cfg.tolerance}: expected a fraction in [0, 1)`);
  }
  if (typeof cfg.countTokens !== "function") throw new Error(`long_context.countTokens: expected a function (text: string) => number`);
  checkInt("needles", cfg.needles, 1, 256);
  checkInt("hops", cfg.hops, 1, 256);
  checkInt("distractors", cfg.distractors, 0, 256);
  checkInt("keyDigits", cfg.keyDigits, 1, 15);
  checkInt("decoys", cfg.decoys, 0, 64);
  if (cfg.decoys > 0 && cfg.task !== "passkey") {
    throw new Error(`long_context.decoys = ${cfg.decoys}: only the passkey task has decoys, got task ${cfg.task}`);
  }
  if (cfg.decoys >= 9 * 10 ** (cfg.keyDigits - 1)) {
    throw new Error(
      `long_context.decoys = ${cfg.decoys}: keys of ${cfg.keyDigits} digit(s) leave too few distinct numbers; expected fewer decoys`,
    );
  }
  if (cfg.compact && cfg.task !== "passkey") {
    throw new Error(`long_context.compact = true: only the passkey task has a compact form, got task ${cfg.task}`);
  }
}

/** One item of `cfg.task` at `cfg.length` tokens and `cfg.depth`; deterministic in the seed. */
export function longContextItem(cfg: LongContextConfig): LongContextItem {
  validate(cfg);
  const rng = new Rng(deriveSeed(cfg.seed, `long-context-${cfg.task}`));
  const base = { task: cfg.task, targetLength: cfg.length, targetDepth: cfg.depth, seed: cfg.seed };
  if (cfg.task === "associative_recall") {
    const { prompt, length, depth, answers } = associativeRecall(cfg, rng);
    return { ...base, prompt, answer: answers.join(", "), answers, length, depth };
  }
  const spec = cfg.task === "passkey"
    ? passkeySpec(cfg, rng)
    : cfg.task === "multi_needle"
    ? multiNeedleSpec(cfg, rng)
    : variableTrackingSpec(cfg, rng);
  const { prompt, length, depth } = fillerPrompt(spec, cfg, rng);
  return { ...base, prompt, answer: spec.answers.join(", "), answers: spec.answers, length, depth };
}

/**
 * A length x depth evaluation grid: `n` items per cell, ordered by length, then depth, then
 * index; each item's seed is derived from (config seed, task, length, depth, index).
 */
export function grid(
  lengths: readonly number[],
  depths: readonly number[],
  n: number,
  config: Partial<LongContextConfig> = {},
): LongContextItem[] {
  if (lengths.length === 0) throw new Error("long_context.grid lengths is empty: expected at least one target length");
  if (depths.length === 0) throw new Error("long_context.grid depths is empty: expected at least one depth in [0, 1]");
  checkInt("grid n", n, 1, 1_000_000);
  const cfg = { ...DEFAULT_LONG_CONTEXT, ...config };
  const items: LongContextItem[] = [];
  for (const length of lengths) {
    for (const depth of depths) {
      for (let i = 0; i < n; i++) {
        items.push(longContextItem({ ...cfg, length, depth, seed: deriveSeed(cfg.seed, `${cfg.task}-${length}-${depth}-${i}`) }));
      }
    }
  }
  return items;
}
