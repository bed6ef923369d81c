/**
 * Notebook 03's explore cell: phase 3's grokking run again, at a weight decay (and step budget)
 * the researcher picks, with its accuracy curves redrawn in place while it trains.
 *
 * It is the phase's own `grokRun` (same data, model, seed and optimizer settings from the run's
 * `phases.3` section), with `mod_weight_decay` replaced; it trains in its own folder under the
 * phase's (`phase-3-puzzles/explore/wd-<decay>`), so the phase's results and checkpoints are not
 * touched, and a rerun at the same settings resumes from that folder's checkpoint.
 */
import { join } from "node:path";
import { stageContext } from "../eval/stage.ts";
import type { PhaseContext } from "../phases/spec.ts";
import { type GrokCurve, grokkingFigure, grokRun, modularData } from "../phases/p3_grokking.ts";
import type { Run } from "../pipeline/session.ts";
import { phaseDir } from "../util/run_dir.ts";
import type { Figure } from "../viz/figures.ts";
import { LiveFigure } from "../viz/notebook.ts";

/** What to change in the rerun. */
export interface GrokRerunOptions {
  /** Adam's L2 weight decay (the phase's `mod_weight_decay`). */
  weightDecay: number;
  /** Training steps (default: the phase's `mod_steps`). */
  steps?: number;
  /** Redraw the curves in place while it trains (default true; in Jupyter only, elsewhere the last state is printed). */
  live?: boolean;
}

/** The rerun's curve and final accuracies. */
export interface GrokRerun {
  weightDecay: number;
  steps: number;
  train_acc: number;
  val_acc: number;
  seconds: number;
  /** Steps at which train reached the memorization threshold and validation the generalization threshold (null: not reached). */
  memorized: number | null;
  generalized: number | null;
  curve: GrokCurve;
}

/** Train and validation accuracy against step, as the rerun trains. */
export function rerunFigure(curve: GrokCurve, weightDecay: number, title = ""): Figure {
  return {
    data: [
      { type: "scatter", mode: "lines", name: "train accuracy", x: curve.step, y: curve.train_acc },
      { type: "scatter", mode: "lines", name: "validation accuracy", x: curve.step, y: curve.val_acc },
    ],
    layout: {
      title: { text: title || `grokking rerun, weight decay ${weightDecay}` },
      xaxis: { title: { text: "step" } },
      yaxis: { title: { text: "accuracy" }, range: [0, 1.02] },
      height: 360,
    },
  };
}

/** Runs phase 3's grokking part again at `opts.weightDecay` (see the module comment). */
export async function rerunGrokking(run: Run, opts: GrokRerunOptions): Promise<GrokRerun> {
  if (!(opts.weightDecay >= 0)) throw new Error(`weightDecay = ${opts.weightDecay}: expected a number >= 0`);
  const base = stageContext(run.config, 3);
  const phaseConfig: Record<string, unknown> = { ...base.phaseConfig, mod_weight_decay: opts.weightDecay };
  const steps = opts.steps ?? Number(phaseConfig.mod_steps);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps = ${opts.steps}: expected an integer >= 1`);
  const dir = join(phaseDir(run.runDir, { id: 3, name: "puzzles" }), "explore", `wd-${opts.weightDecay}`);
  await Deno.mkdir(dir, { recursive: true });
  const chart = opts.live === false ? undefined : new LiveFigure(`grokking rerun, weight decay ${opts.weightDecay}`);
  const curve: GrokCurve = { step: [], train_acc: [], val_acc: [], loss: [] };
  const ctx: PhaseContext = {
    ...base,
    phaseConfig,
    phase: 3,
    runDir: run.runDir,
    dir,
    resume: true,
    previous: () => Promise.resolve(undefined),
    // The rerun's records stay out of the run's metrics.jsonl; each evaluation redraws the chart.
    log: async (rec) => {
      if (typeof rec.val_acc !== "number") return;
      curve.step.push(rec.step as number);
      curve.train_acc.push(rec.train_acc as number);
      curve.val_acc.push(rec.val_acc);
      curve.loss.push(rec.loss as number);
      await chart?.update(rerunFigure(curve, opts.weightDecay, `grokking rerun, weight decay ${opts.weightDecay} (step ${rec.step})`));
    },
  };
  const r = await grokRun(ctx, modularData(ctx), "rerun", true, steps, -1);
  await chart?.update(rerunFigure(r.curve, opts.weightDecay));
  await chart?.close();
  return {
    weightDecay: opts.weightDecay,
    steps: r.steps,
    train_acc: r.train_acc,
    val_acc: r.val_acc,
    seconds: r.seconds,
    memorized: r.report.memorizationStep ?? null,
    generalized: r.report.generalizationStep ?? null,
    curve: r.curve,
  };
}

/** The phase's own grokking figure from its result metrics (for comparing with a rerun). */
export { grokkingFigure };
