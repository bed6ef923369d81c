/**
 * Breeding merge recipes: CMA-ES (cmaes.ts) over one merge method's per-specialist, per-layer-group
 * coefficients (merge.ts), each candidate scored by the stages' own evaluations on a validation
 * split that the report does not use.
 *
 * The validation split: each stage rebuilds its data from its stage context's seed
 * (eval/stage.ts), so a context whose seed is derived from the stage's seed and "evolve-validation"
 * draws other held-out items than the stage's (and phase 6's and 7's) held-out set. Stages
 * whose held-out items do not come from the seed (real data files) would score the same items:
 * `validationContext` is where that would change.
 *
 * The search starts from phase 6's recipe (every coefficient 1 / number of specialists) and
 * keeps it as a candidate: the best recipe found is never worse on validation than the start.
 */
import { type StageContext, stageContext } from "../eval/stage.ts";
import type { PipelineConfig } from "../config/config.ts";
import type { SavedModel } from "../models/io.ts";
import { createModel } from "../models/registry.ts";
import type { HostTensor } from "../nn/params.ts";
import type { PhaseSpec } from "../phases/spec.ts";
import { deriveSeed } from "../util/rng.ts";
import { Cmaes } from "./cmaes.ts";
import { applyRecipe, type MergeMethod, type MergeRecipe, uniformRecipe } from "./merge.ts";

/** A stage's validation context: its section with `overrides`, its seed shifted (see the module comment). */
export function validationContext(config: PipelineConfig, id: number, overrides: Record<string, unknown> = {}): StageContext {
  const s = stageContext(config, id);
  return { ...s, phaseConfig: { ...s.phaseConfig, ...overrides }, seed: deriveSeed(s.seed, "evolve-validation") };
}

/** Per-stage overrides that keep a fitness evaluation to seconds at small presets (fewer ARC tasks and votes, fewer passkey items). */
export const FITNESS_SAMPLE: Record<number, Record<string, unknown>> = {
  2: { eval_tasks: 8, votes: 1 },
  5: { eval_items: 1 },
};

/** Scores of tensors (loaded into a model of `meta`) on the stages: each stage's metric and their mean. */
export async function scoreTensors(
  tensors: Map<string, HostTensor>,
  meta: SavedModel,
  stages: readonly PhaseSpec[],
  contextOf: (id: number) => StageContext,
): Promise<{ mean: number; byStage: Record<number, number> }> {
  const model = createModel(meta.key, meta.config, 0);
  try {
    model.params.load(tensors, { source: "merge recipe" });
    const byStage: Record<number, number> = {};
    for (const p of stages) {
      const r = await p.stage!.evaluate(model, contextOf(p.id));
      byStage[p.id] = r[p.stage!.metric];
    }
    const vals = Object.values(byStage);
    return { mean: vals.reduce((a, v) => a + v, 0) / Math.max(1, vals.length), byStage };
  } finally {
    model.dispose();
  }
}

/** The fitness breeding maximizes: the mean stage metric of merged tensors on the stages' validation contexts (FITNESS_SAMPLE). */
export function validationFitness(
  meta: SavedModel,
  stages: readonly PhaseSpec[],
  config: PipelineConfig,
): (tensors: Map<string, HostTensor>) => Promise<number> {
  const ctx = (id: number) => validationContext(config, id, FITNESS_SAMPLE[id] ?? {});
  return async (tensors) => (await scoreTensors(tensors, meta, stages, ctx)).mean;
}

/** How a breeding run searches. */
export interface BreedOptions {
  method: MergeMethod;
  /** CMA-ES generations. */
  generations: number;
  /** Candidates per generation (default CMA-ES's 4 + floor(3 ln n)). */
  popsize?: number;
  /** Initial step size of the coefficients (default 0.3 x the start coefficient). */
  sigma?: number;
  /** Coefficient range (default [-0.5, 2]). */
  bounds?: [number, number];
  /** ties / dare density (default 0.5). */
  density?: number;
  seed?: number;
  /** Called after each generation. */
  onGeneration?: (g: GenerationStats) => void | Promise<void>;
  /**
   * Scores a generation's recipes at once, in their order (e.g. on workers, lib/search/queue.ts);
   * by default each is merged here and scored by `fitness`, one after another. Either way the
   * breeding is the same for a seed.
   */
  evaluate?: (recipes: MergeRecipe[]) => Promise<number[]>;
}

/** One generation of a breeding run. */
export interface GenerationStats {
  generation: number;
  /** Best and mean validation fitness of this generation's candidates. */
  best: number;
  mean: number;
  /** Best validation fitness so far (the start included). */
  bestEver: number;
}

export interface BreedResult {
  method: MergeMethod;
  start: { recipe: MergeRecipe; fitness: number };
  best: { recipe: MergeRecipe; fitness: number };
  history: GenerationStats[];
  evaluations: number;
}

/**
 * CMA-ES over `method`'s coefficients (one per specialist and group), maximizing `fitness` of the
 * merged tensors. Deterministic for a seed.
 */
export async function breedRecipe(
  base: Map<string, HostTensor>,
  specialists: Map<string, HostTensor>[],
  groups: string[],
  fitness: (tensors: Map<string, HostTensor>) => Promise<number>,
  o: BreedOptions,
): Promise<BreedResult> {
  if (!specialists.length) throw new Error("breedRecipe: no specialist to merge");
  if (!Number.isInteger(o.generations) || o.generations < 1) throw new Error(`breedRecipe: generations = ${o.generations}, expected >= 1`);
  const k = specialists.length, G = groups.length;
  const w0 = 1 / k;
  const seed = o.seed ?? 0;
  const density = o.method === "task_arithmetic" ? 1 : o.density ?? 0.5;
  const recipeOf = (x: number[]): MergeRecipe => ({
    ...uniformRecipe(o.method, groups, k, 0, density, seed),
    weights: Array.from({ length: k }, (_, i) => x.slice(i * G, (i + 1) * G)),
  });
  const scoreAll = async (xs: number[][]): Promise<number[]> => {
    if (o.evaluate) {
      const fs = await o.evaluate(xs.map(recipeOf));
      if (fs.length !== xs.length) throw new Error(`breedRecipe: evaluate returned ${fs.length} scores for ${xs.length} recipes`);
      return fs;
    }
    const fs: number[] = [];
    for (const x of xs) fs.push(await fitness(applyRecipe(base, specialists, recipeOf(x))));
    return fs;
  };
  const x0 = Array(k * G).fill(w0);
  const [startFit] = await scoreAll([x0]);
  let evaluations = 1;
  let best = { x: x0, f: startFit };
  const [lo, hi] = o.bounds ?? [-0.5, 2];
  const es = new Cmaes({
    mean: x0,
    sigma: o.sigma ?? 0.3 * w0,
    popsize: o.popsize,
    seed: deriveSeed(seed, `cmaes/${o.method}`),
    lower: Array(k * G).fill(lo),
    upper: Array(k * G).fill(hi),
  });
  const history: GenerationStats[] = [];
  for (let g = 0; g < o.generations; g++) {
    const xs = es.ask();
    const fs = await scoreAll(xs);
    evaluations += xs.length;
    fs.forEach((f, i) => {
      if (f > best.f) best = { x: xs[i], f };
    });
    es.tell(xs, fs.map((f) => -f)); // CMA-ES minimizes
    const stats = { generation: g + 1, best: Math.max(...fs), mean: fs.reduce((a, f) => a + f, 0) / fs.length, bestEver: best.f };
    history.push(stats);
    await o.onGeneration?.(stats);
  }
  return {
    method: o.method,
    start: { recipe: recipeOf(x0), fitness: startFit },
    best: { recipe: recipeOf(best.x), fitness: best.f },
    history,
    evaluations,
  };
}
