/**
 * Phase 4, math text reasoning: fine-tunes phase 1's base model on generated multi-step
 * arithmetic word problems (datasets/math.ts) whose answers are rationales, then scores
 * held-out problems by greedy generation and answer extraction (exact match by number of
 * steps), with teacher-forced answer loss and token accuracy against the base model before
 * fine-tuning and input-blind baselines, and a capped GSM8K test sample when the real file
 * is present.
 *
 * Answer format: the rationale in calculator form (`calcRationale`): one `a op b=c` line per
 * step, the content of GSM8K's `<<a op b=c>>` annotations without the words, then `#### n`.
 * The full GSM8K-style rationale is about four times longer, too long for a byte-level model
 * at the 128-192 token windows these presets afford (attention dominates step time on wasm).
 * Item text: `<question>\n` as the prompt, the calc rationale as the answer (loss on it only).
 */
import { MODEL_FILE, stageModelPath } from "../util/run_dir.ts";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import {
  calcRationale,
  extractAnswer,
  type Gsm8kItem,
  isCorrect,
  loadGsm8k,
  MATH_MAX_STEPS,
  MATH_TEMPLATES,
  mathDataset,
  type MathProblem,
  mathProblem,
  stepScores,
} from "../../datasets/math.ts";
import { GSM8K_DIR } from "../../datasets/paths.ts";
import type { LmWindows } from "../../datasets/sanity.ts";
import type { RegistryModel } from "../models/registry.ts";
import { check, type PhaseContext, type PhaseSpec } from "./spec.ts";
import type { StageContext } from "../eval/stage.ts";
import { exists } from "../util/fs.ts";
import { deriveSeed, Rng } from "../util/rng.ts";
import type { Figure } from "../viz/figures.ts";
import { esc, type PageSection } from "../viz/report.ts";
import { type AnswerMetrics, answerMetrics, majorityTokenAccuracy, unigramLoss } from "../eval/answers.ts";
import { generateGreedy, logitsOf } from "../text/generate.ts";
import { CurriculumKeys, curriculumWindows, loadBase, loggedRecords, phaseTrainer, trainText } from "./common.ts";
import { sectionOf } from "../config/config.ts";
import { z } from "zod";
import { round } from "../util/numbers.ts";
import { saveModel } from "../models/io.ts";
import { type TextItem, TOKENIZER, windowsOf } from "../text/tokens.ts";

/** `phases.4`: the math phase's config section (type, defaults and validation). */
export const Phase4Section = z.strictObject({
  steps: z.number().int().min(0).default(340), // fine-tuning steps (0: training.max_steps)
  lr: z.number().min(0).default(3e-3), // peak learning rate (0: training.lr); warmup from the training section (lib/train/config.ts)
  min_lr: z.number().min(0).default(3e-4), // cosine floor, a tenth of the peak (0: min(training.min_lr, lr))
  batch_size: z.number().int().min(0).default(16), // windows per step (0: training.batch_size)
  seq_len: z.number().int().min(32).default(192), // tokens per window (byte tokenizer); problems longer than this are left out
  train_count: z.number().int().min(1).default(4000), // generated training problems (before the length filter)
  max_calc_steps: z.number().int().min(1).max(MATH_MAX_STEPS).default(2), // problems have 1..max_calc_steps calculation steps
  max_value: z.number().int().min(100).default(100), // largest number anywhere in a problem (>= 100)
  test_per_step: z.number().int().min(1).default(16), // held-out problems per step count
  gsm8k_count: z.number().int().min(0).default(20), // GSM8K test problems scored by greedy generation (0 = skip)
  gsm8k_max_new: z.number().int().min(1).default(40), // most tokens generated per GSM8K problem
  gate_min_gain: z.number().default(0.25), // gate: answer token accuracy above the base model's and the majority token's by this
  gate_min_loss_drop: z.number().default(1), // gate: answer loss below the base model's and the unigram's by this many nats
  gate_min_exact: z.number().min(0).max(1).default(0), // gate: greedy final-answer exact match at least this (0 = not gated: near chance at this scale)
  ...CurriculumKeys, // difficulty: the problem's calculation steps
});
export type Phase4Section = z.infer<typeof Phase4Section>;

/** Rows per forward pass in teacher-forced evaluation and GSM8K generation. */
const EVAL_BATCH = 32, GSM8K_BATCH = 10;

// ---------------------------------------------------------------------------------------------
// Data: training problems, held-out problems per step count (disjoint by seed and by content)

/** A problem as a text item: the question and a newline, then the calc rationale. */
export function mathItem(p: MathProblem): TextItem {
  return { prompt: `${p.question}\n`, answer: calcRationale(p), task: `steps-${p.steps.length}`, difficulty: p.steps.length };
}

/** Whether an item fits one window of `seqLen` (BOS + prompt + answer + EOS <= seqLen + 1 tokens). */
export function fitsWindow(it: TextItem, seqLen: number): boolean {
  return TOKENIZER.encode(it.prompt).length + TOKENIZER.encode(it.answer).length + 2 <= seqLen + 1;
}

/** The phase's problems, rebuilt from (config section, seed) alone. */
export interface MathData {
  /** Training problems that fit a window, in generation order. */
  train: MathProblem[];
  /** Problems generated for training before the length filter. */
  generated: number;
  /** Held-out problems: test[k - 1] holds `test_per_step` problems of k steps. */
  test: MathProblem[][];
  /** Held-out candidates passed over: question seen in training (or earlier in the test set), or too long. */
  overlapRemoved: number;
  tooLongRemoved: number;
}

/**
 * Builds the training set (mathDataset, 1..max_calc_steps steps, seed "train") and a held-out set
 * of `test_per_step` problems for each step count from separately derived seeds; held-out
 * candidates whose question text appears in training are dropped, so no test problem is a
 * training problem even by chance.
 */
export function mathData(s: StageContext): MathData {
  const c = sectionOf(Phase4Section, s.phaseConfig, 4);
  const all = mathDataset({
    count: c.train_count,
    minSteps: 1,
    maxSteps: c.max_calc_steps,
    templates: MATH_TEMPLATES,
    maxValue: c.max_value,
    seed: deriveSeed(s.seed, "train"),
  });
  const train = all.filter((p) => fitsWindow(mathItem(p), c.seq_len));
  if (train.length < all.length / 2) {
    throw new Error(
      `phase 4: only ${train.length} of ${all.length} training problems fit phases.4.seq_len = ${c.seq_len}; raise seq_len or lower max_calc_steps`,
    );
  }
  const seen = new Set(train.map((p) => p.question));
  const test: MathProblem[][] = [];
  let overlapRemoved = 0, tooLongRemoved = 0;
  for (let k = 1; k <= c.max_calc_steps; k++) {
    const rows: MathProblem[] = [];
    for (let i = 0; rows.length < c.test_per_step; i++) {
      if (i >= 50 * c.test_per_step) {
        throw new Error(
          `phase 4: too few held-out ${k}-step problems fit phases.4.seq_len = ${c.seq_len}; raise seq_len or lower max_calc_steps`,
        );
      }
      const seed = deriveSeed(s.seed, `test-${k}-${i}`);
      const p = mathProblem(seed, k, MATH_TEMPLATES[new Rng(seed).int(MATH_TEMPLATES.length)], c.max_value);
      if (!fitsWindow(mathItem(p), c.seq_len)) tooLongRemoved++;
      else if (seen.has(p.question)) overlapRemoved++;
      else {
        seen.add(p.question);
        rows.push(p);
      }
    }
    test.push(rows);
  }
  return { train, generated: all.length, test, overlapRemoved, tooLongRemoved };
}

/** The most frequent answer of `train` (first seen wins ties) and how often it is right on each held-out step bucket. */
export function majorityAnswer(
  train: readonly MathProblem[],
  test: readonly MathProblem[][],
): { answer: number; byStep: number[]; overall: number } {
  const counts = new Map<number, number>();
  for (const p of train) counts.set(p.answer, (counts.get(p.answer) ?? 0) + 1);
  let answer = 0, best = -1;
  for (const [a, n] of counts) if (n > best) [answer, best] = [a, n];
  const byStep = test.map((rows) => rows.filter((p) => p.answer === answer).length / rows.length);
  const all = test.flat();
  return { answer, byStep, overall: all.filter((p) => p.answer === answer).length / all.length };
}

// ---------------------------------------------------------------------------------------------
// Evaluation: teacher-forced answer metrics and greedy generation on the held-out problems

/** Whether a token id is an ASCII digit byte. */
const isDigit = (id: number) => id >= 48 && id <= 57;

/**
 * Teacher-forced accuracy on the answer's digit tokens only (the numbers: operands copied from
 * the question, computed results), which format alone cannot predict; with the accuracy of
 * always guessing the most frequent answer digit of `fit`, the input-blind reference.
 */
export async function digitAccuracy(model: RegistryModel, w: LmWindows, fit: LmWindows): Promise<{ acc: number; majority: number }> {
  const counts = new Array(10).fill(0);
  for (let i = 0; i < fit.mask.length; i++) if (fit.mask[i] > 0 && isDigit(fit.targets[i])) counts[fit.targets[i] - 48]++;
  const top = 48 + counts.indexOf(Math.max(...counts));
  const T = w.seqLen;
  let n = 0, right = 0, majority = 0;
  for (let r0 = 0; r0 < w.count; r0 += EVAL_BATCH) {
    const rows = Math.min(EVAL_BATCH, w.count - r0);
    const ids = tf.tensor2d(w.ids.subarray(r0 * T, (r0 + rows) * T), [rows, T], "int32"); // [n, T]
    const logits = await logitsOf(model, ids); // [n, T, V]
    const pred = tf.tidy(() => tf.argMax(logits, -1)); // [n, T]
    const p = await pred.data();
    tf.dispose([ids, logits, pred]);
    for (let j = 0; j < rows * T; j++) {
      const i = r0 * T + j;
      if (w.mask[i] > 0 && isDigit(w.targets[i])) {
        n++;
        if (p[j] === w.targets[i]) right++;
        if (w.targets[i] === top) majority++;
      }
    }
  }
  return { acc: n ? right / n : NaN, majority: n ? majority / n : NaN };
}

/** A model's numbers on the held-out problems. */
export interface MathEval {
  /** Teacher-forced metrics on the calc rationale + EOS (exact: every token right). */
  tf: AnswerMetrics;
  /** Greedy outputs, in `test.flat()` order. */
  outputs: string[];
  /** Final answer (extracted) right, per output. */
  correct: boolean[];
  /** Fraction of final answers right, overall and per step count (index k - 1). */
  exact: number;
  exactBySteps: number[];
  /** Expected step lines reproduced at their place, over all expected steps. */
  stepAcc: number;
  /** Generated `expr=value` lines that are arithmetically right, over all such lines (NaN when none). */
  calcConsistent: number;
}

/** Greedy decoding per step bucket (one batch each, capped at its longest answer + 4 tokens), then answer extraction. */
export async function evaluateMath(model: RegistryModel, data: MathData, seqLen: number): Promise<MathEval> {
  const flat = data.test.flat();
  const tf = await answerMetrics(model, windowsOf(flat.map(mathItem), seqLen, false), EVAL_BATCH);
  const outputs: string[] = [];
  for (const rows of data.test) {
    const maxNew = Math.max(...rows.map((p) => TOKENIZER.encode(calcRationale(p)).length)) + 4;
    outputs.push(...await generateGreedy(model, rows.map((p) => mathItem(p).prompt), maxNew, rows.length));
  }
  const correct = outputs.map((o, i) => isCorrect(o, flat[i].answer));
  const steps = outputs.map((o, i) => stepScores(o, calcRationale(flat[i])));
  const exactBySteps: number[] = [];
  let at = 0;
  for (const rows of data.test) {
    exactBySteps.push(correct.slice(at, at + rows.length).filter(Boolean).length / rows.length);
    at += rows.length;
  }
  return {
    tf,
    outputs,
    correct,
    exact: correct.filter(Boolean).length / correct.length,
    exactBySteps,
    stepAcc: steps.reduce((n, x) => n + x.right, 0) / steps.reduce((n, x) => n + x.steps, 0),
    calcConsistent: steps.reduce((n, x) => n + x.consistent, 0) / steps.reduce((n, x) => n + x.lines, 0),
  };
}

/** The record a stage evaluation returns (and the run stores, prefixed for the base model). */
function evalNumbers(e: MathEval): Record<string, number> {
  const byStep = Object.fromEntries(e.exactBySteps.map((x, k) => [`exact_${k + 1}_steps`, round(x)]));
  return { token_acc: round(e.tf.token_acc), loss: round(e.tf.loss), tf_exact: round(e.tf.exact), exact: round(e.exact), ...byStep };
}

/** Scores a seeded sample of `gsm8k_count` GSM8K test problems by greedy generation, or says why it was skipped. */
async function scoreGsm8k(model: RegistryModel, c: Phase4Section, seed: number): Promise<Record<string, unknown>> {
  const test = join(GSM8K_DIR, "test.jsonl"), train = join(GSM8K_DIR, "train.jsonl");
  if (c.gsm8k_count === 0) return { gsm8k_status: "skipped", gsm8k_reason: "phases.4.gsm8k_count = 0" };
  if (!(await exists(test))) return { gsm8k_status: "skipped", gsm8k_reason: `${test} not found` };
  // Eligible: BOS + question + newline + the generated tokens within twice the training window
  // (a forward pass costs ~T^2 on wasm, and the model never saw positions much beyond it).
  const all = (await loadGsm8k(test)).items;
  const items = all.filter((it) => TOKENIZER.encode(it.question).length + 2 + c.gsm8k_max_new <= 2 * c.seq_len);
  if (items.length === 0) return { gsm8k_status: "skipped", gsm8k_reason: `no ${test} question fits 2 * phases.4.seq_len tokens` };
  const order = new Rng(deriveSeed(seed, "gsm8k")).permutation(items.length);
  // Sorted by length so each batch pads little; the sample itself is a seeded random one.
  const sample: Gsm8kItem[] = Array.from(order.subarray(0, Math.min(c.gsm8k_count, items.length)), (i) => items[i])
    .sort((a, b) => a.question.length - b.question.length || a.line - b.line);
  const outputs = await generateGreedy(model, sample.map((it) => `${it.question}\n`), c.gsm8k_max_new, GSM8K_BATCH);
  const correct = outputs.map((o, i) => isCorrect(o, sample[i].final));
  // Chance reference: always answer the most frequent final answer of GSM8K's training file.
  let chance: number | null = null;
  if (await exists(train)) {
    const counts = new Map<string, number>();
    for (const it of (await loadGsm8k(train)).items) counts.set(it.final, (counts.get(it.final) ?? 0) + 1);
    const top = [...counts].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
    chance = round(sample.filter((it) => it.final === top).length / sample.length);
  }
  return {
    gsm8k_status: "scored",
    gsm8k_count: sample.length,
    gsm8k_eligible: items.length,
    gsm8k_total: all.length,
    gsm8k_exact: round(correct.filter(Boolean).length / sample.length),
    gsm8k_marked: round(outputs.filter((o) => o.includes("####")).length / sample.length),
    gsm8k_extracted: round(outputs.filter((o) => extractAnswer(o) !== null).length / sample.length),
    gsm8k_majority_acc: chance,
    gsm8k_max_new: c.gsm8k_max_new,
    gsm8k_samples: sample.slice(0, 2).map((it, i) => ({ question: it.question, expected: it.final, got: outputs[i], correct: correct[i] })),
  };
}

// ---------------------------------------------------------------------------------------------
// The phase

async function run(ctx: PhaseContext) {
  const c = sectionOf(Phase4Section, ctx.phaseConfig, 4);
  const data = mathData(ctx);
  const trainW = windowsOf(data.train.map(mathItem), c.seq_len);
  const testW = windowsOf(data.test.flat().map(mathItem), c.seq_len, false);
  const majority = majorityTokenAccuracy(trainW, testW), chance = majorityAnswer(data.train, data.test);
  const { model, meta } = await loadBase(ctx);
  try {
    let t = performance.now();
    const base = await evaluateMath(model, data, c.seq_len), baseDigits = await digitAccuracy(model, testW, trainW);
    const baseSeconds = (performance.now() - t) / 1000;
    const trainer = phaseTrainer(ctx, c);
    const fit = curriculumWindows(data.train.map(mathItem), (items) => windowsOf(items, c.seq_len), c, trainer.train.steps);
    const tr = await trainText(ctx, {
      name: "math",
      model,
      ...fit,
      ...trainer,
      seed: deriveSeed(ctx.seed, "batches"),
      evaluate: async () => {
        const m = await answerMetrics(model, testW, EVAL_BATCH);
        return { val_loss: m.loss, val_token_acc: m.token_acc };
      },
    });
    // The held-out curve and the losses from metrics.jsonl, where every evaluation was logged: they survive a resume.
    const records = await loggedRecords(ctx, "math");
    const logged = records.filter((r) => typeof r.loss === "number").map((r) => r.loss as number);
    const curve = records.filter((r) => typeof r.val_loss === "number")
      .map((r) => ({ step: r.step, loss: round(r.val_loss as number), token_acc: round(r.val_token_acc as number) }));
    t = performance.now();
    const fine = await evaluateMath(model, data, c.seq_len), digits = await digitAccuracy(model, testW, trainW);
    const evalSeconds = (performance.now() - t) / 1000;
    await saveModel(join(ctx.dir, MODEL_FILE), model, meta);
    t = performance.now();
    const gsm8k = await scoreGsm8k(model, c, ctx.seed);
    const gsmSeconds = (performance.now() - t) / 1000;
    const flat = data.test.flat();
    const firsts = data.test.map((_, k) => data.test.slice(0, k).reduce((n, r) => n + r.length, 0));
    return {
      metrics: {
        format: "question\\n -> calc lines `a op b=c`, then `#### n`",
        train_problems: data.train.length,
        train_generated: data.generated,
        train_windows: fit.windows.count,
        test_problems: flat.length,
        test_overlap_removed: data.overlapRemoved,
        test_too_long_removed: data.tooLongRemoved,
        ...evalNumbers(fine),
        exact_by_steps: fine.exactBySteps.map((x) => round(x)),
        digit_acc: round(digits.acc),
        base_digit_acc: round(baseDigits.acc),
        majority_digit_acc: round(digits.majority),
        step_acc: round(fine.stepAcc),
        calc_consistent: round(fine.calcConsistent),
        base_step_acc: round(base.stepAcc),
        base_calc_consistent: round(base.calcConsistent),
        ...Object.fromEntries(Object.entries(evalNumbers(base)).map(([k, v]) => [`base_${k}`, v])),
        base_exact_by_steps: base.exactBySteps.map((x) => round(x)),
        majority_token_acc: round(majority.accuracy),
        majority_token: TOKENIZER.decode([majority.token]) || `<${majority.token}>`,
        unigram_loss: round(unigramLoss(trainW, testW)),
        majority_answer: chance.answer,
        majority_answer_acc: round(chance.overall),
        majority_answer_by_steps: chance.byStep.map((x) => round(x)),
        // From metrics.jsonl, not the trainer's in-memory list: a resumed phase reports the same (first and last logged step).
        train_loss_first: round(logged[0] ?? NaN),
        train_loss_last: round(logged.at(-1) ?? NaN),
        train_steps: tr.steps,
        resumed_from: tr.resumedFrom,
        curve,
        samples: firsts.map((i) => ({
          steps: flat[i].steps.length,
          question: flat[i].question,
          expected: calcRationale(flat[i]),
          got: fine.outputs[i],
          base_got: base.outputs[i],
          correct: fine.correct[i],
        })),
        ...gsm8k,
        seconds: {
          base_eval: round(baseSeconds, 1),
          train: round(tr.seconds, 1),
          eval: round(evalSeconds, 1),
          gsm8k: round(gsmSeconds, 1),
        },
      },
      artifacts: [stageModelPath(phase4)],
    };
  } finally {
    model.dispose();
  }
}

/**
 * The gate: answer tokens clearly better than the base model and the input-blind baselines
 * (accuracy by `gate_min_gain`, loss by `gate_min_loss_drop` nats); greedy final-answer exact
 * match at least `gate_min_exact` only when that is above 0 (a 0 threshold would check nothing).
 */
function validate(out: { metrics: Record<string, unknown> }, ctx: PhaseContext) {
  const m = out.metrics as Record<string, number>, c = sectionOf(Phase4Section, ctx.phaseConfig, 4);
  const exact = c.gate_min_exact > 0 ? [check("exact (greedy, final answer)", m.exact, c.gate_min_exact)] : [];
  return [
    check("token_acc - base_token_acc", round(m.token_acc - m.base_token_acc), c.gate_min_gain),
    check("token_acc - majority_token_acc", round(m.token_acc - m.majority_token_acc), c.gate_min_gain),
    check("base_loss - loss (nats)", round(m.base_loss - m.loss), c.gate_min_loss_drop),
    check("unigram_loss - loss (nats)", round(m.unigram_loss - m.loss), c.gate_min_loss_drop),
    ...exact,
  ];
}

// ---------------------------------------------------------------------------------------------
// Report

const pct = (x: unknown) => (typeof x === "number" ? `${(100 * x).toFixed(1)}%` : "-");
const num = (x: unknown) => (typeof x === "number" ? x.toFixed(3) : "-");

/** Exact match by number of steps: fine-tuned vs base model vs the most common answer. */
function exactFigure(m: Record<string, unknown>): Figure {
  const fine = m.exact_by_steps as number[];
  const x = fine.map((_, k) => `${k + 1} step${k ? "s" : ""}`);
  const bar = (name: string, y: unknown) => ({
    type: "bar",
    name,
    x,
    y,
    text: (y as number[]).map((v) => pct(v)),
    textposition: "outside",
  });
  const top = Math.max(...fine, ...(m.base_exact_by_steps as number[]), ...(m.majority_answer_by_steps as number[]));
  return {
    data: [
      bar("fine-tuned", fine),
      bar("base model", m.base_exact_by_steps),
      bar(`most common answer (${m.majority_answer})`, m.majority_answer_by_steps),
    ],
    layout: {
      title: { text: "held-out exact match (greedy, final answer) by number of steps" },
      barmode: "group",
      yaxis: { title: { text: "exact match" }, range: [0, Math.min(1, Math.max(0.2, 1.25 * top))] },
      height: 380,
    },
  };
}

function report(result: { metrics: Record<string, unknown> }): PageSection[] {
  const m = result.metrics;
  if (!Array.isArray(m.exact_by_steps)) return [];
  const row = (name: string, fine: string, base: string, blind: string) =>
    `<tr><td>${name}</td><td>${fine}</td><td>${base}</td><td>${blind}</td></tr>`;
  const table = `<p>${m.train_problems} training problems (of ${m.train_generated} generated; the rest did not fit the window), ` +
    `${m.test_problems} held-out (${m.test_overlap_removed} candidates dropped as seen in training). Answer format: ${esc(m.format)}.</p>
<table><tr><th>held-out metric</th><th>fine-tuned</th><th>base model</th><th>input-blind baseline</th></tr>
${row("answer token accuracy", pct(m.token_acc), pct(m.base_token_acc), `${pct(m.majority_token_acc)} (always '${esc(m.majority_token)}')`)}
${row("answer digit accuracy (the numbers)", pct(m.digit_acc), pct(m.base_digit_acc), `${pct(m.majority_digit_acc)} (most common digit)`)}
${row("answer loss (nats/token)", num(m.loss), num(m.base_loss), `${num(m.unigram_loss)} (unigram)`)}
${row("rationale all right (teacher-forced)", pct(m.tf_exact), pct(m.base_tf_exact), "-")}
${row("final answer exact (greedy)", pct(m.exact), pct(m.base_exact), `${pct(m.majority_answer_acc)} (always ${esc(m.majority_answer)})`)}
${row("step lines right, in place (greedy)", pct(m.step_acc), pct(m.base_step_acc), "-")}
${row("generated calc lines arithmetically right", pct(m.calc_consistent), pct(m.base_calc_consistent), "-")}
${
      row(
        "GSM8K exact (greedy)",
        m.gsm8k_status === "scored"
          ? `${pct(m.gsm8k_exact)} of ${m.gsm8k_count} (drawn from the ${m.gsm8k_eligible} of ${m.gsm8k_total} test questions that fit)`
          : `skipped: ${esc(m.gsm8k_reason)}`,
        "-",
        pct(m.gsm8k_majority_acc),
      )
    }
</table>`;
  const sample = (s: Record<string, unknown>) =>
    `<tr><td>${esc(s.steps ?? "GSM8K")}</td><td>${esc(s.question)}</td><td><pre>${esc(s.expected)}</pre></td><td><pre>${
      esc(s.got)
    }</pre></td><td>${s.correct ? "✔" : "✘"}</td></tr>`;
  const samples = [...(m.samples as Record<string, unknown>[]), ...((m.gsm8k_samples ?? []) as Record<string, unknown>[])].map(sample);
  const curve = m.curve as { step: number; token_acc: number }[];
  const sections: PageSection[] = [
    { title: "Phase 4: math word problems, metrics vs baselines", html: table },
    { title: "Phase 4: exact match by number of steps", figure: exactFigure(m) },
  ];
  if (curve.length > 1) {
    sections.push({
      title: "Phase 4: held-out answer token accuracy during fine-tuning",
      figure: {
        data: [{
          type: "scatter",
          mode: "lines+markers",
          name: "fine-tuning",
          x: curve.map((p) => p.step),
          y: curve.map((p) => p.token_acc),
        }, {
          type: "scatter",
          mode: "lines",
          name: "base model",
          x: [0, curve.at(-1)!.step],
          y: [m.base_token_acc, m.base_token_acc],
        }],
        layout: { xaxis: { title: { text: "step" } }, yaxis: { title: { text: "answer token accuracy" } }, height: 340 },
      },
    });
  }
  sections.push({
    title: "Phase 4: sample generations (fine-tuned, greedy)",
    html: `<table><tr><th>steps</th><th>question</th><th>expected</th><th>generated</th><th></th></tr>${samples.join("\n")}</table>`,
  });
  return sections;
}

/** Phase 4: multi-step arithmetic word problems with calc-form rationales; exact match by steps; GSM8K when present. */
export const phase4: PhaseSpec = {
  id: 4,
  name: "math",
  title: "math text reasoning: word problems with rationales, exact match by number of steps, GSM8K sample",
  section: Phase4Section,

  presets: {
    // The documented configuration: this phase takes training.lr and training.batch_size.
    seed: { lr: 0, min_lr: 0, batch_size: 0 },
    tiny: {
      steps: 120,
      batch_size: 8,
      seq_len: 160,
      train_count: 1000,
      test_per_step: 8,
      gsm8k_count: 4,
      gsm8k_max_new: 24,
      gate_min_gain: 0.1,
      gate_min_loss_drop: 0.3,
    },
  },

  run,
  validate,
  report,
  stage: {
    metric: "token_acc",
    solved: "exact", // greedy final number right
    replay: (s) => mathData(s).train.map(mathItem),
    seqLen: (s) => sectionOf(Phase4Section, s.phaseConfig, 4).seq_len,
    evaluate: async (model, s) => evalNumbers(await evaluateMath(model, mathData(s), sectionOf(Phase4Section, s.phaseConfig, 4).seq_len)),
  },
};
