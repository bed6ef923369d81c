/**
 * Notebook 01's look at Cogment: how many times its shared block runs per token (depth ACT), how
 * many refinement steps each token gets, which short-term slots it reads, and where its GatedLTM
 * writes, on held-out sanity inputs.
 *
 * The model is phase 1's reasoning variant when the run trained it as Cogment
 * (`phases.1.reasoning_model = cogment`). Otherwise a Cogment at the same parameter budget is
 * trained here for `steps` steps on phase 1's training windows, so the mechanisms can be seen on
 * any run; the figures' titles say which of the two it is.
 */
import * as tf from "@tensorflow/tfjs";
import type { Cogment } from "../models/cogment.ts";
import { createModel } from "../models/registry.ts";
import { cogmentFor, phaseTrainer } from "../phases/common.ts";
import { sanitySplit } from "../phases/p1_cognate.ts";
import { stageContext } from "../eval/stage.ts";
import { windowBatches, windowsOf } from "../text/tokens.ts";
import { train } from "../train/trainer.ts";
import { phase1ModelPath } from "../util/run_dir.ts";
import { deriveSeed } from "../util/rng.ts";
import type { Figure } from "../viz/figures.ts";
import { showFigure, showHtml } from "../viz/notebook.ts";
import { esc } from "../viz/report.ts";
import {
  actFigure,
  type ActRow,
  heldOutSanity,
  inputIds,
  inputWindow,
  type LtmChunk,
  ltmFigure,
  openModel,
  phase1SeqLen,
  type RunLike,
  tokenLabel,
} from "./text.ts";

export interface CogmentTraceOptions {
  /** Inputs (default: `count` held-out sanity items, prompt + answer). */
  texts?: readonly string[];
  count?: number;
  /** Steps of the demonstration model when phase 1 trained no Cogment (default 150). */
  steps?: number;
}

export interface CogmentTrace {
  /** Where the model comes from, in a few words (the charts' titles carry it). */
  source: string;
  /** The same, with how to get the other model. */
  note: string;
  /** Per input: its tokens, depth-ACT steps and refinement steps per token. */
  depth: ActRow[];
  refine: ActRow[];
  /** Mean attention on each short-term slot over every token of every input. */
  slotUsage: number[];
  /** The first input's GatedLTM chunks (surprise; written where above the threshold). */
  ltm: LtmChunk[];
  threshold: number;
  chunkSize: number;
  figures: Figure[];
}

/** Phase 1's Cogment, or one trained here (see the module comment), with a line saying which. */
async function cogmentOf(
  run: RunLike,
  steps: number,
): Promise<{ model: Cogment; config: Record<string, unknown>; source: string; note: string }> {
  const { model, meta } = await openModel(run, phase1ModelPath("reasoning"), 1);
  if (meta.key === "cogment") {
    const source = "phase 1's reasoning variant";
    return { model: model as unknown as Cogment, config: meta.config, source, note: source };
  }
  model.dispose();
  const config = cogmentFor(run.config);
  const cog = createModel("cogment", config, deriveSeed(run.config.run.seed, "explore-cogment")) as unknown as Cogment;
  const seqLen = phase1SeqLen(run);
  const w = windowsOf(sanitySplit(stageContext(run.config, 1)).train, seqLen);
  const { train: cfg, batchSize } = phaseTrainer({ config: run.config, phase: 1 }, { steps, lr: 0.002, batch_size: 16 });
  const batch = windowBatches(w, batchSize, deriveSeed(run.config.run.seed, "explore-cogment-batches"));
  await train(
    {
      params: cog.params,
      batch: (step, micro) => batch(step, micro, cfg.gradAccum),
      loss: (b) => cog.loss(b.ids, b.targets, b.mask),
      tokensPerBatch: batchSize * seqLen,
    },
    cfg,
    { label: "explore cogment", quiet: true },
  );
  return {
    model: cog,
    config: { ...config },
    source: `a Cogment trained here for ${steps} steps`,
    note: `a Cogment trained here for ${steps} steps (phase 1's reasoning variant is the refinement cognate; ` +
      "set phases.1.reasoning_model=cogment to train Cogment in phase 1)",
  };
}

/** Runs Cogment on each input and reads its halting, slots and memory (see the module comment). */
export async function cogmentTrace(run: RunLike, o: CogmentTraceOptions = {}): Promise<CogmentTrace> {
  const texts = o.texts?.length ? [...o.texts] : heldOutSanity(run, o.count ?? 6).map((it) => it.prompt + it.answer);
  const { model, config, source, note } = await cogmentOf(run, o.steps ?? 150);
  try {
    const window = inputWindow(config, phase1SeqLen(run));
    const depth: ActRow[] = [], refine: ActRow[] = [];
    const S = model.cfg.memorySlots, usage = new Float64Array(S);
    let tokens = 0, ltm: LtmChunk[] = [];
    for (const [i, text] of texts.entries()) {
      const ids = inputIds(text, window);
      const x = tf.tensor2d([ids], [1, ids.length], "int32");
      const parts = tf.tidy(() => {
        const out = model.forward(x);
        const att = tf.sum(tf.reshape(out.memory.slotAttention, [-1, S]), 0); // [S]
        return [
          out.halting.steps,
          out.refinement.positionSteps ?? tf.fill([1, ids.length], out.refinement.steps),
          att,
          out.memory.ltmSurprise,
        ];
      });
      const [d, r, a, s] = await Promise.all(parts.map((t) => t.data()));
      tf.dispose([x, ...parts]);
      const labels = ids.map(tokenLabel);
      depth.push({ text, tokens: labels, steps: Array.from(d) });
      refine.push({ text, tokens: labels, steps: Array.from(r) });
      a.forEach((v, k) => (usage[k] += v));
      tokens += ids.length;
      if (i === 0) {
        const cs = model.cfg.memChunkSize, th = model.ltm.cfg.surpriseThreshold;
        ltm = Array.from(s, (v, c) => ({
          chunk: c,
          start: c * cs,
          end: Math.min(ids.length, (c + 1) * cs),
          text: labels.slice(c * cs, (c + 1) * cs).join(""),
          surprise: v,
          wrote: v > th,
          theta: NaN,
          alpha: NaN,
        }));
      }
    }
    const slotUsage = Array.from(usage, (u) => u / tokens);
    const threshold = model.ltm.cfg.surpriseThreshold, chunkSize = model.cfg.memChunkSize;
    const retitle = (f: Figure, title: string): Figure => ({
      ...f,
      layout: { ...f.layout, title: { text: `${title} (${source})` } },
    });
    const figures = [
      retitle(actFigure(depth, model.cfg.depthMaxSteps), "Cogment: applications of the shared block per token (depth ACT)"),
      retitle(actFigure(refine, model.cfg.maxRefinementSteps), "Cogment: refinement steps per token"),
      {
        data: [{ type: "bar", x: slotUsage.map((_, k) => `slot ${k}`), y: slotUsage, name: "mean attention" }],
        layout: {
          title: { text: `Cogment: short-term slot use, mean attention over ${tokens} tokens (${source})` },
          yaxis: { title: { text: "mean attention" }, range: [0, 1] },
        },
      },
      retitle(
        ltmFigure({ chunks: ltm, threshold, chunkSize, tokens: depth[0]?.tokens.length ?? 0 }),
        "Cogment: GatedLTM surprise per chunk, first input",
      ),
    ];
    return { source, note, depth, refine, slotUsage, ltm, threshold, chunkSize, figures };
  } finally {
    model.dispose();
  }
}

/** Shows `cogmentTrace`: where the model comes from, then its four charts. */
export async function showCogmentTrace(run: RunLike, o: CogmentTraceOptions = {}): Promise<void> {
  const t = await cogmentTrace(run, o);
  await showHtml(`<p>Model: ${esc(t.note)}.</p>`);
  for (const f of t.figures) await showFigure(f);
}
