/**
 * Phase 6, integration: fuses the stage specialists into one model and shows what it kept.
 *
 * 1. Merge: every specialist with the base model's architecture (phases 2-5 fine-tune phase
 *    1's base; phase 3's puzzle model is the reasoning cognate and joins through replay only)
 *    is folded in by task arithmetic, theta = theta_base + scale * sum_i (theta_i - theta_base);
 *    scale 1/k is the plain average of the k specialists. The merged model keeps the longest
 *    context any of them was trained for (phase 5's position interpolation).
 * 2. Joint fine-tuning with replay: the merged model trains on a mix of every stage's own
 *    training items (phase 1's sanity tasks included), so no stage is forgotten.
 * 3. Retention: each stage's metric for its specialist (from that phase's result.json), the
 *    base model, the merged model and the integrated one; retention = integrated / specialist.
 */
import { MODEL_FILE, stageModelPath } from "../util/run_dir.ts";
import { join } from "node:path";
import type { HostTensor } from "../nn/params.ts";
import { createModel, type RegistryModel } from "../models/registry.ts";
import { check, type PhaseContext, type PhaseOutput, type PhaseSpec } from "./spec.ts";
import type { PhaseResultFile, ValidationCheck } from "../util/run_dir.ts";
import { stageContext } from "../eval/stage.ts";
import { esc, type PageSection } from "../viz/report.ts";
import { heatmap } from "../viz/figures.ts";
import { breedRecipe, validationFitness } from "../evolve/breed.ts";
import { applyRecipe, parameterGroups } from "../evolve/merge.ts";
import { deriveSeed, Rng } from "../util/rng.ts";
import { loadBase, loggedLosses, phaseTrainer, trainText } from "./common.ts";
import { sectionOf } from "../config/config.ts";
import { z } from "zod";
import { loadModel, type SavedModel, saveModel } from "../models/io.ts";
import { round, tailMean } from "../util/numbers.ts";
import { type TextItem, windowsOf } from "../text/tokens.ts";

/** `phases.6`: the integration section (type, defaults and validation). */
export const Phase6Section = z.strictObject({
  steps: z.number().int().min(0).default(300), // Joint fine-tuning steps on the replay mix (0: the run's training.max_steps).
  batch_size: z.number().int().min(0).default(16), // Windows per step (0: the run's training.batch_size).
  lr: z.number().min(0).default(0.001), // Peak learning rate (0: the run's training.lr).
  replay_per_stage: z.number().int().min(1).default(1500), // Most training items replayed from each stage.
  merge: z.enum(["task_arithmetic", "evolved", "none"]).default("task_arithmetic"), // `task_arithmetic` merges the specialists into the base; `evolved` breeds a recipe first (lib/evolve/, evolve_*); `none` starts joint fine-tuning from the base.
  merge_scale: z.number().min(0).default(0), // Task-arithmetic scale (0: 1 / number of merged specialists, the plain average).
  evolve_method: z.enum(["task_arithmetic", "ties", "dare"]).default("ties"), // merge = evolved: the method whose per-layer coefficients CMA-ES searches.
  evolve_generations: z.number().int().min(1).default(6), // merge = evolved: CMA-ES generations (each scores every candidate on the stages' validation contexts).
  evolve_popsize: z.number().int().min(0).default(0), // merge = evolved: candidates per generation (0: CMA-ES's 4 + 3 ln n).
  evolve_density: z.number().gt(0).max(1).default(0.5), // merge = evolved: TIES / DARE density (fraction of each task vector kept).
  gate_min_retention: z.number().min(0).default(0.6), // Gate: mean retention (integrated / specialist) over the stages must reach this.
  gate_min_gain: z.number().default(0.02), // Gate: the integrated model's mean stage metric must beat the base model's by this much.
});
export type Phase6Section = z.infer<typeof Phase6Section>;

/** Task arithmetic over host tensors: base + scale * sum_i (t_i - base), per parameter. */
export function taskArithmetic(base: Map<string, HostTensor>, others: Map<string, HostTensor>[], scale: number): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, b] of base) {
    const data = new Float32Array(b.data);
    for (const o of others) {
      const t = o.get(name);
      if (!t || t.data.length !== b.data.length) throw new Error(`taskArithmetic: parameter '${name}' is missing or differs in shape`);
      for (let i = 0; i < data.length; i++) data[i] += scale * (t.data[i] - b.data[i]);
    }
    out.set(name, { shape: b.shape.slice(), data });
  }
  return out;
}

/** True when two parameter sets have the same names and shapes. */
function sameShapes(a: Map<string, HostTensor>, b: Map<string, HostTensor>): boolean {
  if (a.size !== b.size) return false;
  for (const [n, t] of a) {
    const u = b.get(n);
    if (!u || u.shape.length !== t.shape.length || u.shape.some((d, i) => d !== t.shape[i])) return false;
  }
  return true;
}

/** What phase 6 merges: the base model and the specialists that share its architecture. */
export interface MergeInputs {
  base: RegistryModel;
  baseMeta: SavedModel;
  baseHost: Map<string, HostTensor>;
  specialists: { phase: number; tensors: Map<string, HostTensor>; meta: SavedModel }[];
  /** Stages without a mergeable model, and why (they join through replay only). */
  skipped: { phase: number; why: string }[];
  /** The merged model's key and config: the base's key, the longest context of any specialist. */
  mergedMeta: SavedModel;
}

/** A stage model that might be merged: its phase and its file relative to the run directory, or why there is none. */
export type MergeCandidate = { phase: number; file: string } | { phase: number; missing: string };

/**
 * Loads every candidate that shares `base`'s architecture (registry key and parameter shapes) to
 * the host; the others are skipped with the reason. Also the merged model's key and config: the
 * base's key with the longest context of any specialist.
 */
export async function loadSpecialists(
  runDir: string,
  baseMeta: SavedModel,
  baseHost: Map<string, HostTensor>,
  candidates: readonly MergeCandidate[],
): Promise<Pick<MergeInputs, "specialists" | "skipped" | "mergedMeta">> {
  const specialists: MergeInputs["specialists"] = [];
  const skipped: MergeInputs["skipped"] = [];
  for (const c of candidates) {
    if ("missing" in c) {
      skipped.push({ phase: c.phase, why: c.missing });
      continue;
    }
    const { model, meta } = await loadModel(join(runDir, c.file));
    const tensors = await model.params.toHost();
    model.dispose();
    if (meta.key !== baseMeta.key || !sameShapes(tensors, baseHost)) {
      skipped.push({ phase: c.phase, why: `${meta.key} differs from the base ${baseMeta.key}: joins through replay only` });
      continue;
    }
    specialists.push({ phase: c.phase, tensors, meta });
  }
  const longest = specialists.reduce(
    (a, s) => ((s.meta.config.maxSeqLen as number) > (a.config.maxSeqLen as number) ? s.meta : a),
    baseMeta,
  );
  return { specialists, skipped, mergedMeta: { key: baseMeta.key, config: { ...longest.config } } };
}

/**
 * Loads the base (phase 1's `base_variant`) and every completed stage's model of `runDir` that
 * shares the base's architecture (`results`: the stages' result.json, by phase id, phase 1 excluded).
 * The caller disposes `base`.
 */
export async function mergeInputs(
  ctx: Pick<PhaseContext, "previous" | "phase" | "runDir">,
  results: Map<number, PhaseResultFile>,
): Promise<MergeInputs> {
  const { model: base, meta: baseMeta } = await loadBase(ctx);
  const baseHost = await base.params.toHost();
  const candidates = [...results].filter(([id]) => id !== 1).sort((a, b) => a[0] - b[0]).map(([phase, r]): MergeCandidate => {
    const file = r.artifacts.find((a) => a.endsWith(MODEL_FILE));
    return file ? { phase, file } : { phase, missing: "no model.safetensors among its artifacts" };
  });
  return { base, baseMeta, baseHost, ...(await loadSpecialists(ctx.runDir, baseMeta, baseHost, candidates)) };
}

interface StageRow {
  phase: number;
  name: string;
  metric: string;
  specialist: number;
  base: number;
  merged: number;
  integrated: number;
  retention: number;
}

/** The integration phase over the stages of `stages` (the registry's phases 1-5). */
export function phase6(stages: readonly PhaseSpec[]): PhaseSpec {
  async function evaluateAll(model: RegistryModel, ctx: PhaseContext, live: PhaseSpec[]): Promise<Map<number, Record<string, number>>> {
    const out = new Map<number, Record<string, number>>();
    for (const p of live) out.set(p.id, await p.stage!.evaluate(model, stageContext(ctx.config, p.id)));
    return out;
  }

  async function run(ctx: PhaseContext): Promise<PhaseOutput> {
    const c = sectionOf(Phase6Section, ctx.phaseConfig, 6);
    // Stages that completed in this run, with their specialists' metrics.
    const live: PhaseSpec[] = [];
    const results = new Map<number, PhaseResultFile>();
    for (const p of stages) {
      const r = p.stage ? await ctx.previous(p.id) : undefined;
      if (r) {
        live.push(p);
        results.set(p.id, r);
      }
    }
    if (!live.some((p) => p.id === 1)) throw new Error("phase 6 needs phase 1 completed in this run (its base model and sanity stage)");

    // 1. Merge the specialists that share the base architecture.
    const { base, baseHost, specialists, skipped, mergedMeta } = await mergeInputs(ctx, results);
    const scale = c.merge_scale > 0 ? c.merge_scale : 1 / Math.max(1, specialists.length);
    let mergedTensors = c.merge === "none" ? baseHost : taskArithmetic(baseHost, specialists.map((s) => s.tensors), scale);
    let evolve: Record<string, unknown> | undefined;
    if (c.merge === "evolved" && specialists.length) {
      // Breed a recipe on the stages' validation contexts (not the held-out sets scored below).
      const groups = parameterGroups(baseHost.keys());
      const fitness = validationFitness(mergedMeta, live, ctx.config);
      const r = await breedRecipe(baseHost, specialists.map((s) => s.tensors), groups, fitness, {
        method: c.evolve_method,
        generations: c.evolve_generations,
        popsize: c.evolve_popsize || undefined,
        density: c.evolve_density,
        seed: deriveSeed(ctx.seed, "evolve"),
        onGeneration: (g) =>
          ctx.log({ model: "evolve", step: g.generation, fitness_best: g.best, fitness_mean: g.mean, fitness_best_ever: g.bestEver }),
      });
      mergedTensors = applyRecipe(baseHost, specialists.map((s) => s.tensors), r.best.recipe);
      evolve = {
        method: r.method,
        groups,
        specialists: specialists.map((s) => s.phase),
        evaluations: r.evaluations,
        start_fitness: round(r.start.fitness),
        best_fitness: round(r.best.fitness),
        coefficients: r.best.recipe.weights.map((row) => row.map((w) => round(w))),
        density: r.best.recipe.density,
        history: r.history.map((h) => ({
          generation: h.generation,
          best: round(h.best),
          mean: round(h.mean),
          best_ever: round(h.bestEver),
        })),
      };
    }
    const model = createModel(mergedMeta.key, mergedMeta.config, 0);
    model.params.load(mergedTensors, { source: "merged specialists" });

    // Stage metrics before joint fine-tuning: the base (it has seen no stage) and the merge.
    const baseScores = await evaluateAll(base, ctx, live);
    base.dispose();
    const mergedScores = await evaluateAll(model, ctx, live);

    // 2. Joint fine-tuning on every stage's replay, windows as long as the longest stage needs.
    const rng = new Rng(deriveSeed(ctx.seed, "replay"));
    const mix: TextItem[] = [];
    const replayCounts: Record<string, number> = {};
    let seqLen = 16;
    for (const p of live) {
      const s = stageContext(ctx.config, p.id);
      const items = p.stage!.replay(s);
      const perm = rng.permutation(items.length);
      const take = Math.min(items.length, c.replay_per_stage);
      for (let i = 0; i < take; i++) mix.push({ ...items[perm[i]], task: `phase ${p.id}` });
      replayCounts[String(p.id)] = take;
      seqLen = Math.max(seqLen, p.stage!.seqLen(s));
    }
    const order = rng.permutation(mix.length);
    const windows = windowsOf(Array.from(order, (i) => mix[i]), seqLen);
    const { train: cfg, batchSize } = phaseTrainer(ctx, c);
    const res = await trainText(ctx, {
      name: "integrated",
      model,
      windows,
      train: cfg,
      batchSize,
      seed: deriveSeed(ctx.seed, "batches"),
    });
    const finalScores = await evaluateAll(model, ctx, live);
    await saveModel(join(ctx.dir, MODEL_FILE), model, mergedMeta);
    model.dispose();

    // 3. Retention table.
    const rows: StageRow[] = live.map((p) => {
      const metric = p.stage!.metric;
      const specialist = Number(results.get(p.id)!.metrics[metric]);
      const integrated = finalScores.get(p.id)![metric];
      return {
        phase: p.id,
        name: p.name,
        metric,
        specialist: round(specialist),
        base: round(baseScores.get(p.id)![metric]),
        merged: round(mergedScores.get(p.id)![metric]),
        integrated: round(integrated),
        retention: round(specialist > 0 ? integrated / specialist : integrated > 0 ? 1 : 0),
      };
    });
    const mean = (k: keyof StageRow) => round(rows.reduce((a, r) => a + (r[k] as number), 0) / rows.length);
    return {
      metrics: {
        merged_phases: specialists.map((s) => s.phase),
        skipped,
        merge: c.merge,
        merge_scale: round(scale),
        ...(evolve ? { evolve } : {}),
        seq_len: seqLen,
        replay: replayCounts,
        windows: windows.count,
        steps: res.steps,
        final_loss: round(tailMean(await loggedLosses(ctx, "integrated"))),
        retention: rows,
        mean_retention: mean("retention"),
        mean_base: mean("base"),
        mean_merged: mean("merged"),
        mean_integrated: mean("integrated"),
        stage_details: Object.fromEntries([...finalScores].map(([id, s]) => [String(id), s])),
      },
      artifacts: [stageModelPath({ id: 6, name: "integration" })],
    };
  }

  function validate(out: PhaseOutput, ctx: PhaseContext): ValidationCheck[] {
    const c = sectionOf(Phase6Section, ctx.phaseConfig, 6);
    const m = out.metrics as { mean_retention: number; mean_integrated: number; mean_base: number };
    return [
      check("mean_retention", m.mean_retention, c.gate_min_retention),
      check("mean_integrated - mean_base", round(m.mean_integrated - m.mean_base), c.gate_min_gain),
    ];
  }

  function report(r: PhaseResultFile) {
    const rows = r.metrics.retention as StageRow[] | undefined;
    if (!rows) return [];
    const html =
      `<table><tr><th>phase</th><th>metric</th><th>specialist (before)</th><th>base model</th><th>merged</th><th>integrated (after)</th><th>retention</th></tr>${
        rows.map((x) =>
          `<tr><td>${x.phase} ${esc(x.name)}</td><td>${
            esc(x.metric)
          }</td><td>${x.specialist}</td><td>${x.base}</td><td>${x.merged}</td><td><b>${x.integrated}</b></td><td>${x.retention}</td></tr>`
        ).join("")
      }</table><p>merged phases: ${esc(JSON.stringify(r.metrics.merged_phases))}; replay only: ${
        esc((r.metrics.skipped as { phase: number }[]).map((s) => s.phase).join(", ") || "none")
      }; mean retention ${esc(r.metrics.mean_retention)}</p>`;
    const figure = {
      data: (["specialist", "base", "merged", "integrated"] as const).map((k) => ({
        type: "bar",
        name: k,
        x: rows.map((x) => `${x.phase} ${x.metric}`),
        y: rows.map((x) => x[k]),
      })),
      layout: { title: { text: "each stage's metric: specialist, base, merged, integrated" }, barmode: "group", height: 380 },
    };
    const sections: PageSection[] = [{ title: "Phase 6: retention of every stage", html, figure }];
    const ev = r.metrics.evolve as
      | {
        method: string;
        groups: string[];
        specialists: number[];
        coefficients: number[][];
        history: { generation: number; best: number; mean: number; best_ever: number }[];
        start_fitness: number;
        evaluations: number;
      }
      | undefined;
    if (ev) {
      const h = ev.history;
      sections.push({
        title: `Phase 6: the evolved ${ev.method} merge, fitness by generation`,
        html:
          `<p>CMA-ES over ${ev.specialists.length} specialists x ${ev.groups.length} layer groups, ${ev.evaluations} evaluations; fitness = mean stage metric on validation contexts (other seeds than the held-out sets above); the start is phase 6's task arithmetic (${ev.start_fitness}).</p>`,
        figure: {
          data: [
            { type: "scatter", mode: "lines+markers", name: "best so far", x: h.map((g) => g.generation), y: h.map((g) => g.best_ever) },
            { type: "scatter", mode: "lines+markers", name: "generation mean", x: h.map((g) => g.generation), y: h.map((g) => g.mean) },
          ],
          layout: {
            title: { text: `evolved ${ev.method}: validation fitness by generation` },
            xaxis: { title: { text: "generation" } },
            height: 360,
          },
        },
      });
      sections.push({
        title: `Phase 6: the evolved ${ev.method} recipe's coefficients by layer`,
        figure: heatmap(ev.coefficients, `evolved ${ev.method}: coefficient by specialist and layer group`, {
          x: ev.groups,
          y: ev.specialists.map((p) => `phase ${p}`),
          zTitle: "coefficient",
          annotate: true,
        }),
      });
    }
    return sections;
  }

  return {
    id: 6,
    name: "integration",
    title: "integration: task-arithmetic merge of the specialists, joint fine-tuning with replay, retention table",
    section: Phase6Section,
    presets: {
      // The documented configuration: joint fine-tuning takes training.lr and training.batch_size.
      seed: { lr: 0, batch_size: 0 },
      // 200 joint steps: at 80 the integrated model beat the base by 0.002 (a gain gate of 0 could not fail), at 140 by 0.016, at 200 by 0.063.
      tiny: { steps: 200, replay_per_stage: 400, gate_min_retention: 0.3 },
    },
    run,
    validate,
    report,
  };
}
