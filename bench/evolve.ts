/**
 * `deno task bench:evolve --run DIR`: breeds merge recipes over a run's specialists (lib/evolve/)
 * and compares the best of each method with phase 6's task-arithmetic merge on the stages'
 * held-out sets (what phase 6 and the report score), before joint fine-tuning.
 *
 * DIR is a run directory with phases 1 to 5 completed (at least phase 1 and one stage whose model
 * shares the base's architecture). Fitness is the mean stage metric on validation contexts
 * (lib/evolve/breed.ts: other seeds than the held-out sets, smaller samples); the table then
 * scores every recipe on the held-out sets at the run's own settings.
 *
 * Options: --run DIR  --methods task_arithmetic,ties,dare  --generations N (default 6)
 *          --popsize N  --density X (ties/dare, default 0.5)  --seed N  --html FILE  --json FILE
 */
import { parseArgs } from "node:util";
import { initBackend } from "../lib/backend/mod.ts";
import { checkResolved } from "../lib/config/config.ts";
import { stageContext } from "../lib/eval/stage.ts";
import { breedRecipe, type BreedResult, FITNESS_SAMPLE, scoreTensors, validationContext } from "../lib/evolve/breed.ts";
import { applyRecipe, MERGE_METHODS, type MergeMethod, parameterGroups, uniformRecipe } from "../lib/evolve/merge.ts";
import { mergeInputs, PHASES } from "../lib/phases/mod.ts";
import type { PhaseSpec } from "../lib/phases/spec.ts";
import { readJson, writeAtomic, writeJsonAtomic } from "../lib/util/fs.ts";
import { type PhaseResultFile, readResult } from "../lib/util/run_dir.ts";
import { heatmap } from "../lib/viz/figures.ts";
import { figureHtml } from "../lib/viz/notebook.ts";
import { join } from "node:path";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    run: { type: "string" },
    methods: { type: "string", default: MERGE_METHODS.join(",") },
    generations: { type: "string", default: "6" },
    popsize: { type: "string" },
    density: { type: "string", default: "0.5" },
    seed: { type: "string", default: "0" },
    html: { type: "string" },
    json: { type: "string" },
  },
});
if (!values.run) throw new Error("--run DIR: a run directory with phases 1-5 completed is required");
const runDir = values.run;
const methods = values.methods!.split(",").map((m) => {
  if (!MERGE_METHODS.includes(m as MergeMethod)) throw new Error(`--methods: '${m}' is not one of ${MERGE_METHODS.join(", ")}`);
  return m as MergeMethod;
});
const generations = Number(values.generations), density = Number(values.density), seed = Number(values.seed);
const popsize = values.popsize === undefined ? undefined : Number(values.popsize);
if (!Number.isInteger(generations) || generations < 1) throw new Error(`--generations ${values.generations}: expected an integer >= 1`);

await initBackend("wasm", { quiet: true });
const cfgFile = join(runDir, "config.json");
const config = checkResolved(await readJson(cfgFile), PHASES, cfgFile);
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
const ctx = { runDir, phase: 6, previous: (id: number) => Promise.resolve(results.get(id)) };
const inputs = await mergeInputs(ctx, results);
inputs.base.dispose();
if (!inputs.specialists.length) throw new Error(`${runDir}: no specialist shares the base's architecture; nothing to merge`);
const groups = parameterGroups(inputs.baseHost.keys());
const specs = inputs.specialists.map((s) => s.tensors);
const k = specs.length;
console.log(
  `bench:evolve on ${runDir}: base + phases ${
    inputs.specialists.map((s) => s.phase).join(", ")
  } (${k} specialists), ${groups.length} groups (${groups.join(", ")}), ${k * groups.length} coefficients; stages ${
    stages.map((s) => s.id).join(", ")
  }`,
);
for (const s of inputs.skipped) console.log(`  phase ${s.phase} not merged: ${s.why}`);

const valCtx = (id: number) => validationContext(config, id, FITNESS_SAMPLE[id] ?? {});
const testCtx = (id: number) => stageContext(config, id);
const fitness = async (t: Parameters<typeof scoreTensors>[0]) => (await scoreTensors(t, inputs.mergedMeta, stages, valCtx)).mean;

const rows: Record<string, unknown>[] = [];
const scoreRow = async (label: string, t: Parameters<typeof scoreTensors>[0], validation: number) => {
  const test = await scoreTensors(t, inputs.mergedMeta, stages, testCtx);
  const row = { recipe: label, validation_fitness: round(validation), ...prefix(test.byStage), heldout_mean: round(test.mean) };
  rows.push(row);
  console.log(`  ${label}: validation ${validation.toFixed(4)}, held-out mean ${test.mean.toFixed(4)}`);
};
const round = (x: number) => Math.round(x * 1e4) / 1e4;
const prefix = (by: Record<number, number>) => Object.fromEntries(Object.entries(by).map(([id, v]) => [`heldout_p${id}`, round(v)]));

const t0 = performance.now();
const start = uniformRecipe("task_arithmetic", groups, k, 1 / k);
await scoreRow(
  "phase 6: task arithmetic, 1/k",
  applyRecipe(inputs.baseHost, specs, start),
  await fitness(applyRecipe(inputs.baseHost, specs, start)),
);
const runs: BreedResult[] = [];
for (const method of methods) {
  console.log(`breeding ${method}: ${generations} generations`);
  const r = await breedRecipe(inputs.baseHost, specs, groups, fitness, {
    method,
    generations,
    popsize,
    density,
    seed,
    onGeneration: (g) =>
      console.log(
        `  ${method} generation ${g.generation}: best ${g.best.toFixed(4)}, mean ${g.mean.toFixed(4)}, best so far ${
          g.bestEver.toFixed(4)
        }`,
      ),
  });
  runs.push(r);
  await scoreRow(`evolved ${method} (${r.evaluations} evaluations)`, applyRecipe(inputs.baseHost, specs, r.best.recipe), r.best.fitness);
}
const seconds = (performance.now() - t0) / 1000;

const cols = Object.keys(rows[0]);
console.log(`\n| ${cols.join(" | ")} |\n| ${cols.map(() => "---").join(" | ")} |`);
for (const r of rows) console.log(`| ${cols.map((c) => String(r[c])).join(" | ")} |`);
console.log(`\n${seconds.toFixed(0)} s; validation = other seeds than the held-out sets, smaller samples (FITNESS_SAMPLE)`);

if (values.json) {
  await writeJsonAtomic(values.json, { runDir, groups, specialists: inputs.specialists.map((s) => s.phase), rows, runs, seconds });
}
if (values.html) {
  const fitnessFig = {
    data: runs.map((r) => ({
      type: "scatter",
      mode: "lines+markers",
      name: r.method,
      x: r.history.map((h) => h.generation),
      y: r.history.map((h) => h.bestEver),
    })),
    layout: {
      title: { text: "best validation fitness by generation" },
      xaxis: { title: { text: "generation" } },
      yaxis: { title: { text: "mean stage metric" } },
      height: 380,
    },
  };
  const coeffFigs = runs.map((r) =>
    heatmap(r.best.recipe.weights, `best ${r.method} recipe: coefficient by specialist and layer group`, {
      x: groups,
      y: inputs.specialists.map((s) => `phase ${s.phase}`),
      zTitle: "coefficient",
      annotate: true,
    })
  );
  const table = `<table border="1" cellpadding="4"><tr>${cols.map((c) => `<th>${c}</th>`).join("")}</tr>${
    rows.map((r) => `<tr>${cols.map((c) => `<td>${r[c]}</td>`).join("")}</tr>`).join("")
  }</table>`;
  const lib = await Deno.readTextFile(new URL("../node_modules/plotly.js-dist-min/plotly.min.js", import.meta.url));
  const figs = [fitnessFig, ...coeffFigs].map((f, i) => figureHtml(f, i === 0 ? lib : undefined)).join("\n");
  await writeAtomic(
    values.html,
    `<!doctype html><meta charset="utf-8"><title>bench:evolve</title><h1>Merge breeding on ${runDir}</h1>${table}${figs}`,
  );
}
