/**
 * The explore sections of notebooks 02, 06 and 07: the run's saved models, opened up at the level
 * of the library's components.
 *
 * - 02 (`arcExample`, `arcExampleHtml`): one held-out generated task and one real ARC-AGI-1 task
 *   answered by phase 2's model (greedy within the grid grammar, as the phase decodes), drawn as
 *   coloured grids (input, expected, predicted) with each predicted cell's confidence: the
 *   probability of the chosen colour token there, read from one teacher-forced pass over
 *   BOS + prompt + answer (softmax over the whole vocabulary).
 * - 06 (`taskVectorCosines`, `mergedModel`, `scoreMerge`): the specialists' task vectors
 *   (specialist - base, every parameter flattened into one vector), their pairwise cosines, and
 *   phase 6's task-arithmetic merge at a coefficient the researcher picks, scored with the stages'
 *   own held-out evaluation (`stage.evaluate`, what phase 6's retention table uses) on a small sample.
 * - 07 (`rateDistortion`, `onnxContinuation`): bits per weight against relative MSE of one weight
 *   matrix of the evaluated model under every standard compressor setting, and the exported ONNX
 *   decoder run in onnxruntime-node next to our own greedy continuation of the same prompt.
 *
 * Every function takes a run (`{ runDir, config }`: the notebooks' `Run` fits) and reads the
 * model files where the phases write them; none writes to the run directory.
 */
import { join } from "node:path";
import { loadTaskFile } from "../../datasets/arc/loader.ts";
import { gridText, ROW_LABELS } from "../../datasets/arc/text.ts";
import type { ArcTask, Grid } from "../../datasets/arc/types.ts";
import { ARC_TRAINING_DIR } from "../../datasets/paths.ts";
import * as tf from "@tensorflow/tfjs";
import { STANDARD_OPTIONS } from "../compress/pipeline.ts";
import { bitsPerWeight, type Matrix, mse } from "../compress/types.ts";
import { sectionOf } from "../config/config.ts";
import type { RunLike } from "./text.ts";
import { argmaxAllowed, Batcher } from "../deploy/batcher.ts";
import { onnxInfo } from "../deploy/onnx.ts";
import { OnnxRows, openOnnxKv } from "../deploy/onnx_rows.ts";
import { arcItem, cellAccuracy, greedyGrids } from "../eval/arc_answers.ts";
import { stageContext } from "../eval/stage.ts";
import { loadModel, type SavedModel } from "../models/io.ts";
import { createModel, type RegistryModel } from "../models/registry.ts";
import type { HostTensor } from "../nn/params.ts";
import { PHASES } from "../phases/mod.ts";
import { arcData, Phase2Section } from "../phases/p2_arc.ts";
import { loadSpecialists, type MergeCandidate, taskArithmetic } from "../phases/p6_integration.ts";
import { logitsOf } from "../text/generate.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { exists } from "../util/fs.ts";
import { phase1ModelPath, phaseDirName, readResult, stageModelPath } from "../util/run_dir.ts";
import { type Figure, heatmap } from "../viz/figures.ts";
import { showFigure, showHtml, showTable } from "../viz/notebook.ts";
import { esc } from "../viz/report.ts";

const phaseName = (id: number) => {
  const p = PHASES.find((q) => q.id === id);
  if (!p) throw new Error(`phase ${id} is not registered`);
  return { id, name: p.name };
};

/** Loads a model file of the run, saying which phase writes it when it is missing. */
async function loadRunModel(run: RunLike, rel: string, what: string) {
  const path = join(run.runDir, rel);
  if (!(await exists(path))) throw new Error(`${path} is missing: ${what} (run that phase first)`);
  return await loadModel(path);
}

// ---------------------------------------------------------------------------------------------
// 02: ARC grids with per-cell confidence

/** ARC's 10-colour palette (0 black ... 9 maroon), as the ARC viewer draws it. */
export const ARC_PALETTE = [
  "#000000",
  "#0074D9",
  "#FF4136",
  "#2ECC40",
  "#FFDC00",
  "#AAAAAA",
  "#F012BE",
  "#FF851B",
  "#7FDBFF",
  "#870C25",
] as const;

/** The cells of a (possibly unfinished) grid answer, `HxW:a012b340`, with each cell's confidence. */
export interface AnswerCells {
  /** The rows written so far (the last may be short when the answer stopped early); empty without a header. */
  grid: number[][];
  /** Per cell of `grid`: the model's probability of that colour token there, in (0, 1]. */
  confidence: number[][];
  /** True when the answer is a whole grid of its header's shape. */
  complete: boolean;
}

/**
 * Teacher-forced confidence of a grid answer: one forward pass over BOS + prompt + answer, and
 * for every colour digit of the answer the softmax probability (whole vocabulary) the model gave
 * that token at its position. Rows and cells follow the answer's text, unfinished ones included.
 */
export async function answerConfidence(model: RegistryModel, prompt: string, answer: string): Promise<AnswerCells> {
  const m = /^(\d+)x(\d+):/.exec(answer);
  if (!m) return { grid: [], confidence: [], complete: false };
  const h = Number(m[1]), w = Number(m[2]);
  const ids = [TOKENIZER.bos, ...TOKENIZER.encode(prompt), ...TOKENIZER.encode(answer)];
  const start = 1 + prompt.length; // index of the answer's first token
  const x = tf.tensor2d(Int32Array.from(ids), [1, ids.length], "int32");
  const logits = await logitsOf(model, x);
  const V = logits.shape[2];
  const data = await logits.data();
  tf.dispose([x, logits]);
  // Probability of token ids[t] at position t, from the logits at t - 1 (log-sum-exp in doubles, so it never rounds to 0).
  const prob = (t: number) => {
    const row = data.subarray((t - 1) * V, t * V);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    return Math.exp(row[ids[t]] - max) / sum;
  };
  const grid: number[][] = [], confidence: number[][] = [];
  const body = answer.slice(m[0].length);
  for (let r = 0; r < h && r * (w + 1) < body.length; r++) {
    if (body[r * (w + 1)] !== ROW_LABELS[r]) break;
    const row: number[] = [], conf: number[] = [];
    for (let c = 0; c < w; c++) {
      const k = r * (w + 1) + 1 + c;
      if (k >= body.length || !/[0-9]/.test(body[k])) break;
      row.push(Number(body[k]));
      conf.push(prob(start + m[0].length + k));
    }
    grid.push(row);
    confidence.push(conf);
    if (row.length < w) break;
  }
  const complete = grid.length === h && grid.every((r) => r.length === w) && body.length === h * (w + 1);
  return { grid, confidence, complete };
}

/** One task answered by phase 2's model, with what the grids show. */
export interface ArcExample {
  /** "generated <family> <id>" or "real ARC <id>". */
  title: string;
  task: ArcTask;
  prompt: string;
  /** The answer text as decoded (cut where it stopped being a grid). */
  answer: string;
  /** The decoded answer ended with EOS (a whole grid). */
  eos: boolean;
  /** The predicted cells and their confidence (`AnswerCells`). */
  predicted: AnswerCells;
  /** Cell accuracy of the prediction against the expected grid (0 when it is not a whole grid). */
  cellAcc: number;
  /** Tokens of the item (BOS + prompt + expected answer + EOS) and the window it had to fit. */
  tokens: number;
  window: number;
}

/** What `arcExample` answers. */
export interface ArcExampleOptions {
  /** "generated": a held-out generated task of the phase (index `index`); "real": the smallest real ARC-AGI-1 task that fits. */
  source: "generated" | "real";
  /** Which held-out generated task (default 0). */
  index?: number;
  /** Folder of real ARC-AGI-1 training tasks (default datasets/paths.ts's ARC_TRAINING_DIR). */
  arcDir?: string;
}

/** Tokens of a task as a text item: BOS, prompt, answer, EOS. */
const itemTokens = (task: ArcTask) => {
  const it = arcItem(task);
  return it.prompt.length + it.answer.length + 2;
};

/**
 * The smallest real ARC-AGI-1 task by rendered length (cut to `demos` demonstrations and its
 * first test pair, as phase 2 cuts them), if it fits `window` tokens; otherwise the reason.
 */
export async function smallestRealTask(
  demos: number,
  window: number,
  dir = ARC_TRAINING_DIR,
): Promise<{ id: string; task: ArcTask; tokens: number } | { skipped: string }> {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".json")).map((e) => e.name).sort();
  } catch {
    return { skipped: `${dir} is absent (the real ARC-AGI-1 training tasks go there)` };
  }
  let best: { id: string; task: ArcTask; tokens: number } | undefined;
  for (const name of names) {
    const t = await loadTaskFile(join(dir, name));
    if (t.train.length < demos) continue;
    const task: ArcTask = { train: t.train.slice(0, demos), test: t.test.slice(0, 1) };
    const tokens = itemTokens(task);
    if (!best || tokens < best.tokens) best = { id: t.id ?? name.replace(/\.json$/, ""), task, tokens };
  }
  if (!best) return { skipped: `no task of ${dir} has ${demos} demonstrations` };
  if (best.tokens > window + 1) {
    return { skipped: `the smallest task of ${dir} (${best.id}) takes ${best.tokens} tokens, more than the window of ${window}` };
  }
  return best;
}

/**
 * Phase 2's model (`phase-2-arc/model.safetensors`) on one task: greedy decoding within the grid
 * grammar (`greedyGrids`, the phase's decoder and settings: `phases.2.seq_len`, `constrained`),
 * then the confidence of every predicted cell (`answerConfidence`). Returns the reason instead
 * when no task can be shown (no real ARC folder, or no real task fits the window).
 */
export async function arcExample(run: RunLike, o: ArcExampleOptions): Promise<ArcExample | { skipped: string }> {
  const s = stageContext(run.config, 2);
  const sec = sectionOf(Phase2Section, s.phaseConfig, 2);
  let task: ArcTask, title: string, tokens: number;
  if (o.source === "generated") {
    const held = arcData(s).eval;
    const i = o.index ?? 0;
    if (!Number.isInteger(i) || i < 0 || i >= held.length) {
      throw new Error(`index ${i}: expected 0..${held.length - 1} (phases.2.eval_tasks)`);
    }
    task = held[i].task;
    title = `held-out generated task ${i}: ${held[i].family} (${held[i].id})`;
    tokens = itemTokens(task);
  } else {
    const real = await smallestRealTask(sec.demos, sec.seq_len, o.arcDir);
    if ("skipped" in real) return real;
    ({ task, tokens } = real);
    title = `real ARC-AGI-1 task ${real.id} (the smallest, ${sec.demos} demonstrations)`;
  }
  const { model } = await loadRunModel(run, stageModelPath(phaseName(2)), "phase 2's fine-tuned model");
  try {
    const item = arcItem(task);
    const [out] = await greedyGrids(
      model,
      [{ prompt: item.prompt, draft: gridText(task.test[0].input), maxNew: sec.seq_len + 1 - item.prompt.length - 1 }],
      1,
      sec.constrained,
    );
    const answer = TOKENIZER.decode(out.ids.filter((id) => id < 256));
    const predicted = await answerConfidence(model, item.prompt, answer);
    const pred = out.eos && predicted.complete ? predicted.grid : null;
    return {
      title,
      task,
      prompt: item.prompt,
      answer,
      eos: out.eos,
      predicted,
      cellAcc: cellAccuracy(pred, task.test[0].output),
      tokens,
      window: sec.seq_len,
    };
  } finally {
    model.dispose();
  }
}

/** One grid as an HTML table in ARC's colours; with `confidence`, each cell's opacity is its confidence (hover: the number). */
export function arcGridHtml(grid: readonly (readonly number[])[], title: string, o: { confidence?: number[][]; want?: Grid } = {}): string {
  const cell = (r: number, c: number) => {
    const v = grid[r][c], p = o.confidence?.[r]?.[c];
    const wrong = o.want !== undefined && o.want[r]?.[c] !== v;
    const opacity = p === undefined ? "" : `opacity:${(0.15 + 0.85 * p).toFixed(2)};`;
    const border = wrong ? "outline:2px solid #d62728;outline-offset:-2px;" : "";
    const tip = p === undefined ? ` title="${v}"` : ` title="colour ${v}, p = ${p.toFixed(3)}"`;
    return `<td style="width:14px;height:14px;padding:0;border:1px solid #555;background:${
      ARC_PALETTE[v] ?? "#fff"
    };${opacity}${border}"${tip}></td>`;
  };
  const rows = grid.map((row, r) => `<tr>${row.map((_, c) => cell(r, c)).join("")}</tr>`).join("");
  return `<div style="display:inline-block;margin:0 1.5em 1em 0;vertical-align:top"><div style="font-size:12px">${esc(title)}</div>` +
    `<table style="border-collapse:collapse;background:#fff">${rows || "<tr><td>(no grid)</td></tr>"}</table></div>`;
}

/** An answered task: the demonstrations (small), then test input, expected and predicted side by side, with a caption. */
export function arcExampleHtml(x: ArcExample | { skipped: string }): string {
  if ("skipped" in x) return `<p>Skipped: ${esc(x.skipped)}</p>`;
  const want = x.task.test[0].output;
  const demos = x.task.train.map((p, i) => arcGridHtml(p.input, `demo ${i + 1} input`) + arcGridHtml(p.output, `demo ${i + 1} output`));
  const conf = x.predicted.confidence.flat();
  const mean = conf.length ? conf.reduce((a, b) => a + b, 0) / conf.length : NaN;
  const status = x.eos && x.predicted.complete ? "a whole grid" : "stopped before a whole grid";
  return `<p><b>${esc(x.title)}</b>: ${x.tokens} tokens (window ${x.window}). Answer <code>${esc(x.answer)}</code> (${status}), ` +
    `cell accuracy ${x.cellAcc.toFixed(3)}, mean cell confidence ${Number.isNaN(mean) ? "-" : mean.toFixed(3)}. ` +
    `Predicted cells: opacity = the model's probability of the colour it chose (hover for the number); red outline = wrong.</p>` +
    `<div>${demos.join("")}</div><div>${arcGridHtml(x.task.test[0].input, "test input")}${arcGridHtml(want, "expected")}${
      arcGridHtml(x.predicted.grid, "predicted", { confidence: x.predicted.confidence, want })
    }</div>`;
}

/** Shows `arcExample`'s result for each source. */
export async function showArcExamples(run: RunLike, o: { index?: number; arcDir?: string } = {}): Promise<void> {
  for (const source of ["generated", "real"] as const) await showHtml(arcExampleHtml(await arcExample(run, { ...o, source })));
}

// ---------------------------------------------------------------------------------------------
// 06: task vectors and the merge

/** A specialist of phase 6's merge: the phase, its parameters and model file metadata. */
interface Specialist {
  phase: number;
  name: string;
  tensors: Map<string, HostTensor>;
  meta: SavedModel;
}

/** The base model (phase 1's, the variant phase 1 reports) and every stage specialist that shares its architecture. */
async function specialistsOf(run: RunLike) {
  const p1 = await readResult(run.runDir, phaseName(1));
  const variant = (p1?.metrics.base_variant as string | undefined) ?? "standard";
  const { model: base, meta: baseMeta } = await loadRunModel(run, phase1ModelPath(variant), "phase 1's base model");
  const baseHost = await base.params.toHost();
  base.dispose();
  // The stage models on disk (phase 6 reads them from the stages' results).
  const candidates: MergeCandidate[] = [];
  for (const id of [2, 3, 4, 5]) {
    const p = phaseName(id), file = stageModelPath(p);
    candidates.push(
      await exists(join(run.runDir, file)) ? { phase: id, file } : { phase: id, missing: `no ${phaseDirName(p)}/model.safetensors` },
    );
  }
  const loaded = await loadSpecialists(run.runDir, baseMeta, baseHost, candidates);
  const specialists: Specialist[] = loaded.specialists.map((s) => ({ ...s, name: phaseName(s.phase).name }));
  return { baseHost, baseMeta, specialists, skipped: loaded.skipped, mergedMeta: loaded.mergedMeta };
}

/** Pairwise cosines of the specialists' task vectors. */
export interface TaskVectorCosines {
  /** "phase N name" per specialist, in phase order. */
  labels: string[];
  /** cosine[i][j] between task vectors i and j (symmetric, 1 on the diagonal). */
  cosine: number[][];
  /** L2 norm of each task vector, and of the base's weights (for scale). */
  norms: number[];
  baseNorm: number;
  /** Stage models not merged, and why. */
  skipped: { phase: number; why: string }[];
}

/** Cosine similarity between every pair of task vectors (specialist - base, all parameters flattened). */
export async function taskVectorCosines(run: RunLike): Promise<TaskVectorCosines> {
  const { baseHost, specialists, skipped } = await specialistsOf(run);
  const k = specialists.length;
  const dot = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let baseNorm = 0;
  for (const [name, b] of baseHost) {
    const ts = specialists.map((s) => s.tensors.get(name)!.data);
    for (let e = 0; e < b.data.length; e++) {
      const bv = b.data[e];
      baseNorm += bv * bv;
      for (let i = 0; i < k; i++) {
        const di = ts[i][e] - bv;
        if (di === 0) continue;
        for (let j = i; j < k; j++) dot[i][j] += di * (ts[j][e] - bv);
      }
    }
  }
  const norms = dot.map((row, i) => Math.sqrt(row[i]));
  const cosine = dot.map((_, i) =>
    dot.map((_, j) => {
      const d = i <= j ? dot[i][j] : dot[j][i];
      return norms[i] > 0 && norms[j] > 0 ? d / (norms[i] * norms[j]) : i === j ? 1 : 0;
    })
  );
  return {
    labels: specialists.map((s) => `phase ${s.phase} ${s.name}`),
    cosine,
    norms,
    baseNorm: Math.sqrt(baseNorm),
    skipped,
  };
}

/** The cosines as an annotated heatmap (-1 .. 1). */
export function taskVectorFigure(c: TaskVectorCosines): Figure {
  return heatmap(c.cosine, "task-vector cosine similarity (specialist − base)", {
    x: c.labels,
    y: c.labels,
    zTitle: "cosine",
    zmin: -1,
    zmax: 1,
    annotate: true,
  });
}

/** Shows the task-vector heatmap, with each vector's norm and the skipped stages. */
export async function showTaskVectors(run: RunLike): Promise<void> {
  const c = await taskVectorCosines(run);
  if (c.labels.length === 0) {
    await showHtml(`<p>No specialist shares the base model's architecture: ${esc(JSON.stringify(c.skipped))}</p>`);
    return;
  }
  await showFigure(taskVectorFigure(c));
  await showTable(
    [
      ...c.labels.map((l, i) => ({ model: l, "task vector norm": c.norms[i], "relative to base norm": c.norms[i] / c.baseNorm })),
      ...c.skipped.map((s) => ({ model: `phase ${s.phase} (not merged)`, "task vector norm": s.why, "relative to base norm": "" })),
    ],
    { title: `task vectors (base weights norm ${c.baseNorm.toPrecision(4)})` },
  );
}

/** How to merge: θ = θ_base + coeff · Σ τᵢ ("sum") or θ_base + coeff · mean τᵢ ("mean"). */
export interface MergeOptions {
  coeff: number;
  rule?: "sum" | "mean";
}

/**
 * Phase 6's merge (`taskArithmetic`) at a chosen coefficient: base + scale · Σᵢ (θᵢ − θ_base) with
 * scale = coeff ("sum") or coeff / k ("mean"; coeff 1 is phase 6's default, the plain average).
 * The merged model keeps the longest context of any specialist, as phase 6's does. The caller
 * disposes the model.
 */
export async function mergedModel(
  run: RunLike,
  o: MergeOptions,
): Promise<{ model: RegistryModel; meta: SavedModel; scale: number; phases: number[] }> {
  if (!Number.isFinite(o.coeff)) throw new Error(`coeff = ${o.coeff}: expected a number`);
  const { baseHost, specialists, mergedMeta: meta } = await specialistsOf(run);
  const k = specialists.length;
  const scale = (o.rule ?? "mean") === "mean" ? o.coeff / Math.max(1, k) : o.coeff;
  const model = createModel(meta.key, meta.config, 0);
  model.params.load(taskArithmetic(baseHost, specialists.map((s) => s.tensors), scale), { source: `merge at coeff ${o.coeff}` });
  return { model, meta, scale, phases: specialists.map((s) => s.phase) };
}

/** Per-stage overrides of the phase config that keep a live score small (held-out sample size, votes). */
export const SMALL_SAMPLE: Record<number, Record<string, unknown>> = {
  2: { eval_tasks: 6, votes: 1 },
  5: { eval_items: 1 },
};

/** One stage scored on the merge. */
export interface MergeScore {
  phase: number;
  name: string;
  metric: string;
  /** The stage's metric for the merge at `coeff`, on the small sample. */
  merged: number;
  /** Phase 6's retention table, on the stage's full held-out set (for reference; absent before phase 6 ran). */
  p6_specialist?: number;
  p6_merged?: number;
  p6_integrated?: number;
  seconds: number;
}

/** What `scoreMerge` scores. */
export interface ScoreMergeOptions extends MergeOptions {
  /** The stages scored (default [1, 2]: the sanity tasks and ARC, the cheap ones). */
  stages?: number[];
  /** Phase-config overrides per stage for the sample (default SMALL_SAMPLE); `{}` scores the full held-out set. */
  sample?: Record<number, Record<string, unknown>>;
}

/**
 * The merge at `coeff`, scored with each stage's own held-out evaluation (`stage.evaluate`, the
 * scoring of phase 6's retention table: phase 1 sanity token accuracy, phase 2 ARC cell accuracy
 * with greedy grid decoding, phase 4 answer token accuracy, phase 5 exact recall past the trained
 * window), on a small sample (`SMALL_SAMPLE`), next to phase 6's own numbers when it ran.
 */
export async function scoreMerge(run: RunLike, o: ScoreMergeOptions): Promise<{ scale: number; phases: number[]; scores: MergeScore[] }> {
  const { model, scale, phases } = await mergedModel(run, o);
  const p6 = await readResult(run.runDir, phaseName(6));
  const table = (p6?.metrics.retention as Record<string, number | string>[] | undefined) ?? [];
  const scores: MergeScore[] = [];
  try {
    for (const id of o.stages ?? [1, 2]) {
      const p = PHASES.find((q) => q.id === id);
      if (!p?.stage) throw new Error(`phase ${id} has no stage evaluation (stages: 1-5)`);
      const s = stageContext(run.config, id);
      const sc = { ...s, phaseConfig: { ...s.phaseConfig, ...((o.sample ?? SMALL_SAMPLE)[id] ?? {}) } };
      const t0 = performance.now();
      const r = await p.stage.evaluate(model, sc);
      const row = table.find((x) => x.phase === id);
      scores.push({
        phase: id,
        name: p.name,
        metric: p.stage.metric,
        merged: r[p.stage.metric],
        ...(row ? { p6_specialist: Number(row.specialist), p6_merged: Number(row.merged), p6_integrated: Number(row.integrated) } : {}),
        seconds: (performance.now() - t0) / 1000,
      });
    }
  } finally {
    model.dispose();
  }
  return { scale, phases, scores };
}

/** Scores the merge at `o.coeff` and shows the table. */
export async function showMerge(run: RunLike, o: ScoreMergeOptions): Promise<void> {
  const r = await scoreMerge(run, o);
  const sample = o.sample ?? SMALL_SAMPLE;
  await showTable(r.scores.map((s) => ({ ...s })), {
    title: `merge of phases ${r.phases.join(", ") || "(none)"} at coeff ${o.coeff} (${o.rule ?? "mean"}: scale ${
      r.scale.toPrecision(3)
    } per task vector); sample overrides ${JSON.stringify(sample)}; p6_*: phase 6's table on the full held-out sets`,
  });
}

// ---------------------------------------------------------------------------------------------
// 07: rate-distortion of one matrix, and the ONNX export against our own decoding

/** One compressor setting on the matrix. */
export interface RdPoint {
  method: "bitnet" | "seedlm" | "vptq";
  label: string;
  /** Serialized bits per weight (headers, codebooks and scales counted). */
  bits: number;
  /** MSE / mean square of the weights. */
  relMse: number;
  seconds: number;
}

/** The rate-distortion curve of one weight matrix. */
export interface RateDistortion {
  matrix: string;
  rows: number;
  cols: number;
  /** Per method, its points in increasing bits. */
  points: RdPoint[];
  /** Per method: whether its distortion never rises as its bits grow, and what breaks it when it does. */
  monotone: Record<string, { ok: boolean; note?: string }>;
}

/**
 * Every standard compressor setting (`STANDARD_OPTIONS` of lib/compress/pipeline.ts, the options
 * phase 7's size-targeting pipeline chooses from) on one 2-D weight matrix of a model of the run
 * (default phase 6's integrated model, the one phase 7 evaluates): bits per weight against
 * relative MSE, as bench/compress.ts measures them on Gaussian matrices.
 */
export async function rateDistortion(run: RunLike, o: { matrix: string; model?: string }): Promise<RateDistortion> {
  const rel = o.model ?? stageModelPath(phaseName(6));
  const { model } = await loadRunModel(run, rel, "the evaluated model");
  const tensors = await model.params.toHost();
  model.dispose();
  const t = tensors.get(o.matrix);
  if (!t || t.shape.length !== 2) {
    const names = [...tensors].filter(([, v]) => v.shape.length === 2).map(([n]) => n);
    throw new Error(`${o.matrix}: ${t ? `has shape [${t.shape}], not a matrix` : "no such parameter"}; matrices: ${names.join(", ")}`);
  }
  const m: Matrix = { rows: t.shape[0], cols: t.shape[1], data: t.data };
  let power = 0;
  for (const v of m.data) power += v * v;
  power /= m.data.length;
  const points: RdPoint[] = [];
  const monotone: RateDistortion["monotone"] = {};
  for (const method of ["bitnet", "seedlm", "vptq"] as const) {
    const mine: RdPoint[] = [];
    for (const opt of STANDARD_OPTIONS[method]) {
      const t0 = performance.now();
      const layer = opt.compress(m);
      const err = mse(layer.decompress(), m.data);
      mine.push({
        method,
        label: opt.label,
        bits: bitsPerWeight(layer),
        relMse: power > 0 ? err / power : 0,
        seconds: (performance.now() - t0) / 1000,
      });
    }
    mine.sort((a, b) => a.bits - b.bits);
    const bad = mine.findIndex((p, i) => i > 0 && p.relMse > mine[i - 1].relMse * (1 + 1e-9));
    monotone[method] = bad < 0 ? { ok: true } : {
      ok: false,
      note: `${mine[bad].label} (${mine[bad].bits.toFixed(2)} bits) distorts more than ${mine[bad - 1].label} (${
        mine[bad - 1].bits.toFixed(2)
      } bits): a different setting family, whose tables cost more on a ${m.rows}x${m.cols} matrix than they save`,
    };
    points.push(...mine);
  }
  return { matrix: o.matrix, rows: m.rows, cols: m.cols, points, monotone };
}

/** Relative MSE against bits per weight, one trace per method (log distortion axis). */
export function rateDistortionFigure(rd: RateDistortion): Figure {
  const methods = [...new Set(rd.points.map((p) => p.method))];
  return {
    data: methods.map((method) => {
      const ps = rd.points.filter((p) => p.method === method);
      return {
        type: "scatter",
        mode: "lines+markers",
        name: method,
        x: ps.map((p) => p.bits),
        y: ps.map((p) => p.relMse),
        text: ps.map((p) => p.label),
        hovertemplate: "%{text}<br>%{x:.3f} bits/weight<br>relative MSE %{y:.3g}<extra></extra>",
      };
    }),
    layout: {
      title: { text: `rate-distortion of ${rd.matrix} (${rd.rows}x${rd.cols})` },
      xaxis: { title: { text: "bits per weight (serialized)" } },
      yaxis: { title: { text: "relative MSE (MSE / mean w²)" }, type: "log" },
      height: 400,
    },
  };
}

/** Shows the rate-distortion chart and its table. */
export async function showRateDistortion(run: RunLike, o: { matrix: string; model?: string }): Promise<void> {
  const rd = await rateDistortion(run, o);
  await showFigure(rateDistortionFigure(rd));
  await showTable(rd.points.map((p) => ({ ...p })), { title: `${rd.matrix}: every standard setting` });
  const notes = Object.entries(rd.monotone).filter(([, v]) => !v.ok).map(([k, v]) => `${k}: ${v.note}`);
  if (notes.length) await showHtml(`<p>Not monotone: ${notes.map(esc).join("; ")}</p>`);
}

/** The exported decoder's continuation of a prompt next to ours. */
export interface OnnxContinuation {
  prompt: string;
  /** The graph run: the HF folder's KV-cache graph, or the plain dynamic export stepped without a cache. */
  graph: string;
  via: "kv" | "dynamic";
  onnx: string;
  ours: string;
  same: boolean;
  maxNew: number;
}

/** Where phase 7 writes its exports. */
export const EXPORT_GRAPHS = {
  kv: join(phaseDirName({ id: 7, name: "evaluation" }), "export", "hf", "onnx", "model.onnx"),
  dynamic: join(phaseDirName({ id: 7, name: "evaluation" }), "export", "model.onnx"),
};

/** Greedy continuation through the dynamic graph (no cache: the whole prefix each step), bytes and EOS as candidates like the Batcher. */
async function greedyDynamic(path: string, ids: number[], maxNew: number, vocab: number): Promise<string> {
  const ort = await import("onnxruntime-node");
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 2, interOpNumThreads: 1 });
  const out: number[] = [];
  try {
    for (let i = 0; i < maxNew; i++) {
      const seq = [...ids, ...out];
      const r = await session.run({ input_ids: new ort.Tensor("int64", BigInt64Array.from(seq, BigInt), [1, seq.length]) });
      const tok = argmaxAllowed(r.logits.data as Float32Array, (seq.length - 1) * vocab);
      if (tok === TOKENIZER.eos) break;
      out.push(tok);
    }
  } finally {
    await session.release();
  }
  return TOKENIZER.decode(out);
}

/**
 * Runs phase 7's exported ONNX decoder in onnxruntime-node on `prompt`: greedy, up to `maxNew`
 * tokens, through the KV-cache graph of the HF folder (`OnnxRows` under the server's `Batcher`),
 * or, without that folder, the dynamic `export/model.onnx` stepped over the whole prefix; and
 * our own greedy continuation of the same prompt by the model it was exported from (phase 6's,
 * through the same `Batcher` with its tfjs KV cache, so both choose among the same tokens).
 */
export async function onnxContinuation(
  run: RunLike,
  o: { prompt: string; maxNew?: number },
): Promise<OnnxContinuation | { skipped: string }> {
  const kv = join(run.runDir, EXPORT_GRAPHS.kv), dyn = join(run.runDir, EXPORT_GRAPHS.dynamic);
  const via = (await exists(kv)) ? "kv" : (await exists(dyn)) ? "dynamic" : undefined;
  if (!via) {
    return {
      skipped:
        `neither ${EXPORT_GRAPHS.kv} nor ${EXPORT_GRAPHS.dynamic} in the run (phase 7 with phases.7.exports including "hf" or "onnx")`,
    };
  }
  const graph = via === "kv" ? kv : dyn;
  const { model, meta } = await loadRunModel(run, stageModelPath(phaseName(6)), "the model phase 7 exports");
  const context = Number(meta.config.maxSeqLen);
  const ids = [TOKENIZER.bos, ...TOKENIZER.encode(o.prompt)];
  const maxNew = Math.max(0, Math.min(o.maxNew ?? 32, context - ids.length));
  if (maxNew === 0) {
    model.dispose();
    return { skipped: `the prompt takes ${ids.length} tokens, the whole context of ${context}` };
  }
  const greedy = async (b: Batcher) => (await b.submit({ ids, maxNew })).text;
  try {
    const ours = await greedy(new Batcher(model, { context, maxBatch: 1, batchWaitMs: 0 }));
    let onnx: string;
    if (via === "kv") {
      const m = await openOnnxKv(graph, 2);
      try {
        onnx = await greedy(new Batcher(new OnnxRows(m), { context, maxBatch: 1, batchWaitMs: 0 }));
      } finally {
        await m.session.release();
      }
    } else {
      const info = onnxInfo(await Deno.readFile(graph), graph);
      const config = JSON.parse(info.metadata["agent_forge.config"] ?? "{}") as { vocabSize?: number };
      onnx = await greedyDynamic(graph, ids, maxNew, config.vocabSize ?? Number(meta.config.vocabSize));
    }
    return { prompt: o.prompt, graph, via, onnx, ours, same: onnx === ours, maxNew };
  } finally {
    model.dispose();
  }
}

/** Shows the two continuations side by side. */
export async function showOnnxContinuation(run: RunLike, o: { prompt: string; maxNew?: number }): Promise<void> {
  const r = await onnxContinuation(run, o);
  if ("skipped" in r) return showHtml(`<p>Skipped: ${esc(r.skipped)}</p>`);
  await showTable([
    {
      runtime: `onnxruntime-node (${r.via === "kv" ? "KV-cache graph" : "dynamic graph, no cache"})`,
      continuation: JSON.stringify(r.onnx),
    },
    { runtime: "ours (tfjs, KV cache)", continuation: JSON.stringify(r.ours) },
  ], { title: `greedy, up to ${r.maxNew} tokens after ${JSON.stringify(r.prompt)}: ${r.same ? "identical" : "DIFFERENT"} (${r.graph})` });
}
