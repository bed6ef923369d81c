/** The pipeline spine through its CLI: phase ranges, validation gates, config errors, kill and resume. */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { RunState } from "../lib/util/run_dir.ts";
import type { PhaseResultFile } from "../lib/util/run_dir.ts";
import { exists, readJson } from "../lib/util/fs.ts";

const SCRIPT = new URL("./fixtures/test_phases.ts", import.meta.url).pathname;

function cli(args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, "--backend", "wasm", ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

async function run(args: string[]) {
  const out = await cli(args).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

async function tempRun(): Promise<{ base: string; dir: string; baselines: string }> {
  const base = await Deno.makeTempDir({ prefix: "af-pipeline-" });
  return { base, dir: join(base, "run"), baselines: `pipeline.baseline_file=${join(base, "baselines.json")}` };
}

Deno.test("a phase range runs only those phases and writes the run directory contract", async () => {
  const { base, dir, baselines } = await tempRun();
  const r = await run(["--preset", "tiny", "--from", "2", "--to", "3", "--out", dir, "--set", baselines, "--set", "phases.2.steps=6"]);
  assert.equal(r.code, 0, r.stderr);
  const state = await readJson<RunState>(join(dir, "state.json"));
  assert.deepEqual(Object.keys(state.phases), ["2", "3"]);
  assert.equal(state.status, "completed");
  assert.equal(state.phases["2"].status, "completed");
  const res = await readJson<PhaseResultFile>(join(dir, "phase-2-train", "result.json"));
  assert.equal(res.status, "completed");
  assert.equal(res.metrics.steps, 6);
  assert.ok(res.validation.passed);
  const cfg = await readJson<{ run: { preset: string }; phases: Record<string, unknown> }>(join(dir, "config.json"));
  assert.equal(cfg.run.preset, "tiny");
  const metrics = (await Deno.readTextFile(join(dir, "metrics.jsonl"))).trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(metrics.length, 6);
  assert.ok(metrics.every((m) => m.phase === 2 && m.model === "tiny" && typeof m.loss === "number" && typeof m.lr === "number"));
  const report = await Deno.readTextFile(join(dir, "report.html"));
  assert.ok(report.includes("Plotly.newPlot") && !/<script[^>]+src=/.test(report), "report is self-contained with plots");
  assert.ok(!(await exists(join(dir, "phase1-runs.txt"))), "phase 1 was outside the range");
  await Deno.remove(base, { recursive: true });
});

Deno.test("a failing validation gate exits 1 and marks the phase and run failed", async () => {
  const { base, dir, baselines } = await tempRun();
  const r = await run(["--preset", "tiny", "--out", dir, "--set", baselines, "--set", "phases.1.min_value=5"]);
  assert.equal(r.code, 1, r.stderr);
  const state = await readJson<RunState>(join(dir, "state.json"));
  assert.equal(state.status, "failed");
  assert.equal(state.phases["1"].status, "failed");
  assert.match(state.phases["1"].error ?? "", /validation failed: value = 1 \(threshold 5\)/);
  assert.equal(state.phases["2"].status, "pending", "later phases do not run after a failure");
  await Deno.remove(base, { recursive: true });
});

Deno.test("bad config gives exit 2 with a message naming the key", async () => {
  const cases: [string[], RegExp][] = [
    [["--set", "training.lrr=1"], /training\.lrr: unknown key/],
    [["--set", "training.lr=fast"], /training\.lr: expected a number, got 'fast'/],
    [["--set", "model.norm=batchnorm"], /model\.norm: 'batchnorm' is not accepted; expected one of layernorm, rmsnorm/],
    [["--set", "phases.2.steps=-3"], /phases\.2\.steps: expected >= 1, got -3/],
    [["--preset", "huge"], /--preset: 'huge' is not a preset; expected one of tiny, small, seed/],
    [["--from", "9"], /--from 9: expected a phase number from 1 to 7/],
    [["--backend", "tpu"], /--backend: unknown backend 'tpu'/],
    [["--bogus"], /Unknown option '--bogus'/],
  ];
  for (const [args, pattern] of cases) {
    const { base, dir } = await tempRun();
    const r = await run(["--out", dir, ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(" "));
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("a run killed with SIGKILL mid-phase resumes from its last checkpoint without redoing completed phases", async () => {
  const { base, dir, baselines } = await tempRun();
  const proc = cli([
    "--preset",
    "tiny",
    "--out",
    dir,
    "--set",
    baselines,
    "--set",
    "phases.2.steps=40",
    "--set",
    "phases.2.step_delay_ms=150",
    "--set",
    "phases.2.save_every=5",
  ]).spawn();
  const latest = join(dir, "phase-2-train", "checkpoints", "latest.json");
  const deadline = Date.now() + 120_000;
  let killedAt = 0;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    if (await exists(latest)) {
      const { step } = await readJson<{ step: number }>(latest);
      if (step >= 10) {
        killedAt = step;
        proc.kill("SIGKILL");
        break;
      }
    }
  }
  const status = await proc.status;
  assert.ok(killedAt >= 10, "the run reached a checkpoint before the deadline");
  assert.equal(status.signal, "SIGKILL");
  const mid = await readJson<RunState>(join(dir, "state.json"));
  assert.equal(mid.phases["1"].status, "completed");
  assert.equal(mid.phases["2"].status, "running");

  const r = await run(["--resume", dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /phase 1 \(count\) already completed, skipped/);
  const state = await readJson<RunState>(join(dir, "state.json"));
  assert.equal(state.status, "completed");
  assert.equal(state.phases["2"].attempts, 2);
  assert.equal((await Deno.readTextFile(join(dir, "phase1-runs.txt"))).trim().split("\n").length, 1, "phase 1 ran once");
  const res = await readJson<PhaseResultFile>(join(dir, "phase-2-train", "result.json"));
  assert.ok((res.metrics.resumed_from as number) >= killedAt, `resumed from step ${res.metrics.resumed_from}, killed after ${killedAt}`);
  assert.equal(res.metrics.steps, 40);
  await Deno.remove(base, { recursive: true });
});

Deno.test("a phase slower than slow_factor x its recorded baseline is flagged with a warning", async () => {
  const { base, dir } = await tempRun();
  const file = join(base, "baselines.json");
  // A recorded baseline of 1 ms for phase 2 of tiny/wasm: any real run is far slower.
  await Deno.writeTextFile(file, JSON.stringify({ "tiny/wasm/phase-2": { seconds: 0.001, recorded_at: "then" } }));
  const r = await run([
    "--preset",
    "tiny",
    "--to",
    "2",
    "--out",
    dir,
    "--set",
    `pipeline.baseline_file=${file}`,
    "--set",
    "phases.2.steps=3",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: phase 2 \(train\) took [\d.]+s, more than 1\.5x its baseline of 0\.0s/);
  const state = await readJson<RunState>(join(dir, "state.json"));
  assert.match(state.phases["2"].warning ?? "", /more than 1\.5x its baseline/);
  assert.equal(state.phases["1"].warning, undefined);
  const baselines = await readJson<Record<string, { seconds: number }>>(file);
  assert.ok(baselines["tiny/wasm/phase-1"].seconds >= 0, "a first run records its baseline");
  assert.ok(typeof state.phases["2"].peak_rss_mb === "number" && state.phases["2"].peak_rss_mb > 0);
  await Deno.remove(base, { recursive: true });
});
