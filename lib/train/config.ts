/**
 * The pipeline's `training` section and the one function that turns it, plus a phase's own
 * run (its steps, peak learning rate and batch size), into a trainer config. Every phase trains
 * through `trainerConfig`, so each key of the section means the same thing in every phase:
 *
 * - A phase's `steps`, `lr` and `batch_size` of 0 inherit `max_steps`, `lr` and `batch_size`
 *   (the `seed` preset's phases do, so the documented configuration reaches its trainers).
 * - The cosine floor of every phase is min(`min_lr`, the phase's peak lr), unless the phase sets
 *   its own `min_lr` (phase 4 does: 3e-4, a tenth of its peak).
 * - `warmup_steps` applies as it is when it is shorter than the phase's run; a longer warmup is
 *   scaled to the same share of the run that it is of `max_steps`:
 *   round(steps * warmup_steps / max_steps). A warmup of `max_steps` or more is a config error.
 * - `grad_accum`, `weight_decay`, `beta1`, `beta2`, `grad_clip`, `eval_every`, `save_every`
 *   and `log_every` go to the trainer unchanged.
 */
import { z } from "zod";
import { GrokfastSection } from "./grokfast.ts";
import type { TrainConfig } from "./trainer.ts";

export { GrokfastSection };

/** `training`: the optimizer and schedule every phase shares; defaults are the `small` preset's. */
export const TrainingSection = z.strictObject({
  batch_size: z.number().int().min(1).default(32), // windows per optimizer step for phases whose batch_size is 0
  grad_accum: z.number().int().min(1).default(1), // micro-batches summed into one optimizer step
  lr: z.number().gt(0).default(1e-3), // peak learning rate for phases whose lr is 0
  min_lr: z.number().min(0).default(1e-4), // cosine floor: every phase decays to min(min_lr, its peak lr)
  warmup_steps: z.number().int().min(0).default(50), // linear warmup steps (scaled down for runs shorter than it)
  max_steps: z.number().int().min(1).default(1000), // steps of a phase whose steps is 0; the run warmup_steps is measured against
  weight_decay: z.number().min(0).default(0.01), // AdamW decoupled weight decay
  beta1: z.number().min(0).max(0.999999).default(0.9),
  beta2: z.number().min(0).max(0.999999).default(0.95),
  grad_clip: z.number().min(0).default(1), // max global gradient norm; 0 turns clipping off
  eval_every: z.number().int().min(0).default(100), // evaluate every N steps (0: only at the end)
  save_every: z.number().int().min(0).default(100), // checkpoint every N steps (0: only at the end)
  log_every: z.number().int().min(1).default(10), // a metrics.jsonl record every N steps
  grokfast: GrokfastSection.prefault({}), // GrokFast gradient filter of phase 1's pretraining (lib/train/grokfast.ts)
});
export type TrainingSection = z.infer<typeof TrainingSection>;

/** A phase's own run: 0 in any field inherits the training section's value. */
export interface PhaseRun {
  /** Optimizer steps (0: training.max_steps). */
  steps: number;
  /** Peak learning rate (0: training.lr). */
  lr: number;
  /** Windows per step (0: training.batch_size). */
  batch_size?: number;
  /** Cosine floor (absent or 0: min(training.min_lr, the peak lr)). */
  min_lr?: number;
}

/** A bad value in the training section or a phase's run; `key` is the dotted config key. */
export class TrainingConfigError extends Error {
  constructor(readonly key: string, message: string) {
    super(`config: ${key}: ${message}`);
  }
}

/** Warmup steps of a run of `steps` under the section's rule (see the module comment). */
export function warmupFor(t: Pick<TrainingSection, "warmup_steps" | "max_steps">, steps: number): number {
  if (t.warmup_steps >= t.max_steps) {
    throw new TrainingConfigError("training.warmup_steps", `${t.warmup_steps} is not shorter than training.max_steps = ${t.max_steps}`);
  }
  if (t.warmup_steps < steps) return t.warmup_steps;
  return Math.min(steps - 1, Math.round((steps * t.warmup_steps) / t.max_steps));
}

/** Windows per step of a phase whose `batch_size` is `b` (0: training.batch_size). */
export function batchFor(t: Pick<TrainingSection, "batch_size">, b: number): number {
  return b > 0 ? b : t.batch_size;
}

/**
 * The trainer config and batch size of a phase's run: `run` (the phase's steps, lr and batch
 * size, 0 = inherit) over the training section `t`, with `over` (phase-specific trainer fields,
 * e.g. a constant schedule) last. `section` names the phase's config section in errors.
 */
export function trainerConfig(
  t: TrainingSection,
  run: PhaseRun,
  section = "phase",
  over: Partial<TrainConfig> = {},
): { train: TrainConfig; batchSize: number } {
  const steps = run.steps > 0 ? run.steps : t.max_steps;
  const lr = run.lr > 0 ? run.lr : t.lr;
  const batchSize = batchFor(t, run.batch_size ?? 0);
  if (!Number.isInteger(steps) || steps < 1) throw new TrainingConfigError(`${section}.steps`, `expected a positive integer, got ${steps}`);
  const train: TrainConfig = {
    steps,
    lr,
    minLr: run.min_lr !== undefined && run.min_lr > 0 ? Math.min(run.min_lr, lr) : Math.min(t.min_lr, lr),
    warmupSteps: warmupFor(t, steps),
    weightDecay: t.weight_decay,
    beta1: t.beta1,
    beta2: t.beta2,
    eps: 1e-8,
    gradClip: t.grad_clip,
    gradAccum: t.grad_accum,
    evalEvery: t.eval_every,
    saveEvery: t.save_every,
    logEvery: t.log_every,
    ...over,
  };
  return { train, batchSize };
}
