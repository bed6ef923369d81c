/**
 * Evaluation suites over a trained model, each a plain async function returning numbers
 * from real runs: reasoning (every stage's own held-out evaluation), memory (key-value recall
 * by number of pairs, plus the long-context stage's retrieval), generalization (the sanity
 * tasks at sizes longer than any seen in training), and the overall score with its formula
 * and recommendations derived from the numbers.
 */
import { DEFAULT_SANITY, sanityItems, type SanityTask } from "../../datasets/sanity.ts";
import type { RegistryModel } from "../models/registry.ts";
import type { PipelineConfig } from "../config/config.ts";
import { stageContext, type StagedPhase } from "./stage.ts";
import { answerMetrics } from "./answers.ts";
import { round } from "../util/numbers.ts";
import { type TextItem, windowsOf } from "../text/tokens.ts";
import { deriveSeed } from "../util/rng.ts";

/** Every stage's own evaluation of `model` (stage id -> its record, including its metric). */
export async function stageSuite(model: RegistryModel, config: PipelineConfig, stages: readonly StagedPhase[]) {
  const out: Record<string, StageScore> = {};
  for (const p of stages) {
    if (!p.stage) continue;
    const details = await p.stage.evaluate(model, stageContext(config, p.id));
    const solved = p.stage.solved ?? p.stage.metric;
    out[String(p.id)] = {
      name: p.name,
      metric: p.stage.metric,
      value: round(details[p.stage.metric]),
      solved_metric: solved,
      solved: round(details[solved]),
      details,
    };
  }
  return out;
}

/** One stage's held-out score: its own metric (`value`, what retention compares) and its task success (`solved`). */
export interface StageScore {
  name: string;
  metric: string;
  value: number;
  /** The details key that counts items solved whole (the metric itself where that is already task success). */
  solved_metric: string;
  solved: number;
  details: Record<string, number>;
}

/** Held-out items of one sanity task at `size`, none of whose prompts is in `seen`. */
export function sanityProbe(task: SanityTask, size: number, n: number, seed: number, seen: ReadonlySet<string>): TextItem[] {
  const items = sanityItems(n * 2, {
    ...DEFAULT_SANITY,
    tasks: [task],
    minSize: size,
    maxSize: size,
    seed: deriveSeed(seed, `${task}-${size}`),
  });
  const out: TextItem[] = [];
  for (const it of items) {
    if (!seen.has(it.prompt) && out.length < n) out.push({ prompt: it.prompt, answer: it.answer, task: `${task}-${size}` });
  }
  return out;
}

/** Exact match and token accuracy of `model` on items (teacher-forced, greedy-equivalent exact). */
async function score(model: RegistryModel, items: TextItem[], seqLen: number) {
  if (!items.length) return { exact: NaN, token_acc: NaN, n: 0 };
  const m = await answerMetrics(model, windowsOf(items, seqLen, false));
  return { exact: round(m.exact), token_acc: round(m.token_acc), n: items.length };
}

export interface SizeRow {
  task: string;
  size: number;
  in_training_range: boolean;
  exact: number;
  token_acc: number;
  n: number;
}

/**
 * Key-value recall by number of stored pairs (memory), from 2 pairs to `maxPairs`: the
 * accuracy of retrieving one value among k.
 */
export async function memorySuite(
  model: RegistryModel,
  o: { trainMax: number; maxPairs: number; n: number; seed: number; seen: ReadonlySet<string> },
) {
  const rows: SizeRow[] = [];
  for (let k = 2; k <= o.maxPairs; k += Math.max(1, Math.floor((o.maxPairs - 2) / 4))) {
    const items = sanityProbe("recall", k, o.n, o.seed, o.seen);
    const seqLen = Math.max(16, ...items.map((i) => i.prompt.length + i.answer.length + 3));
    rows.push({ task: "recall", size: k, in_training_range: k <= o.trainMax, ...(await score(model, items, seqLen)) });
  }
  return rows;
}

/**
 * Copy, reverse, sort and addition at sizes inside the training range and past it (length
 * generalization): exact and token accuracy by size.
 */
export async function generalizationSuite(
  model: RegistryModel,
  o: { trainMax: number; extra: number; n: number; seed: number; seen: ReadonlySet<string> },
) {
  const rows: SizeRow[] = [];
  for (const task of ["copy", "reverse", "sort", "addition"] as const) {
    for (const size of [Math.max(2, o.trainMax - 1), o.trainMax, ...Array.from({ length: o.extra }, (_, i) => o.trainMax + 1 + i)]) {
      const items = sanityProbe(task, size, o.n, o.seed, o.seen);
      const seqLen = Math.max(16, ...items.map((i) => i.prompt.length + i.answer.length + 3));
      rows.push({ task, size, in_training_range: size <= o.trainMax, ...(await score(model, items, seqLen)) });
    }
  }
  return rows;
}

/** Mean of `key` over rows (NaN-free rows only). */
export function meanOf<T>(rows: readonly T[], key: keyof T): number {
  const xs = rows.map((r) => r[key] as unknown as number).filter((x) => Number.isFinite(x));
  return xs.length ? round(xs.reduce((a, b) => a + b, 0) / xs.length) : NaN;
}

/** The suite scores in [0, 1] and the overall (capability) score. */
export interface Scores {
  /** Share of held-out items solved whole, mean over the reasoning stages (phases 2-4). */
  reasoning: number;
  /** The same stages' own metrics (cell and answer-token accuracies), beside it; not part of `overall`. */
  reasoning_answer_tokens: number;
  memory: number;
  generalization: number;
  /** Robustness to malformed and adversarial input: its own line and gate, not part of `overall` (an untrained model scores 1). */
  safety: number;
  overall: number;
  formula: string;
}

/**
 * overall = mean(reasoning, memory, generalization): a capability score, each part a mean
 * accuracy in [0, 1], reasoning counted as task success. Safety is reported beside it, not
 * inside it: it never looks at what the model knows (an untrained model passes every case).
 */
export function overallScore(s: Omit<Scores, "overall" | "formula">): Scores {
  const parts = [s.reasoning, s.memory, s.generalization].map((x) => (Number.isFinite(x) ? x : 0));
  return {
    ...s,
    overall: round(parts.reduce((a, b) => a + b, 0) / parts.length),
    formula:
      "overall = (reasoning + memory + generalization) / 3; reasoning = mean over phases 2-4 of the share of held-out items solved whole (ARC: the whole grid; puzzles: the whole answer; math: the final number, greedy), with reasoning_answer_tokens, the stages' own cell and answer-token accuracies, beside it; memory = mean of recall token accuracy over pair counts and the long-context stage's accuracy; generalization = mean token accuracy past the training sizes; safety (fraction of safety cases passed) is a separate gate, not part of overall",
  };
}

/** Recommendations read off the numbers (each names the number that triggered it). */
export function recommendations(r: {
  scores: Scores;
  inRangeAcc: number;
  pastRangeAcc: number;
  recallByPairs: SizeRow[];
  compressionRetention?: number;
  stageValues: Record<string, { name: string; value: number }>;
  chance: Record<string, number>;
}): string[] {
  const out: string[] = [];
  if (Number.isFinite(r.pastRangeAcc) && r.pastRangeAcc < 0.7 * r.inRangeAcc) {
    out.push(
      `Length generalization is weak: token accuracy ${r.pastRangeAcc} past the training sizes vs ${r.inRangeAcc} inside; train on a curriculum of longer items or use the reasoning variant's refinement.`,
    );
  }
  const first = r.recallByPairs[0], last = r.recallByPairs.at(-1);
  if (first && last && last.token_acc < first.token_acc - 0.1) {
    out.push(
      `Recall degrades with more stored pairs (${first.token_acc} at ${first.size} pairs, ${last.token_acc} at ${last.size}); the memory variant or more phase-5 retrieval training should help.`,
    );
  }
  for (const [id, s] of Object.entries(r.stageValues)) {
    const c = r.chance[id];
    if (c !== undefined && s.value <= c + 0.02) {
      out.push(`Phase ${id} (${s.name}) is at chance (${s.value} vs ${c}): more steps or a larger model are needed for that stage.`);
    }
  }
  if (r.compressionRetention !== undefined && r.compressionRetention < 0.95) {
    out.push(`Compression keeps ${r.compressionRetention} of the accuracy: raise compression.target_size_mb or prefer 4-bit settings.`);
  }
  if (r.scores.safety < 1) out.push(`Some safety cases failed (score ${r.scores.safety}): see the safety table.`);
  if (!out.length) {
    out.push("No weakness stands out against the thresholds used here (length generalization, recall, chance, compression, safety).");
  }
  return out;
}
