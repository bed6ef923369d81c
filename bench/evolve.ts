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
 *          --redis URL (score each generation's recipes on workers, `deno task worker --redis URL`,
 *          all in flight at once; DIR must be at the same path on every worker)  --queue NAME
 */
import { parseArgs } from "node:util";
import { initBackend } from "../lib/backend/mod.ts";
import { checkResolved } from "../lib/config/config.ts";
import { coefficientFigure, compareMerges, fitnessFigure } from "../lib/evolve/compare.ts";
import { MERGE_METHODS, type MergeMethod } from "../lib/evolve/merge.ts";
import { PHASES } from "../lib/phases/mod.ts";
import { queueFitness } from "../lib/search/queue.ts";
import { readJson, writeAtomic, writeJsonAtomic } from "../lib/util/fs.ts";
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
    redis: { type: "string" },
    queue: { type: "string" },
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
const remote = values.redis ? await queueFitness({ url: values.redis, queue: values.queue }) : undefined;
if (remote) console.log(`population members go to workers on ${values.redis}`);
const res = await compareMerges(runDir, config, { methods, generations, popsize, density, seed, evaluate: remote?.evaluate(runDir) })
  .finally(() => remote?.close());
console.log(`base + phases ${res.specialists.join(", ")}; ${res.groups.length} groups (${res.groups.join(", ")})`);
for (const s of res.skipped) console.log(`  phase ${s.phase} not merged: ${s.why}`);
const cols = Object.keys(res.rows[0]);
console.log(`\n| ${cols.join(" | ")} |\n| ${cols.map(() => "---").join(" | ")} |`);
for (const r of res.rows) console.log(`| ${cols.map((c) => String(r[c])).join(" | ")} |`);
console.log(`\n${res.seconds.toFixed(0)} s; validation = other seeds than the held-out sets, smaller samples (FITNESS_SAMPLE)`);

if (values.json) await writeJsonAtomic(values.json, { runDir, ...res });
if (values.html) {
  const table = `<table border="1" cellpadding="4"><tr>${cols.map((c) => `<th>${c}</th>`).join("")}</tr>${
    res.rows.map((r) => `<tr>${cols.map((c) => `<td>${r[c]}</td>`).join("")}</tr>`).join("")
  }</table>`;
  const lib = await Deno.readTextFile(new URL("../node_modules/plotly.js-dist-min/plotly.min.js", import.meta.url));
  const figs = [fitnessFigure(res.runs), ...res.runs.map((r) => coefficientFigure(r, res.specialists))]
    .map((f, i) => figureHtml(f, i === 0 ? lib : undefined)).join("\n");
  await writeAtomic(
    values.html,
    `<!doctype html><meta charset="utf-8"><title>bench:evolve</title><h1>Merge breeding on ${runDir}</h1>${table}${figs}`,
  );
}
