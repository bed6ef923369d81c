/**
 * The notebooks' explore sections for the text models of a run (notebooks 01, 04 and 05): small
 * functions that open a run's saved models (at the paths the phases save them, lib/util/run_dir.ts)
 * and look inside them with the library's own pieces, returning plain data and figures or HTML,
 * plus `show...` helpers that display them in a notebook (text elsewhere).
 *
 * - Phase 1: the three cognates' greedy answers to the same prompts (`sampleCognates`); the
 *   memory cognate's GatedLTM on a long input, chunk by chunk: surprise against the write
 *   threshold and which chunks it wrote, and the persistent store's slots after one
 *   `remember` (`ltmTrace`); the reasoning cognate's ACT refinement steps per token (`actSteps`).
 * - Phase 4: one held-out problem's generated rationale next to the reference, with the first
 *   wrong step (`compareRationale`, `mathRationale`).
 * - Phase 5: exact retrieval against needle depth for a prompt the researcher edits, in the
 *   phase's compact passkey format (`needlePrompt`, `needleSweep`).
 *
 * Every input is clipped to the model's window (see `inputWindow`), so the same calls work on
 * the tiny preset's 64-token models. Functions take a run (`RunLike`: a notebook's `Run` fits)
 * and dispose every model they load.
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { DEFAULT_LONG_CONTEXT, longContextItem, utf8Bytes } from "../../datasets/long_context.ts";
import { calcRationale, evalCalc, extractAnswer } from "../../datasets/math.ts";
import { type PipelineConfig, sectionOf } from "../config/config.ts";
import { stageContext } from "../eval/stage.ts";
import type { Cognate, CognateVariant } from "../models/cognate.ts";
import type { GatedLTMOutput, GatedLTMStats } from "../models/gated_ltm.ts";
import { loadModel, type SavedModel } from "../models/io.ts";
import type { RegistryModel } from "../models/registry.ts";
import { Phase1Section, sanitySplit } from "../phases/p1_cognate.ts";
import { mathData, mathItem, phase4, Phase4Section } from "../phases/p4_math.ts";
import { phase5, Phase5Section } from "../phases/p5_long_context.ts";
import { generateGreedy } from "../text/generate.ts";
import { type TextItem, TOKENIZER } from "../text/tokens.ts";
import { phase1ModelPath, stageModelPath } from "../util/run_dir.ts";
import { deriveSeed, Rng } from "../util/rng.ts";
import { type Figure, heatmap } from "../viz/figures.ts";
import { showFigure, showHtml, showTable } from "../viz/notebook.ts";
import { esc } from "../viz/report.ts";

/** What these functions need of a run: its directory and resolved config (a notebook's `Run` has both). */
export interface RunLike {
  runDir: string;
  config: PipelineConfig;
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

/** Loads a model file of the run, saying which phase makes it when it is missing. */
export async function openModel(run: RunLike, path: string, phase: number): Promise<{ model: RegistryModel; meta: SavedModel }> {
  try {
    return await loadModel(join(run.runDir, path));
  } catch (e) {
    throw new Error(`${(e as Error).message} (run phase ${phase} in ${run.runDir} first)`);
  }
}

/**
 * The most tokens (BOS included) a model is given here: its `maxSeqLen` for learned positions (a
 * hard limit), and for RoPE models the larger of `maxSeqLen` and `trained`, the window the phase
 * trained it at (phase 4 trains past `model.max_seq_len`; RoPE has no table to run out of).
 */
export function inputWindow(config: Record<string, unknown>, trained = 0): number {
  const max = Number(config.maxSeqLen);
  if (!(max > 0)) throw new Error(`inputWindow: the model config has no maxSeqLen (${config.maxSeqLen})`);
  return config.positions === "learned" ? max : Math.max(max, trained);
}

/** The last `n` tokens of `text` (whole text when it fits), as text. */
function lastTokens(text: string, n: number): string {
  const ids = TOKENIZER.encode(text);
  return ids.length <= n ? text : TOKENIZER.decode(ids.slice(ids.length - Math.max(0, n)));
}

/** A token as a short visible label (BOS, newline, space made visible). */
export function tokenLabel(id: number): string {
  if (id === TOKENIZER.bos) return "<s>";
  if (id === TOKENIZER.eos) return "</s>";
  if (id >= 256) return `<${id}>`;
  const ch = TOKENIZER.decode([id]);
  return ch === "\n" ? "⏎" : ch === " " ? "␣" : ch === "\uFFFD" ? `x${id.toString(16)}` : ch;
}

/** The first `count` held-out (test split) sanity items of the run's phase 1, the items no training decision saw. */
export function heldOutSanity(run: RunLike, count = 6): TextItem[] {
  return sanitySplit(stageContext(run.config, 1)).test.slice(0, count);
}

/** phases.1.seq_len of the run: the window phase 1 trained the cognates at. */
export function phase1SeqLen(run: RunLike): number {
  return sectionOf(Phase1Section, run.config.phases["1"] ?? {}, 1).seq_len;
}

/** The ids a cognate reads for `text`: BOS and the first `window - 1` tokens. */
export function inputIds(text: string, window: number): number[] {
  return [TOKENIZER.bos, ...TOKENIZER.encode(text)].slice(0, window);
}

// ---------------------------------------------------------------------------------------------
// Phase 1 (a): the three cognates side by side

/** Options of `sampleCognates`. */
export interface CognateSamplesOptions {
  /** Prompts; empty or absent: the first `count` held-out sanity prompts of the run (with their expected answers). */
  prompts?: readonly string[];
  /** Held-out prompts taken when `prompts` is empty (default 6). */
  count?: number;
  /** Most tokens each model writes (default 24; less when the window is shorter). */
  maxNew?: number;
  /** Which cognates (default all three). */
  variants?: readonly CognateVariant[];
}

/**
 * Greedy answers of phase 1's cognates (`phase-1-cognate/<variant>.safetensors`) to the same
 * prompts: one row per prompt with `prompt`, `expected` (held-out items only) and one column per
 * variant. Prompts longer than a model's window keep their end.
 */
export async function sampleCognates(run: RunLike, o: CognateSamplesOptions = {}): Promise<Record<string, string>[]> {
  const held = o.prompts?.length ? undefined : heldOutSanity(run, o.count ?? 6);
  const prompts = held ? held.map((it) => it.prompt) : [...o.prompts!];
  const rows: Record<string, string>[] = prompts.map((prompt, i) => ({ prompt, ...(held ? { expected: held[i].answer } : {}) }));
  for (const variant of o.variants ?? ["standard", "memory", "reasoning"] as const) {
    const { model, meta } = await openModel(run, phase1ModelPath(variant), 1);
    try {
      const window = inputWindow(meta.config, phase1SeqLen(run));
      const maxNew = Math.max(1, Math.min(o.maxNew ?? 24, window - 2));
      const fitted = prompts.map((p) => lastTokens(p, window - 1 - maxNew));
      const got = await generateGreedy(model, fitted, maxNew, 16);
      got.forEach((g, i) => (rows[i][variant] = g));
    } finally {
      model.dispose();
    }
  }
  return rows;
}

/** Shows `sampleCognates` as a table. */
export async function showCognateSamples(run: RunLike, o: CognateSamplesOptions = {}): Promise<void> {
  const rows = await sampleCognates(run, o);
  await showTable(rows, { title: "phase 1: greedy answers of the three cognates to the same prompts" });
}

// ---------------------------------------------------------------------------------------------
// Phase 1 (b): the memory cognate's GatedLTM on a long input

/** One chunk of the GatedLTM's in-pass memory updates. */
export interface LtmChunk {
  chunk: number;
  /** Token positions [start, end) of the input (position 0 is BOS). */
  start: number;
  end: number;
  /** The chunk's tokens as text. */
  text: string;
  /** Relative associative error of the chunk before its write. */
  surprise: number;
  /** Whether it was a hard write (surprise above the threshold). */
  wrote: boolean;
  /** The chunk's step size theta and forgetting alpha gates. */
  theta: number;
  alpha: number;
}

/** What `ltmTrace` found. */
export interface LtmTrace {
  /** The input text the model read (clipped to its window) and its token count with BOS. */
  text: string;
  tokens: number;
  chunkSize: number;
  /** The surprise above which a chunk counts as a write. */
  threshold: number;
  chunks: LtmChunk[];
  /** Hard writes as the model reported them (`extras.writes`). */
  writes: number;
  /** Persistent-store writes made by one `remember` of this pass, and the store's stats after it. */
  storeWrites: number;
  stats: GatedLTMStats;
  figure: Figure;
}

/** Options of `ltmTrace`. */
export interface LtmTraceOptions {
  /** The long input; "" or absent: held-out sanity items (prompt and answer, one per line) up to the window. */
  text?: string;
}

/** Held-out sanity items, one per line, until they fill `tokens` tokens. */
function sanityText(run: RunLike, tokens: number): string {
  const lines: string[] = [];
  let n = 0;
  for (const it of heldOutSanity(run, 400)) {
    if (n >= tokens) break;
    lines.push(it.prompt + it.answer);
    n += TOKENIZER.encode(it.prompt + it.answer).length + 1;
  }
  return lines.join("\n");
}

/**
 * Runs the memory cognate (`phase-1-cognate/memory.safetensors`) on one long input (BOS + the
 * text's first window - 1 tokens) and reads its GatedLTM per chunk: surprise, hard write, gates;
 * then lets it `remember` the pass once, filling the persistent store, and reports the store's slots.
 */
export async function ltmTrace(run: RunLike, o: LtmTraceOptions = {}): Promise<LtmTrace> {
  const { model, meta } = await openModel(run, phase1ModelPath("memory"), 1);
  const c = model as unknown as Cognate;
  let ltm: GatedLTMOutput | undefined;
  try {
    if (!c.ltm) throw new Error(`ltmTrace: ${phase1ModelPath("memory")} is not a memory cognate (key ${meta.key})`);
    const window = inputWindow(meta.config, phase1SeqLen(run));
    const ids = inputIds(o.text || sanityText(run, window), window);
    const x = tf.tensor2d([ids], [1, ids.length], "int32");
    ltm = tf.tidy(() => c.forward(x).extras.ltm! as unknown as tf.TensorContainer) as unknown as GatedLTMOutput;
    x.dispose();
    const [surprise, mask, theta, alpha, writes] = await Promise.all(
      [ltm.surprise, ltm.writeMask, ltm.theta, ltm.alpha, ltm.writes].map((t) => t.data()),
    );
    const cs = c.ltm.cfg.chunkSize, threshold = c.ltm.cfg.surpriseThreshold;
    const chunks: LtmChunk[] = Array.from(surprise, (s, i) => {
      const start = i * cs, end = Math.min(ids.length, start + cs);
      return {
        chunk: i,
        start,
        end,
        text: ids.slice(start, end).map(tokenLabel).join(""),
        surprise: s,
        wrote: mask[i] > 0,
        theta: theta[i],
        alpha: alpha[i],
      };
    });
    const storeWrites = await c.ltm.remember(ltm);
    const stats = c.ltmStats()!;
    const trace = {
      text: TOKENIZER.decode(ids),
      tokens: ids.length,
      chunkSize: cs,
      threshold,
      chunks,
      writes: writes[0],
      storeWrites,
      stats,
    };
    return { ...trace, figure: ltmFigure(trace) };
  } finally {
    if (ltm) tf.dispose(Object.values(ltm));
    model.dispose();
  }
}

/** Bars of surprise per chunk (written chunks red and marked), the write threshold as a dashed line. */
export function ltmFigure(t: Pick<LtmTrace, "chunks" | "threshold" | "chunkSize" | "tokens">): Figure {
  const x = t.chunks.map((c) => c.chunk), written = t.chunks.filter((c) => c.wrote);
  return {
    data: [
      {
        type: "bar",
        name: "surprise",
        x,
        y: t.chunks.map((c) => c.surprise),
        text: t.chunks.map((c) => c.text),
        hovertemplate: "chunk %{x}: %{text}<br>surprise %{y:.3f}<extra></extra>",
        marker: { color: t.chunks.map((c) => (c.wrote ? "#d62728" : "#9e9e9e")) },
      },
      {
        type: "scatter",
        mode: "lines",
        name: "write threshold",
        x: [-0.5, t.chunks.length - 0.5],
        y: [t.threshold, t.threshold],
        line: { dash: "dash", color: "#333" },
      },
      {
        type: "scatter",
        mode: "markers",
        name: "wrote",
        x: written.map((c) => c.chunk),
        y: written.map((c) => c.surprise),
        marker: { symbol: "triangle-down", size: 12, color: "#d62728" },
      },
    ],
    layout: {
      title: {
        text: `GatedLTM surprise per chunk (memory cognate, ${t.tokens} tokens, ${written.length} of ${t.chunks.length} chunks written)`,
      },
      xaxis: { title: { text: `chunk (${t.chunkSize} tokens each)` }, dtick: 1 },
      yaxis: { title: { text: "surprise (relative associative error)" }, rangemode: "tozero" },
      height: 380,
    },
  };
}

/** Shows `ltmTrace`: the chart, then the write and slot counts. */
export async function showLtmTrace(run: RunLike, o: LtmTraceOptions = {}): Promise<void> {
  const t = await ltmTrace(run, o);
  await showFigure(t.figure);
  const s = t.stats;
  await showTable([
    { what: "chunks written in the pass (surprise > threshold)", value: `${t.writes} of ${t.chunks.length}` },
    { what: "persistent store: writes of one remember()", value: t.storeWrites },
    { what: "persistent store: slots used / capacity", value: `${s.slotsUsed} / ${s.capacity}` },
    { what: "persistent store: mean slot strength", value: s.meanStrength },
  ], { title: "GatedLTM memory use" });
}

// ---------------------------------------------------------------------------------------------
// Phase 1 (c): ACT refinement steps of the reasoning cognate

/** One input's steps per token. */
export interface ActRow {
  text: string;
  /** Token labels (BOS first), as read. */
  tokens: string[];
  /** Refinement steps N per token (`extras.steps`). */
  steps: number[];
}

/** What `actSteps` found. */
export interface ActSteps {
  rows: ActRow[];
  /** The model's most steps per position (maxRefinementSteps). */
  maxSteps: number;
  figure: Figure;
}

/** Options of `actSteps`. */
export interface ActStepsOptions {
  /** Whole inputs (prompt and answer); empty or absent: the first `count` held-out sanity items, prompt + expected answer. */
  texts?: readonly string[];
  /** Held-out items taken when `texts` is empty (default 6). */
  count?: number;
}

/**
 * The reasoning cognate's (`phase-1-cognate/reasoning.safetensors`) ACT refinement steps N per
 * token on each input (one forward pass per input, BOS + up to window - 1 tokens), and a heatmap
 * of them: a row per input, a column per token position, each cell showing its token.
 */
export async function actSteps(run: RunLike, o: ActStepsOptions = {}): Promise<ActSteps> {
  const texts = o.texts?.length ? [...o.texts] : heldOutSanity(run, o.count ?? 6).map((it) => it.prompt + it.answer);
  const { model, meta } = await openModel(run, phase1ModelPath("reasoning"), 1);
  const c = model as unknown as Cognate;
  try {
    if (!c.core) throw new Error(`actSteps: ${phase1ModelPath("reasoning")} is not a reasoning cognate (key ${meta.key})`);
    const window = inputWindow(meta.config, phase1SeqLen(run));
    const rows: ActRow[] = [];
    for (const text of texts) {
      const ids = inputIds(text, window);
      const x = tf.tensor2d([ids], [1, ids.length], "int32");
      const steps = tf.tidy(() => c.forward(x).extras.steps!);
      rows.push({ text, tokens: ids.map(tokenLabel), steps: Array.from(await steps.data()) });
      tf.dispose([x, steps]);
    }
    const maxSteps = c.cfg.maxRefinementSteps;
    return { rows, maxSteps, figure: actFigure(rows, maxSteps) };
  } finally {
    model.dispose();
  }
}

/** The heatmap of `actSteps`: rows = inputs, columns = token positions (short rows padded with gaps), colour = steps N. */
export function actFigure(rows: readonly ActRow[], maxSteps: number): Figure {
  const width = Math.max(1, ...rows.map((r) => r.steps.length));
  const pad = <T>(a: readonly T[], v: T) => [...a, ...Array.from({ length: width - a.length }, () => v)];
  const fig = heatmap(
    rows.map((r) => pad(r.steps, NaN)),
    "ACT refinement steps per token (reasoning cognate)",
    {
      x: Array.from({ length: width }, (_, i) => i),
      y: rows.map((r, i) => `${i}: ${r.text.length > 20 ? `${r.text.slice(0, 20)}…` : r.text}`),
      xTitle: "token position (0 = BOS)",
      yTitle: "input",
      zTitle: "steps N",
      zmin: 1,
      zmax: maxSteps,
    },
  );
  Object.assign(fig.data[0], {
    text: rows.map((r) => pad(r.tokens, "")),
    texttemplate: "%{text}",
    hovertemplate: "position %{x}: %{text}<br>steps %{z}<extra></extra>",
  });
  return fig;
}

/** Shows `actSteps`' heatmap. */
export async function showActSteps(run: RunLike, o: ActStepsOptions = {}): Promise<void> {
  const a = await actSteps(run, o);
  await showFigure(a.figure);
}

// ---------------------------------------------------------------------------------------------
// Phase 4: a generated rationale against the reference

/** One step line of the comparison. */
export interface StepRow {
  /** 1-based step number. */
  step: number;
  /** The reference's line ("" past its last step). */
  reference: string;
  /** The generated line ("" when the output has fewer step lines). */
  generated: string;
  /** The generated line equals the reference line. */
  same: boolean;
  /** For a generated `a op b=c` line, whether its arithmetic is right (evalCalc); null for other lines. */
  arithmetic: boolean | null;
}

/** `compareRationale`'s verdict. */
export interface RationaleComparison {
  rows: StepRow[];
  /** Index into `rows` of the first wrong step, -1 when every step line matches. */
  firstWrong: number;
  /** Extracted final answers (extractAnswer: after the last `####`, else the last number), normalized. */
  finalGot: string | null;
  finalWant: string | null;
  correct: boolean;
}

/**
 * Compares a generated calc rationale with the reference step by step. The step lines are the
 * lines before the first `####` line. Rule: the first wrong step is the first position whose
 * generated line differs from the reference's line there (a missing or extra line counts), the
 * place-wise rule of `stepScores` (datasets/math.ts); each generated `a op b=c` line is also
 * checked for arithmetic, so a wrong row shows whether the model miscalculated or copied a wrong
 * operand. The final answers are extracted as the phase scores them.
 */
export function compareRationale(generated: string, reference: string): RationaleComparison {
  const steps = (text: string) => {
    const lines = text.split("\n");
    const end = lines.findIndex((l) => l.trimStart().startsWith("####"));
    const body = end < 0 ? lines : lines.slice(0, end);
    while (body.length && body[body.length - 1].trim() === "") body.pop();
    return body;
  };
  const want = steps(reference), got = steps(generated);
  const rows: StepRow[] = Array.from({ length: Math.max(want.length, got.length) }, (_, i) => {
    const g = got[i] ?? "", r = want[i] ?? "";
    const calc = /^([\d+\-*/]+)=(\d+)$/.exec(g);
    return {
      step: i + 1,
      reference: r,
      generated: g,
      same: i < got.length && i < want.length && g === r,
      arithmetic: calc ? Math.abs((evalCalc(calc[1]) ?? NaN) - Number(calc[2])) < 1e-9 : null,
    };
  });
  const finalGot = extractAnswer(generated), finalWant = extractAnswer(reference);
  return { rows, firstWrong: rows.findIndex((r) => !r.same), finalGot, finalWant, correct: finalWant !== null && finalGot === finalWant };
}

/** The comparison as an HTML table, the first wrong step highlighted, the final answers below. */
export function rationaleHtml(c: RationaleComparison, question = ""): string {
  const cell = "border: 1px solid #ccc; padding: 2px 8px; font-family: monospace; white-space: pre";
  const verdict = (r: StepRow, i: number) => {
    if (r.same) return "✓ same as reference";
    const what = !r.generated ? "missing" : !r.reference ? "extra line" : "differs";
    const arith = r.arithmetic === null ? "" : r.arithmetic ? ", arithmetic right" : ", arithmetic wrong";
    return `${i === c.firstWrong ? "✗ first wrong step: " : "✗ "}${what}${arith}`;
  };
  const rows = c.rows.map((r, i) => {
    const style = i === c.firstWrong ? "background: #ffd6d6; font-weight: bold" : r.same ? "" : "background: #fff3e0";
    return `<tr style="${style}"><td style="${cell}">${r.step}</td><td style="${cell}">${esc(r.reference)}</td><td style="${cell}">${
      esc(r.generated)
    }</td><td style="${cell}">${esc(verdict(r, i))}</td></tr>`;
  }).join("");
  const final = `<tr style="${c.correct ? "" : "background: #ffd6d6"}"><td style="${cell}">####</td><td style="${cell}">${
    esc(c.finalWant ?? "(none)")
  }</td><td style="${cell}">${esc(c.finalGot ?? "(none)")}</td><td style="${cell}">${
    c.correct ? "✓ final answer right" : "✗ final answer wrong"
  }</td></tr>`;
  const head = ["step", "reference", "generated", "verdict"].map((h) => `<th style="${cell}">${h}</th>`).join("");
  const summary = c.firstWrong < 0
    ? "every step line matches the reference"
    : `first wrong step: ${c.rows[c.firstWrong].step} (the first line that differs from the reference's line at the same place)`;
  return `${question ? `<p><b>question</b>: ${esc(question)}</p>` : ""}<table style="border-collapse: collapse; font-size: 13px">` +
    `<tr>${head}</tr>${rows}${final}</table><p>${esc(summary)}; extracted final answer ${esc(c.finalGot ?? "(none)")}, reference ${
      esc(c.finalWant ?? "(none)")
    }</p>`;
}

/** Options of `mathRationale`. */
export interface MathRationaleOptions {
  /** Which held-out bucket: problems of this many calculation steps (1..phases.4.max_calc_steps; default the largest). */
  steps?: number;
  /** Which problem of the bucket (default 0). */
  index?: number;
  /** Most tokens generated (default: the reference's length + 4, as the phase; clipped to the window). */
  maxNew?: number;
}

/** What `mathRationale` shows. */
export interface MathRationale extends RationaleComparison {
  question: string;
  reference: string;
  generated: string;
  steps: number;
  index: number;
  html: string;
}

/**
 * Generates (greedily) the rationale of one held-out problem of phase 4 with the phase's model
 * (`stageModelPath(phase4)`) and compares it with the reference (`compareRationale`).
 */
export async function mathRationale(run: RunLike, o: MathRationaleOptions = {}): Promise<MathRationale> {
  const c = sectionOf(Phase4Section, run.config.phases["4"] ?? {}, 4);
  const steps = o.steps ?? c.max_calc_steps, index = o.index ?? 0;
  const data = mathData(stageContext(run.config, 4));
  const bucket = data.test[steps - 1];
  if (!bucket) {
    throw new Error(`mathRationale: steps = ${steps}; held-out problems have 1..${data.test.length} steps (phases.4.max_calc_steps)`);
  }
  const p = bucket[index];
  if (!p) {
    throw new Error(`mathRationale: index = ${index}; the ${steps}-step bucket holds ${bucket.length} problems (phases.4.test_per_step)`);
  }
  const item = mathItem(p), reference = calcRationale(p);
  const { model, meta } = await openModel(run, stageModelPath(phase4), 4);
  try {
    const window = inputWindow(meta.config, c.seq_len);
    const promptTokens = TOKENIZER.encode(item.prompt).length;
    const maxNew = Math.max(1, Math.min(o.maxNew ?? TOKENIZER.encode(reference).length + 4, window - 1 - promptTokens));
    const [generated] = await generateGreedy(model, [lastTokens(item.prompt, window - 1 - maxNew)], maxNew, 1);
    const cmp = compareRationale(generated, reference);
    return { ...cmp, question: p.question, reference, generated, steps, index, html: rationaleHtml(cmp, p.question) };
  } finally {
    model.dispose();
  }
}

/** Shows `mathRationale`'s table. */
export async function showMathRationale(run: RunLike, o: MathRationaleOptions = {}): Promise<void> {
  const r = await mathRationale(run, o);
  await showHtml(r.html);
}

// ---------------------------------------------------------------------------------------------
// Phase 5: retrieval against needle depth

/** The compact passkey prompt's fixed parts (datasets/long_context.ts, `compact: true`). */
const PASSKEY = { intro: "Find the key.", question: "key=", needle: (key: string) => `key=${key}.` };

/** One prompt with the needle at a depth. */
export interface NeedlePrompt {
  prompt: string;
  key: string;
  /** The depth asked for, and the measured one (filler tokens before the needle / all filler tokens). */
  depth: number;
  measuredDepth: number;
  /** Prompt tokens (bytes). */
  length: number;
}

/**
 * The phase's compact passkey prompt (datasets/long_context.ts): `Find the key.`, a blank line,
 * the filler words with the needle `key=<key>.` between the two words nearest `depth` (by
 * tokens of the filler before it), a blank line, `key=`. The same placement rule as the
 * dataset, so the dataset's own filler and key give its prompt back.
 */
export function needlePrompt(words: readonly string[], key: string, depth: number): NeedlePrompt {
  if (!(depth >= 0 && depth <= 1)) throw new Error(`needlePrompt: depth ${depth}: expected a fraction in [0, 1]`);
  const total = utf8Bytes(words.join(" "));
  const prefix = (i: number) => utf8Bytes(words.slice(0, i).join(" "));
  // The word index whose prefix share is nearest the depth (bisection, as the dataset places needles).
  let lo = 0, hi = words.length;
  if (total === 0) lo = Math.round(depth * words.length);
  else {
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (prefix(mid) <= depth * total) lo = mid;
      else hi = mid - 1;
    }
    if (lo < words.length && Math.abs(prefix(lo + 1) - depth * total) < Math.abs(prefix(lo) - depth * total)) lo++;
  }
  const context = [...words.slice(0, lo), PASSKEY.needle(key), ...words.slice(lo)].join(" ");
  const prompt = `${PASSKEY.intro}\n\n${context}\n\n${PASSKEY.question}`;
  return { prompt, key, depth, measuredDepth: total === 0 ? depth : prefix(lo) / total, length: utf8Bytes(prompt) };
}

/**
 * Filler words for prompts of about `length` tokens with a needle of `keyLength` characters:
 * the words of `filler` repeated in order (the last one given a full stop), or, when `filler` is
 * empty, the dataset's own filler for a compact passkey prompt of that length.
 */
export function fillerWords(filler: string, length: number, keyLength: number, seed = 0): string[] {
  const fixed = utf8Bytes(needlePrompt([], "x".repeat(keyLength), 0).prompt);
  if (length - fixed < 2) {
    throw new Error(`fillerWords: a ${length}-token prompt leaves no room for filler (the fixed text takes ${fixed})`);
  }
  let pool = filler.split(/\s+/).filter(Boolean);
  if (pool.length === 0) {
    // The dataset's filler: its item at this length, with its needle taken out.
    const keyDigits = Math.min(15, Math.max(1, keyLength)), at = Math.max(32, length);
    const it = longContextItem({ ...DEFAULT_LONG_CONTEXT, task: "passkey", compact: true, keyDigits, length: at, depth: 0, seed });
    pool = it.prompt.split("\n\n")[1].split(" ").filter((w) => w !== PASSKEY.needle(it.answer));
  }
  if (pool.length === 0) throw new Error("fillerWords: the filler has no words");
  const words: string[] = [];
  // Whole words while the prompt (filler + a space + the needle) stays within the length.
  for (let i = 0; fixed + utf8Bytes(words.join(" ")) + 1 + utf8Bytes(pool[i % pool.length]) + (words.length ? 1 : 0) <= length; i++) {
    words.push(pool[i % pool.length]);
  }
  if (words.length && !words[words.length - 1].endsWith(".")) words[words.length - 1] += ".";
  return words;
}

/** Options of `needleSweep`. */
export interface NeedleSweepOptions {
  /** Filler text (its words repeated to the length); "" or absent: the dataset's own filler. */
  filler?: string;
  /** Prompt length in tokens; 0 or absent: the phase-5 model's window less room for BOS, key and EOS. */
  length?: number;
  /** Keys to hide; empty or absent: 3 random keys of phases.5.key_digits digits. */
  keys?: readonly string[];
  /** Needle depths (fractions of the filler before the key; default phases.5.eval_depths). */
  depths?: readonly number[];
}

/** One generation of the sweep. */
export interface NeedleRow {
  /** The prompt the model read. */
  prompt: string;
  depth: number;
  measuredDepth: number;
  key: string;
  got: string;
  /** The greedy output is the key and then EOS (the phase's exact match). */
  exact: boolean;
}

/** What `needleSweep` found. */
export interface NeedleSweep {
  /** Prompt tokens of the first key's prompts and the model's window (`maxSeqLen`). */
  length: number;
  window: number;
  depths: number[];
  keys: string[];
  /** Exact-match accuracy over the keys, per depth. */
  accuracy: number[];
  rows: NeedleRow[];
  /** Chance of guessing a key exactly (digit keys of one length), or null. */
  chance: number | null;
  figure: Figure;
}

/**
 * Hides each key at each depth in the same filler, asks phase 5's model
 * (`stageModelPath(phase5)`, the extended model) greedily, and charts exact match against
 * depth. The length is clipped to the window for learned positions; a RoPE model is given
 * any length (past its window it extrapolates, as the phase's grid tests).
 */
export async function needleSweep(run: RunLike, o: NeedleSweepOptions = {}): Promise<NeedleSweep> {
  const s = sectionOf(Phase5Section, run.config.phases["5"] ?? {}, 5);
  const depths = [...(o.depths?.length ? o.depths : s.eval_depths)];
  const keys = [...(o.keys ?? [])].map(String).filter(Boolean);
  if (keys.length === 0) {
    const rng = new Rng(deriveSeed(run.config.run.seed, "explore-needle-keys")), lo = 10 ** (s.key_digits - 1);
    while (keys.length < 3) {
      const k = String(lo + rng.int(9 * lo));
      if (!keys.includes(k)) keys.push(k);
    }
  }
  if (keys.some((k) => /\s/.test(k))) throw new Error(`needleSweep: keys [${keys}] must not contain spaces`);
  const { model, meta } = await openModel(run, stageModelPath(phase5), 5);
  try {
    const window = Number(meta.config.maxSeqLen);
    const keyTokens = Math.max(...keys.map((k) => TOKENIZER.encode(k).length));
    const room = window - keyTokens - 2; // BOS + prompt + key + EOS within the window
    const length = !o.length ? room : meta.config.positions === "learned" ? Math.min(o.length, room) : o.length;
    const prompts: NeedlePrompt[] = [];
    for (const key of keys) {
      const words = fillerWords(o.filler ?? "", length, key.length, deriveSeed(run.config.run.seed, "explore-needle-filler"));
      for (const d of depths) prompts.push(needlePrompt(words, key, d));
    }
    const got = await generateGreedy(model, prompts.map((p) => p.prompt), keyTokens + 1, 16);
    const rows: NeedleRow[] = prompts.map((p, i) => ({
      prompt: p.prompt,
      depth: p.depth,
      measuredDepth: p.measuredDepth,
      key: p.key,
      got: got[i],
      exact: got[i] === p.key,
    }));
    const accuracy = depths.map((d) => {
      const at = rows.filter((r) => r.depth === d);
      return at.filter((r) => r.exact).length / at.length;
    });
    const digits = keys.every((k) => /^[1-9]\d*$/.test(k) && k.length === keys[0].length);
    const chance = digits ? 1 / (9 * 10 ** (keys[0].length - 1)) : null;
    const sweep = { length: prompts[0].length, window, depths, keys, accuracy, rows, chance };
    return { ...sweep, figure: needleFigure(sweep) };
  } finally {
    model.dispose();
  }
}

/** Exact-match accuracy (over the keys) against needle depth, with chance dotted. */
export function needleFigure(s: Pick<NeedleSweep, "depths" | "accuracy" | "keys" | "length" | "window" | "chance">): Figure {
  const data: Record<string, unknown>[] = [{
    type: "scatter",
    mode: "lines+markers",
    name: `phase 5 model (${s.keys.length} key${s.keys.length === 1 ? "" : "s"})`,
    x: s.depths,
    y: s.accuracy,
  }];
  if (s.chance !== null) {
    data.push({ type: "scatter", mode: "lines", name: "chance", x: s.depths, y: s.depths.map(() => s.chance), line: { dash: "dot" } });
  }
  return {
    data,
    layout: {
      title: { text: `retrieval accuracy by needle depth (${s.length}-token prompt, window ${s.window})` },
      xaxis: { title: { text: "needle depth (fraction of the filler before the key)" }, range: [-0.05, 1.05] },
      yaxis: { title: { text: "exact match" }, range: [-0.05, 1.05] },
      height: 380,
    },
  };
}

/** Shows `needleSweep`: the chart, then every generation. */
export async function showNeedleSweep(run: RunLike, o: NeedleSweepOptions = {}): Promise<void> {
  const s = await needleSweep(run, o);
  await showFigure(s.figure);
  await showTable(s.rows.map(({ prompt: _, ...r }) => ({ ...r, measuredDepth: Number(r.measuredDepth.toFixed(3)) })), {
    title: `greedy answers (${s.length}-token prompts)`,
  });
}
