/**
 * ARC tasks as token sequences (vocabulary in `datasets/tokenizers/grid.ts`) and back, plus a
 * stable content hash for leakage checks.
 *
 * Layout of one sequence (the demonstrations, then one test pair):
 *
 *   BOS  (INPUT grid OUTPUT grid PAIR_SEP)*  INPUT test-input OUTPUT test-output EOS  PAD*
 *
 * The loss mask is 1 on the tokens a model is trained to predict: the test output grid and the
 * EOS after it (mask[i] = 1 means token i is predicted from tokens 0..i-1).
 */
import { decodeGrid, encodeGrid, GRID_TOKENS, tokenName } from "../tokenizers/grid.ts";
import type { ArcPair, ArcTask, Grid } from "./types.ts";

const { INPUT, OUTPUT, PAIR_SEP, BOS, EOS, PAD } = GRID_TOKENS;

/** Token ids and the loss mask over them. */
export interface TokenSequence {
  tokens: Int32Array;
  /** 1 on the test output's tokens and the closing EOS, 0 elsewhere. */
  lossMask: Uint8Array;
}

function pushPair(out: number[], p: ArcPair): void {
  out.push(INPUT);
  encodeGrid(p.input, out);
  out.push(OUTPUT);
  encodeGrid(p.output, out);
}

/** The prompt for test pair `testIndex`: everything up to and including the test pair's OUTPUT marker. */
export function serializePrompt(task: ArcTask, testIndex = 0): number[] {
  const test = task.test[testIndex];
  if (!test) throw new Error(`serializePrompt: test[${testIndex}] does not exist (${task.test.length} test pairs)`);
  const out: number[] = [BOS];
  for (const p of task.train) {
    pushPair(out, p);
    out.push(PAIR_SEP);
  }
  out.push(INPUT);
  encodeGrid(test.input, out);
  out.push(OUTPUT);
  return out;
}

/** The full sequence for test pair `testIndex` (demonstrations, test input, test output, EOS) and its loss mask. */
export function serializeTask(task: ArcTask, testIndex = 0): TokenSequence {
  const prompt = serializePrompt(task, testIndex);
  const answer = encodeGrid(task.test[testIndex].output);
  answer.push(EOS);
  const tokens = Int32Array.from([...prompt, ...answer]);
  const lossMask = new Uint8Array(tokens.length);
  lossMask.fill(1, prompt.length);
  return { tokens, lossMask };
}

/** One sequence per test pair of a task. */
export function serializeAll(task: ArcTask): TokenSequence[] {
  return task.test.map((_, i) => serializeTask(task, i));
}

function expect(tokens: ArrayLike<number>, i: number, want: number, what: string): void {
  const got = i < tokens.length ? tokenName(tokens[i]) : "the end";
  if (tokens[i] !== want) throw new Error(`parseTask: token ${i} = ${got}, expected ${tokenName(want)} (${what})`);
}

/**
 * Parses a sequence written by `serializeTask` (trailing PAD allowed) into a task with its
 * demonstrations and the one test pair. Throws, naming the token position, on any deviation.
 */
export function parseTask(tokens: ArrayLike<number>): ArcTask {
  expect(tokens, 0, BOS, "a sequence starts with BOS");
  const pairs: ArcPair[] = [];
  let i = 1;
  while (true) {
    expect(tokens, i, INPUT, `pair ${pairs.length} starts with INPUT`);
    const input = decodeGrid(tokens, i + 1);
    expect(tokens, input.end, OUTPUT, `pair ${pairs.length}: the input grid is followed by OUTPUT`);
    const output = decodeGrid(tokens, input.end + 1);
    pairs.push({ input: input.grid, output: output.grid });
    i = output.end;
    if (tokens[i] === PAIR_SEP) {
      i++;
      continue;
    }
    expect(tokens, i, EOS, `pair ${pairs.length - 1}: the output grid is followed by PAIR_SEP or EOS`);
    break;
  }
  for (let j = i + 1; j < tokens.length; j++) expect(tokens, j, PAD, "only PAD may follow EOS");
  if (pairs.length < 2) throw new Error("parseTask: expected at least one demonstration before the test pair");
  return { train: pairs.slice(0, -1), test: pairs.slice(-1) };
}

/** Decodes a generated answer (a grid followed by EOS) starting at `start`; null when malformed. */
export function decodeAnswer(tokens: ArrayLike<number>, start = 0): Grid | null {
  try {
    const { grid, end } = decodeGrid(tokens, start);
    return tokens[end] === EOS ? grid : null;
  } catch {
    return null;
  }
}

/**
 * The canonical token form of a whole task, used for hashing only: BOS, each demonstration followed
 * by PAIR_SEP, BOS again to mark the test section, each test pair followed by PAIR_SEP, EOS. The id is not part of it.
 */
export function canonicalTokens(task: ArcTask): number[] {
  const out: number[] = [BOS];
  for (const p of task.train) {
    pushPair(out, p);
    out.push(PAIR_SEP);
  }
  out.push(BOS);
  for (const p of task.test) {
    pushPair(out, p);
    out.push(PAIR_SEP);
  }
  out.push(EOS);
  return out;
}

/** 64-bit FNV-1a over bytes (values taken mod 256), as 16 hex digits; computed in two 32-bit halves. */
export function fnv1a64(bytes: ArrayLike<number>): string {
  // Offset basis 0xcbf29ce484222325; prime 0x100000001b3 = 2^40 + 0x1b3.
  let hi = 0xcbf29ce4, lo = 0x84222325;
  for (let i = 0; i < bytes.length; i++) {
    lo = (lo ^ (bytes[i] & 0xff)) >>> 0;
    // (hi, lo) * 0x1b3 + (lo << 40), mod 2^64.
    const low = lo * 0x1b3;
    const carry = Math.floor(low / 0x100000000);
    hi = (Math.imul(hi, 0x1b3) + carry + Math.imul(lo, 0x100)) >>> 0;
    lo = low >>> 0;
  }
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
}

/** A stable hash of a task's content (all demonstrations and test pairs, not its id). */
export function taskHash(task: ArcTask): string {
  return fnv1a64(canonicalTokens(task));
}

/** Tasks of `b` whose content also occurs in `a` (by `taskHash`): leakage between two splits. */
export function sharedTasks(a: readonly ArcTask[], b: readonly ArcTask[]): { hash: string; a: ArcTask; b: ArcTask }[] {
  const seen = new Map<string, ArcTask>();
  for (const t of a) seen.set(taskHash(t), t);
  const out: { hash: string; a: ArcTask; b: ArcTask }[] = [];
  for (const t of b) {
    const h = taskHash(t);
    const match = seen.get(h);
    if (match) out.push({ hash: h, a: match, b: t });
  }
  return out;
}
