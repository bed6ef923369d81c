/**
 * The real pipeline end to end on the tiny preset, through the CLI as a user runs it:
 * phases 1-6 complete with every validation gate passed and a report with each phase's
 * sections; a run killed during phase 3 resumes to completion; and the killed-and-resumed
 * run's results equal the uninterrupted run's (each phase reproducible from its seed).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { RunState } from "../lib/util/run_dir.ts";
import type { PhaseResultFile } from "../lib/util/run_dir.ts";
import { exists, readJson } from "../lib/util/fs.ts";
import { PHASES } from "../lib/phases/mod.ts";
import { openRun, phaseReport, runPhase } from "../lib/pipeline/session.ts";
import { checkResolved } from "../lib/config/config.ts";
import { initBackend } from "../lib/backend/mod.ts";
import { compareMerges } from "../lib/evolve/compare.ts";
import { queueFitness } from "../lib/search/queue.ts";
import { redisAvailable, redisForRun } from "../lib/util/redis_server.ts";

const CLI = new URL("../lib/cli.ts", import.meta.url).pathname;
const WORKER = new URL("../lib/search/worker.ts", import.meta.url).pathname;
const base = await Deno.makeTempDir({ prefix: "af-e2e-" });
const baselines = `pipeline.baseline_file=${join(base, "baselines.json")}`;

function pipeline(args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "--backend", "wasm", ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

async function phaseResults(dir: string): Promise<Map<number, PhaseResultFile>> {
  const out = new Map<number, PhaseResultFile>();
  for await (const e of Deno.readDir(dir)) {
    const m = e.name.match(/^phase-(\d+)-/);
    if (m && await exists(join(dir, e.name, "result.json"))) out.set(Number(m[1]), await readJson(join(dir, e.name, "result.json")));
  }
  return out;
}

/** Metrics without wall-clock fields and the resume step (all that may differ between two runs of one seed). */
function timeless(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(timeless);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v).filter(([k]) => !/seconds|_ms$|_s$|per_s|wall|resumed_from/.test(k)).map(([k, x]) => [k, timeless(x)]),
    );
  }
  return v;
}

const fullRun = join(base, "full");

Deno.test("tiny pipeline: phases 1-7 complete, every gate passes, report has every phase's sections", async () => {
  const t0 = performance.now();
  const out = await pipeline(["--preset", "tiny", "--out", fullRun, "--set", baselines]).output();
  const seconds = (performance.now() - t0) / 1000;
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr.slice(-4000));
  const state = await readJson<RunState>(join(fullRun, "state.json"));
  const upTo6 = [1, 2, 3, 4, 5, 6].reduce((a, id) => a + (state.phases[String(id)].seconds ?? 0), 0);
  console.log(
    `tiny pipeline: phases 1-6 ${upTo6.toFixed(1)} s, phase 7 ${state.phases["7"].seconds?.toFixed(1)} s, process ${seconds.toFixed(1)} s`,
  );
  assert.equal(state.status, "completed");
  assert.deepEqual(Object.keys(state.phases), ["1", "2", "3", "4", "5", "6", "7"]);
  const results = await phaseResults(fullRun);
  for (let id = 1; id <= 7; id++) {
    const r = results.get(id)!;
    assert.equal(r.status, "completed", `phase ${id}`);
    assert.ok(r.validation.passed && r.validation.checks.length > 0, `phase ${id} has passing gate checks`);
    for (const a of r.artifacts) assert.ok(await exists(join(fullRun, a)), `phase ${id} artifact ${a} exists`);
  }
  const metrics = (await Deno.readTextFile(join(fullRun, "metrics.jsonl"))).trim().split("\n").map((l) => JSON.parse(l));
  for (let id = 1; id <= 6; id++) assert.ok(metrics.some((m) => m.phase === id && typeof m.loss === "number"), `phase ${id} logged losses`);
  const report = await Deno.readTextFile(join(fullRun, "report.html"));
  // Self-contained: no external script or stylesheet (plotly's inlined source itself mentions CDN URLs in strings).
  assert.ok(!/<script[^>]+src=/.test(report) && !/<link[^>]+href="?https?:/.test(report), "report is self-contained");
  for (
    const section of ["Phase 1", "Phase 2", "Phase 3", "Phase 4", "Phase 5", "Phase 6: retention", "Phase 7: scores", "Phase 7: baselines"]
  ) {
    assert.ok(report.includes(section), `report has a '${section}' section`);
  }
  for (const word of ["grokking", "halting", "heatmap"]) assert.ok(report.toLowerCase().includes(word), `report shows the ${word} figure`);
  // Phase 7's files: the evaluation, the compression report and file, the exports checked by their runtimes.
  const p7 = join(fullRun, "phase-7-evaluation");
  const evalJson = await readJson<{
    scores: { overall: number; formula: string; reasoning: number; reasoning_answer_tokens: number };
    suites: { reasoning: Record<string, { solved: number; value: number; details: Record<string, number> }> };
    baselines: { table: Record<string, Record<string, number>> };
    recommendations: string[];
  }>(join(p7, "eval.json"));
  assert.ok(Number.isFinite(evalJson.scores.overall) && evalJson.scores.formula.includes("overall ="));
  // Reasoning counts items solved whole (ARC grids, puzzle answers, final numbers); the answer-token accuracies stand beside it.
  const stages = ["2", "3", "4"].map((id) => evalJson.suites.reasoning[id]);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(stages.every((st) => st.solved === st.details.exact), "each reasoning stage's task success is its exact solve rate");
  assert.ok(Math.abs(evalJson.scores.reasoning - mean(stages.map((st) => st.solved))) < 1e-3);
  assert.ok(Math.abs(evalJson.scores.reasoning_answer_tokens - mean(stages.map((st) => st.value))) < 1e-3);
  assert.ok(["phase2_solved", "phase2_cell_acc", "phase3_solved", "phase4_solved"].every((k) => k in evalJson.baselines.table.integrated));
  assert.ok(evalJson.recommendations.length > 0);
  const comp = await readJson<{ file_bytes: number; target_bytes: number; retention: number }>(join(p7, "compression.json"));
  assert.equal((await Deno.stat(join(p7, "model.compressed"))).size, comp.file_bytes);
  assert.ok(comp.file_bytes <= comp.target_bytes);
  for (const f of ["export/hf/config.json", "export/hf/model.safetensors", "export/model.onnx", "export/tfjs/model.json"]) {
    assert.ok(await exists(join(p7, f)), `phase 7 wrote ${f}`);
  }
  const exp = results.get(7)!.metrics.exports as { onnx_max_abs_diff: number; hf_max_abs_diff: number; tfjs_max_abs_diff: number };
  assert.ok(exp.onnx_max_abs_diff <= 1e-4 && exp.hf_max_abs_diff === 0 && exp.tfjs_max_abs_diff === 0);
});

/**
 * The numbers of a model that did not learn, in place of each phase's own: its base (or an
 * untrained / input-blind model) scored as if it were the trained one. Every gate must fail them.
 */
// deno-lint-ignore no-explicit-any
const DID_NOT_LEARN: Record<number, (m: Record<string, any>) => Record<string, unknown>> = {
  1: (m) => ({
    ...m,
    variants: Object.fromEntries(
      Object.entries(m.variants).map((
        [v, r],
      ) => [v, { ...(r as object), test_loss: m.baselines.unigram_loss, test_token_acc: m.baselines.majority_token_acc }]),
    ),
  }),
  2: (m) => ({
    ...m,
    cell_acc: m.base.cell_acc,
    heldout_token_acc: m.base_heldout_token_acc,
    grid: { ...m.grid, heldout: { ...m.grid.heldout, ...m.copy_input } }, // part (b) no better than copying the input
  }),
  3: (m) => ({
    ...m,
    mod_val_acc: m.mod_chance,
    mod_train_acc: m.mod_chance,
    token_acc: m.base_token_acc,
    grids: m.grids.map((g: Record<string, unknown>) => ({ ...g, hrrm: g.one_segment })), // recursion adds nothing
  }),
  4: (m) => ({ ...m, token_acc: m.base_token_acc, loss: m.base_loss }),
  5: (m) => ({ ...m, gain_beyond_extended: 0, beyond_extended_exact: m.base.beyond_extended_exact }),
  6: (m) => ({ ...m, mean_integrated: m.mean_base }),
  7: (m) => ({ ...m, scores: { ...m.scores, reasoning_answer_tokens: m.standard_reasoning_answer_tokens } }),
};

Deno.test("every phase's gate fails for a model that did not learn (its base or an untrained model's numbers)", async () => {
  const config = await readJson<{ phases: Record<string, Record<string, unknown>> }>(join(fullRun, "config.json"));
  const results = await phaseResults(fullRun);
  assert.deepEqual([...results.keys()].sort(), [1, 2, 3, 4, 5, 6, 7]);
  for (const p of PHASES) {
    const ctx = { phase: p.id, phaseConfig: config.phases[String(p.id)] } as unknown as Parameters<typeof p.validate>[1];
    const real = results.get(p.id)!;
    assert.ok(p.validate({ metrics: real.metrics }, ctx).every((c) => c.passed), `phase ${p.id} passes on its own numbers`);
    const failed = p.validate({ metrics: DID_NOT_LEARN[p.id](real.metrics) }, ctx).filter((c) => !c.passed);
    assert.ok(failed.length > 0, `phase ${p.id}: a model that did not learn passed every check`);
    console.log(
      `phase ${p.id}: a model that did not learn fails ${failed.map((c) => `"${c.name}" (${c.value} < ${c.threshold})`).join(", ")}`,
    );
  }
});

Deno.test("phase 6 with merge = evolved: breeds a recipe on the run's specialists and reports its search", async () => {
  // A copy of the full run, phase 6 rerun from it with the evolved merge (2 generations).
  const dir = join(base, "evolved");
  await new Deno.Command("cp", { args: ["-r", fullRun, dir] }).output();
  const run = await openRun({
    runDir: dir,
    preset: "tiny",
    backend: "wasm",
    log: () => {},
    sets: ["phases.6.merge=evolved", "phases.6.evolve_generations=2", "phases.6.evolve_popsize=4"],
  });
  const r = await runPhase(run, 6, { rerun: true, live: false });
  const ev = r.metrics.evolve as {
    evaluations: number;
    start_fitness: number;
    best_fitness: number;
    history: unknown[];
    coefficients: number[][];
  };
  assert.equal(r.metrics.merge, "evolved");
  assert.equal(ev.history.length, 2);
  assert.equal(ev.evaluations, 1 + 2 * 4, "the start and 2 generations of 4");
  assert.ok(ev.best_fitness >= ev.start_fitness, `never worse than the start on validation: ${ev.best_fitness} vs ${ev.start_fitness}`);
  assert.equal(ev.coefficients.length, (r.metrics.merged_phases as number[]).length);
  const titles = phaseReport(run, r).map((s) => s.title);
  assert.ok(
    titles.some((t) => t.includes("fitness by generation")) && titles.some((t) => t.includes("coefficients by layer")),
    titles.join("; "),
  );
  const taskArithmetic = (await phaseResults(fullRun)).get(6)!.metrics;
  console.log(
    `phase 6 at tiny: merged ${taskArithmetic.mean_merged} -> integrated ${taskArithmetic.mean_integrated} (task arithmetic); ` +
      `${r.metrics.mean_merged} -> ${r.metrics.mean_integrated} (evolved ties, ${ev.evaluations} evaluations)`,
  );
});

Deno.test({
  name: "breeding's population members on a BullMQ worker: the same recipes, fitnesses and held-out scores as in one process",
  ignore: !redisAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { url, stop } = await redisForRun();
    const queue = `af-e2e-${crypto.randomUUID().slice(0, 8)}`;
    const worker = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", WORKER, "--redis", url, "--queue", queue, "--backend", "wasm"],
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    try {
      await initBackend("wasm", { quiet: true });
      const cfg = join(fullRun, "config.json");
      const config = checkResolved(await readJson(cfg), PHASES, cfg);
      const o = { methods: ["ties" as const], generations: 2, popsize: 3, seed: 1, log: () => {} };
      const local = await compareMerges(fullRun, config, o);
      const qf = await queueFitness({ url, queue });
      const remote = await compareMerges(fullRun, config, { ...o, evaluate: qf.evaluate(fullRun) }).finally(() => qf.close());
      const runs = (r: typeof local) => r.runs.map(({ best, history, evaluations }) => ({ best, history, evaluations }));
      assert.deepEqual(runs(remote), runs(local));
      assert.deepEqual(remote.rows, local.rows);
      console.log(
        `breeding on a worker: ${remote.runs[0].evaluations} evaluations, best validation fitness ${remote.runs[0].best.fitness}`,
      );
    } finally {
      worker.kill("SIGKILL");
      await worker.status;
      await stop();
    }
  },
});

Deno.test("a run killed during phase 3 resumes to completion, with the uninterrupted run's results", async () => {
  const dir = join(base, "killed");
  const child = pipeline(["--preset", "tiny", "--to", "4", "--out", dir, "--set", baselines]).spawn();
  // Kill once phase 3 has written a checkpoint (so the resume really continues mid-phase).
  const deadline = Date.now() + 8 * 60_000;
  let killedInPhase3 = false;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const state = await readJson<RunState>(join(dir, "state.json")).catch(() => undefined);
    if (state?.phases["3"]?.status !== "running") continue;
    const ckpt = join(dir, "phase-3-puzzles", "ckpt");
    let saved = false;
    if (await exists(ckpt)) {
      for await (const m of Deno.readDir(ckpt)) if (await exists(join(ckpt, m.name, "latest.json"))) saved = true;
    }
    if (saved) {
      child.kill("SIGKILL");
      killedInPhase3 = true;
      break;
    }
  }
  const status = await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  assert.ok(killedInPhase3, `the run reached a phase-3 checkpoint and was killed (exit ${status.code})`);
  const killed = await readJson<RunState>(join(dir, "state.json"));
  assert.equal(killed.phases["3"].status, "running");
  assert.equal(killed.phases["4"].status, "pending");

  const out = await pipeline(["--resume", dir]).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr).slice(-4000));
  const state = await readJson<RunState>(join(dir, "state.json"));
  assert.equal(state.status, "completed");
  assert.equal(state.phases["1"].attempts, 1, "completed phases were not run again");
  assert.equal(state.phases["3"].attempts, 2, "phase 3 was resumed");
  assert.equal(state.phases["4"].status, "completed");

  // Same seed, same backend: every phase's numbers equal the uninterrupted run's.
  const a = await phaseResults(fullRun), b = await phaseResults(dir);
  for (const id of [1, 2, 3, 4]) {
    if (!a.has(id)) continue; // the first test failed before this phase; it reports that
    assert.deepEqual(timeless(b.get(id)!.metrics), timeless(a.get(id)!.metrics), `phase ${id} reproduces from its seed`);
  }
});
