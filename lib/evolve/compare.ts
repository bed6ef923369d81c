/**
 * Breeding on a run: every chosen merge method bred over the run's specialists (breed.ts) and
 * compared with phase 6's task-arithmetic merge on the stages' held-out sets (what phase 6 and the
 * report score), before joint fine-tuning. `bench:evolve` and notebook 08 run it. `runFitness` is
 * the validation fitness of recipes on a run, which a worker computes for a breeding on the queue.
 */
import { join } from "node:path";
import { checkResolved, type PipelineConfig } from "../config/config.ts";
import { stageContext } from "../eval/stage.ts";
import type { HostTensor } from "../nn/params.ts";
import { mergeInputs, PHASES } from "../phases/mod.ts";
import type { PhaseSpec } from "../phases/spec.ts";
import { type PhaseResultFile, readResult } from "../util/run_dir.ts";
import { type Figure, heatmap } from "../viz/figures.ts";
import { breedRecipe, type BreedResult, type GenerationStats, scoreTensors, validationFitness } from "./breed.ts";
import { applyRecipe, type MergeMethod, type MergeRecipe, parameterGroups, uniformRecipe } from "./merge.ts";
import { readJson } from "../util/fs.ts";

export interface CompareOptions {
  methods: MergeMethod[];
  generations: number;
  popsize?: number;
  density?: number;
  seed?: number;
  onGeneration?: (method: MergeMethod, g: GenerationStats) => void | Promise<void>;
  /** Scores a generation's recipes (e.g. on workers; see BreedOptions.evaluate); default: here. */
  evaluate?: (recipes: MergeRecipe[]) => Promise<number[]>;
  log?: (line: string) => void;
}

/** One recipe's scores: validation fitness, each stage's held-out metric (`heldout_p<id>`), their mean. */
export type CompareRow = Record<string, string | number>;

export interface CompareResult {
  groups: string[];
  specialists: number[];
  skipped: { phase: number; why: string }[];
  rows: CompareRow[];
  runs: BreedResult[];
  seconds: number;
}

const round = (x: number) => Math.round(x * 1e4) / 1e4;

/** The stage phases of PHASES that completed in `runDir`, with their result.json. */
async function completedStages(runDir: string): Promise<{ stages: PhaseSpec[]; results: Map<number, PhaseResultFile> }> {
  const results = new Map<number, PhaseResultFile>();
  const stages: PhaseSpec[] = [];
  for (const p of PHASES) {
    if (!p.stage) continue;
    const r = await readResult(runDir, p);
    if (r?.status === "completed") {
      results.set(p.id, r);
      stages.push(p);
    }
  }
  return { stages, results };
}

/** The base, the specialists that share its architecture, and the validation fitness of merges of them, for the run in `runDir`. */
async function breedingInputs(runDir: string, config: PipelineConfig) {
  const { stages, results } = await completedStages(runDir);
  const inputs = await mergeInputs({ runDir, phase: 6, previous: (id) => Promise.resolve(results.get(id)) }, results);
  inputs.base.dispose();
  if (!inputs.specialists.length) throw new Error(`${runDir}: no specialist shares the base's architecture; nothing to merge`);
  return { stages, inputs, specs: inputs.specialists.map((s) => s.tensors), fitness: validationFitness(inputs.mergedMeta, stages, config) };
}

/** A recipe's validation fitness on the run in `runDir` (its inputs loaded once): what `compareMerges` breeds on. */
export async function runFitness(runDir: string): Promise<(recipe: MergeRecipe) => Promise<number>> {
  const file = join(runDir, "config.json");
  const config = checkResolved(await readJson(file), PHASES, file);
  const { inputs, specs, fitness } = await breedingInputs(runDir, config);
  return (recipe) => fitness(applyRecipe(inputs.baseHost, specs, recipe));
}

/** Breeds `o.methods` on the run in `runDir` (phases 1-5 completed) and scores them beside phase 6's merge. */
export async function compareMerges(runDir: string, config: PipelineConfig, o: CompareOptions): Promise<CompareResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const { stages, inputs, specs, fitness } = await breedingInputs(runDir, config);
  const groups = parameterGroups(inputs.baseHost.keys());
  const k = specs.length;
  const testCtx = (id: number) => stageContext(config, id);
  const rows: CompareRow[] = [];
  const scoreRow = async (label: string, t: Map<string, HostTensor>, validation: number) => {
    const test = await scoreTensors(t, inputs.mergedMeta, stages, testCtx);
    const byStage = Object.fromEntries(Object.entries(test.byStage).map(([id, v]) => [`heldout_p${id}`, round(v)]));
    rows.push({ recipe: label, validation_fitness: round(validation), ...byStage, heldout_mean: round(test.mean) });
    log(`${label}: validation ${validation.toFixed(4)}, held-out mean ${test.mean.toFixed(4)}`);
  };
  const t0 = performance.now();
  const start = applyRecipe(inputs.baseHost, specs, uniformRecipe("task_arithmetic", groups, k, 1 / k));
  await scoreRow("phase 6: task arithmetic, 1/k", start, await fitness(start));
  const runs: BreedResult[] = [];
  for (const method of o.methods) {
    log(`breeding ${method}: ${o.generations} generations`);
    const r = await breedRecipe(inputs.baseHost, specs, groups, fitness, {
      method,
      generations: o.generations,
      popsize: o.popsize,
      density: o.density,
      seed: o.seed,
      evaluate: o.evaluate,
      onGeneration: async (g) => {
        log(
          `  ${method} generation ${g.generation}: best ${g.best.toFixed(4)}, mean ${g.mean.toFixed(4)}, best so far ${
            g.bestEver.toFixed(4)
          }`,
        );
        await o.onGeneration?.(method, g);
      },
    });
    runs.push(r);
    await scoreRow(`evolved ${method} (${r.evaluations} evaluations)`, applyRecipe(inputs.baseHost, specs, r.best.recipe), r.best.fitness);
  }
  return {
    groups,
    specialists: inputs.specialists.map((s) => s.phase),
    skipped: inputs.skipped,
    rows,
    runs,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Best validation fitness so far by generation, one line per bred method. */
export function fitnessFigure(runs: readonly Pick<BreedResult, "method" | "history">[]): Figure {
  return {
    data: runs.map((r) => ({
      type: "scatter",
      mode: "lines+markers",
      name: r.method,
      x: r.history.map((h) => h.generation),
      y: r.history.map((h) => h.bestEver),
    })),
    layout: {
      title: { text: "merge breeding: best validation fitness by generation" },
      xaxis: { title: { text: "generation" } },
      yaxis: { title: { text: "mean stage metric (validation)" } },
      height: 380,
    },
  };
}

/** The best recipe's coefficients, specialists by layer groups. */
export function coefficientFigure(run: BreedResult, specialists: number[]): Figure {
  return heatmap(run.best.recipe.weights, `evolved ${run.method}: coefficient by specialist and layer group`, {
    x: run.best.recipe.groups,
    y: specialists.map((p) => `phase ${p}`),
    zTitle: "coefficient",
    annotate: true,
  });
}
