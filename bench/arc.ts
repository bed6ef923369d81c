/**
 * `deno task bench:arc`: the grid-native HRRM of phase 2 (b) on every task of a folder of ARC
 * JSON files (default: the 400 ARC-AGI-1 training tasks in ../shared/data). It never trains on
 * them: each task gets a fresh copy of the model, fine-tuned on that task's own demonstrations
 * (test-time training, leave-one-out, augmented), then answers its first test input under
 * augmented views, voted for pass@2.
 *
 * The model comes from a run (`--run DIR`: its phase-2 `hrrm-arc.safetensors`) or, without one,
 * is trained here first by phase 2 (b)'s own code at `--preset` (generated tasks only).
 *
 * Options: --arc-dir DIR (default phases.2.arc_dir, else the ARC-AGI-1 training tasks)  --run DIR  --preset tiny|small|seed (default small)  --set key=value
 *          (repeatable; phases.2.grid_* keys)  --ttt-steps N --ttt-batch N (the budget: test-time
 *          steps per task and sequences per step; default 32 and 2, about an hour for 400 tasks)
 *          --votes N  --max-tokens N  --limit N (first N tasks)
 *          --out DIR (tasks.tsv, tasks.json, solved.html; default a temp folder)
 * The last line is `N/T solved (pass@2)`.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { initBackend } from "../lib/backend/mod.ts";
import { resolveConfig, sectionOf } from "../lib/config/config.ts";
import type { Preset } from "../lib/config/config.ts";
import { loadTaskFolder } from "../datasets/arc/loader.ts";
import type { Grid } from "../datasets/arc/types.ts";
import { loadModel } from "../lib/models/io.ts";
import { Hrrm } from "../lib/models/hrrm.ts";
import { predictShape, taskViews } from "../lib/phases/arc_cells.ts";
import { arcDir, familiesOf, phase2, Phase2Section } from "../lib/phases/p2_arc.ts";
import { ARC_HRRM_PATH, type GridEvalTask, gridTtt, runArcGrid, scoreGridTasks, summarizeCells } from "../lib/phases/p2_grid.ts";
import { testContext } from "../lib/phases/testing.ts";
import { writeAtomic, writeJsonAtomic } from "../lib/util/fs.ts";
import { formatSeconds, Progress } from "../lib/util/progress.ts";
import { deriveSeed, Rng } from "../lib/util/rng.ts";
import { writeRunConfig } from "../lib/util/run_dir.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    "arc-dir": { type: "string" },
    run: { type: "string" },
    preset: { type: "string", default: "small" },
    set: { type: "string", multiple: true, default: [] },
    "ttt-steps": { type: "string", default: "32" },
    "ttt-batch": { type: "string", default: "2" },
    votes: { type: "string" },
    "max-tokens": { type: "string" },
    limit: { type: "string" },
    out: { type: "string" },
  },
});
const int = (flag: string, v: string | undefined, fallback: number, min = 0) => {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${flag} = ${v}: expected an integer >= ${min}`);
  return n;
};

await initBackend(); // prints the backend it chose
const config = resolveConfig({ preset: values.preset as Preset, phases: [phase2], sets: values.set });
const sec = sectionOf(Phase2Section, config.phases["2"] ?? {}, 2);
// The default budget (32 steps of 2 sequences) keeps 400 tasks within an hour on 2 CPU cores.
const ttt = int("ttt-steps", values["ttt-steps"], sec.grid_ttt_steps);
const tttBatch = int("ttt-batch", values["ttt-batch"], sec.grid_ttt_batch, 1);
const votes = int("votes", values.votes, sec.grid_votes, 1);
const maxTokens = int("max-tokens", values["max-tokens"], sec.grid_max_tokens, 16);
const outDir = values.out ?? await Deno.makeTempDir({ prefix: "af-arc-" });
await Deno.mkdir(outDir, { recursive: true });

const arcDirPath = values["arc-dir"] ?? arcDir(sec);
const { tasks: loaded, skipped } = await loadTaskFolder(arcDirPath, { skipInvalid: true });
for (const p of skipped) console.error(`skipped ${p.file}: ${p.error}`);
if (loaded.length === 0) throw new Error(`--arc-dir ${arcDirPath}: no ARC task files`);
const limit = int("limit", values.limit, loaded.length, 1);
const seed = deriveSeed(config.run.seed, "bench-arc");
const tasks: GridEvalTask[] = loaded.slice(0, limit).map((t) => {
  const task = { train: t.train, test: t.test.slice(0, 1) };
  return { id: t.id!, family: "real", task, views: taskViews(task, votes, new Rng(deriveSeed(seed, `views-${t.id}`))) };
});

// The model: a run's, or trained here by phase 2 (b) on generated tasks alone.
let runDir = values.run;
if (!runDir) {
  runDir = join(outDir, "run");
  await Deno.mkdir(runDir, { recursive: true });
  await writeRunConfig(runDir, config);
  console.log(`training the grid HRRM (phase 2 (b), preset ${values.preset}, ${sec.grid_steps} steps) in ${runDir}`);
  const ctx = testContext(phase2, runDir, config, true);
  await runArcGrid(ctx, { ...sec, grid_real_tasks: 0 }, { families: familiesOf(sec), heldOut: [], heldOutHashes: new Set(), realDir: "" });
}
const { model } = await loadModel(join(runDir, ARC_HRRM_PATH));
if (!(model instanceof Hrrm)) throw new Error(`${join(runDir, ARC_HRRM_PATH)}: not an HRRM`);

const t0 = performance.now();
const progress = new Progress("bench:arc", tasks.length, { intervalMs: 30_000 });
let solvedSoFar = 0;
const { scores } = await scoreGridTasks(model, tasks, {
  maxTokens,
  ttt: gridTtt({ ...sec, grid_ttt_steps: ttt, grid_ttt_batch: tttBatch }, seed),
  onTask: (i, s) => {
    solvedSoFar += +s.pass2;
    progress.update(i + 1, { solved: solvedSoFar, task: tasks[i].id });
  },
});
const seconds = (performance.now() - t0) / 1000;

// The per-task table.
const cells = (g: Grid) => g.length * g[0].length;
const sizeBin = (n: number) => (n <= 100 ? "<=100 cells" : n <= 400 ? "101-400 cells" : ">400 cells");
const rows = scores.map((s, i) => {
  const t = tasks[i].task, want = t.test[0].output;
  return {
    id: s.id,
    demos: t.train.length,
    output_cells: cells(want),
    size: sizeBin(cells(want)),
    shape_rule: predictShape(t.train, t.test[0].input).rule,
    answered: s.answered,
    shape_right: s.shape,
    cell_acc: Math.round(s.cell * 1000) / 1000,
    exact: s.exact,
    pass2: s.pass2,
    segments: Math.round(s.segments * 100) / 100,
  };
});
const header = Object.keys(rows[0]);
await writeAtomic(
  join(outDir, "tasks.tsv"),
  [header.join("\t"), ...rows.map((r) => header.map((k) => String(r[k as keyof typeof r])).join("\t"))].join("\n") + "\n",
);
const bySize = [...new Set(rows.map((r) => r.size))].sort().map((size) => ({
  size,
  ...summarizeCells(scores.filter((_, i) => rows[i].size === size)),
}));
const summary = {
  seconds: Math.round(seconds),
  ttt_steps: ttt,
  votes,
  max_tokens: maxTokens,
  run: runDir,
  ...summarizeCells(scores),
  by_size: bySize,
};
await writeJsonAtomic(join(outDir, "tasks.json"), { summary, tasks: rows });

// The HTML view: solved tasks, then the nearly solved (cell accuracy >= 0.9).
const PALETTE = ["#000", "#0074d9", "#ff4136", "#2ecc40", "#ffdc00", "#aaa", "#f012be", "#ff851b", "#7fdbff", "#870c25"];
const gridHtml = (g: Grid | null) =>
  g
    ? `<table class="g">${g.map((r) => `<tr>${r.map((v) => `<td style="background:${PALETTE[v]}"></td>`).join("")}</tr>`).join("")}</table>`
    : "<i>no answer</i>";
const shown = scores.map((s, i) => ({ s, i })).filter(({ s }) => s.pass2 || s.cell >= 0.9).sort((a, b) =>
  +b.s.pass2 - +a.s.pass2 || b.s.cell - a.s.cell
);
await writeAtomic(
  join(outDir, "solved.html"),
  `<!doctype html><meta charset="utf-8"><title>bench:arc</title><style>body{font-family:sans-serif}table.g{border-collapse:collapse}table.g td{width:10px;height:10px;padding:0;border:1px solid #333}td{vertical-align:top;padding:4px}</style>
<h1>ARC: ${scores.filter((s) => s.pass2).length}/${tasks.length} solved (pass@2)</h1>
<p>Grid-native HRRM from ${runDir}; ${ttt} test-time training steps of ${tttBatch} sequences per task on its own demonstrations, ${votes} voted views, ${maxTokens} tokens at most; ${
    formatSeconds(seconds)
  } on this machine. Below: solved tasks, then tasks with cell accuracy at least 0.9.</p>
<table><tr><th>task</th><th>test input</th><th>expected</th><th>first candidate</th><th>second candidate</th></tr>${
    shown.map(({ s, i }) =>
      `<tr><td>${s.id}<br>${s.pass2 ? "<b>solved</b>" : `cell acc ${s.cell.toFixed(3)}`}</td><td>${
        gridHtml(tasks[i].task.test[0].input)
      }</td><td>${gridHtml(tasks[i].task.test[0].output)}</td><td>${gridHtml(s.candidates[0] ?? null)}</td><td>${
        gridHtml(s.candidates[1] ?? null)
      }</td></tr>`
    ).join("")
  }</table>`,
);

console.log(`\n${outDir}/tasks.tsv, tasks.json, solved.html; ${formatSeconds(seconds)} for ${tasks.length} tasks`);
console.log("size            tasks  pass@2  exact  cell acc  right shape  answered");
for (const b of bySize) {
  console.log(
    `${b.size.padEnd(15)} ${String(b.tasks).padEnd(6)} ${String(b.pass_at_2).padEnd(7)} ${String(b.exact).padEnd(6)} ${
      String(b.cell_acc).padEnd(9)
    } ${String(b.shape_acc).padEnd(12)} ${b.answered}`,
  );
}
const solved = scores.filter((s) => s.pass2);
if (solved.length) console.log(`solved: ${solved.map((s) => s.id).join(", ")}`);
console.log(`${solved.length}/${tasks.length} solved (pass@2)`);
model.dispose();
