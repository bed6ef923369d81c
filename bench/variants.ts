/**
 * `deno task bench:variants --run DIR --phase N --variant LABEL:k=v,k=v ...`: phase N run once per
 * variant, each on a fresh copy of DIR with the variant's `--set` overrides (the same job a search
 * trial is, lib/search/trial.ts), and one table of their result.json metrics. DIR is never changed.
 *
 * Example, phase 6's merges at small (README, "Evolution"):
 *   deno task bench:variants --run RUN --phase 6 --metrics mean_merged,mean_integrated,mean_retention,final_loss \
 *     --variant task_arithmetic: --variant ties:phases.6.merge=evolved,phases.6.evolve_generations=3
 *
 * Options: --run DIR  --phase N  --variant LABEL:SETS (repeatable; SETS comma-separated k=v, may be
 *          empty)  --metrics a,b (top-level result metrics; default the phase's stage metric)
 *          --out DIR (keeps each variant's result.json; default a temporary folder)  --json FILE
 *          --after 1,3 (the earlier phases phase N reads, e.g. 1 for phase 5: the others that DIR
 *          lacks are marked done empty in each copy instead of being run; default: all of them run)
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
    phase: { type: "string" },
    variant: { type: "string", multiple: true, default: [] },
    metrics: { type: "string" },
    after: { type: "string" },
    out: { type: "string" },
    json: { type: "string" },
  },
});
if (!values.run || !values.phase) throw new Error("--run DIR and --phase N are required");
const phase = Number(values.phase);
const spec = PHASES.find((p) => p.id === phase);
if (!spec) throw new Error(`--phase ${values.phase}: not a registered phase (${PHASES.map((p) => p.id).join(", ")})`);
const variants = values.variant!.map((v) => {
  const i = v.indexOf(":");
  if (i < 1) throw new Error(`--variant ${v}: expected LABEL:k=v,k=v (the sets may be empty: LABEL:)`);
  return { label: v.slice(0, i), sets: v.slice(i + 1).split(",").map((s) => s.trim()).filter(Boolean) };
});
if (!variants.length) throw new Error("--variant LABEL:SETS: give at least one");
const metrics = values.metrics?.split(",") ?? [spec.stage?.metric ?? ""].filter(Boolean);
const out = resolve(values.out ?? await Deno.makeTempDir({ prefix: "af-bench-variants-" }));
await Deno.mkdir(join(out, "trials"), { recursive: true });

// --after: the earlier phases N needs run if missing; every other earlier phase is a no-op in the copies.
const needed = values.after === undefined ? undefined : new Set(values.after.split(",").map(Number));
const phases = needed
  ? PHASES.map((p) =>
    p.id < phase && !needed.has(p.id) ? { ...p, run: () => Promise.resolve({ metrics: {}, artifacts: [] }), validate: () => [] } : p
  )
  : PHASES;
const rows: Record<string, unknown>[] = [];
for (const [k, v] of variants.entries()) {
  const name = `v${k}-${v.label.replace(/[^\w.-]/g, "_")}`;
  const t0 = performance.now();
  await runTrial(
    { out, baseRun: resolve(values.run), phase, metric: metrics[0] ?? "", objective: "result" },
    { name, sets: v.sets },
    { phases },
  );
  const r = await readJson<{ metrics: Record<string, unknown> }>(join(out, "trials", `${name}.json`));
  const row: Record<string, unknown> = { variant: v.label, sets: v.sets.join(" ") || "(the run's config)" };
  for (const m of metrics) row[m] = r.metrics[m];
  row.seconds = Math.round((performance.now() - t0) / 100) / 10;
  rows.push(row);
  console.log(`${v.label}: ${JSON.stringify(row)}`);
}
const cols = Object.keys(rows[0]);
console.log(`\nphase ${phase} on copies of ${values.run}:\n\n| ${cols.join(" | ")} |\n| ${cols.map(() => "---").join(" | ")} |`);
for (const r of rows) console.log(`| ${cols.map((c) => String(r[c])).join(" | ")} |`);
if (values.json) await writeJsonAtomic(values.json, { run: values.run, phase, rows });
console.log(`\nresult.json of every variant: ${join(out, "trials")}`);
