import { acquireRunLock } from "../util/run_lock.ts";
import { setTextSink } from "../viz/notebook.ts";
import { z } from "zod";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readJson, writeJsonAtomic } from "../util/fs.ts";
import { check, type PhaseContext, type PhaseSpec } from "../phases/spec.ts";
import type { RunState } from "../util/run_dir.ts";
import {
  configChanges,
  ensurePhases,
  notebookSettings,
  openRun,
  overallStatus,
  phaseConfigRows,
  phaseReport,
  phaseResult,
  phaseTable,
  ROOT,
  runMetrics,
  runPhase,
  runState,
} from "./session.ts";

/** Fake phases: each counts its runs, logs two metrics records, records the cwd it ran in; fails its gate with `fail`, throws with `crash`. */
function fakePhases(ids = [1, 2, 3]) {
  const runs: Record<number, number> = {};
  const cwd: Record<number, string> = {};
  const make = (id: number): PhaseSpec => ({
    id,
    name: `fake${id}`,
    title: `fake phase ${id}`,
    section: z.strictObject({ steps: z.number().int().default(2), fail: z.boolean().default(false), crash: z.boolean().default(false) }),
    presets: { tiny: { steps: 1 } },
    async run(ctx: PhaseContext) {
      runs[id] = (runs[id] ?? 0) + 1;
      if (ctx.phaseConfig.crash) throw new Error(`fake ${id} crashed`);
      cwd[id] = Deno.cwd();
      const prev = id > 1 ? await ctx.previous(id - 1) : undefined;
      if (id > 1 && ids.includes(id - 1) && !prev) throw new Error(`phase ${id - 1} missing`);
      for (let step = 1; step <= 2; step++) await ctx.log({ model: "m", step, loss: 3 - step + id });
      return { metrics: { score: id * 10 + (ctx.phaseConfig.steps as number), seed: ctx.seed } };
    },
    validate: (out, ctx) => [check("not told to fail", ctx.phaseConfig.fail ? 0 : 1, 1), check("score", out.metrics.score as number, 0)],
    report: (r) => [{ title: `fake ${id} section`, html: `<p>score ${r.metrics.score}</p>` }],
  });
  return { phases: ids.map(make), runs, cwd };
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "af-session-" });
}

/** Quiet, on the cpu backend, with the phase-time baselines kept in `base` (not the repository's runs/). */
const quiet = (base: string, sets: string[] = []) => ({
  backend: "cpu" as const,
  log: () => {},
  sets: [`pipeline.baseline_file=${join(base, "baselines.json")}`, ...sets],
});

Deno.test("openRun creates a run at its preset, reopens it with the same config, refuses another preset", async () => {
  const base = await tempDir();
  const { phases } = fakePhases();
  const runDir = join(base, "run");
  const run = await openRun({ runDir, preset: "tiny", phases, ...quiet(base) });
  assert.equal(run.runDir, runDir);
  assert.equal(run.config.run.preset, "tiny");
  assert.equal(run.config.phases["1"].steps, 1); // the tiny preset's value, not the default 2
  assert.deepEqual(await readJson(join(runDir, "config.json")), run.config);
  const state = await readJson<RunState>(join(runDir, "state.json"));
  assert.deepEqual(state.phases, {});

  const again = await openRun({ runDir, preset: "tiny", phases, ...quiet(base) });
  assert.deepEqual(again.config, run.config);
  await assert.rejects(() => openRun({ runDir, preset: "small", phases, ...quiet(base) }), /made with preset 'tiny', not 'small'/);
  await assert.rejects(
    () => openRun({ runDir: join(base, "x"), preset: "huge", phases, ...quiet(base) }),
    /preset 'huge': expected one of tiny, small, seed/,
  );

  const lines: string[] = [];
  const changed = await openRun({ runDir, preset: "tiny", phases, ...quiet(base, ["phases.2.steps=7"]), log: (l) => lines.push(l) });
  assert.equal(changed.config.phases["2"].steps, 7);
  assert.equal((await readJson<typeof run.config>(join(runDir, "config.json"))).phases["2"].steps, 7);
  assert.ok(lines.some((l) => l.includes("phases.2.steps: 1 -> 7")), lines.join("\n"));
  await Deno.remove(base, { recursive: true });
});

Deno.test("a phase registered after the run was made gets its section at the run's preset", async () => {
  const base = await tempDir();
  const runDir = join(base, "run");
  await openRun({ runDir, preset: "tiny", phases: fakePhases([1]).phases, ...quiet(base) });
  const lines: string[] = [];
  const run = await openRun({ runDir, preset: "tiny", phases: fakePhases([1, 2]).phases, ...quiet(base), log: (l) => lines.push(l) });
  assert.equal(run.config.phases["2"].steps, 1);
  assert.ok(lines.some((l) => l.includes("phases.2 (new)")), lines.join("\n"));
  await Deno.remove(base, { recursive: true });
});

Deno.test("runPhase runs the missing earlier phases first, then reuses results unless told to rerun", async () => {
  const base = await tempDir();
  const { phases, runs, cwd } = fakePhases();
  const run = await openRun({ runDir: join(base, "run"), preset: "tiny", phases, ...quiet(base) });
  const here = Deno.cwd();
  const r2 = await runPhase(run, 2);
  assert.deepEqual(runs, { 1: 1, 2: 1 });
  assert.equal(r2.status, "completed");
  assert.equal(r2.metrics.score, 21);
  assert.equal(cwd[1], ROOT.replace(/\/$/, "")); // phases run from the repository root, as the CLI does
  assert.equal(Deno.cwd(), here); // and the caller's directory is restored
  const state = await readJson<RunState>(join(run.runDir, "state.json"));
  assert.deepEqual(Object.keys(state.phases), ["1", "2"]);
  assert.equal(state.status, "completed");
  assert.ok((await Deno.readTextFile(join(run.runDir, "report.html"))).includes("fake 2 section"));

  // Reused: nothing runs again.
  await ensurePhases(run, 3);
  assert.equal((await runPhase(run, 2)).metrics.score, 21);
  assert.deepEqual(runs, { 1: 1, 2: 1 });

  // Rerun from scratch: its metrics are replaced, not appended to.
  assert.equal((await runMetrics(run, 2)).length, 2);
  await runPhase(run, 2, { rerun: true });
  assert.deepEqual(runs, { 1: 1, 2: 2 });
  assert.equal((await runMetrics(run, 2)).length, 2);
  assert.equal((await runMetrics(run)).length, 4);
  assert.deepEqual(phaseReport(run, r2), [{ title: "fake 2 section", html: "<p>score 21</p>" }]);
  assert.deepEqual(phaseConfigRows(run, 2), [{ key: "phases.2.steps", value: 1 }, { key: "phases.2.fail", value: false }, {
    key: "phases.2.crash",
    value: false,
  }]);
  await Deno.remove(base, { recursive: true });
});

Deno.test("runPhase with live: the loss chart redraws while the phase trains and says what it cost", async () => {
  const base = await tempDir();
  const slow: PhaseSpec = {
    id: 1,
    name: "slow",
    title: "a phase that logs a step every 40 ms",
    section: z.strictObject({}),
    async run(ctx: PhaseContext) {
      for (let step = 1; step <= 8; step++) {
        await new Promise((r) => setTimeout(r, 40));
        await ctx.log({ model: "m", step, loss: 5 - step / 2 });
      }
      return { metrics: { score: 1 } };
    },
    validate: (out) => [check("score", out.metrics.score as number, 0)],
  };
  const lines: string[] = [];
  const run = await openRun({ runDir: join(base, "run"), preset: "tiny", phases: [slow], ...quiet(base), log: (l) => lines.push(l) });
  const shown: string[] = [];
  const prev = setTextSink((t) => shown.push(t));
  try {
    await runPhase(run, 1, { live: true, liveEveryMs: 25 });
  } finally {
    setTextSink(prev);
  }
  const cost = lines.find((l) => l.startsWith("live loss chart:"));
  assert.ok(cost, lines.join("\n"));
  const [, redraws, polls] = cost.match(/(\d+) redraws from (\d+) polls/)!.map(Number);
  assert.ok(redraws >= 3 && polls >= redraws, `redrawn while training, not only at the end: ${cost}`);
  // Outside Jupyter the chart prints its last state once, with every logged step.
  assert.equal(shown.length, 1, shown.join("\n"));
  assert.match(shown[0], /phase 1 training loss \(live: 8 logged steps\)/);
  await Deno.remove(base, { recursive: true });
});

Deno.test("ensurePhases skips phases not registered and runs only what is missing", async () => {
  const base = await tempDir();
  const { phases, runs } = fakePhases([1, 3]);
  const lines: string[] = [];
  const run = await openRun({ runDir: join(base, "run"), preset: "tiny", phases, ...quiet(base), log: (l) => lines.push(l) });
  await ensurePhases(run, 4);
  assert.ok(lines.some((l) => l.startsWith("phase 2 (ARC visual reasoning) is not registered yet")), lines.join("\n"));
  assert.deepEqual(runs, { 1: 1, 3: 1 });
  await assert.rejects(
    () => runPhase(run, 2),
    /phase 2 \(ARC visual reasoning\) is not registered in lib\/phases\/mod.ts; registered: 1 \(fake1\), 3 \(fake3\)/,
  );
  await Deno.remove(base, { recursive: true });
});

Deno.test("a failed gate returns the failed result, blocks later phases, and leaves the other phases' state alone", async () => {
  const base = await tempDir();
  const { phases } = fakePhases([1, 2, 3, 4]);
  const run = await openRun({ runDir: join(base, "run"), preset: "tiny", phases, ...quiet(base, ["phases.3.fail=true"]) });
  // A failed gate: the result comes back (for its charts); the failed phase blocks the ones after it.
  const r3 = await runPhase(run, 3);
  assert.equal(r3.status, "failed");
  assert.match(r3.error ?? "", /validation failed: not told to fail = 0 \(threshold 1\)/);
  const state = await readJson<RunState>(join(run.runDir, "state.json"));
  assert.deepEqual(Object.fromEntries(Object.entries(state.phases).map(([k, p]) => [k, p.status])), {
    1: "completed",
    2: "completed",
    3: "failed",
  });
  assert.equal(state.status, "failed");
  assert.equal((await phaseResult(run, 3))?.status, "failed");
  await assert.rejects(() => runPhase(run, 4), /phase 3 \(fake3\) failed: validation failed: not told to fail = 0/);
  const table = await phaseTable(run);
  assert.deepEqual(table.map((r) => [r.phase, r.status, r.checks_passed]), [[1, "completed", "2/2"], [2, "completed", "2/2"], [
    3,
    "failed",
    "1/2",
  ]]);
  assert.match(String(table[2].error), /validation failed/);
  await Deno.remove(base, { recursive: true });
});

Deno.test("a phase that throws makes runPhase throw with its error", async () => {
  const base = await tempDir();
  const run = await openRun({
    runDir: join(base, "run"),
    preset: "tiny",
    phases: fakePhases([1]).phases,
    ...quiet(base, ["phases.1.crash=true"]),
  });
  await assert.rejects(() => runPhase(run, 1), /phase 1 \(fake1\) failed: Error: fake 1 crashed/);
  await Deno.remove(base, { recursive: true });
});

Deno.test("a run another process is writing: openRun opens it for reading, runPhase and ensurePhases are refused and write nothing", async () => {
  const base = await tempDir();
  const { phases, runs } = fakePhases();
  const runDir = join(base, "run");
  await openRun({ runDir, preset: "tiny", phases, ...quiet(base) });
  const held = acquireRunLock(runDir, "deno task pipeline --resume (another terminal)", () => {});
  try {
    const lines: string[] = [];
    const run = await openRun({ runDir, preset: "tiny", phases, ...quiet(base), log: (l) => lines.push(l) });
    assert.match(lines.join("\n"), /opened for reading only: .*being written by pid \d+ .*another terminal/);
    const before = await Deno.readTextFile(join(runDir, "state.json"));
    await assert.rejects(() => runPhase(run, 2), /run\.lock: the run is being written by pid \d+ .*another terminal/);
    await assert.rejects(() => ensurePhases(run, 3), /being written by/);
    assert.equal(await Deno.readTextFile(join(runDir, "state.json")), before);
    assert.deepEqual(runs, {}, "no phase ran");
  } finally {
    held.release();
  }
  await Deno.remove(base, { recursive: true });
});

Deno.test("runState adds back phases whose result exists but that state.json lost", async () => {
  const base = await tempDir();
  const { phases } = fakePhases();
  const run = await openRun({ runDir: join(base, "run"), preset: "tiny", phases, ...quiet(base) });
  await runPhase(run, 2);
  const file = join(run.runDir, "state.json");
  const state = await readJson<RunState>(file);
  delete state.phases["1"];
  await writeJsonAtomic(file, state);
  const repaired = await runState(run);
  assert.equal(repaired.phases["1"].status, "completed");
  assert.equal(overallStatus(repaired), "completed");
  await Deno.remove(base, { recursive: true });
});

Deno.test("notebookSettings: the environment overrides the first cell's settings", () => {
  const keys = ["AGENT_FORGE_PRESET", "AGENT_FORGE_RUN_DIR", "AGENT_FORGE_SET"];
  const saved = keys.map((k) => Deno.env.get(k));
  try {
    for (const k of keys) Deno.env.delete(k);
    assert.deepEqual(notebookSettings({ preset: "small", runDir: "", sets: ["a=1"] }), { preset: "small", runDir: "", sets: ["a=1"] });
    Deno.env.set("AGENT_FORGE_PRESET", "tiny");
    Deno.env.set("AGENT_FORGE_RUN_DIR", "/tmp/x");
    Deno.env.set("AGENT_FORGE_SET", "b=2; c=3;");
    assert.deepEqual(notebookSettings({ preset: "small", runDir: "", sets: ["a=1"] }), {
      preset: "tiny",
      runDir: "/tmp/x",
      sets: ["a=1", "b=2", "c=3"],
    });
  } finally {
    keys.forEach((k, i) => (saved[i] === undefined ? Deno.env.delete(k) : Deno.env.set(k, saved[i]!)));
  }
});

Deno.test("configChanges names changed keys and new sections", () => {
  assert.deepEqual(configChanges({ a: { b: 1, c: [1] } }, { a: { b: 2, c: [1] }, phases: { 2: { x: 1 } } }), [
    "a.b: 1 -> 2",
    "phases (new)",
  ]);
  assert.deepEqual(configChanges({ phases: { 1: {} } }, { phases: { 1: {}, 2: { x: 1 } } }), ["phases.2 (new)"]);
  assert.deepEqual(configChanges({ a: 1 }, { a: 1 }), []);
});
