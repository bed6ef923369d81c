/**
 * Phase 2, ARC visual reasoning: fine-tunes phase 1's model on procedurally generated ARC-like
 * tasks (datasets/arc/generator.ts), each shown under a random augmentation (dihedral transform,
 * colour permutation keeping 0, sometimes a translation). A task is text for the byte tokenizer:
 * `input>output\n` per demonstration, then `test-input>`; the answer is the test output. A grid's
 * rows are labelled (`a012b340`); an input ends with its shape (`a012b340:2x3`) and an output starts
 * with it (`2x3:a012b340`), so the answer's shape sits four tokens after the input's.
 *
 * Evaluation answers each held-out task greedily under several augmented views (decoding restricted
 * to the grid grammar: the model chooses the shape and every colour), parses each answer back into a
 * grid (malformed = wrong), maps it through the exact inverse and votes; pass@2 counts the top two
 * candidates, exact match and cell accuracy read the identity view. Baselines: copying the test
 * input, the majority colour in the test input's shape, and the base model before fine-tuning.
 * Real ARC-AGI-1 tasks that fit the window are scored the same way when the folder exists.
 * Decoding and scoring live in lib/eval/arc_answers.ts.
 */
import { MODEL_FILE, stageModelPath } from "../util/run_dir.ts";
import { join } from "node:path";
import { type Augmentation, augmentTask, IDENTITY_AUGMENTATION, randomAugmentation } from "../../datasets/arc/augment.ts";
import { FAMILIES, familyByName, generateTask, type GeneratorConfig } from "../../datasets/arc/generator.ts";
import { loadTaskFile } from "../../datasets/arc/loader.ts";
import { taskHash } from "../../datasets/arc/serialize.ts";
import type { ArcTask, Grid } from "../../datasets/arc/types.ts";
import { gridText } from "../../datasets/arc/text.ts";
import { ARC_TRAINING_DIR } from "../../datasets/paths.ts";
import { check, type PhaseContext, type PhaseSpec } from "./spec.ts";
import type { StageContext } from "../eval/stage.ts";
import { deriveSeed, Rng } from "../util/rng.ts";
import { esc, type PageSection } from "../viz/report.ts";
import type { LmWindows } from "../../datasets/sanity.ts";
import { answerMetrics, majorityTokenAccuracy } from "../eval/answers.ts";
import { CurriculumKeys, curriculumWindows, loadBase, phaseTrainer, trainText } from "./common.ts";
import { sectionOf } from "../config/config.ts";
import { z } from "zod";
import { round } from "../util/numbers.ts";
import { saveModel } from "../models/io.ts";
import { type TextItem, TOKENIZER, windowsOf } from "../text/tokens.ts";
import { arcItem, type EvalTask, majorityGrid, scoreBaseline, scoreModel, summarize, type TaskScore } from "../eval/arc_answers.ts";
import { ARC_HRRM_PATH, ArcGridKeys, type ArcGridResult, arcTaskFiles, type CellSummary, runArcGrid } from "./p2_grid.ts";
import { taskViews } from "./arc_cells.ts";

/** `phases.2`: the ARC section (type, defaults and validation). */
export const Phase2Section = z.strictObject({
  steps: z.number().int().min(0).default(420), // optimizer steps of fine-tuning (0: training.max_steps); at 260 only 25% of small's answers had the expected shape (gate 0.3), at 420 67%
  batch_size: z.number().int().min(0).default(16), // windows per step (0: training.batch_size)
  seq_len: z.number().int().min(16).default(192), // tokens per window; longer tasks are left out (counted in train_too_long)
  lr: z.number().min(0).default(3e-3), // peak learning rate (0: training.lr); warmup and cosine floor from the training section (lib/train/config.ts)
  min_size: z.number().int().min(3).max(30).default(3), // smallest input side of generated grids
  max_size: z.number().int().min(6).max(30).default(6), // largest side of any generated grid (the generator accepts 6-30)
  demos: z.number().int().min(1).max(10).default(2), // demonstration pairs per task
  demo_outputs: z.boolean().default(true), // train on the demonstrations' output grids too, not only the answer
  families: z.string().default("all"), // generator families, "all" or a comma-separated list of names
  train_tasks: z.number().int().min(1).default(6400), // generated training tasks (one random augmentation each)
  max_shift: z.number().int().min(0).max(10).default(1), // largest translation of an augmentation (rows / columns of zero padding)
  shift_fraction: z.number().min(0).max(1).default(0.25), // fraction of augmentations that translate
  eval_tasks: z.number().int().min(1).default(48), // held-out generated tasks, balanced over the families
  votes: z.number().int().min(1).max(16).default(3), // augmented views answered per task for the voted pass@2 (the first is the identity)
  eval_batch: z.number().int().min(1).default(24), // prompts per forward pass in generation
  constrained: z.boolean().default(true), // greedy decoding restricted to the grid grammar (the model picks shape and colours)
  real_tasks: z.number().int().min(0).default(4), // real ARC-AGI-1 tasks scored at most (0: skip)
  arc_dir: z.string().default(""), // folder of real ARC task JSON files scored by both parts ("": ../shared/data/arc-agi-1/training)
  gate_min_gain: z.number().min(0).default(0.2), // cell accuracy must beat the base model's by this much
  gate_min_token_gain: z.number().min(0).max(1).default(0.15), // held-out answer token accuracy must beat the majority token's by this much
  gate_min_majority_gain: z.number().min(-1).max(1).default(-1), // cell accuracy minus the majority colour's must reach this; -1 (default) reports it ungated
  gate_min_shape_acc: z.number().min(0).max(1).default(0.3), // fraction of identity-view answers that must have the expected shape (0: reported, not gated)
  ...CurriculumKeys, // difficulty: the task's largest grid (cells), ranked within its family
  ...ArcGridKeys, // part (b): the grid-native HRRM (lib/phases/p2_grid.ts)
});
export type Phase2Section = z.infer<typeof Phase2Section>;

// ---------------------------------------------------------------------------------------------
// Text rendering

/** Tokens of an item in a window: BOS, prompt, answer, EOS. */
const itemTokens = (it: TextItem) => it.prompt.length + it.answer.length + 2;

const GT = 62, NEWLINE = 10;

/**
 * Training windows whose loss covers every output grid, the demonstrations' too (each target
 * after a `>` up to and including the `\n` or EOS that closes its grid), not only the answer:
 * three times the supervision per token of compute. The answer part is exactly `windowsOf`'s.
 */
export function outputWindows(items: readonly TextItem[], seqLen: number, demoOutputs: boolean): LmWindows {
  const w = windowsOf(items, seqLen);
  if (!demoOutputs) return w;
  for (let r = 0; r < w.count; r++) {
    let inOutput = false;
    for (let t = r * seqLen; t < (r + 1) * seqLen; t++) {
      const id = w.ids[t];
      if (id === GT) inOutput = true;
      else if (id === NEWLINE || id === TOKENIZER.bos || id === TOKENIZER.eos || id === TOKENIZER.pad) inOutput = false;
      if (inOutput && w.targets[t] !== TOKENIZER.pad) w.mask[t] = 1;
    }
  }
  return w;
}

// ---------------------------------------------------------------------------------------------
// Data: augmented training tasks, held-out tasks (by seed and by hash), real ARC tasks

function generatorConfig(sec: Phase2Section): Partial<GeneratorConfig> {
  if (sec.min_size > sec.max_size) throw new Error(`phases.2.min_size = ${sec.min_size} exceeds phases.2.max_size = ${sec.max_size}`);
  return { minSize: sec.min_size, maxSize: sec.max_size, trainPairs: sec.demos, testPairs: 1 };
}

/** The generator families of `families` ("all" or a comma-separated list); throws naming the key. */
export function familiesOf(sec: Phase2Section): string[] {
  if (sec.families.trim() === "all") return FAMILIES.map((f) => f.name);
  const names = sec.families.split(",").map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new Error(`phases.2.families = "${sec.families}": expected "all" or generator family names`);
  for (const n of names) {
    try {
      familyByName(n);
    } catch (e) {
      throw new Error(`phases.2.families: ${(e as Error).message}`);
    }
  }
  return names;
}

/** A random augmentation: dihedral + colours always, a translation (up to max_shift) for a shift_fraction of draws. */
function drawAugmentation(rng: Rng, task: ArcTask, sec: Phase2Section): Augmentation {
  const shift = rng.next() < sec.shift_fraction ? sec.max_shift : 0;
  return randomAugmentation(rng, task, { colours: true, maxShift: shift });
}

/** Every phase-2 data set, rebuilt from (config section, seed) alone. */
export interface ArcData {
  /** Training items (augmented tasks that fit `seq_len`). */
  train: TextItem[];
  /** Hashes of the training tasks, original and augmented. */
  trainHashes: Set<string>;
  /** Generated training tasks dropped because they did not fit `seq_len`. */
  trainTooLong: number;
  /** Held-out generated tasks, balanced over the families. */
  eval: EvalTask[];
  /** Held-out candidates dropped because their hash matched a training task. */
  evalOverlap: number;
}

/** True when every view of a task fits a window of `seqLen`. */
const fits = (task: ArcTask, views: readonly Augmentation[], seqLen: number) =>
  views.every((v) => itemTokens(arcItem(augmentTask(task, v))) <= seqLen + 1);

/** Views of a held-out task: the identity, then votes - 1 random augmentations. */
function viewsOf(task: ArcTask, sec: Phase2Section, seed: number): Augmentation[] {
  const rng = new Rng(seed);
  return [IDENTITY_AUGMENTATION, ...Array.from({ length: sec.votes - 1 }, () => drawAugmentation(rng, task, sec))];
}

/** Builds the training items and the held-out tasks (held out by seed, then checked by task hash). */
export function arcData(s: StageContext): ArcData {
  const sec = sectionOf(Phase2Section, s.phaseConfig, 2);
  const names = familiesOf(sec), gen = generatorConfig(sec);
  const train: TextItem[] = [], trainHashes = new Set<string>();
  const rng = new Rng(deriveSeed(s.seed, "train-augment"));
  let trainTooLong = 0;
  for (let i = 0; i < sec.train_tasks; i++) {
    const task = generateTask(names[i % names.length], deriveSeed(s.seed, `train-${i}`), gen);
    const aug = augmentTask(task, drawAugmentation(rng, task, sec));
    const item = { ...arcItem(aug, task.family), difficulty: largestGrid(aug) };
    if (itemTokens(item) > sec.seq_len + 1) {
      trainTooLong++;
      continue;
    }
    train.push(item);
    trainHashes.add(taskHash(task)).add(taskHash(aug));
  }
  const evalTasks: EvalTask[] = [];
  let evalOverlap = 0;
  const quota = (f: number) => Math.floor(sec.eval_tasks / names.length) + (f < sec.eval_tasks % names.length ? 1 : 0);
  names.forEach((name, f) => {
    for (let j = 0, got = 0; got < quota(f) && j < 50 * quota(f); j++) {
      const task = generateTask(name, deriveSeed(s.seed, `heldout-${name}-${j}`), gen);
      if (trainHashes.has(taskHash(task))) {
        evalOverlap++;
        continue;
      }
      const views = viewsOf(task, sec, deriveSeed(s.seed, `views-${task.id}`));
      if (!fits(task, views, sec.seq_len)) continue;
      evalTasks.push({ id: task.id, family: name, task: { train: task.train, test: task.test }, views });
      got++;
    }
  });
  if (train.length === 0) throw new Error(`phase 2: no training task fits phases.2.seq_len = ${sec.seq_len}; raise it or lower max_size`);
  return { train, trainHashes, trainTooLong, eval: evalTasks, evalOverlap };
}

/** Cells of a task's largest grid: the generator's size knob, the curriculum's difficulty. */
function largestGrid(t: ArcTask): number {
  return Math.max(...[...t.train, ...t.test].flatMap((p) => [p.input, p.output]).map((g) => g.length * (g[0]?.length ?? 0)));
}

/** The folder of real ARC tasks: `arc_dir`, or the shared ARC-AGI-1 training tasks. */
export const arcDir = (sec: Phase2Section) => sec.arc_dir || ARC_TRAINING_DIR;

/** Real ARC tasks cut to `demos` demonstrations and the first test pair, those that fit `seq_len` (file-name order), at most `real_tasks`. */
export async function realArcTasks(
  sec: Phase2Section,
  seed: number,
  dir = arcDir(sec),
): Promise<{ tasks: EvalTask[]; skipped?: string }> {
  if (sec.real_tasks === 0) return { tasks: [], skipped: "phases.2.real_tasks = 0" };
  const files = await arcTaskFiles(dir, sec.arc_dir !== "");
  if ("skipped" in files) return { tasks: [], skipped: files.skipped };
  const out: EvalTask[] = [];
  for (const name of files.names) {
    if (out.length >= sec.real_tasks) break;
    const t = await loadTaskFile(join(dir, name));
    if (t.train.length < sec.demos) continue;
    const task: ArcTask = { train: t.train.slice(0, sec.demos), test: t.test.slice(0, 1) };
    const views = viewsOf(task, sec, deriveSeed(seed, `real-views-${t.id}`));
    if (fits(task, views, sec.seq_len)) out.push({ id: t.id!, family: "real", task, views });
  }
  return { tasks: out, skipped: out.length ? undefined : `no task of ${dir} fits phases.2.seq_len = ${sec.seq_len}` };
}

// ---------------------------------------------------------------------------------------------
// The phase

/** The held-out identity views as teacher-forced windows (for the loss / token accuracy during training). */
const heldoutWindows = (data: ArcData, seqLen: number) => windowsOf(data.eval.map((t) => arcItem(t.task, t.family)), seqLen, false);

const scoreOptions = (sec: Phase2Section) => ({ seqLen: sec.seq_len, batchSize: sec.eval_batch, constrained: sec.constrained });

async function run(ctx: PhaseContext) {
  const sec = sectionOf(Phase2Section, ctx.phaseConfig, 2);
  const t0 = performance.now();
  const data = arcData(ctx);
  const real = await realArcTasks(sec, ctx.seed);
  const { model, meta } = await loadBase(ctx);
  const held = heldoutWindows(data, sec.seq_len);
  const score = (tasks: EvalTask[]) => scoreModel(model, tasks, scoreOptions(sec));
  // The base model answers the identity view only (its votes would cost as much and it writes no grids worth voting on).
  const identity = (ts: EvalTask[]) => ts.map((t) => ({ ...t, views: t.views.slice(0, 1) }));
  // Teacher-forced answer loss on the first training items, before and after (recomputed, so a resumed run reports the same).
  const seen = windowsOf(data.train.slice(0, 64), sec.seq_len, false), baseSeen = await answerMetrics(model, seen);
  const baseTf = await answerMetrics(model, held), base = await score(identity(data.eval)), baseReal = await score(identity(real.tasks));
  const t1 = performance.now();
  const { train: cfg, batchSize } = phaseTrainer(ctx, sec);
  const { windows, curriculum } = curriculumWindows(
    data.train,
    (items) => outputWindows(items, sec.seq_len, sec.demo_outputs),
    sec,
    cfg.steps,
    (it) => it.task ?? "",
  );
  const result = await trainText(ctx, {
    name: "arc",
    model,
    windows,
    curriculum,
    train: cfg,
    batchSize,
    seed: deriveSeed(ctx.seed, "batches"),
    evaluate: async () => {
      const m = await answerMetrics(model, held);
      return { heldout_loss: m.loss, heldout_token_acc: m.token_acc };
    },
  });
  await saveModel(join(ctx.dir, MODEL_FILE), model, meta);
  const t2 = performance.now();
  const tfm = await answerMetrics(model, held), tuned = await score(data.eval), tunedReal = await score(real.tasks);
  const trainLoss = (await answerMetrics(model, seen)).loss;
  model.dispose();
  const copy = scoreBaseline(data.eval, (t) => t.test[0].input), major = scoreBaseline(data.eval, majorityGrid);
  const s = summarize(tuned), sb = summarize(base), sc = summarize(copy), sm = summarize(major);
  const grid = sec.grid_steps === 0 ? undefined : await runArcGrid(ctx, sec, {
    families: familiesOf(sec),
    heldOut: data.eval.map((t) => ({
      ...t,
      views: taskViews(t.task, sec.grid_votes, new Rng(deriveSeed(ctx.seed, `grid-views-${t.id}`))),
    })),
    heldOutHashes: new Set(data.eval.map((t) => taskHash(t.task))),
    realDir: arcDir(sec),
    realDirNamed: sec.arc_dir !== "",
  });
  const families = [...new Set(data.eval.map((t) => t.family))];
  const byFamily = (xs: TaskScore[], f: string) => summarize(xs.filter((x) => x.family === f));
  // Samples: the first exact answer (if any), then the best and a middling wrong one by cell accuracy.
  const wrong = tuned.map((x, i) => ({ x, i })).filter(({ x }) => !x.exact).sort((a, b) => b.x.cell - a.x.cell || a.i - b.i);
  const sampleIdx = [tuned.findIndex((x) => x.exact), wrong[0]?.i ?? -1, wrong[wrong.length >> 1]?.i ?? -1]
    .filter((i, k, all) => i >= 0 && all.indexOf(i) === k);
  return {
    metrics: {
      ...s,
      votes: sec.votes,
      base: sb,
      copy_input: sc,
      majority: sm,
      gain_over_base: round(s.cell_acc - sb.cell_acc),
      gain_over_majority: round(s.cell_acc - sm.cell_acc),
      gain_over_copy: round(s.cell_acc - sc.cell_acc),
      heldout_loss: round(tfm.loss),
      heldout_token_acc: round(tfm.token_acc),
      base_heldout_loss: round(baseTf.loss),
      base_heldout_token_acc: round(baseTf.token_acc),
      majority_token_acc: round(majorityTokenAccuracy(windowsOf(data.train, sec.seq_len), held).accuracy),
      train_items: data.train.length,
      train_too_long: data.trainTooLong,
      train_tokens: windows.count * sec.seq_len,
      heldout_overlap_removed: data.evalOverlap,
      heldout_hash_overlap: data.eval.filter((t) => data.trainHashes.has(taskHash(t.task))).length,
      steps: result.steps,
      base_train_loss: round(baseSeen.loss),
      train_loss: round(trainLoss),
      per_family: families.map((f) => ({
        family: f,
        ...byFamily(tuned, f),
        base_cell_acc: byFamily(base, f).cell_acc,
        copy_cell_acc: byFamily(copy, f).cell_acc,
        majority_cell_acc: byFamily(major, f).cell_acc,
      })),
      real_arc: real.skipped ? { status: "skipped", reason: real.skipped } : {
        status: "evaluated",
        dir: arcDir(sec),
        ids: real.tasks.map((t) => t.id),
        ...summarize(tunedReal),
        base: summarize(baseReal),
        copy_input: summarize(scoreBaseline(real.tasks, (t) => t.test[0].input)),
        majority: summarize(scoreBaseline(real.tasks, majorityGrid)),
      },
      samples: sampleIdx.map((i) => ({
        id: tuned[i].id,
        family: tuned[i].family,
        prompt: arcItem(data.eval[i].task).prompt,
        expected: gridText(data.eval[i].task.test[0].output),
        got: tuned[i].got,
        input: data.eval[i].task.test[0].input,
        want: data.eval[i].task.test[0].output,
        pred: tuned[i].pred,
        cell_acc: round(tuned[i].cell),
      })),
      ...(grid ? { grid: { ...grid, seconds: undefined } } : {}), // wall times go to timing
      timing: {
        ...(grid?.seconds ? { grid_train_s: grid.seconds.train, grid_eval_s: grid.seconds.eval, grid_real_s: grid.seconds.real } : {}),
        resumed_from_step: result.resumedFrom,
        prepare_s: round((t1 - t0) / 1000, 1),
        train_s: round((t2 - t1) / 1000, 1),
        eval_s: round((performance.now() - t2) / 1000, 1),
      },
    },
    artifacts: [stageModelPath(phase2), ...(grid ? [ARC_HRRM_PATH] : [])],
  };
}

type Summary = ReturnType<typeof summarize>;

/**
 * The gate: cell accuracy above the base model's, teacher-forced answer token accuracy above the
 * majority token's, enough answers of the right shape, and no held-out task in training. Cell
 * accuracy against the majority colour (in the test input's shape) and against copying the test
 * input is reported, and gated only when `gate_min_majority_gain` > -1: at these budgets the model
 * learns formats, shapes and colour statistics but not yet to copy cells in place, which leaves it
 * within a few points of the majority colour, above or below depending on its start (measured:
 * +0.06 from a random init, -0.03 from phase 1's small base), so a margin there would gate on luck.
 */
function validate(out: { metrics: Record<string, unknown> }, ctx: PhaseContext) {
  const sec = sectionOf(Phase2Section, ctx.phaseConfig, 2),
    m = out.metrics as Record<string, number> & { base: Summary; majority: Summary; copy_input: Summary };
  return [
    check("cell_acc - base model cell_acc", round(m.cell_acc - m.base.cell_acc), sec.gate_min_gain),
    ...(sec.gate_min_majority_gain > -1
      ? [check("cell_acc - majority colour cell_acc", round(m.cell_acc - m.majority.cell_acc), sec.gate_min_majority_gain)]
      : []),
    check(
      "held-out token_acc - majority token_acc (teacher-forced)",
      round(m.heldout_token_acc - m.majority_token_acc),
      sec.gate_min_token_gain,
    ),
    // 0 reports the shape accuracy without gating it (a check with threshold 0 could never fail).
    ...(sec.gate_min_shape_acc > 0 ? [check("answers of the expected shape", m.shape_acc, sec.gate_min_shape_acc)] : []),
    check("held-out tasks sharing a hash with training", m.heldout_hash_overlap, 0, true),
    ...gridChecks(out.metrics.grid as ArcGridResult | undefined, m, sec),
  ];
}

/**
 * Part (b)'s gate: the grid-native HRRM's held-out cell accuracy and exact match above the best
 * input-blind baseline, max(copy the test input, majority colour), by the configured margins.
 */
function gridChecks(g: ArcGridResult | undefined, m: { copy_input: Summary; majority: Summary }, sec: Phase2Section) {
  if (!g) return [];
  const best = (k: "cell_acc" | "exact") => Math.max(m.copy_input[k], m.majority[k]);
  return [
    check(
      "grid HRRM cell_acc - max(copy input, majority colour)",
      round(g.heldout.cell_acc - best("cell_acc")),
      sec.gate_grid_min_cell_gain,
    ),
    check("grid HRRM exact - max(copy input, majority colour)", round(g.heldout.exact - best("exact")), sec.gate_grid_min_exact_gain),
  ];
}

// ---------------------------------------------------------------------------------------------
// Report

const PALETTE = ["#000", "#0074d9", "#ff4136", "#2ecc40", "#ffdc00", "#aaa", "#f012be", "#ff851b", "#7fdbff", "#870c25"];

/** A grid as a small coloured HTML table. */
function gridHtml(g: Grid | null): string {
  if (!g) return "<i>malformed</i>";
  const cells = g.map((row) =>
    `<tr>${row.map((v) => `<td style="background:${PALETTE[v]};width:14px;height:14px;padding:0"></td>`).join("")}</tr>`
  );
  return `<table style="border-collapse:collapse">${cells.join("")}</table>`;
}

function report(result: { metrics: Record<string, unknown> }): PageSection[] {
  type Scores = Summary & Record<string, unknown>;
  const m = result.metrics as Scores, real = m.real_arc as Scores;
  const cols = ["exact", "pass_at_2", "cell_acc", "shape_acc", "well_formed"] as const;
  const row = (name: string, s: Summary) => `<tr><td>${esc(name)}</td>${cols.map((c) => `<td>${s[c]}</td>`).join("")}</tr>`;
  const table = (label: string, s: Scores) =>
    `<table><tr><th>predictor</th><th>exact</th><th>pass@2 (voted)</th><th>cell accuracy</th><th>right shape</th><th>well-formed</th></tr>${
      row(`fine-tuned (${label}, ${s.tasks} tasks)`, s)
    }${row("base model (identity view)", s.base as Summary)}${row("copy the test input", s.copy_input as Summary)}${
      row("majority colour, test input's shape", s.majority as Summary)
    }</table>`;
  const fam = m.per_family as (Summary & { family: string; base_cell_acc: number; copy_cell_acc: number; majority_cell_acc: number })[];
  const bar = (name: string, y: number[]) => ({ type: "bar", name, x: fam.map((f) => f.family), y });
  const samples = m.samples as { id: string; family: string; input: Grid; want: Grid; pred: Grid | null; got: string; cell_acc: number }[];
  return [
    {
      title: "Phase 2: ARC exact match, pass@2 and cell accuracy (held-out generated tasks)",
      html: `${table("generated", m)}<p>Teacher-forced answer token accuracy ${esc(m.base_heldout_token_acc)} (base) → ${
        esc(m.heldout_token_acc)
      } (majority token ${esc(m.majority_token_acc)}). Held-out tasks sharing a hash with training: ${esc(m.heldout_hash_overlap)} (${
        esc(m.heldout_overlap_removed)
      } candidates removed). Decoding is greedy within the grid grammar; pass@2 votes over ${esc(m.votes)} augmented views.</p>`,
    },
    {
      title: "Phase 2: cell accuracy per generator family",
      figure: {
        data: [
          bar("fine-tuned", fam.map((f) => f.cell_acc)),
          bar("base model", fam.map((f) => f.base_cell_acc)),
          bar("copy input", fam.map((f) => f.copy_cell_acc)),
          bar("majority colour", fam.map((f) => f.majority_cell_acc)),
          bar("fine-tuned exact", fam.map((f) => f.exact)),
        ],
        layout: {
          barmode: "group",
          height: 420,
          yaxis: { title: { text: "accuracy" }, range: [0, 1] },
          xaxis: { tickangle: -45 },
          margin: { b: 130 },
        },
      },
    },
    ...(m.grid
      ? [gridSection(m.grid as ArcGridResult, { ...m, copy_input: m.copy_input as Summary, majority: m.majority as Summary })]
      : []),
    {
      title: "Phase 2: real ARC-AGI-1 tasks",
      html: real.status === "evaluated"
        ? `${table("real ARC", real)}<p>tasks: ${esc((real.ids as string[]).join(", "))}</p>`
        : `<p>skipped: ${esc(real.reason)}</p>`,
    },
    {
      title: "Phase 2: sample answers (test input, expected, predicted)",
      html: `<table><tr><th>task</th><th>input</th><th>expected</th><th>predicted</th></tr>${
        samples.map((s) =>
          `<tr><td>${esc(s.id)}<br>${esc(s.family)}<br>cell acc ${s.cell_acc}<br><code>${esc(s.got)}</code></td>${
            [s.input, s.want, s.pred].map((g) => `<td>${gridHtml(g)}</td>`).join("")
          }</tr>`
        ).join("")
      }</table>`,
    },
  ];
}

/** Part (b)'s section: the grid-native HRRM against the baselines, real tasks with test-time training, pictures. */
function gridSection(g: ArcGridResult, m: Summary & { copy_input: Summary; majority: Summary }): PageSection {
  const cols = ["exact", "pass_at_2", "cell_acc", "shape_acc"] as const;
  const row = (name: string, s: Partial<CellSummary> & Pick<Summary, (typeof cols)[number]>) =>
    `<tr><td>${esc(name)}</td>${cols.map((c) => `<td>${s[c]}</td>`).join("")}<td>${s.mean_segments ?? "-"}</td></tr>`;
  const real = g.real_arc;
  const realHtml = real.status === "evaluated"
    ? `<p>Real ARC-AGI-1 (first ${real.tasks} tasks of ${
      esc(real.dir)
    }, each after ${real.ttt_steps} test-time training steps on its own demonstrations): solved ${real.solved.length}/${real.tasks} at pass@2 (${
      esc(real.solved.join(", ") || "none")
    }); exact ${real.exact}, cell accuracy ${real.cell_acc}, right shape ${real.shape_acc}, within the token budget ${real.answered}.</p>`
    : `<p>Real ARC-AGI-1: skipped (${esc(real.reason)}).</p>`;
  return {
    title: "Phase 2 (b): grid-native HRRM on held-out generated tasks (exact match first)",
    html:
      `<table><tr><th>predictor (${g.heldout.tasks} tasks)</th><th>exact</th><th>pass@2 (voted)</th><th>cell accuracy</th><th>right shape</th><th>mean segments</th></tr>${
        row(`grid HRRM after ${g.ttt_steps} test-time steps, Q-halting`, g.heldout)
      }${row("the same weights held to one segment", g.one_segment)}${row("grid HRRM without test-time training", g.no_ttt)}${
        row("text model of part (a)", m)
      }${row("copy the test input", m.copy_input)}${
        row("majority colour, test input's shape", m.majority)
      }</table><p>${g.params} parameters, ${g.steps} steps, train loss ${g.train_loss_first} → ${g.train_loss_last}.</p>${realHtml}
    <table><tr><th>task</th><th>input</th><th>expected</th><th>predicted</th></tr>${
        g.samples.map((s) =>
          `<tr><td>${esc(s.id)}<br>${esc(s.family)}<br>cell acc ${s.cell_acc}${s.pass2 ? "<br><b>solved (pass@2)</b>" : ""}</td>${
            [s.input, s.want, s.pred].map((x) => `<td>${gridHtml(x)}</td>`).join("")
          }</tr>`
        ).join("")
      }</table>`,
  };
}

/** Phase 2: ARC visual reasoning. */
export const phase2: PhaseSpec = {
  id: 2,
  name: "arc",
  title: "ARC visual reasoning: augmented generated tasks, voted pass@2 and cell accuracy",
  section: Phase2Section,

  presets: {
    // The documented configuration: this phase takes training.lr and training.batch_size.
    seed: { lr: 0, batch_size: 0 },
    tiny: {
      steps: 110,
      batch_size: 8,
      seq_len: 160,
      train_tasks: 3200,
      eval_tasks: 12,
      votes: 2,
      real_tasks: 2,
      gate_min_gain: 0.03, // tiny pipeline (phase-1 base, 110 steps): measured gain 0.065
      gate_min_token_gain: 0.05,
      gate_min_shape_acc: 0, // 110 steps of a 2-layer model rarely learn to copy the shape: reported, not gated
      grid_steps: 120,
      grid_batch_size: 8,
      grid_votes: 2,
      grid_ttt_steps: 24,
      grid_real_tasks: 0, // real tasks are large: 2 of them with test-time training cost 40 s, more than the rest of tiny's phase 2
    },
  },

  run,
  validate,
  report,
  stage: {
    metric: "cell_acc",
    solved: "exact", // whole grid right
    replay: (s) => arcData(s).train,
    seqLen: (s) => (sectionOf(Phase2Section, s.phaseConfig, 2)).seq_len,
    evaluate: async (model, s) => {
      const sec = sectionOf(Phase2Section, s.phaseConfig, 2);
      const m = summarize(await scoreModel(model, arcData(s).eval, scoreOptions(sec)));
      return { cell_acc: m.cell_acc, exact: m.exact, pass_at_2: m.pass_at_2, well_formed: m.well_formed };
    },
  },
};
