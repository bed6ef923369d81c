/**
 * `deno task bench:curriculum --run DIR`: phases 2-4 trained twice on copies of DIR at equal
 * steps, once sampling windows uniformly and once on the competence curriculum (easy items first,
 * lib/train/curriculum.ts), and scored on the same held-out sets. Prints one table: task success
 * first (exact whole grids / answers), then token accuracy, per phase and arm.
 *
 * DIR: a run with phase 1 completed (and the phases before each one measured). Phase 3 runs its
 * part (b) only (the text puzzles, where the curriculum applies): part (c)'s grids are skipped
 * and part (a)'s GrokFast run is cut to 2 steps, so its numbers are not part (a)'s.
 *
 * Options: --run DIR  --phases 2,3,4  --seeds 1 (run.seed 0..N-1 added to DIR's seed: more
 *          seeds, more runs)  --set k=v (for every run, repeatable)  --json FILE  --out DIR
 *          (keeps the trial folders' result.json files; default a temporary folder)
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { PHASES } from "../lib/phases/mod.ts";
import { runTrial } from "../lib/search/trial.ts";
import { readJson, writeJsonAtomic } from "../lib/util/fs.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    run: { type: "string" },
    phases: { type: "string", default: "2,3,4" },
    seeds: { type: "string", default: "1" },
    set: { type: "string", multiple: true, default: [] },
    json: { type: "string" },
    out: { type: "string" },
  },
});
if (!values.run) throw new Error("--run DIR: a run directory with phase 1 (and the phases before each measured one) completed is required");
const phases = values.phases!.split(",").map(Number);
if (phases.some((p) => ![2, 3, 4].includes(p))) throw new Error(`--phases ${values.phases}: the curriculum is in phases 2, 3 and 4`);
const seeds = Number(values.seeds);
if (!Number.isInteger(seeds) || seeds < 1) throw new Error(`--seeds ${values.seeds}: expected an integer >= 1`);
const baseRun = resolve(values.run);
const baseSeed = (await readJson<{ run: { seed: number } }>(join(baseRun, "config.json"))).run.seed;
const out = resolve(values.out ?? await Deno.makeTempDir({ prefix: "af-bench-curriculum-" }));
await Deno.mkdir(join(out, "trials"), { recursive: true });

/** Per phase: extra sets, and the metrics reported (task success first). */
const PLAN: Record<number, { sets: string[]; metrics: string[] }> = {
  2: { sets: [], metrics: ["exact", "pass_at_2", "shape_acc", "cell_acc", "heldout_token_acc"] },
  3: {
    sets: ["phases.3.grid_tasks=[]", "phases.3.mod_steps=2", "phases.3.mod_baseline=false"],
    metrics: [
      "exact",
      "sudoku_exact",
      "maze_exact",
      "listops_exact",
      "token_acc",
      "sudoku_token_acc",
      "maze_token_acc",
      "listops_token_acc",
    ],
  },
  4: { sets: [], metrics: ["exact", "exact_1_steps", "exact_2_steps", "token_acc", "digit_acc"] },
};

const rows: Record<string, unknown>[] = [];
for (const phase of phases) {
  for (let s = 0; s < seeds; s++) {
    for (const arm of ["uniform", "competence"]) {
      const name = `p${phase}-${arm}-s${s}`;
      const sets = [...PLAN[phase].sets, `phases.${phase}.curriculum=${arm}`, `run.seed=${baseSeed + s}`, ...values.set!];
      const t0 = performance.now();
      const o = await runTrial(
        { out, baseRun, phase, metric: PHASES.find((p) => p.id === phase)!.stage!.metric, objective: "result" },
        { name, sets },
        { phases: PHASES },
      );
      const r = await readJson<{ metrics: Record<string, unknown> }>(join(out, "trials", `${name}.json`));
      const row: Record<string, unknown> = { phase, arm, seed: baseSeed + s, seconds: Math.round((performance.now() - t0) / 100) / 10 };
      for (const m of PLAN[phase].metrics) row[m] = r.metrics[m];
      rows.push(row);
      console.log(`phase ${phase} ${arm} seed ${baseSeed + s}: ${JSON.stringify(row)} (stage metric ${o.heldout})`);
    }
  }
}

for (const phase of phases) {
  const cols = ["arm", "seed", ...PLAN[phase].metrics, "seconds"];
  console.log(`\nphase ${phase} (${PLAN[phase].sets.join(" ") || "its run's config"}), equal steps per arm:\n`);
  console.log(`| ${cols.join(" | ")} |\n| ${cols.map(() => "---").join(" | ")} |`);
  for (const r of rows.filter((x) => x.phase === phase)) console.log(`| ${cols.map((c) => String(r[c])).join(" | ")} |`);
}
if (values.json) await writeJsonAtomic(values.json, { run: baseRun, rows });
console.log(`\nresult.json of every run: ${join(out, "trials")}`);
