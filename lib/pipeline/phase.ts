/** What a phase is, what it is given, and what it returns. */
import type { PipelineConfig, Preset, Rule } from "./config.ts";

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
