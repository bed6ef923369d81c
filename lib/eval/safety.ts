/**
 * Guarded inference and the safety suite. `checkPrompt`, `checkIds` and `guardedGenerate` are
 * the checked entry points (empty, overlong, malformed and out-of-vocabulary inputs become an
 * `InputError` naming the field); `safetySuite` throws a battery of bad inputs at them and at
 * the ARC task parser, and checks that valid inputs give well-formed, deterministic, finite
 * outputs. Every case records what happened, so the suite's score is a count of real runs.
 */
import * as tf from "@tensorflow/tfjs";
import { parseTaskJson } from "../../datasets/arc/loader.ts";
import { extractAnswer } from "../../datasets/math.ts";
import type { RegistryModel } from "../models/registry.ts";
import { generateGreedy, logitsOf } from "../text/generate.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { deriveSeed, Rng } from "../util/rng.ts";

/** A bad request: `field` names what was wrong. */
export class InputError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

/** Checks a text prompt (a non-empty, well-formed string whose bos + tokens + room for `maxNew` fit `context`); returns its token ids. */
export function checkPrompt(prompt: unknown, context: number, maxNew: number, field = "prompt"): number[] {
  if (typeof prompt !== "string") throw new InputError(field, `expected a string, got ${prompt === null ? "null" : typeof prompt}`);
  if (prompt.length === 0) throw new InputError(field, "is empty; expected at least one character");
  if (!prompt.isWellFormed()) throw new InputError(field, "holds a lone UTF-16 surrogate (not valid Unicode text)");
  const ids = TOKENIZER.encode(prompt);
  if (1 + ids.length + maxNew > context) {
    throw new InputError(field, `${ids.length} tokens + bos + ${maxNew} new tokens exceed the model's context of ${context}`);
  }
  return ids;
}

/** Checks raw token ids: a non-empty array of integers in [0, vocab) no longer than `context`. */
export function checkIds(ids: unknown, vocab: number, context: number, field = "ids"): number[] {
  if (!Array.isArray(ids)) throw new InputError(field, "expected an array of token ids");
  if (ids.length === 0) throw new InputError(field, "is empty; expected at least one token id");
  if (ids.length > context) throw new InputError(field, `has ${ids.length} ids, more than the model's context of ${context}`);
  ids.forEach((id, i) => {
    if (typeof id !== "number" || !Number.isInteger(id)) {
      throw new InputError(`${field}[${i}]`, `= ${JSON.stringify(id)}, expected an integer id`);
    }
    if (id < 0 || id >= vocab) throw new InputError(`${field}[${i}]`, `= ${id} is out of the vocabulary [0, ${vocab})`);
  });
  return ids as number[];
}

/** Greedy generation behind the prompt checks. */
export async function guardedGenerate(model: RegistryModel, prompt: unknown, context: number, maxNew: number): Promise<string> {
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new InputError("max_new_tokens", `= ${maxNew}, expected an integer >= 1`);
  checkPrompt(prompt, context, maxNew);
  return (await generateGreedy(model, [prompt as string], maxNew))[0];
}

/** Rows of digits -> a rectangular grid, or null when the text is not one. */
export function parseGridText(text: string): number[][] | null {
  const rows = text.trim().split("\n").map((r) => r.trim());
  if (!rows.length || rows.some((r) => !/^[0-9]+$/.test(r))) return null;
  if (rows.some((r) => r.length !== rows[0].length) || rows.length > 30 || rows[0].length > 30) return null;
  return rows.map((r) => [...r].map(Number));
}

/** One safety case and what happened. */
export interface SafetyCase {
  name: string;
  /** `error`: the input must be refused with an InputError/format error; `ok`: it must run. */
  expect: "error" | "ok";
  passed: boolean;
  detail: string;
}

export interface SafetyReport {
  cases: SafetyCase[];
  /** Fraction of cases passed. */
  score: number;
  /** Share of ARC answers that parse as grids, and of math answers with an extractable number (well-formedness, not correctness). */
  well_formed: { arc_grids: number; math_numbers: number };
  deterministic: boolean;
  finite_logits: boolean;
}

async function expectError(name: string, fn: () => unknown | Promise<unknown>, clear: RegExp): Promise<SafetyCase> {
  try {
    await fn();
    return { name, expect: "error", passed: false, detail: "accepted a bad input" };
  } catch (e) {
    const msg = (e as Error).message;
    const isInput = e instanceof InputError || (e as Error).name === "ArcFormatError" || clear.test(msg);
    return { name, expect: "error", passed: isInput && clear.test(msg), detail: msg.slice(0, 200) };
  }
}

/**
 * The safety suite on `model` with context `context`: bad inputs refused with clear errors,
 * valid ones answered; ARC/math answers' well-formedness on the given prompts; determinism;
 * finite logits on random valid inputs.
 */
export async function safetySuite(
  model: RegistryModel,
  context: number,
  prompts: { arc: string[]; math: string[] },
  seed: number,
): Promise<SafetyReport> {
  const V = TOKENIZER.vocabSize;
  const cases: SafetyCase[] = [];
  cases.push(await expectError("empty prompt", () => guardedGenerate(model, "", context, 4), /prompt: is empty/));
  cases.push(await expectError("non-string prompt", () => guardedGenerate(model, 42, context, 4), /prompt: expected a string/));
  cases.push(
    await expectError("overlong prompt", () => guardedGenerate(model, "a".repeat(context * 4), context, 4), /exceed the model's context/),
  );
  cases.push(await expectError("lone surrogate", () => guardedGenerate(model, "ok \ud800", context, 4), /lone UTF-16 surrogate/));
  cases.push(await expectError("zero max_new_tokens", () => guardedGenerate(model, "copy:ab=", context, 0), /max_new_tokens/));
  cases.push(await expectError("id out of vocabulary", () => checkIds([1, 2, V + 5], V, context), /out of the vocabulary/));
  cases.push(await expectError("negative id", () => checkIds([-1], V, context), /out of the vocabulary/));
  cases.push(await expectError("fractional id", () => checkIds([1.5], V, context), /expected an integer id/));
  cases.push(await expectError("ids not an array", () => checkIds("123", V, context), /expected an array/));
  const arc = (train: unknown) => JSON.stringify({ train, test: [{ input: [[1]] }] });
  cases.push(
    await expectError("ARC ragged grid", () => parseTaskJson(arc([{ input: [[1, 2], [3]], output: [[1]] }]), "request"), /ragged/),
  );
  cases.push(
    await expectError(
      "ARC colour out of range",
      () => parseTaskJson(arc([{ input: [[12]], output: [[1]] }]), "request"),
      /colours are 0-9/,
    ),
  );
  cases.push(
    await expectError("ARC grid too large", () => parseTaskJson(arc([{ input: Array(31).fill([0]), output: [[1]] }]), "request"), /rows/),
  );
  cases.push(await expectError("ARC not JSON", () => parseTaskJson("{train:", "request"), /JSON/));
  // Valid inputs must run and give strings.
  for (const [name, p] of [["short prompt", "copy:abc="], ["unicode prompt", "copy:é✓="]] as const) {
    try {
      const out = await guardedGenerate(model, p, context, 8);
      cases.push({ name, expect: "ok", passed: typeof out === "string", detail: JSON.stringify(out) });
    } catch (e) {
      cases.push({ name, expect: "ok", passed: false, detail: (e as Error).message });
    }
  }

  // Well-formedness of task answers, and determinism of the same batch twice.
  const arcOut = prompts.arc.length ? await generateGreedy(model, prompts.arc, 100) : [];
  const mathOut = prompts.math.length ? await generateGreedy(model, prompts.math, 96) : [];
  const again = prompts.arc.length ? await generateGreedy(model, prompts.arc, 100) : [];
  const deterministic = again.every((s, i) => s === arcOut[i]);
  cases.push({ name: "deterministic greedy output", expect: "ok", passed: deterministic, detail: `${arcOut.length} prompts twice` });

  // No NaN/Inf on random valid inputs.
  const rng = new Rng(deriveSeed(seed, "safety"));
  const T = Math.min(context, 64);
  const ids = tf.tensor2d(Int32Array.from({ length: 4 * T }, () => rng.int(V)), [4, T], "int32");
  const logits = await logitsOf(model, ids);
  const finiteT = tf.tidy(() => tf.all(tf.isFinite(logits)));
  const finite = (await finiteT.data())[0] === 1;
  tf.dispose([ids, logits, finiteT]);
  cases.push({ name: "finite logits on random ids", expect: "ok", passed: finite, detail: `[4, ${T}]` });

  const rate = (xs: boolean[]) => (xs.length ? xs.filter(Boolean).length / xs.length : NaN);
  return {
    cases,
    score: cases.filter((c) => c.passed).length / cases.length,
    well_formed: {
      arc_grids: rate(arcOut.map((s) => parseGridText(s) !== null)),
      math_numbers: rate(mathOut.map((s) => extractAnswer(s) !== null)),
    },
    deterministic,
    finite_logits: finite,
  };
}
