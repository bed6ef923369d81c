/**
 * Phase 5: long context. Extends the base model's trained context (`model.max_seq_len`) by a
 * factor with RoPE position interpolation (the extended model divides positions by the factor,
 * so the new window spans the angles the base was trained on; Chen et al., 2023), fine-tunes it
 * on passkey retrieval (datasets/long_context.ts, compact form: short digit keys hidden in
 * filler text, with decoy numbers as an option), first at the trained context then at lengths
 * up to the extended window, optionally after a copy drill that builds the induction circuit
 * keys among decoys need, and scores exact retrieval on a grid of context length x needle depth
 * that reaches past the extended window. Baselines on the same grid: the base model as phase 1
 * left it, the extended model before fine-tuning, chance (a uniform key) and the majority answer
 * token.
 */
import { MODEL_FILE, stageModelPath } from "../util/run_dir.ts";
import { join } from "node:path";
import {
  compactPasskeyMinLength,
  copyDrill,
  DEFAULT_LONG_CONTEXT,
  grid,
  type LongContextItem,
  longContextItem,
} from "../../datasets/long_context.ts";
import { createModel, type ModelKey, type RegistryModel } from "../models/registry.ts";
import type { PipelineConfig } from "../config/config.ts";
import { check, type PhaseContext, type PhaseSpec } from "./spec.ts";
import type { PhaseResultFile } from "../util/run_dir.ts";
import type { StageContext } from "../eval/stage.ts";
import { deriveSeed, Rng } from "../util/rng.ts";
import type { Figure } from "../viz/figures.ts";
import { esc, type PageSection } from "../viz/report.ts";
import { answerMetrics, majorityTokenAccuracy } from "../eval/answers.ts";
import { generateGreedy } from "../text/generate.ts";
import { loadBase, phaseTrainer, trainText } from "./common.ts";
import { sectionOf } from "../config/config.ts";
import { z } from "zod";
import { batchFor } from "../train/config.ts";
import { round } from "../util/numbers.ts";
import { type SavedModel, saveModel } from "../models/io.ts";
import { type TextItem, windowsOf } from "../text/tokens.ts";

/** The shortest prompt the dataset builds (its `length` minimum). */
const MIN_PROMPT = 32;

/** Phase 5's config section (`phases.5`): type, defaults and validation. */
export const Phase5Section = z.strictObject({
  factor: z.number().min(1).default(2), // context extension: RoPE position interpolation scale, extended window = factor x model.max_seq_len
  key_digits: z.number().int().min(1).max(6).default(1), // digits of the pass key (chance of an exact guess: 1 / (9 x 10^(digits - 1))); 2+ among decoys needs induction: model.prev_tokens = 2 and drill_steps = 300 learn 5 (README)
  decoys: z.number().int().min(0).max(16).default(0), // other numbers of key_digits digits hidden in the filler under other labels (`pin=48213.`), in training and evaluation
  drill_steps: z.number().int().min(0).default(0), // steps of a copy drill before the passkey stages (datasets/long_context.ts copyDrill): builds the induction circuit that reads a key after its label
  drill_batch_size: z.number().int().min(0).default(32), // drill windows per step (0: batch_size)
  drill_min_length: z.number().int().min(1).default(8), // digits of the shortest drill string
  drill_max_length: z.number().int().min(1).default(27), // digits of the longest; a window holds BOS, two copies, a newline and EOS: 2 x this + 2 positions (56 at 27)
  short_steps: z.number().int().min(0).default(200), // fine-tuning steps at the trained context (prompts min_length..max_seq_len)
  long_steps: z.number().int().min(1).default(100), // fine-tuning steps at lengths up to the extended window
  batch_size: z.number().int().min(0).default(8), // windows per step (0: training.batch_size)
  lr: z.number().min(0).default(2e-3), // peak learning rate of both stages (0: training.lr); warmup and cosine floor from the training section (lib/train/config.ts)
  min_length: z.number().int().min(0).default(0), // shortest training prompt, in tokens (bytes); 0: the shortest the task builds (shortestPrompt: 32, or the needles alone where longer)
  eval_length_factors: z.array(z.number()).default([0.5, 1, 2, 4]), // evaluation lengths as multiples of model.max_seq_len (4 is past the extended window)
  eval_depths: z.array(z.number()).default([0, 0.25, 0.5, 0.75, 1]), // needle depths of the evaluation grid (fraction of the filler before the key)
  eval_items: z.number().int().min(1).default(4), // items per (length, depth) cell
  gate_min_gain: z.number().default(0.3), // gate: exact match past every fine-tuning window (the extended one), fine-tuned - base, at least this
  gate_min_over_chance: z.number().default(0.3), // gate: exact match past every fine-tuning window, fine-tuned - chance, at least this
});
export type Phase5Section = z.infer<typeof Phase5Section>;

// ---------------------------------------------------------------------------------------------
// Pure helpers: windows, items, chance

/** The context windows of a run: trained (the base's `model.max_seq_len`) and extended (factor x trained). */
export function windowsFor(config: PipelineConfig, s: Phase5Section): { trained: number; extended: number } {
  const trained = config.model.max_seq_len;
  return { trained, extended: Math.round(s.factor * trained) };
}

/**
 * The extended model's config: the base's, with RoPE positions divided by `factor` more
 * (position interpolation) and the window `extended`. Parameter names and shapes are
 * unchanged, so the base's weights load into it as they are.
 */
export function extendedConfig(base: Record<string, unknown>, factor: number, extended: number): Record<string, unknown> {
  if (base.positions !== "rope") {
    throw new Error(`phase 5: the base model has positions = ${base.positions}; context extension needs model.positions = rope`);
  }
  return { ...base, ropeScale: ((base.ropeScale as number | undefined) ?? 1) * factor, maxSeqLen: extended };
}

/** Probability of guessing a key of `digits` digits (first digit 1-9) exactly. */
export function chanceExact(digits: number): number {
  return 1 / (9 * 10 ** (digits - 1));
}

/** The shortest prompt the phase can build: the dataset's minimum, or the needles alone where they are longer. */
export function shortestPrompt(s: Phase5Section): number {
  return Math.max(MIN_PROMPT, compactPasskeyMinLength(s.key_digits, s.decoys));
}

/** The evaluation lengths: `eval_length_factors` x trained context, in tokens (bytes). */
export function evalLengths(s: Phase5Section, trained: number): number[] {
  if (s.eval_length_factors.length === 0) throw new Error("phases.5.eval_length_factors is empty: expected factors such as [0.5, 1, 2, 4]");
  const floor = shortestPrompt(s);
  return s.eval_length_factors.map((f) => {
    const L = Math.round(f * trained);
    if (!(L >= floor)) {
      throw new Error(
        `phases.5.eval_length_factors: ${f} x model.max_seq_len ${trained} = ${L} tokens, below the task's minimum ${floor}` +
          ` (key_digits ${s.key_digits}, decoys ${s.decoys})`,
      );
    }
    return L;
  });
}

/** The held-out grid: `eval_items` passkey items per (length, depth), seeded apart from training. */
export function evalItems(s: Phase5Section, lengths: number[], seed: number): LongContextItem[] {
  if (s.eval_depths.some((d) => !(d >= 0 && d <= 1))) {
    throw new Error(`phases.5.eval_depths = [${s.eval_depths}]: expected fractions in [0, 1]`);
  }
  return grid(lengths, s.eval_depths, s.eval_items, {
    task: "passkey",
    compact: true,
    keyDigits: s.key_digits,
    decoys: s.decoys,
    seed: deriveSeed(seed, "eval"),
  });
}

/**
 * `count` training items whose prompts are `min_length` (0: `shortestPrompt`)..`seqLen - key_digits - 3` tokens (so
 * BOS + prompt + key + EOS fit a window of seqLen), at uniform random depths.
 */
export function trainItems(s: Phase5Section, seqLen: number, count: number, seed: number): TextItem[] {
  const top = seqLen - s.key_digits - 3;
  const shortest = s.min_length || shortestPrompt(s);
  if (shortest < shortestPrompt(s)) {
    throw new Error(
      `phases.5.min_length = ${s.min_length}: prompts with key_digits ${s.key_digits} and decoys ${s.decoys} need at least ${
        shortestPrompt(s)
      } tokens; raise it`,
    );
  }
  if (top < shortest) {
    throw new Error(`phases.5.min_length = ${shortest}: training windows of ${seqLen} tokens hold prompts up to ${top}; lower it`);
  }
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const length = shortest + rng.int(top - shortest + 1), depth = rng.next();
    const it = longContextItem({
      ...DEFAULT_LONG_CONTEXT,
      task: "passkey",
      compact: true,
      keyDigits: s.key_digits,
      decoys: s.decoys,
      length,
      depth,
      seed: deriveSeed(seed, `item-${i}`),
    });
    return { prompt: it.prompt, answer: it.answer, task: "passkey" };
  });
}

/** `count` copy-drill items (`copyDrill`) of drill_min_length..drill_max_length digits. */
export function drillItems(s: Phase5Section, count: number, seed: number): TextItem[] {
  if (s.drill_max_length < s.drill_min_length) {
    throw new Error(`phases.5.drill_max_length = ${s.drill_max_length}: expected at least drill_min_length (${s.drill_min_length})`);
  }
  return Array.from({ length: count }, (_, i) => ({
    ...copyDrill(deriveSeed(seed, `drill-${i}`), s.drill_min_length, s.drill_max_length),
    task: "copy_drill",
  }));
}

/** The drill's window: BOS, the string, a newline, the string again and EOS, less the one token the targets shift by. */
export function drillWindow(s: Phase5Section): number {
  return 2 * s.drill_max_length + 2;
}

/** The fine-tuning stages: the copy drill, the passkey at the trained context, then the passkey up to the extended window. */
function stages(config: PipelineConfig, s: Phase5Section, seed: number) {
  const { trained, extended } = windowsFor(config, s);
  return [
    {
      name: "drill",
      seqLen: drillWindow(s),
      steps: s.drill_steps,
      batch: s.drill_batch_size || s.batch_size,
      seed: deriveSeed(seed, "train-drill"),
    },
    { name: "short", seqLen: trained, steps: s.short_steps, batch: s.batch_size, seed: deriveSeed(seed, "train-short") },
    { name: "long", seqLen: extended, steps: s.long_steps, batch: s.batch_size, seed: deriveSeed(seed, "train-long") },
  ].filter((st) => st.steps > 0);
}

// ---------------------------------------------------------------------------------------------
// Scoring a model on the grid

/** Accuracy on the grid: rows are lengths, columns depths. */
export interface GridScore {
  /** Exact key match per cell [lengths][depths]. */
  exact: number[][];
  /** Answer-token accuracy (key digits and EOS) per cell. */
  token_acc: number[][];
  /** Mean answer loss (nats) per length. */
  loss: number[];
}

/** Scores `model` cell by cell (teacher-forced: exact match = what greedy decoding would answer). */
export async function scoreGrid(model: RegistryModel, items: LongContextItem[], lengths: number[], depths: number[]): Promise<GridScore> {
  const exact: number[][] = [], token_acc: number[][] = [], loss: number[] = [];
  for (const L of lengths) {
    const row = items.filter((it) => it.targetLength === L);
    const seqLen = Math.max(...row.map((it) => it.length)) + row[0].answer.length + 1; // BOS + prompt + key + EOS = seqLen + 1
    const e: number[] = [], t: number[] = [];
    let lossSum = 0;
    for (const d of depths) {
      const cell = row.filter((it) => it.targetDepth === d);
      const m = await answerMetrics(model, windowsOf(cell, seqLen, false), cell.length);
      e.push(m.exact);
      t.push(m.token_acc);
      lossSum += m.loss;
    }
    exact.push(e);
    token_acc.push(t);
    loss.push(lossSum / depths.length);
  }
  return { exact, token_acc, loss };
}

/** Mean over the cells of the rows whose length passes `keep`. */
function meanRows(m: number[][], lengths: number[], keep: (L: number) => boolean): number {
  const cells = m.filter((_, i) => keep(lengths[i])).flat();
  return cells.length ? cells.reduce((a, b) => a + b, 0) / cells.length : NaN;
}

/** The headline numbers of a grid score: beyond / within the trained context, beyond the extended window. */
export function summarize(g: GridScore, lengths: number[], trained: number, extended: number) {
  return {
    beyond_exact: meanRows(g.exact, lengths, (L) => L > trained),
    beyond_token_acc: meanRows(g.token_acc, lengths, (L) => L > trained),
    within_exact: meanRows(g.exact, lengths, (L) => L <= trained),
    beyond_extended_exact: meanRows(g.exact, lengths, (L) => L > extended),
    exact: meanRows(g.exact, lengths, () => true),
  };
}

const roundGrid = (m: number[][]) => m.map((r) => r.map((x) => round(x)));
const meanOf = (r: number[]) => r.reduce((a, b) => a + b, 0) / r.length;

// ---------------------------------------------------------------------------------------------
// The phase

async function run(ctx: PhaseContext): Promise<{ metrics: Record<string, unknown>; artifacts: string[] }> {
  const s = sectionFrom(ctx.phaseConfig);
  const { trained, extended } = windowsFor(ctx.config, s);
  const lengths = evalLengths(s, trained), depths = s.eval_depths;
  const items = evalItems(s, lengths, ctx.seed);

  // Baseline 1: the base model as phase 1 left it (RoPE at scale 1, extrapolating past its window).
  const { model: base, meta } = await loadBase(ctx);
  const baseScore = await scoreGrid(base, items, lengths, depths);
  const weights = await base.params.toHost();
  base.dispose();

  // The extended model: the same weights, positions interpolated by `factor`.
  const extMeta: SavedModel = { key: meta.key as ModelKey, config: extendedConfig(meta.config, s.factor, extended) };
  const model = createModel(extMeta.key, extMeta.config, deriveSeed(ctx.seed, "model"));
  model.params.load(weights, { source: "phase 1 base" });
  // Baseline 2: extended, before fine-tuning.
  const extScore = await scoreGrid(model, items, lengths, depths);

  // Fine-tune: the copy drill (if any), stage "short" at the trained context, stage "long" up to the extended window.
  const monitor = items.filter((it) => it.targetLength === Math.min(...lengths.filter((L) => L > trained)));
  const monitorW = monitor.length ? windowsOf(monitor, Math.max(...monitor.map((it) => it.length)) + s.key_digits + 1, false) : undefined;
  const evaluate = monitorW
    ? async () => ({ monitor_exact: (await answerMetrics(model, monitorW, batchFor(ctx.config.training, s.batch_size))).exact })
    : undefined;
  const trainLog: Record<string, unknown>[] = [];
  let fitWindows;
  for (const st of stages(ctx.config, s, ctx.seed)) {
    const n = st.steps * batchFor(ctx.config.training, st.batch);
    const w = windowsOf(st.name === "drill" ? drillItems(s, n, st.seed) : trainItems(s, st.seqLen, n, st.seed), st.seqLen, false);
    if (st.name !== "drill") fitWindows ??= w;
    const r = await trainText(ctx, {
      name: st.name,
      model,
      windows: w,
      ...phaseTrainer(ctx, { steps: st.steps, lr: s.lr, batch_size: st.batch }),
      seed: st.seed,
      evaluate,
    });
    // A resumed, already finished stage runs no step and no evaluation: score it here instead.
    const monitorExact = r.lastEval?.monitor_exact ?? (await evaluate?.())?.monitor_exact ?? NaN;
    trainLog.push({ stage: st.name, seq_len: st.seqLen, steps: r.steps, monitor_exact: round(monitorExact) });
  }
  const ftScore = await scoreGrid(model, items, lengths, depths);

  // A few greedy generations: one per length at the middle depth.
  const mid = depths[Math.floor(depths.length / 2)];
  const picks = lengths.map((L) => items.find((it) => it.targetLength === L && it.targetDepth === mid)!);
  const got = await generateGreedy(model, picks.map((it) => it.prompt), s.key_digits + 1, 4);
  const samples = picks.map((it, i) => ({
    length: it.length,
    depth: round(it.depth, 2),
    prompt: it.prompt,
    expected: it.answer,
    got: got[i],
  }));

  await saveModel(join(ctx.dir, MODEL_FILE), model, extMeta);
  model.dispose();

  const evalW = windowsOf(items, Math.max(...items.map((it) => it.length)) + s.key_digits + 1, false);
  const sums = {
    base: summarize(baseScore, lengths, trained, extended),
    extended: summarize(extScore, lengths, trained, extended),
    finetuned: summarize(ftScore, lengths, trained, extended),
  };
  const r4 = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(v)]));
  return {
    metrics: {
      ...r4(sums.finetuned),
      base: r4(sums.base),
      extended_before: r4(sums.extended),
      gain_beyond: round(sums.finetuned.beyond_exact - sums.base.beyond_exact),
      // Past every window any fine-tuning stage saw (the extended one): what the gate reads.
      gain_beyond_extended: round(sums.finetuned.beyond_extended_exact - sums.base.beyond_extended_exact),
      chance_exact: round(chanceExact(s.key_digits), 6),
      majority_token_acc: round(fitWindows ? majorityTokenAccuracy(fitWindows, evalW).accuracy : NaN),
      trained_context: trained,
      extended_context: extended,
      rope_scale: extMeta.config.ropeScale,
      key_digits: s.key_digits,
      eval_items_per_cell: s.eval_items,
      heatmap: {
        lengths,
        depths,
        exact: { base: roundGrid(baseScore.exact), extended: roundGrid(extScore.exact), finetuned: roundGrid(ftScore.exact) },
      },
      by_length: lengths.map((L, i) => ({
        length: L,
        factor: round(L / trained, 3),
        base_exact: round(meanOf(baseScore.exact[i])),
        extended_exact: round(meanOf(extScore.exact[i])),
        finetuned_exact: round(meanOf(ftScore.exact[i])),
        base_token_acc: round(meanOf(baseScore.token_acc[i])),
        extended_token_acc: round(meanOf(extScore.token_acc[i])),
        finetuned_token_acc: round(meanOf(ftScore.token_acc[i])),
        base_loss: round(baseScore.loss[i]),
        finetuned_loss: round(ftScore.loss[i]),
      })),
      training: trainLog,
      samples,
    },
    artifacts: [stageModelPath(phase5)],
  };
}

/** The section with defaults under it (a stage context read from an older run may lack keys). */
function sectionFrom(phaseConfig: Record<string, unknown>): Phase5Section {
  return sectionOf(Phase5Section, phaseConfig, 5);
}

// ---------------------------------------------------------------------------------------------
// Report

const MODELS = [["base", "base (phase 1)"], ["extended", "extended, before fine-tuning"], ["finetuned", "extended + fine-tuned"]] as const;

/** Three length x depth heatmaps side by side (x: context length, y: needle depth, colour: exact match). */
function heatmapFigure(h: { lengths: number[]; depths: number[]; exact: Record<string, number[][]> }, trained: number): Figure {
  const x = h.lengths.map((L) => `${L} (${round(L / trained, 2)}x)`), y = h.depths.map((d) => d.toFixed(2));
  const data = MODELS.map(([key, name], i) => ({
    type: "heatmap",
    name,
    x,
    y,
    z: h.depths.map((_, j) => h.lengths.map((_, li) => h.exact[key][li][j])), // [depth][length]
    zmin: 0,
    zmax: 1,
    colorscale: "Viridis",
    showscale: i === MODELS.length - 1,
    texttemplate: "%{z:.2f}",
    xaxis: i ? `x${i + 1}` : "x",
    yaxis: i ? `y${i + 1}` : "y",
  }));
  const w = 1 / MODELS.length;
  const layout: Record<string, unknown> = {
    title: { text: "exact key retrieval by context length (tokens) and needle depth" },
    height: 380,
    annotations: MODELS.map(([, name], i) => ({ text: name, x: (i + 0.45) * w, y: 1.08, xref: "paper", yref: "paper", showarrow: false })),
  };
  MODELS.forEach((_, i) => {
    const sfx = i ? String(i + 1) : "";
    layout[`xaxis${sfx}`] = { domain: [i * w + 0.02, (i + 1) * w - 0.04], title: { text: "context length" }, type: "category" };
    layout[`yaxis${sfx}`] = { anchor: `x${sfx}`, title: { text: i ? "" : "needle depth" }, type: "category" };
  });
  return { data, layout };
}

/** Exact match against context length, one line per model and chance, with the trained and extended windows marked. */
function lengthFigure(rows: Record<string, number>[], trained: number, extended: number, chance: number): Figure {
  const x = rows.map((r) => r.length);
  const data: Record<string, unknown>[] = MODELS.map(([key, name]) => ({
    type: "scatter",
    mode: "lines+markers",
    name,
    x,
    y: rows.map((r) => r[`${key}_exact`]),
  }));
  data.push({ type: "scatter", mode: "lines", name: "chance", x, y: x.map(() => chance), line: { dash: "dot" } });
  const mark = (at: number) => ({ type: "line", x0: at, x1: at, y0: 0, y1: 1, yref: "paper", line: { dash: "dash", color: "#888" } });
  const label = (at: number, text: string) => ({ x: Math.log10(at), y: 1.04, yref: "paper", text, showarrow: false });
  return {
    data,
    layout: {
      title: { text: "exact match by context length" },
      xaxis: { title: { text: "context length (tokens, log scale)" }, type: "log", tickvals: x },
      yaxis: { title: { text: "exact match" }, range: [-0.02, 1.02] },
      shapes: [mark(trained), mark(extended)],
      annotations: [label(trained, "trained"), label(extended, "extended")],
      height: 360,
    },
  };
}

/** An HTML table; cells are escaped unless wrapped by `raw`. */
function table(head: string[], rows: unknown[][]): string {
  const cell = (v: unknown) => (typeof v === "object" && v !== null && "raw" in v ? String((v as { raw: string }).raw) : esc(v));
  return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>` +
    rows.map((r) => `<tr>${r.map((v) => `<td>${cell(v)}</td>`).join("")}</tr>`).join("") + `</table>`;
}

function report(result: PhaseResultFile): PageSection[] {
  const m = result.metrics as Record<string, unknown>;
  const base = m.base as Record<string, number> | undefined, before = m.extended_before as Record<string, number> | undefined;
  if (!base || !before) return []; // a failed run has no numbers to show
  const trained = m.trained_context as number, extended = m.extended_context as number;
  const rows = (m.by_length as Record<string, number>[] | undefined) ?? [];
  const h = m.heatmap as { lengths: number[]; depths: number[]; exact: Record<string, number[][]> } | undefined;
  const samples = (m.samples as { length: number; depth: number; prompt: string; expected: string; got: string }[] | undefined) ?? [];
  const summary = [["base (phase 1)", base], ["extended, before fine-tuning", before], [
    "extended + fine-tuned",
    m as Record<string, number>,
  ]]
    .map(([name, r]) => {
      const v = r as Record<string, number>;
      return [name, v.beyond_exact, v.beyond_token_acc, v.within_exact, v.beyond_extended_exact];
    });
  const where = (L: number) => L > extended ? " (beyond extended)" : L > trained ? " (beyond trained)" : "";
  const sections: PageSection[] = [{
    title: "Phase 5: context extension",
    html:
      `<p>RoPE position interpolation x${esc(m.rope_scale)}: trained context ${esc(trained)} tokens, extended window ${
        esc(extended)
      }; passkey of ${esc(m.key_digits)} digit(s) (chance ${esc(m.chance_exact)} per item, majority answer token ${
        esc(m.majority_token_acc)
      }); ${esc(m.eval_items_per_cell)} items per cell.</p>` +
      table(["", "exact, beyond trained", "answer-token acc., beyond", "exact, within trained", "exact, beyond extended"], summary),
  }];
  if (h) sections.push({ title: "Passkey retrieval: length x depth", figure: heatmapFigure(h, trained) });
  if (rows.length) {
    sections.push({
      title: "Accuracy by context length",
      html: table(
        ["length", "x trained", "exact: base", "extended", "fine-tuned", "token acc.: base", "extended", "fine-tuned"],
        rows.map((r) => [
          `${r.length}${where(r.length)}`,
          r.factor,
          r.base_exact,
          r.extended_exact,
          r.finetuned_exact,
          r.base_token_acc,
          r.extended_token_acc,
          r.finetuned_token_acc,
        ]),
      ),
      figure: lengthFigure(rows, trained, extended, m.chance_exact as number),
    });
  }
  if (samples.length) {
    const pre = (t: string) => ({ raw: `<pre style="white-space:pre-wrap;max-width:700px">${esc(t)}</pre>` });
    sections.push({
      title: "Greedy samples (fine-tuned, middle depth)",
      html: table(
        ["length", "depth", "prompt", "expected", "got"],
        samples.map((x) => [x.length, x.depth, pre(x.prompt), x.expected, JSON.stringify(x.got)]),
      ),
    });
  }
  return sections;
}

// ---------------------------------------------------------------------------------------------
// The spec

/** Phase 5: context extension by RoPE position interpolation and passkey fine-tuning, scored by length x depth. */
export const phase5: PhaseSpec = {
  id: 5,
  name: "long-context",
  title: "Long context: RoPE position interpolation + passkey fine-tuning, accuracy by length x needle depth",
  section: Phase5Section,
  presets: {
    // The documented configuration: this phase takes training.lr and training.batch_size.
    seed: { lr: 0, batch_size: 0 },
    tiny: { short_steps: 180, long_steps: 40, lr: 3e-3, eval_items: 3 },
  },

  run,
  validate(out, ctx) {
    const m = out.metrics as Record<string, number>;
    const s = sectionFrom(ctx.phaseConfig);
    return [
      check("exact past every fine-tuning window: fine-tuned - base", m.gain_beyond_extended, s.gate_min_gain),
      check(
        "exact past every fine-tuning window: fine-tuned - chance",
        round(m.beyond_extended_exact - m.chance_exact),
        s.gate_min_over_chance,
      ),
    ];
  },
  report,
  stage: {
    metric: "beyond_exact",
    replay(sc: StageContext) {
      const s = sectionFrom(sc.phaseConfig);
      return stages(sc.config, s, sc.seed).flatMap((st) =>
        trainItems(s, st.seqLen, st.steps * batchFor(sc.config.training, s.batch_size), st.seed)
      );
    },
    seqLen: (sc: StageContext) => windowsFor(sc.config, sectionFrom(sc.phaseConfig)).extended,
    async evaluate(model: RegistryModel, sc: StageContext) {
      const s = sectionFrom(sc.phaseConfig);
      const { trained, extended } = windowsFor(sc.config, s);
      const lengths = evalLengths(s, trained);
      const score = await scoreGrid(model, evalItems(s, lengths, sc.seed), lengths, s.eval_depths);
      return summarize(score, lengths, trained, extended);
    },
  },
};
