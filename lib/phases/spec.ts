/** What a phase is, what it is given, and what it returns. */
import type { PipelineConfig, Preset, SectionSchema } from "../config/config.ts";
import type { StageContext, StageSpec } from "../eval/stage.ts";
import type { PhaseResultFile, ValidationCheck } from "../util/run_dir.ts";
import type { PageSection } from "../viz/report.ts";

/** Builds a check that passes when value >= threshold (or <= with `atMost`). */
export function check(name: string, value: number, threshold: number, atMost = false): ValidationCheck {
  return { name, value, threshold, passed: Number.isFinite(value) && (atMost ? value <= threshold : value >= threshold) };
}

export interface PhaseContext extends StageContext {
  /** This phase's id (1-7). */
  phase: number;
  /** The fully resolved run config. */
  config: PipelineConfig;
  /** The run directory and this phase's folder inside it. */
  runDir: string;
  dir: string;
  /** True when this phase was interrupted before and should continue from its checkpoints. */
  resume: boolean;
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
  /** This phase's config section `phases.<id>`: type, defaults and validation in one zod object. */
  section: SectionSchema;
  /** Per-preset overrides of the section. */
  presets?: Partial<Record<Preset, Record<string, unknown>>>;
  run(ctx: PhaseContext): Promise<PhaseOutput>;
  /** The validation gate, run after the phase. */
  validate(out: PhaseOutput, ctx: PhaseContext): ValidationCheck[];
  /** This phase's sections of report.html (figures and tables), from its result.json. */
  report?(result: PhaseResultFile): PageSection[];
  /** What the phase offers to integration (phase 6) and evaluation (phase 7). */
  stage?: StageSpec;
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
