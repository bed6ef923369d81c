/** What a phase is, what it is given, and what it returns. */
import type { PipelineConfig, Preset, Rule } from "./config.ts";
import type { RegistryModel } from "../models/registry.ts";
import type { PageSection } from "../viz/report.ts";
import { deriveSeed } from "../util/rng.ts";

/** One validation gate check: `value` compared with `threshold`. */
export interface ValidationCheck {
  name: string;
  value: number | string | boolean;
  threshold: number | string | boolean;
  passed: boolean;
}

/** Builds a check that passes when value >= threshold (or <= with `atMost`). */
export function check(name: string, value: number, threshold: number, atMost = false): ValidationCheck {
  return { name, value, threshold, passed: Number.isFinite(value) && (atMost ? value <= threshold : value >= threshold) };
}

export interface PhaseContext {
  /** The fully resolved run config. */
  config: PipelineConfig;
  /** This phase's section, `config.phases[id]`. */
  phaseConfig: Record<string, unknown>;
  /** The run directory and this phase's folder inside it. */
  runDir: string;
  dir: string;
  /** True when this phase was interrupted before and should continue from its checkpoints. */
  resume: boolean;
  /** Seed derived for this phase from the run seed. */
  seed: number;
  /** Appends a metrics record (phase added) to metrics.jsonl. */
  log(rec: Record<string, unknown>): Promise<void>;
  /** The result.json of an earlier phase of this run, when it completed. */
  previous(id: number): Promise<PhaseResultFile | undefined>;
}

/** What a phase's run returns. */
export interface PhaseOutput {
  metrics: Record<string, unknown>;
  /** Files it wrote, relative to the run directory. */
  artifacts?: string[];
}

export interface PhaseSpec {
  id: number;
  /** Short name, used in the folder name `phase-<id>-<name>`. */
  name: string;
  /** One line for --help and the report. */
  title: string;
  /** This phase's config section defaults and per-preset overrides. */
  defaults: Record<string, unknown>;
  presets?: Partial<Record<Preset, Record<string, unknown>>>;
  /** Constraints on this phase's config keys, e.g. `{ steps: { int: true, min: 1 } }`. */
  rules?: Record<string, Rule>;
  run(ctx: PhaseContext): Promise<PhaseOutput>;
  /** The validation gate, run after the phase. */
  validate(out: PhaseOutput, ctx: PhaseContext): ValidationCheck[];
  /** This phase's sections of report.html (figures and tables), from its result.json. */
  report?(result: PhaseResultFile): PageSection[];
  /** What the phase offers to integration (phase 6) and evaluation (phase 7). */
  stage?: StageSpec;
}

/** The seed of phase `id`, derived from the run seed (what its context's `seed` is). */
export function phaseSeed(config: PipelineConfig, id: number): number {
  return deriveSeed(config.run.seed, `phase-${id}`);
}

/** The stage context of phase `id` in a run with `config`. */
export function stageContext(config: PipelineConfig, id: number): StageContext {
  return { config, phaseConfig: config.phases[String(id)] ?? {}, seed: phaseSeed(config, id) };
}

/** The part of a phase context a stage needs to rebuild its data and evaluate. */
export type StageContext = Pick<PhaseContext, "config" | "phaseConfig" | "seed">;

/**
 * A trained stage seen from later phases: its replay data and its evaluation, rebuilt from the
 * run config and the phase's seed alone (so phase 6 can train on it and phase 7 score it).
 */
export interface StageSpec {
  /** The result.json metric the retention table compares (higher is better). */
  metric: string;
  /** Training items of this stage (text, byte tokenizer), for replay. */
  replay(s: StageContext): { prompt: string; answer: string; task?: string }[];
  /** Tokens per window that the stage's items need. */
  seqLen(s: StageContext): number;
  /** Scores a model on the stage's held-out set; the record holds at least `metric`. */
  evaluate(model: RegistryModel, s: StageContext): Promise<Record<string, number>>;
}

/** `phase-N-<name>/result.json`. */
export interface PhaseResultFile {
  phase: number;
  name: string;
  status: "completed" | "failed";
  seconds: number;
  metrics: Record<string, unknown>;
  validation: { passed: boolean; checks: ValidationCheck[] };
  artifacts: string[];
  error?: string;
  peak_rss_mb?: number;
  warning?: string;
}

/** The documented pipeline's phase names, for messages about phases not built yet. */
export const PHASE_NAMES: Record<number, string> = {
  1: "cognate pretraining",
  2: "ARC visual reasoning",
  3: "algorithmic puzzles",
  4: "math text reasoning",
  5: "long context",
  6: "integration",
  7: "evaluation, compression and deployment",
};
