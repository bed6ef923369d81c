/**
 * `deno task bench:grids`: phase 3's part (c) alone, without the rest of the pipeline. Trains an
 * HRRM (and the cognate baseline) per grid task of the preset's `phases.3` section and prints the
 * exact-solve table; nothing from phase 1 is needed. The same code as the phase
 * (lib/phases/p3_grids.ts), in a fresh run directory.
 *
 * Options: --preset tiny|small|seed (default small)  --set key=value (repeatable, as the
 *          pipeline's: `--set 'phases.3.grid_tasks=["maze"]'`)  --out DIR (run directory; default
 *          a temp folder)  --html FILE (the table as an HTML page)  --json FILE (every task's result)
 */
import { parseArgs } from "node:util";
import { initBackend } from "../lib/backend/mod.ts";
import { type Preset, resolveConfig, sectionOf } from "../lib/config/config.ts";
import { GridSection, gridTableHtml, runGrids } from "../lib/phases/p3_grids.ts";
import { phase3 } from "../lib/phases/p3_puzzles.ts";
import { testContext } from "../lib/phases/testing.ts";
import { writeJsonAtomic } from "../lib/util/fs.ts";
import { writeRunConfig } from "../lib/util/run_dir.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    preset: { type: "string", default: "small" },
    set: { type: "string", multiple: true, default: [] },
    out: { type: "string" },
    html: { type: "string" },
    json: { type: "string" },
  },
});
await initBackend(); // prints the backend it chose
const config = resolveConfig({ preset: values.preset as Preset, phases: [phase3], sets: values.set });
const runDir = values.out ?? await Deno.makeTempDir({ prefix: "af-grids-" });
await Deno.mkdir(runDir, { recursive: true });
await writeRunConfig(runDir, config);
const ctx = testContext(phase3, runDir, config, true);
const t0 = performance.now();
const results = await runGrids(ctx, sectionOf(GridSection, ctx.phaseConfig, 3));
const pct = (x: number | undefined) => (x === undefined ? "-" : `${(100 * x).toFixed(1)}%`);
console.log(`\nrun directory ${runDir}, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
console.log("task      HRRM     segments  1 segment  all segments  cognate  solver  HRRM/cognate params");
for (const r of results) {
  console.log(
    [
      r.task.padEnd(9),
      pct(r.hrrm.exact).padEnd(8),
      (r.hrrm.mean_segments ?? NaN).toFixed(2).padEnd(9),
      pct(r.one_segment.exact).padEnd(10),
      pct(r.all_segments.exact).padEnd(13),
      pct(r.cognate?.exact).padEnd(8),
      pct(r.solver.exact).padEnd(7),
      `${r.hrrm_params}/${r.cognate_params ?? "-"}`,
    ].join(" "),
  );
}
if (values.html) {
  await Deno.writeTextFile(values.html, `<!doctype html><meta charset="utf-8"><title>HRRM on grids</title>${gridTableHtml(results)}`);
}
if (values.json) await writeJsonAtomic(values.json, results);
