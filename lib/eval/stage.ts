/**
 * A trained stage seen from later phases: its replay data and its evaluation, rebuilt from the
 * run config and the phase's seed alone, so phase 6 can train on it and phase 7 score it
 * without importing the phase that made it.
 */
import type { PipelineConfig } from "../config/config.ts";
import type { RegistryModel } from "../models/registry.ts";
import { deriveSeed } from "../util/rng.ts";
import type { TextItem } from "../text/tokens.ts";

/** What a stage needs to rebuild its data and evaluate: the run config, its section and its seed. */
export interface StageContext {
  /** The fully resolved run config. */
  config: PipelineConfig;
  /** The phase's section, `config.phases[id]`. */
  phaseConfig: Record<string, unknown>;
  /** Seed derived for the phase from the run seed. */
  seed: number;
}

/** A stage's replay data and held-out evaluation. */
export interface StageSpec {
  /** The result.json metric the retention table compares (higher is better). */
  metric: string;
  /**
   * Task success among the evaluate() record's keys, where `metric` is a part of an answer
   * (cells, tokens): the share of held-out items solved whole (phase 7's reasoning score).
   */
  solved?: string;
  /** Training items of this stage (text, byte tokenizer), for replay. */
  replay(s: StageContext): TextItem[];
  /** Tokens per window that the stage's items need. */
  seqLen(s: StageContext): number;
  /** Scores a model on the stage's held-out set; the record holds at least `metric`. */
  evaluate(model: RegistryModel, s: StageContext): Promise<Record<string, number>>;
}

/** A phase that offers a stage: its id and its stage (phase specs fit this shape). */
export interface StagedPhase {
  id: number;
  name: string;
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
