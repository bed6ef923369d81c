/**
 * The search on a fake phase whose score depends on its learning rate and steps: it beats the
 * default config, spends fewer trial-steps than every trial to the end, and a search stopped
 * midway resumes to exactly the uninterrupted one.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { z } from "zod";
import { openRun, runPhase } from "../pipeline/session.ts";
import { createModel } from "../models/registry.ts";
import { saveModel } from "../models/io.ts";
import { check, type PhaseContext, type PhaseSpec } from "../phases/spec.ts";
import { searchReport } from "./report.ts";
import { type Executor, inProcess, runSearch, type SearchJob, type SearchOptions, type SearchState, searchSummary } from "./run.ts";
import { parseSpace } from "./space.ts";
import { fakeScore, NOTHING } from "./testdata/slow_phases.ts";

/** Phase 1 does nothing; phase 2's score rises with steps and peaks at lr = 10^-2.5 (its default lr 0.1 is poor). */
const PHASES: PhaseSpec[] = [
  NOTHING,
  {
    id: 2,
    name: "two",
    title: "a score of lr and steps",
    section: z.strictObject({ steps: z.number().int().default(90), lr: z.number().default(0.1) }),
    run(ctx: PhaseContext) {
      const c = ctx.phaseConfig as { steps: number; lr: number };
      return Promise.resolve({ metrics: { score: fakeScore(c.steps, c.lr) } });
    },
    validate: (out) => [check("score", out.metrics.score as number, -1)],
  },
];

Deno.test("runSearch: beats the default config, ASHA spends less than every trial to the end, a stopped search resumes exactly", async () => {
  const base = await Deno.makeTempDir({ prefix: "af-search-" });
  const baseRun = join(base, "base");
  const quiet = { backend: "cpu" as const, log: () => {}, sets: [`pipeline.baseline_file=${join(base, "baselines.json")}`] };
  const run = await openRun({ runDir: baseRun, preset: "tiny", phases: PHASES, ...quiet });
  await runPhase(run, 1, { live: false });
  const opts = (out: string): SearchOptions => ({
    baseRun,
    phase: 2,
    metric: "score",
    space: parseSpace({ "phases.2.lr": { log_uniform: [1e-4, 1] } }, "space"),
    resourceKey: "phases.2.steps",
    asha: { minResource: 10, maxResource: 90, eta: 3, maxTrials: 9 },
    sampler: "tpe",
    seed: 1,
    out,
    phases: PHASES,
    backend: "cpu",
    log: () => {},
  });
  const whole = await runSearch(opts(join(base, "whole")));
  assert.ok(whole.done);
  assert.equal(whole.objective, "result", "a phase without a stage is scored on its result");
  const s = searchSummary(whole);
  console.log(`default ${s.baseline}, best ${s.best?.score} at rung ${s.best?.rung}; trial-steps ${s.spent} vs ${s.everyTrialToTheEnd}`);
  assert.ok(s.best && s.best.rung === 2 && s.best.score > s.baseline! + 0.1, JSON.stringify(s));
  assert.ok(s.spent < s.everyTrialToTheEnd, `${s.spent} vs ${s.everyTrialToTheEnd}`);
  // Stopped after 4 rungs (the baseline and 3 trials), then resumed: the same trials and scores.
  const out = join(base, "stopped");
  const part = await runSearch({ ...opts(out), maxJobs: 4 });
  assert.equal(part.jobs, 4);
  assert.ok(!part.done);
  const resumed = await runSearch(opts(out));
  const strip = (st: typeof whole) => st.trials.map((t) => ({ ...t, results: t.results.map(({ seconds: _, ...r }) => r) }));
  assert.deepEqual(strip(resumed), strip(whole));
  assert.equal(resumed.jobs, whole.jobs);
  // Other options in the same folder are refused.
  await assert.rejects(runSearch({ ...opts(out), seed: 2 }), /a search with other options is there/);
  const html = await searchReport(whole);
  assert.ok(html.includes("parcoords") && html.includes("ASHA rungs"));
  await Deno.remove(base, { recursive: true });
});

Deno.test("runSearch: a phase with a stage is scored on a validation context, its result's metric recorded beside", async () => {
  const base = await Deno.makeTempDir({ prefix: "af-search-val-" });
  const quality = (lr: number) => Math.exp(-((Math.log10(lr) + 2.5) ** 2));
  // The same quality, plus a small seed-dependent term: validation and held-out differ only through the seed.
  const bySeed = (seed: number) => (seed % 997) / 1e5;
  const staged: PhaseSpec = {
    ...PHASES[1],
    async run(ctx: PhaseContext) {
      const c = ctx.phaseConfig as { lr: number };
      const model = createModel("decoder", { vocabSize: 8, dModel: 8, nHeads: 1, nLayers: 1, maxSeqLen: 8 }, 0);
      await saveModel(join(ctx.dir, "model.safetensors"), model, {
        key: "decoder",
        config: { vocabSize: 8, dModel: 8, nHeads: 1, nLayers: 1, maxSeqLen: 8 },
      });
      model.dispose();
      return { metrics: { score: quality(c.lr) + bySeed(ctx.seed) }, artifacts: ["phase-2-two/model.safetensors"] };
    },
    stage: {
      metric: "score",
      replay: () => [],
      seqLen: () => 8,
      evaluate: (_m, s) => Promise.resolve({ score: quality((s.phaseConfig as { lr: number }).lr) + bySeed(s.seed) }),
    },
  };
  const phases = [PHASES[0], staged];
  const baseRun = join(base, "base");
  const run = await openRun({
    runDir: baseRun,
    preset: "tiny",
    phases,
    backend: "cpu",
    log: () => {},
    sets: [`pipeline.baseline_file=${join(base, "b.json")}`],
  });
  await runPhase(run, 1, { live: false });
  const st = await runSearch({
    baseRun,
    phase: 2,
    space: parseSpace({ "phases.2.lr": { log_uniform: [1e-4, 1] } }, "space"),
    resourceKey: "phases.2.steps",
    asha: { minResource: 10, maxResource: 30, eta: 3, maxTrials: 3 },
    sampler: "random",
    seed: 2,
    out: join(base, "search"),
    phases,
    backend: "cpu",
    log: () => {},
  });
  assert.equal(st.objective, "validation");
  assert.equal(st.metric, "score");
  for (const t of st.trials) {
    for (const r of t.results) {
      assert.ok(typeof r.heldout === "number" && r.heldout !== r.score, `validation ${r.score} and held-out ${r.heldout} differ by seed`);
      assert.ok(Math.abs(r.heldout! - r.score) < 0.01, "the same model quality underneath");
    }
  }
  assert.ok(st.baseline && st.baseline.heldout !== st.baseline.score);
  await Deno.remove(base, { recursive: true });
});

Deno.test("runSearch with 2 jobs in flight: the same trials and scores whatever order the jobs finish in", async () => {
  const base = await Deno.makeTempDir({ prefix: "af-search-par-" });
  const baseRun = join(base, "base");
  const run = await openRun({
    runDir: baseRun,
    preset: "tiny",
    phases: PHASES,
    backend: "cpu",
    log: () => {},
    sets: [`pipeline.baseline_file=${join(base, "b.json")}`],
  });
  await runPhase(run, 1, { live: false });
  const opts = (out: string, executor?: Executor): SearchOptions => ({
    baseRun,
    phase: 2,
    metric: "score",
    space: parseSpace({ "phases.2.lr": { log_uniform: [1e-4, 1] } }, "space"),
    resourceKey: "phases.2.steps",
    asha: { minResource: 10, maxResource: 90, eta: 3, maxTrials: 9 },
    sampler: "tpe",
    seed: 3,
    out,
    parallel: 2,
    executor,
    phases: PHASES,
    backend: "cpu",
    log: () => {},
  });
  // Jobs run one at a time but finish after a random delay, so later jobs often finish first.
  const finished: number[] = [];
  const shuffled = (seed: number): Executor => {
    const inner = inProcess({ phases: PHASES, backend: "cpu" });
    let x = seed;
    return {
      async run(c, job) {
        const out = await inner.run(c, job);
        x = (x * 1103515245 + 12345) % 2147483648;
        await new Promise((r) => setTimeout(r, x % 40));
        finished.push((job as SearchJob).n);
        return out;
      },
    };
  };
  const strip = (st: SearchState) => ({
    trials: st.trials.map((t) => ({ ...t, results: t.results.map(({ seconds: _, ...r }) => r) })),
    queue: st.queue.map((j) => j.name),
  });
  const plain = await runSearch(opts(join(base, "plain")));
  assert.ok(plain.done);
  for (const seed of [1, 2]) {
    const other = await runSearch(opts(join(base, `shuffled-${seed}`), shuffled(seed)));
    assert.deepEqual(strip(other), strip(plain));
  }
  assert.ok(finished.some((n, i) => i > 0 && n < finished[i - 1]), `some job finished before an earlier one: ${finished}`);
  const s = searchSummary(plain);
  assert.ok(s.best && s.best.score > s.baseline! + 0.1, JSON.stringify(s));
  // The number of jobs in flight is part of the search: resuming with another one is refused.
  await assert.rejects(runSearch({ ...opts(join(base, "plain")), parallel: 1 }), /parallel differ/);
  await Deno.remove(base, { recursive: true });
});
