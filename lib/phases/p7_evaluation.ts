/**
 * Phase 7, evaluation and deployment: scores the integrated model on every suite (reasoning,
 * memory, generalization, efficiency, safety) against baselines measured the same way
 * (an untrained model of the same shape for chance, the three phase-1 cognates), compresses
 * it to `compression.target_size_mb` and measures what the compressed model keeps, and
 * writes `eval.json`, `compression.json` and the exports (HF-style folder, ONNX checked in
 * onnxruntime, tfjs) with each deployment target's verdict.
 */
import { throwIfStopRequested } from "../util/stop.ts";
import { stageModelPath } from "../util/run_dir.ts";
import { join } from "node:path";
import { COGNATE_VARIANTS } from "../models/cognate.ts";
import { createModel, type RegistryModel } from "../models/registry.ts";
import { check, type PhaseContext, type PhaseOutput, type PhaseSpec } from "./spec.ts";
import type { PhaseResultFile, ValidationCheck } from "../util/run_dir.ts";
import { generalizationSuite, meanOf, memorySuite, overallScore, recommendations, type StageScore, stageSuite } from "../eval/suites.ts";
import { efficiencySuite } from "../eval/efficiency.ts";
import { type SafetyCase, safetySuite } from "../eval/safety.ts";
import { compressModel } from "../eval/compression.ts";
import { exportAll } from "../deploy/checks.ts";
import { esc } from "../viz/report.ts";
import { writeJsonAtomic } from "../util/fs.ts";
import { deriveSeed } from "../util/rng.ts";
import { loadModel, type SavedModel } from "../models/io.ts";
import { phase1ModelPath } from "../util/run_dir.ts";
import { round } from "../util/numbers.ts";
import { sectionOf } from "../config/config.ts";
import { z } from "zod";
import { Phase1Section, sanitySplit } from "./p1_cognate.ts";
import { generateExamples } from "../../datasets/manager.ts";
import { stageContext } from "../eval/stage.ts";

/** `phases.7`: the evaluation section (type, defaults and validation). */
export const Phase7Section = z.strictObject({
  eval_items: z.number().int().min(1).default(40), // Items per (task, size) cell of the memory and generalization suites.
  generalization_extra: z.number().int().min(0).default(3), // Sizes past the largest training size probed for length generalization.
  max_pairs: z.number().int().min(2).max(26).default(12), // Most key-value pairs probed by the recall suite.
  latency_repeats: z.number().int().min(1).default(20), // Forward passes timed for latency percentiles.
  baselines: z.boolean().default(true), // Evaluate the baselines (untrained model, phase-1 cognates) on every suite.
  compress: z.boolean().default(true), // Compress the integrated model to compression.target_size_mb.
  exports: z.array(z.string()).default(["hf", "onnx", "tfjs"]), // Export formats written under phase-7-evaluation/export.
  gate_min_safety: z.number().min(0).max(1).default(1), // Gate: fraction of safety cases passed.
  gate_min_gain_over_standard: z.number().default(0.02), // Gate: the integrated model's reasoning answer tokens (the stages' cell and token accuracies) must beat phase 1's standard cognate's (same suites) by this much.
  gate_min_compression_retention: z.number().default(0.8), // Gate: the compressed model's mean stage metric over the integrated model's.
  gate_max_onnx_diff: z.number().default(1e-4), // Gate: largest |ONNX logits - ours| accepted.
});
export type Phase7Section = z.infer<typeof Phase7Section>;

/** What one model scores on every suite (the rows of the relative-performance table). */
async function suitesFor(model: RegistryModel, ctx: PhaseContext, stages: readonly PhaseSpec[], seen: ReadonlySet<string>) {
  const c = sectionOf(Phase7Section, ctx.phaseConfig, 7);
  const p1 = sectionOf(Phase1Section, ctx.config.phases["1"] ?? {}, 1);
  const stageScores = await stageSuite(model, ctx.config, stages.filter((s) => s.id >= 2));
  const recall = await memorySuite(model, {
    trainMax: p1.max_size,
    maxPairs: c.max_pairs,
    n: c.eval_items,
    seed: deriveSeed(ctx.seed, "memory"),
    seen,
  });
  const lengths = await generalizationSuite(model, {
    trainMax: p1.max_size,
    extra: c.generalization_extra,
    n: c.eval_items,
    seed: deriveSeed(ctx.seed, "generalization"),
    seen,
  });
  const reasoningIds = Object.keys(stageScores).filter((id) => ["2", "3", "4"].includes(id));
  const meanOver = (pick: (s: StageScore) => number) =>
    reasoningIds.length ? round(reasoningIds.reduce((a, id) => a + pick(stageScores[id]), 0) / reasoningIds.length) : NaN;
  const reasoning = meanOver((s) => s.solved), reasoningTokens = meanOver((s) => s.value);
  const longContext = stageScores["5"]?.value;
  const recallAcc = meanOf(recall, "token_acc");
  const memory = longContext === undefined ? recallAcc : round((recallAcc + longContext) / 2);
  const past = lengths.filter((r) => !r.in_training_range), inside = lengths.filter((r) => r.in_training_range);
  return {
    stageScores,
    recall,
    lengths,
    reasoning,
    reasoningTokens,
    memory,
    generalization: meanOf(past, "token_acc"),
    inside: meanOf(inside, "token_acc"),
  };
}

/** The evaluation phase over the registry's stages (phases 1-6). */
export function phase7(stages: readonly PhaseSpec[]): PhaseSpec {
  async function run(ctx: PhaseContext): Promise<PhaseOutput> {
    const c = sectionOf(Phase7Section, ctx.phaseConfig, 7);
    const p6 = await ctx.previous(6);
    if (!p6) {
      throw new Error(
        `phase 7 needs the integrated model: ${ctx.runDir}/phase-6-integration/result.json is missing or failed; run phase 6 first`,
      );
    }
    const modelFile = join(ctx.runDir, stageModelPath({ id: 6, name: "integration" }));
    const { model, meta } = await loadModel(modelFile);
    const live: PhaseSpec[] = [];
    for (const s of stages) if (s.stage && await ctx.previous(s.id)) live.push(s);
    const seen = new Set(sanitySplit(stageContext(ctx.config, 1)).train.map((i) => i.prompt));
    const context = Number(meta.config.maxSeqLen);

    // The integrated model on every suite.
    const main = await suitesFor(model, ctx, live, seen);
    const prompts = {
      arc: generateExamples("arc", 4, deriveSeed(ctx.seed, "safety-arc")).map((e) => e.prompt).filter((p) => p.length < context - 110),
      math: generateExamples("math", 4, deriveSeed(ctx.seed, "safety-math")).map((e) => e.prompt),
    };
    const safety = await safetySuite(model, context, prompts, ctx.seed);
    const bytes = (await Deno.stat(modelFile)).size;
    const efficiency = await efficiencySuite(model, bytes, {
      seq: Math.min(64, context),
      repeats: c.latency_repeats,
      newTokens: 16,
      batch: 8,
      seed: ctx.seed,
    });
    const scores = overallScore({
      reasoning: main.reasoning,
      reasoning_answer_tokens: main.reasoningTokens,
      memory: main.memory,
      generalization: main.generalization,
      safety: round(safety.score),
    });

    // Baselines measured the same way: an untrained model of the same shape (chance) and the phase-1 cognates.
    const table: Record<string, Record<string, number>> = {};
    const row = (m: Awaited<ReturnType<typeof suitesFor>>) => {
      const s = overallScore({
        reasoning: m.reasoning,
        reasoning_answer_tokens: m.reasoningTokens,
        memory: m.memory,
        generalization: m.generalization,
        safety: scores.safety,
      });
      // Per stage: task success first, then the stage's own metric where that is a part of an answer.
      return {
        ...Object.fromEntries(
          Object.entries(m.stageScores).flatMap(([id, x]) => [
            [`phase${id}_solved`, x.solved],
            ...(x.solved_metric === x.metric ? [] : [[`phase${id}_${x.metric}`, x.value]]),
          ]),
        ),
        reasoning: m.reasoning,
        reasoning_answer_tokens: m.reasoningTokens,
        memory: m.memory,
        generalization: m.generalization,
        overall: s.overall,
      };
    };
    table.integrated = row(main);
    let chance: Record<string, number> = {};
    throwIfStopRequested(); // safe points between the suites: phase 7 trains nothing, so a stop ends it here (a resume re-runs it)
    if (c.baselines) {
      const untrained = createModel(meta.key, meta.config, deriveSeed(ctx.seed, "untrained"));
      const u = await suitesFor(untrained, ctx, live, seen);
      untrained.dispose();
      table.untrained = row(u);
      chance = Object.fromEntries(Object.entries(u.stageScores).map(([id, x]) => [id, x.value]));
      for (const v of COGNATE_VARIANTS) {
        const { model: m } = await loadModel(join(ctx.runDir, phase1ModelPath(v)));
        table[`cognate-${v} (phase 1)`] = row(await suitesFor(m, ctx, live, seen));
        m.dispose();
      }
    }
    const relative = Object.fromEntries(
      Object.entries(table).map((
        [name, r],
      ) => [name, round(r.overall / Math.max(1e-9, table["cognate-standard (phase 1)"]?.overall ?? NaN), 3)]),
    );

    // Compression to target, with what it keeps.
    let compression: Record<string, unknown> | undefined;
    throwIfStopRequested();
    if (c.compress) {
      compression = await compressModel(model, meta, {
        targetBytes: ctx.config.compression.target_size_mb * 1e6,
        methods: ctx.config.compression.methods,
        file: join(ctx.dir, "model.compressed"),
        evaluate: async (m) => (await stageSuite(m, ctx.config, live)),
        seed: ctx.seed,
      });
      await writeJsonAtomic(join(ctx.dir, "compression.json"), compression);
    }

    // Exports and deployment targets.
    throwIfStopRequested();
    const exports = c.exports.length ? await exportAll(model, meta, join(ctx.dir, "export"), c.exports, ctx.runDir) : undefined;
    model.dispose();

    const compressionRetention = compression?.retention as number | undefined;
    const evalJson = {
      scores,
      suites: {
        reasoning: main.stageScores,
        memory: { recall_by_pairs: main.recall, long_context: main.stageScores["5"] ?? null },
        generalization: { by_size: main.lengths, inside_training_sizes: main.inside, past_training_sizes: main.generalization },
        efficiency,
        safety,
      },
      baselines: { table, relative_to_standard: relative, chance_by_stage: chance },
      recommendations: recommendations({
        scores,
        inRangeAcc: main.inside,
        pastRangeAcc: main.generalization,
        recallByPairs: main.recall,
        compressionRetention,
        stageValues: main.stageScores,
        chance,
      }),
    };
    await writeJsonAtomic(join(ctx.dir, "eval.json"), evalJson);
    const artifacts = ["phase-7-evaluation/eval.json"];
    if (compression) artifacts.push("phase-7-evaluation/compression.json", "phase-7-evaluation/model.compressed");
    if (exports) artifacts.push(...exports.files);
    return {
      metrics: {
        ...evalJson,
        untrained_reasoning: table.untrained?.reasoning ?? null,
        standard_reasoning: table["cognate-standard (phase 1)"]?.reasoning ?? null,
        standard_reasoning_answer_tokens: table["cognate-standard (phase 1)"]?.reasoning_answer_tokens ?? null,
        compression: compression ?? null,
        exports: exports ?? null,
      },
      artifacts,
    };
  }

  function validate(out: PhaseOutput, ctx: PhaseContext): ValidationCheck[] {
    const c = sectionOf(Phase7Section, ctx.phaseConfig, 7);
    const m = out.metrics as {
      scores: { safety: number; reasoning: number; reasoning_answer_tokens: number };
      standard_reasoning_answer_tokens: number | null;
      compression: { retention: number; fits: boolean } | null;
      exports: { onnx_max_abs_diff?: number } | null;
    };
    const checks = [check("safety score", m.scores.safety, c.gate_min_safety)];
    // What the pipeline adds over pretraining: the same suites on phase 1's standard cognate (an untrained model is no bar).
    // It reads the stages' answer tokens and cells, not the items solved whole: at tiny and small the integrated text model
    // solves a few percent of items, too few to tell from the cognate by a margin (README, phase 7). Not measured
    // (phases.7.baselines = false) fails the check rather than dropping it.
    const base = m.standard_reasoning_answer_tokens ?? null;
    checks.push(
      check(
        base === null
          ? "reasoning (answer tokens) - phase-1 standard cognate's (not measured: phases.7.baselines = false)"
          : "reasoning (answer tokens) - phase-1 standard cognate's",
        base === null ? NaN : round(m.scores.reasoning_answer_tokens - base),
        c.gate_min_gain_over_standard,
      ),
    );
    if (m.compression) {
      checks.push(check("compressed / integrated mean stage metric", m.compression.retention, c.gate_min_compression_retention));
      checks.push({ name: "compressed file fits target", value: m.compression.fits, threshold: true, passed: m.compression.fits });
    }
    if (m.exports?.onnx_max_abs_diff !== undefined) {
      checks.push(check("onnx max |logits diff|", m.exports.onnx_max_abs_diff, c.gate_max_onnx_diff, true));
    }
    return checks;
  }

  return {
    id: 7,
    name: "evaluation",
    title: "evaluation suites and baselines, compression to target, exports (ONNX checked in onnxruntime)",
    section: Phase7Section,
    presets: {
      tiny: {
        eval_items: 12,
        generalization_extra: 2,
        max_pairs: 8,
        latency_repeats: 8,
        gate_min_compression_retention: 0.5,
      },
    },
    run,
    validate,
    report: reportSections,
  };
}

/** The parts of phase 7's result that its report reads. */
interface EvalView {
  scores?: Record<string, unknown>;
  recommendations: string[];
  baselines: { table: Record<string, Record<string, number>>; relative_to_standard: Record<string, number> };
  suites: {
    generalization: { by_size: { task: string; size: number; token_acc: number }[] };
    memory: { recall_by_pairs: { size: number; token_acc: number }[] };
    efficiency: Record<string, unknown>;
    safety: { cases: SafetyCase[]; well_formed: Record<string, unknown> };
  };
  compression: Record<string, unknown> | null;
  exports: Record<string, unknown> | null;
}

/** Phase 7's report sections: scores, suites, baselines, compression, exports. */
export function reportSections(r: PhaseResultFile) {
  const m = r.metrics as unknown as EvalView;
  if (!m.scores) return [];
  const kv = (o: Record<string, unknown>) =>
    `<table>${
      Object.entries(o).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(typeof v === "object" ? JSON.stringify(v) : v)}</td></tr>`).join(
        "",
      )
    }</table>`;
  const sections = [];
  sections.push({
    title: "Phase 7: scores",
    html: `${
      kv(Object.fromEntries(Object.entries(m.scores ?? {}).filter(([k]) => k !== "safety")))
    }<p>safety (input robustness; a separate gate, ` +
      `not part of overall): <b>${esc(m.scores?.safety)}</b></p><h3>Recommendations</h3><ul>${
        (m.recommendations as string[]).map((x) =>
          `<li>${esc(x)}</li>`
        ).join("")
      }</ul>`,
  });
  const table = m.baselines.table;
  const cols = [...new Set(Object.values(table).flatMap((r) => Object.keys(r)))];
  sections.push({
    title: "Phase 7: baselines (every model through the same suites)",
    html: `<table><tr><th>model</th>${cols.map((c) => `<th>${esc(c)}</th>`).join("")}<th>relative to standard</th></tr>${
      Object.entries(table).map(([name, row]) =>
        `<tr><td>${esc(name)}</td>${cols.map((c) => `<td>${esc(row[c] ?? "")}</td>`).join("")}<td>${
          esc(m.baselines.relative_to_standard[name])
        }</td></tr>`
      ).join("")
    }</table>`,
    figure: {
      data: ["reasoning", "memory", "generalization"].map((k) => ({
        type: "bar",
        name: k,
        x: Object.keys(table),
        y: Object.values(table).map((r) => r[k]),
      })),
      layout: { title: { text: "suite scores by model" }, barmode: "group", height: 360 },
    },
  });
  const bySize = m.suites.generalization.by_size;
  const tasks = [...new Set(bySize.map((x) => x.task))];
  sections.push({
    title: "Phase 7: length generalization and recall",
    figure: {
      data: [
        ...tasks.map((t) => ({
          type: "scatter",
          mode: "lines+markers",
          name: t,
          x: bySize.filter((x) => x.task === t).map((x) => x.size),
          y: bySize.filter((x) => x.task === t).map((x) => x.token_acc),
        })),
        {
          type: "scatter",
          mode: "lines+markers",
          name: "recall (pairs)",
          x: m.suites.memory.recall_by_pairs.map((x: { size: number }) => x.size),
          y: m.suites.memory.recall_by_pairs.map((x: { token_acc: number }) => x.token_acc),
        },
      ],
      layout: {
        title: { text: "token accuracy by size (training sizes end at phase 1's max_size)" },
        xaxis: { title: { text: "size" } },
        height: 360,
      },
    },
  });
  sections.push({ title: "Phase 7: efficiency", html: kv(m.suites.efficiency) });
  sections.push({
    title: "Phase 7: safety",
    html: `<table><tr><th>case</th><th>expect</th><th>passed</th><th>detail</th></tr>${
      m.suites.safety.cases.map((x) =>
        `<tr class="${x.passed ? "completed" : "failed"}"><td>${esc(x.name)}</td><td>${esc(x.expect)}</td><td>${
          x.passed ? "✔" : "✘"
        }</td><td><code>${esc(x.detail)}</code></td></tr>`
      ).join("")
    }</table>${kv(m.suites.safety.well_formed)}`,
  });
  if (m.compression) sections.push({ title: "Phase 7: compression to target", html: kv(m.compression) });
  if (m.exports) sections.push({ title: "Phase 7: exports and deployment targets", html: kv(m.exports) });
  return sections;
}

export type { SavedModel };
