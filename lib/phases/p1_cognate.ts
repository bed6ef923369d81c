/**
 * Phase 1, cognate pretraining: builds the three cognate variants at one parameter budget
 * (standard; + GatedLTM memory with a surprise gate; + refinement core with ACT halting),
 * pretrains each on the sanity mix (copy, reverse, sort, addition, parity, recall), plus a
 * text corpus when `corpus` names one, with warmup + cosine AdamW, clipping, optional
 * GrokFast and early stopping on converged validation loss. Reports each variant's losses,
 * parameters and answer accuracy, and how different the three came out: prediction
 * disagreement, symmetric KL and linear CKA of their final hidden states on held-out items.
 * Early stopping watches a validation split; everything reported and gated is measured on a
 * separate test split that no training decision saw.
 * Hands on all three models; `base_variant` names the one later phases fine-tune.
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { join } from "node:path";
import { DEFAULT_SANITY, loadTextCorpus, sanityItems } from "../../datasets/sanity.ts";
import { type Example, splitExamples } from "../../datasets/manager.ts";
import type { LmWindows } from "../../datasets/sanity.ts";
import { type Cognate, COGNATE_VARIANTS, type CognateVariant } from "../models/cognate.ts";
import { createModel, type RegistryModel } from "../models/registry.ts";
import { check, type PhaseContext, type PhaseOutput, type PhaseSpec } from "./spec.ts";
import type { PhaseResultFile } from "../util/run_dir.ts";
import type { StageContext } from "../eval/stage.ts";
import { ConvergenceDetector } from "../train/detectors.ts";
import { grokfastFromConfig } from "../train/grokfast.ts";
import { esc } from "../viz/report.ts";
import { deriveSeed } from "../util/rng.ts";
import { answerMetrics, majorityTokenAccuracy, unigramLoss } from "../eval/answers.ts";
import { cogmentFor, cognateFor, loggedLosses, loggedRecords, phaseTrainer, trainText } from "./common.ts";
import type { Cogment } from "../models/cogment.ts";
import { sectionOf } from "../config/config.ts";
import { generateGreedy } from "../text/generate.ts";
import { phase1ModelPath } from "../util/run_dir.ts";
import { round, tailMean } from "../util/numbers.ts";
import { saveModel } from "../models/io.ts";
import { type TextItem, windowsOf } from "../text/tokens.ts";

/** `phases.1`: the cognate pretraining section (type, defaults and validation). */
export const Phase1Section = z.strictObject({
  steps: z.number().int().min(0).default(220), // optimizer steps per variant; early stopping may end sooner (0: training.max_steps)
  batch_size: z.number().int().min(0).default(16), // windows per step (0: training.batch_size)
  seq_len: z.number().int().min(16).default(128), // tokens per window (sanity items are packed several to a window)
  lr: z.number().min(0).default(0.002), // peak learning rate (0: training.lr)
  items: z.number().int().min(20).default(8000), // sanity items generated before the split (train gets the rest after validation)
  val_fraction: z.number().gt(0).max(0.5).default(0.05), // fraction of items held out: half validation (early stopping), half test (reported and gated)
  max_size: z.number().int().min(2).max(26).default(8), // largest sanity problem size
  corpus: z.string().default(""), // plain-text corpus mixed into training ("" = none), e.g. ../shared/data/tinyshakespeare.txt
  corpus_ratio: z.number().min(0).default(0.5), // corpus windows per sanity window in the mix
  patience: z.number().int().min(0).default(4), // evaluations without improvement before early stopping (0 = off)
  min_delta: z.number().min(0).default(0.005), // smallest validation-loss improvement that counts
  base_variant: z.enum(COGNATE_VARIANTS).default("standard"), // which variant later phases start from
  reasoning_model: z.enum(["refinement", "cogment"]).default("refinement"), // the reasoning variant: the cognate with the ACT refinement core, or Cogment (depth ACT, slots, GatedLTM, refinement) at the same budget
  gate_loss_margin: z.number().default(0.5), // gate: every variant's test answer loss at least this far below the unigram loss (nats)
  gate_acc_margin: z.number().default(0.05), // gate: every variant's test answer-token accuracy above the majority token's by this much
});
export type Phase1Section = z.infer<typeof Phase1Section>;

/** The sanity items of a run, split by content hash (no prompt is in both splits). */
export function sanitySplit(s: StageContext): { train: TextItem[]; val: TextItem[]; test: TextItem[] } {
  const c = sectionOf(Phase1Section, s.phaseConfig, 1);
  const items: Example[] = sanityItems(c.items, { ...DEFAULT_SANITY, maxSize: c.max_size, seed: deriveSeed(s.seed, "sanity") })
    .map((it) => ({ dataset: "sanity", prompt: it.prompt, answer: it.answer }));
  // The held-out fraction is halved: validation for early stopping, test for what is reported (the training set is the same).
  const sp = splitExamples(items, { val: c.val_fraction / 2, test: c.val_fraction / 2 }, s.seed);
  return { train: sp.train, val: sp.val, test: sp.test };
}

/** Corpus chunks as answer-only items (the whole chunk is scored: plain language modelling). */
function corpusItems(text: string, seqLen: number, max: number): TextItem[] {
  const enc = new TextEncoder();
  const out: TextItem[] = [];
  const len = seqLen - 8;
  for (let i = 0; i + len <= text.length && out.length < max; i += len) {
    const chunk = text.slice(i, i + len);
    if (enc.encode(chunk).length <= seqLen - 1) out.push({ prompt: "", answer: chunk, task: "corpus" });
  }
  return out;
}

/** Linear CKA of two row-aligned feature matrices X [n, a], Y [n, b] (centred here). */
export function linearCka(x: Float32Array, a: number, y: Float32Array, b: number, n: number): number {
  const center = (m: Float32Array, d: number) => {
    const out = new Float64Array(n * d);
    for (let j = 0; j < d; j++) {
      let mu = 0;
      for (let i = 0; i < n; i++) mu += m[i * d + j];
      mu /= n;
      for (let i = 0; i < n; i++) out[i * d + j] = m[i * d + j] - mu;
    }
    return out;
  };
  const X = center(x, a), Y = center(y, b);
  const gramNorm2 = (P: Float64Array, p: number, Q: Float64Array, q: number) => { // ||P^T Q||_F^2
    let s = 0;
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < q; j++) {
        let d = 0;
        for (let k = 0; k < n; k++) d += P[k * p + i] * Q[k * q + j];
        s += d * d;
      }
    }
    return s;
  };
  return gramNorm2(Y, b, X, a) / Math.sqrt(gramNorm2(X, a, X, a) * gramNorm2(Y, b, Y, b));
}

/** Answer-position outputs of one model on held-out windows: log-probs [n, V] and hidden states [n, C]. */
async function answerOutputs(model: RegistryModel, w: LmWindows, maxRows: number) {
  const T = w.seqLen;
  const rows = Math.min(w.count, maxRows);
  const ids = tf.tensor2d(w.ids.subarray(0, rows * T), [rows, T], "int32");
  const at: number[] = [];
  for (let i = 0; i < rows * T; i++) if (w.mask[i] > 0) at.push(i);
  const [logp, hidden] = tf.tidy(() => {
    const out = (model as unknown as Cognate).forward(ids);
    const idx = tf.tensor1d(at, "int32");
    const lp = tf.logSoftmax(out.logits.reshape([rows * T, -1])); // [rows * T, V]
    return [tf.gather(lp, idx), tf.gather(out.hidden.reshape([rows * T, -1]), idx)]; // [n, V], [n, C]
  });
  const result = {
    logp: await logp.data() as Float32Array,
    hidden: await hidden.data() as Float32Array,
    n: logp.shape[0],
    V: logp.shape[1]!,
    C: hidden.shape[1]!,
  };
  tf.dispose([ids, logp, hidden]);
  return result;
}

/** Disagreement of argmax predictions and mean symmetric KL between two sets of log-probs [n, V]. */
export function predictionDiversity(p: Float32Array, q: Float32Array, n: number, V: number): { disagreement: number; sym_kl: number } {
  let differ = 0, kl = 0;
  for (let i = 0; i < n; i++) {
    let ap = 0, aq = 0;
    for (let v = 0; v < V; v++) {
      const lp = p[i * V + v], lq = q[i * V + v];
      if (lp > p[i * V + ap]) ap = v;
      if (lq > q[i * V + aq]) aq = v;
      kl += 0.5 * (Math.exp(lp) * (lp - lq) + Math.exp(lq) * (lq - lp));
    }
    if (ap !== aq) differ++;
  }
  return { disagreement: differ / n, sym_kl: kl / n };
}

async function run(ctx: PhaseContext): Promise<PhaseOutput> {
  const c = sectionOf(Phase1Section, ctx.phaseConfig, 1);
  // Early stopping watches `val`; what is reported and gated is `test`, which no decision saw.
  const { train: trainItems, val: valItems, test: testItems } = sanitySplit(ctx);
  let mix: TextItem[] = trainItems;
  let corpus: { path: string; windows: number } | undefined;
  if (c.corpus) {
    const text = await loadTextCorpus(c.corpus);
    const extra = corpusItems(text.train, c.seq_len, Math.ceil(trainItems.length * c.corpus_ratio));
    mix = [...trainItems, ...extra];
    corpus = { path: c.corpus, windows: extra.length };
  }
  const trainW = windowsOf(mix, c.seq_len);
  const valW = windowsOf(valItems, c.seq_len);
  const testW = windowsOf(testItems, c.seq_len);
  const baselines = {
    majority_token_acc: round(majorityTokenAccuracy(trainW, testW).accuracy),
    unigram_loss: round(unigramLoss(trainW, testW)),
  };
  const { train: cfg, batchSize } = phaseTrainer(ctx, c);

  const variants: Record<string, Record<string, unknown>> = {};
  const models = new Map<CognateVariant, RegistryModel>();
  for (const variant of COGNATE_VARIANTS) {
    const cogment = variant === "reasoning" && c.reasoning_model === "cogment";
    const config = cogment ? cogmentFor(ctx.config) : cognateFor(ctx.config, variant);
    const key = cogment ? "cogment" : `cognate-${variant}` as const;
    const model = createModel(key, config, deriveSeed(ctx.seed, `init-${variant}`));
    const detector = c.patience > 0
      ? new ConvergenceDetector({ patience: c.patience, minDelta: c.min_delta, window: 1, mode: "min" })
      : undefined;
    const res = await trainText(ctx, {
      name: variant,
      model,
      windows: trainW,
      train: cfg,
      batchSize,
      seed: deriveSeed(ctx.seed, "batches"),
      gradFilter: grokfastFromConfig(ctx.config.training.grokfast),
      evaluate: async () => {
        const m = await answerMetrics(model, valW);
        return { val_loss: m.loss, val_token_acc: m.token_acc };
      },
      shouldStop: (step, _loss, evals) => detector !== undefined && evals !== undefined && detector.update(step, evals.val_loss),
      // A resumed variant's detector sees the evaluations it logged up to the checkpoint, as the uninterrupted run's did.
      onResume: async (step) => {
        if (!detector) return;
        for (const r of await loggedRecords(ctx, variant)) {
          if (r.step <= step && typeof r.val_loss === "number") detector.update(r.step, r.val_loss);
        }
      },
    });
    const m = await answerMetrics(model, testW);
    await saveModel(join(ctx.runDir, phase1ModelPath(variant)), model, { key, config: { ...config } });
    const logged = await loggedLosses(ctx, variant);
    variants[variant] = {
      model: key,
      params: model.params.count(),
      layers: config.nLayers,
      mlp_ratio: round(config.mlpRatio, 3),
      steps: res.steps,
      stopped_early: res.stoppedEarly || (detector?.convergedAt !== undefined),
      train_loss: round(tailMean(logged)),
      test_loss: round(m.loss),
      test_token_acc: round(m.token_acc),
      test_exact: round(m.exact),
      seconds: round(res.seconds, 1),
      ...(cogment ? { cogment: await cogmentUse(model as unknown as Cogment, testW) } : {}),
    };
    models.set(variant, model);
  }

  // Diversity between the variants on the same held-out answer positions.
  const outs = new Map<CognateVariant, Awaited<ReturnType<typeof answerOutputs>>>();
  for (const [v, m] of models) outs.set(v, await answerOutputs(m, testW, 32));
  const diversity: { a: string; b: string; disagreement: number; sym_kl: number; cka: number }[] = [];
  for (let i = 0; i < COGNATE_VARIANTS.length; i++) {
    for (let j = i + 1; j < COGNATE_VARIANTS.length; j++) {
      const A = outs.get(COGNATE_VARIANTS[i])!, B = outs.get(COGNATE_VARIANTS[j])!;
      const d = predictionDiversity(A.logp, B.logp, A.n, A.V);
      diversity.push({
        a: COGNATE_VARIANTS[i],
        b: COGNATE_VARIANTS[j],
        disagreement: round(d.disagreement),
        sym_kl: round(d.sym_kl),
        cka: round(linearCka(A.hidden, A.C, B.hidden, B.C, A.n)),
      });
    }
  }
  const base = models.get(c.base_variant)!;
  const sample = testItems.slice(0, 6);
  const got = await generateGreedy(base, sample.map((s) => s.prompt), 24);
  for (const m of models.values()) m.dispose();
  return {
    metrics: {
      base_variant: c.base_variant,
      train_items: trainItems.length,
      val_items: valItems.length,
      test_items: testItems.length,
      train_windows: trainW.count,
      corpus: corpus ?? null,
      baselines,
      variants,
      diversity,
      samples: sample.map((s, i) => ({ prompt: s.prompt, expected: s.answer, got: got[i] })),
      [STAGE_METRIC]: (variants[c.base_variant] as { test_token_acc: number }).test_token_acc,
    },
    artifacts: COGNATE_VARIANTS.map(phase1ModelPath),
  };
}

/**
 * How a Cogment thinks and remembers on held-out windows (their first 32, answer positions):
 * mean applications of the shared block (depth ACT) and refinement steps, the short-term slots'
 * utilization (exp(entropy of mean slot attention) / slots) and the GatedLTM's write rate.
 */
export async function cogmentUse(model: Cogment, w: LmWindows): Promise<Record<string, number>> {
  const rows = Math.min(32, w.count), T = w.seqLen;
  const ids = tf.tensor2d(w.ids.subarray(0, rows * T), [rows, T], "int32");
  const mask = tf.tensor2d(w.mask.subarray(0, rows * T), [rows, T]);
  const parts = tf.tidy(() => {
    const out = model.forward(ids);
    const n = tf.sum(mask);
    const masked = (x: tf.Tensor2D) => tf.div(tf.sum(tf.mul(x, mask)), n);
    return [
      masked(out.halting.steps),
      out.refinement.positionSteps ? masked(out.refinement.positionSteps) : tf.scalar(out.refinement.steps),
      out.memory.slotUtilization,
      out.memory.ltmWriteRate,
    ];
  });
  const [depth, refine, slots, writes] = await Promise.all(parts.map((t) => t.data()));
  tf.dispose([ids, mask, ...parts]);
  return {
    depth_steps: round(depth[0], 3),
    refine_steps: round(refine[0], 3),
    slot_utilization: round(slots[0], 3),
    ltm_write_rate: round(writes[0], 3),
  };
}

/** The retention metric of this stage: the base variant's answer-token accuracy on held-out sanity items. */
const STAGE_METRIC = "sanity_token_acc";

function validate(out: PhaseOutput, ctx: PhaseContext) {
  const c = sectionOf(Phase1Section, ctx.phaseConfig, 1);
  const m = out.metrics as {
    baselines: { majority_token_acc: number; unigram_loss: number };
    variants: Record<string, { test_loss: number; test_token_acc: number }>;
  };
  const checks = [];
  for (const v of COGNATE_VARIANTS) {
    const r = m.variants[v];
    checks.push(check(`${v}: unigram_loss - test_loss`, round(m.baselines.unigram_loss - r.test_loss), c.gate_loss_margin));
    checks.push(
      check(`${v}: test_token_acc - majority_token_acc`, round(r.test_token_acc - m.baselines.majority_token_acc), c.gate_acc_margin),
    );
  }
  return checks;
}

function report(r: PhaseResultFile) {
  const m = r.metrics as {
    variants: Record<string, Record<string, unknown>>;
    diversity: { a: string; b: string; disagreement: number; sym_kl: number; cka: number }[];
    baselines: Record<string, number>;
    samples: { prompt: string; expected: string; got: string }[];
  };
  if (!m.variants) return [];
  const cols = ["params", "layers", "steps", "stopped_early", "train_loss", "test_loss", "test_token_acc", "test_exact", "seconds"];
  const rows = Object.entries(m.variants).map(([v, x]) =>
    `<tr><td>${esc(v)}</td>${cols.map((k) => `<td>${esc(x[k])}</td>`).join("")}</tr>`
  );
  const table = `<table><tr><th>variant</th>${cols.map((k) => `<th>${k}</th>`).join("")}</tr>${rows.join("")}</table>
<p>baselines on the same held-out items: majority token accuracy ${esc(m.baselines.majority_token_acc)}, unigram loss ${
    esc(m.baselines.unigram_loss)
  } nats</p>`;
  const div = `<table><tr><th>pair</th><th>disagreement</th><th>symmetric KL</th><th>linear CKA</th></tr>${
    m.diversity.map((d) => `<tr><td>${esc(d.a)} / ${esc(d.b)}</td><td>${d.disagreement}</td><td>${d.sym_kl}</td><td>${d.cka}</td></tr>`)
      .join("")
  }</table>`;
  const samples = `<table><tr><th>prompt</th><th>expected</th><th>greedy</th></tr>${
    m.samples.map((s) =>
      `<tr><td><code>${esc(s.prompt)}</code></td><td><code>${esc(s.expected)}</code></td><td><code>${esc(s.got)}</code></td></tr>`
    ).join("")
  }</table>`;
  return [
    { title: "Phase 1: cognate variants", html: table },
    { title: "Phase 1: diversity between the variants (held-out answer positions)", html: div },
    { title: "Phase 1: sample answers of the base variant", html: samples },
  ];
}

export const phase1: PhaseSpec = {
  id: 1,
  name: "cognate",
  title: "cognate pretraining: standard, memory (GatedLTM) and reasoning (refinement + ACT) variants at one budget",
  section: Phase1Section,
  presets: {
    // The documented configuration: pretraining runs training.max_steps at training.lr and training.batch_size.
    seed: { steps: 0, lr: 0, batch_size: 0 },
    tiny: { steps: 100, batch_size: 16, seq_len: 64, items: 3000, max_size: 5, gate_loss_margin: 0.3, gate_acc_margin: 0.02 },
  },

  run,
  validate,
  report,
  stage: {
    metric: STAGE_METRIC,
    replay: (s) => sanitySplit(s).train,
    seqLen: (s) => sectionOf(Phase1Section, s.phaseConfig, 1).seq_len,
    evaluate: async (model, s) => {
      const c = sectionOf(Phase1Section, s.phaseConfig, 1);
      const m = await answerMetrics(model, windowsOf(sanitySplit(s).test, c.seq_len));
      return { [STAGE_METRIC]: round(m.token_acc), sanity_exact: round(m.exact), sanity_loss: round(m.loss) };
    },
  },
};
