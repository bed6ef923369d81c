/**
 * The training loop every phase uses: gradient accumulation, optional gradient filter
 * (GrokFast plugs in here), global-norm clipping, AdamW with warmup + cosine, evaluation
 * every N steps, atomic checkpoints every N steps, resume, NaN guard, progress, and graceful
 * stops (after a SIGTERM / SIGINT the current step finishes, a checkpoint is written and
 * `StopRequested` is thrown; lib/util/stop.ts).
 *
 * Batches are a pure function of (step, micro-batch), so a resumed run sees exactly the
 * data an uninterrupted run would have seen.
 */
import * as tf from "@tensorflow/tfjs";
import type { HostTensor, ParamSet } from "../nn/params.ts";
import { Progress } from "../util/progress.ts";
import { StopRequested, stopRequested } from "../util/stop.ts";
import { hasCheckpoint, loadLatestCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { WeightEma } from "./ema.ts";
import { AdamW, clipByGlobalNorm, type GradMap, warmupCosine } from "./optim.ts";

export interface TrainConfig {
  /** Optimizer steps in total. */
  steps: number;
  /** Peak learning rate. */
  lr: number;
  /** Learning rate at the last step (cosine floor). */
  minLr: number;
  /** Linear warmup steps. */
  warmupSteps: number;
  /** AdamW decoupled weight decay. */
  weightDecay: number;
  /** `decoupled` (AdamW, the default) or `l2` (Adam with L2 in the gradient, as torch.optim.Adam). */
  weightDecayMode?: "decoupled" | "l2";
  beta1: number;
  beta2: number;
  eps: number;
  /** Max global gradient norm; 0 turns clipping off. */
  gradClip: number;
  /** Micro-batches summed into one optimizer step. */
  gradAccum: number;
  /** Evaluate every N steps (0: only at the end, when an evaluator is given). */
  evalEvery: number;
  /** Checkpoint every N steps (0: only at the end, when a checkpoint folder is given). */
  saveEvery: number;
  /** Log a metrics record every N steps. */
  logEvery: number;
  /** Decay of an EMA of the weights that becomes the model when training ends (lib/train/ema.ts); 0 or absent: none. */
  emaDecay?: number;
}

/** Defaults in the spirit of nanoGPT's small runs. */
export const DEFAULT_TRAIN: TrainConfig = {
  steps: 1000,
  lr: 1e-3,
  minLr: 1e-4,
  warmupSteps: 100,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  gradClip: 1,
  gradAccum: 1,
  evalEvery: 0,
  saveEvery: 0,
  logEvery: 10,
};

/** A gradient transform with explicit state, e.g. a GrokFast filter. */
export type GradFilter = (grads: GradMap, step: number) => GradMap;

/** A gradient filter whose state is saved in checkpoints, so a resumed run filters exactly as an uninterrupted one. */
export interface PersistentGradFilter {
  filter: GradFilter;
  /** The state as host tensors (saved as `gradfilter.safetensors`). */
  toHost(): Promise<Map<string, HostTensor>>;
  /** Restores what `toHost` returned. */
  load(state: Map<string, HostTensor>): void;
}

/** What to train: parameters, a loss over a batch, and the batch stream. */
export interface TrainTask<B> {
  params: ParamSet;
  /** Builds the batch for (step, micro); must be deterministic. Tensors are disposed by the trainer. */
  batch(step: number, micro: number): B;
  /** The scalar loss on a batch (called inside a gradient tape). */
  loss(batch: B): tf.Scalar;
  /** Tokens per micro-batch, for tokens/s. */
  tokensPerBatch?: number;
}

/** One metrics record (the trainer's share of a metrics.jsonl line). */
export interface TrainLog {
  step: number;
  loss: number;
  lr: number;
  grad_norm?: number;
  tokens_per_s?: number;
  [k: string]: number | string | undefined;
}

export interface TrainOptions {
  /** Where checkpoints go; without it nothing is saved. */
  checkpointDir?: string;
  /** Continue from the newest checkpoint in checkpointDir when one exists. */
  resume?: boolean;
  /** Saved into every checkpoint's meta (the resolved config). */
  config?: unknown;
  /** Called with every logged record (metrics.jsonl). */
  onLog?: (rec: TrainLog) => void | Promise<void>;
  /** Evaluation, run every evalEvery steps and at the end; its numbers are logged. */
  evaluate?: (step: number) => Promise<Record<string, number>>;
  /** Stop early when this says so (convergence detection). Sees each step's loss and evals. */
  shouldStop?: (step: number, loss: number, evals?: Record<string, number>) => boolean;
  /**
   * Called with the checkpoint's step when training resumes from one, before any step runs: where
   * a caller rebuilds state it keeps outside the trainer (an early-stopping detector) from what it logged.
   */
  onResume?: (step: number) => void | Promise<void>;
  /** Transforms gradients before clipping (GrokFast); a persistent filter's state is checkpointed. */
  gradFilter?: GradFilter | PersistentGradFilter;
  /** Progress label; `quiet` silences it. */
  label?: string;
  quiet?: boolean;
  /** Parameters exempt from weight decay. */
  noDecay?: (name: string) => boolean;
}

export interface TrainResult {
  /** Steps completed (equal to cfg.steps unless stopped early). */
  steps: number;
  /** Loss of every step run in this call, in order. */
  losses: number[];
  /** Step this call started from (0, or the checkpoint's step when resumed). */
  resumedFrom: number;
  /** True when shouldStop ended training before cfg.steps. */
  stoppedEarly: boolean;
  /** The last evaluation's numbers. */
  lastEval?: Record<string, number>;
  seconds: number;
}

/** Raised when a loss is NaN or infinite; the last good state was checkpointed first. */
export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly loss: number, readonly checkpoint?: string) {
    super(`loss became ${loss} at step ${step}; training stopped${checkpoint ? `, last good state saved to ${checkpoint}` : ""}`);
  }
}

/** Checks a TrainConfig; the error names the field. */
export function validateTrainConfig(c: TrainConfig): void {
  const nonNeg = ["warmupSteps", "weightDecay", "gradClip", "evalEvery", "saveEvery", "minLr"] as const;
  for (const k of nonNeg) if (!(c[k] >= 0)) throw new Error(`training.${k} = ${c[k]}: expected >= 0`);
  for (const k of ["steps", "gradAccum", "logEvery"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`training.${k} = ${c[k]}: expected an integer >= 1`);
  }
  if (!(c.lr > 0)) throw new Error(`training.lr = ${c.lr}: expected > 0`);
  for (const k of ["beta1", "beta2"] as const) if (!(c[k] >= 0 && c[k] < 1)) throw new Error(`training.${k} = ${c[k]}: expected in [0, 1)`);
}

/** Trains `task` for cfg.steps optimizer steps. */
export async function train<B>(task: TrainTask<B>, cfg: TrainConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  validateTrainConfig(cfg);
  const t0 = performance.now();
  const params = task.params;
  const persistent = typeof opts.gradFilter === "object" ? opts.gradFilter : undefined;
  const gradFilter = persistent ? persistent.filter : opts.gradFilter as GradFilter | undefined;
  const opt = new AdamW({
    beta1: cfg.beta1,
    beta2: cfg.beta2,
    eps: cfg.eps,
    weightDecay: cfg.weightDecay,
    noDecay: opts.noDecay,
    decayMode: cfg.weightDecayMode,
  });
  const ema = cfg.emaDecay ? new WeightEma(params, cfg.emaDecay) : undefined;
  let step = 0;
  // A run that stopped early (shouldStop) stays stopped when resumed: its last checkpoint says so.
  let stoppedEarly = false;
  if (opts.resume && opts.checkpointDir) {
    const ck = await loadLatestCheckpoint(opts.checkpointDir);
    if (ck) {
      params.load(ck.model, { source: `${ck.path}/model.safetensors` });
      opt.loadState(ck.meta.optimizer.t, ck.optimizer);
      if (persistent && ck.gradFilter) persistent.load(ck.gradFilter);
      if (ema) {
        if (!ck.ema) throw new Error(`${ck.path}: training keeps a weight EMA (emaDecay ${cfg.emaDecay}) but this checkpoint has none`);
        ema.load(ck.ema);
      }
      step = ck.meta.dataPosition.step;
      stoppedEarly = ck.meta.extra?.stopped_early === true;
      await opts.onResume?.(step);
    }
  }
  const resumedFrom = step;
  const varNames = new Map<string, string>(); // tf variable name -> param name
  for (const [name, v] of params.vars) varNames.set(v.name, name);
  const vars = [...params.vars.values()];
  const progress = new Progress(opts.label ?? "train", cfg.steps, { quiet: opts.quiet });
  progress.startAt(step);
  const losses: number[] = [];
  let lastEval: Record<string, number> | undefined;
  const save = async (s: number) =>
    opts.checkpointDir
      ? saveCheckpoint(opts.checkpointDir, s, params, opt, opts.config, {
        gradFilter: await persistent?.toHost(),
        ema: await ema?.toHost(),
        extra: stoppedEarly ? { stopped_early: true } : undefined,
      })
      : Promise.resolve(undefined);

  try {
    while (step < cfg.steps && !stoppedEarly) {
      const signal = stopRequested();
      if (signal) {
        // A graceful stop: the last step is complete; checkpoint it so a resume continues here.
        if (opts.checkpointDir && (step > resumedFrom || !(await hasCheckpoint(opts.checkpointDir)))) await save(step);
        throw new StopRequested(signal, step);
      }
      const stepStart = performance.now();
      // Accumulate gradients of loss / gradAccum over the micro-batches.
      let grads: GradMap | undefined;
      let lossSum: tf.Scalar | undefined;
      for (let micro = 0; micro < cfg.gradAccum; micro++) {
        const { value, grads: g } = tf.tidy(() => {
          const batch = task.batch(step, micro);
          return tf.variableGrads(() => tf.div(task.loss(batch), cfg.gradAccum) as tf.Scalar, vars);
        });
        const named: GradMap = new Map();
        for (const [vn, t] of Object.entries(g)) named.set(varNames.get(vn)!, t);
        if (!grads) {
          grads = named;
          lossSum = value;
        } else {
          const prev: GradMap = grads;
          grads = new Map([...prev].map(([k, t]) => [k, tf.add(t, named.get(k)!)]));
          const prevLoss: tf.Scalar = lossSum!;
          lossSum = tf.add(prevLoss, value) as tf.Scalar;
          tf.dispose([...prev.values(), ...named.values(), prevLoss, value]);
        }
      }
      const loss = (await lossSum!.data())[0];
      lossSum!.dispose();
      if (!Number.isFinite(loss)) {
        tf.dispose([...grads!.values()]);
        // Parameters are still those of the last good step: save them before stopping.
        const where = await save(step);
        throw new NonFiniteLossError(step, loss, where);
      }
      let g = grads!;
      if (gradFilter) {
        const filtered = gradFilter(g, step);
        if (filtered !== g) tf.dispose([...g.values()].filter((t) => ![...filtered.values()].includes(t)));
        g = filtered;
      }
      let gradNorm: number | undefined;
      if (cfg.gradClip > 0) {
        const clipped = clipByGlobalNorm(g, cfg.gradClip);
        gradNorm = (await clipped.norm.data())[0];
        clipped.norm.dispose();
        tf.dispose([...g.values()]);
        g = clipped.grads;
      }
      const lr = warmupCosine(step, { lr: cfg.lr, minLr: cfg.minLr, warmupSteps: cfg.warmupSteps, totalSteps: cfg.steps });
      opt.step(params.vars, g, lr);
      tf.dispose([...g.values()]);
      step += 1;
      ema?.update(step);
      losses.push(loss);

      const stepSeconds = (performance.now() - stepStart) / 1000;
      const tokens = task.tokensPerBatch ? task.tokensPerBatch * cfg.gradAccum : undefined;
      let evals: Record<string, number> | undefined;
      if (opts.evaluate && ((cfg.evalEvery > 0 && step % cfg.evalEvery === 0) || step === cfg.steps)) {
        evals = await opts.evaluate(step);
        lastEval = evals;
      }
      if (opts.onLog && (step % cfg.logEvery === 0 || step === cfg.steps || evals)) {
        const rec: TrainLog = { step, loss, lr };
        if (gradNorm !== undefined) rec.grad_norm = gradNorm;
        if (tokens) rec.tokens_per_s = tokens / stepSeconds;
        if (evals) { for (const [k, v] of Object.entries(evals)) rec[k] = v; }
        await opts.onLog(rec);
      }
      progress.update(step, { loss, lr }, tokens);
      if (cfg.saveEvery > 0 && step % cfg.saveEvery === 0 && step < cfg.steps) await save(step);
      if (opts.shouldStop?.(step, loss, evals)) {
        stoppedEarly = step < cfg.steps;
        break;
      }
    }
    if (opts.checkpointDir && (step > resumedFrom || !(await hasCheckpoint(opts.checkpointDir)))) await save(step);
    // The checkpoint keeps the raw weights (a resume continues from them); the trained model is the average.
    ema?.applyToParams();
  } finally {
    opt.dispose();
    ema?.dispose();
  }
  return { steps: step, losses, resumedFrom, stoppedEarly, lastEval, seconds: (performance.now() - t0) / 1000 };
}
