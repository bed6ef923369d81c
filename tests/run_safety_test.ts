/**
 * Run-directory safety through the CLI, on the fixture phases (phase 2 trains a tiny decoder
 * with a delay per step): one writer per run directory, stale locks taken over, SIGTERM as a
 * graceful stop whose resume gives the uninterrupted metrics, and no orphan left running when
 * the pipeline is stopped the way a process manager stops it: through `deno task` and through
 * npm's deno shim (node running deno's bin.cjs, which forwards no signal), checked with `ps`.
 */
import { npmShim } from "../lib/testing/npm_shim.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { exists, readJson } from "../lib/util/fs.ts";
import type { PhaseResultFile, RunState } from "../lib/util/run_dir.ts";
import type { LockHolder } from "../lib/util/run_lock.ts";

const SCRIPT = new URL("./fixtures/test_phases.ts", import.meta.url).pathname;
const DECODER = new TextDecoder();

/** CLI arguments of a fixture run in `dir`: phases 1-2, 40 steps of `delay` ms, a checkpoint every 5. */
function runArgs(dir: string, base: string, delay = 100): string[] {
  return [
    "--backend",
    "wasm",
    "--preset",
    "tiny",
    "--to",
    "2",
    "--out",
    dir,
    "--set",
    `pipeline.baseline_file=${join(base, "baselines.json")}`,
    "--set",
    "phases.2.steps=40",
    "--set",
    `phases.2.step_delay_ms=${delay}`,
    "--set",
    "phases.2.save_every=5",
  ];
}

function spawn(cmd: string, args: string[], cwd?: string): Deno.ChildProcess {
  return new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped", env: { NO_COLOR: "1" } }).spawn();
}

async function output(p: Deno.ChildProcess): Promise<{ code: number; signal: Deno.Signal | null; stderr: string }> {
  const out = await p.output();
  return { code: out.code, signal: out.signal, stderr: DECODER.decode(out.stderr) };
}

/** Waits until phase 2 has logged at least `step` steps (metrics.jsonl), or fails after a minute. */
async function waitForStep(dir: string, step: number): Promise<void> {
  const file = join(dir, "metrics.jsonl");
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (await exists(file)) {
      const recs = (await Deno.readTextFile(file)).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
      if (recs.some((r) => r.phase === 2 && r.step >= step)) return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`phase 2 did not reach step ${step} within a minute`);
}

/** Processes whose command line mentions `marker`, from `ps` (what a process manager would see). */
async function psMatching(marker: string): Promise<string[]> {
  const out = await new Deno.Command("ps", { args: ["-eo", "pid,args"], stdout: "piped" }).output();
  return DECODER.decode(out.stdout).split("\n").filter((l) => l.includes(marker) && !l.includes("ps -eo"));
}

/** Waits until no process mentions `marker` (up to 20 s); returns those still there. */
async function orphansOf(marker: string): Promise<string[]> {
  const deadline = Date.now() + 20_000;
  let left = await psMatching(marker);
  while (left.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    left = await psMatching(marker);
  }
  return left;
}

async function tempBase(): Promise<{ base: string; dir: string }> {
  const base = await Deno.makeTempDir({ prefix: "af-safety-" });
  return { base, dir: join(base, "run") };
}

/** Phase 2's final loss and steps after an uninterrupted fixture run (the reference for resumed runs). */
let reference: Promise<{ final_loss: number; steps: number }> | undefined;
function uninterrupted(): Promise<{ final_loss: number; steps: number }> {
  reference ??= (async () => {
    const { base, dir } = await tempBase();
    const r = await output(spawn(Deno.execPath(), ["run", "-A", SCRIPT, ...runArgs(dir, base, 0)]));
    assert.equal(r.code, 0, r.stderr);
    const res = await readJson<PhaseResultFile>(join(dir, "phase-2-train", "result.json"));
    await Deno.remove(base, { recursive: true });
    return { final_loss: res.metrics.final_loss as number, steps: res.metrics.steps as number };
  })();
  return reference;
}

/** Resumes `dir` and checks phase 2 ends with exactly the uninterrupted run's numbers. */
async function resumeMatches(dir: string): Promise<void> {
  const r = await output(spawn(Deno.execPath(), ["run", "-A", SCRIPT, "--backend", "wasm", "--resume", dir]));
  assert.equal(r.code, 0, r.stderr);
  const res = await readJson<PhaseResultFile>(join(dir, "phase-2-train", "result.json"));
  const want = await uninterrupted();
  assert.equal(res.metrics.steps, want.steps);
  assert.equal(res.metrics.final_loss, want.final_loss, "the resumed run ends where the uninterrupted one does");
  assert.equal((await readJson<RunState>(join(dir, "state.json"))).status, "completed");
}

Deno.test("a second writer of a run directory is refused with exit 2, naming the holder, and writes nothing", async () => {
  const { base, dir } = await tempBase();
  const first = spawn(Deno.execPath(), ["run", "-A", SCRIPT, ...runArgs(dir, base, 150)]);
  await waitForStep(dir, 3);
  const before = await Deno.readTextFile(join(dir, "state.json"));
  const second = await output(spawn(Deno.execPath(), ["run", "-A", SCRIPT, "--backend", "wasm", "--resume", dir]));
  assert.equal(second.code, 2, second.stderr);
  assert.match(second.stderr, new RegExp(`run\\.lock: the run is being written by pid ${first.pid} on `));
  assert.doesNotMatch(second.stderr, /resuming|starting/);
  const state = JSON.parse(before) as RunState;
  const after = await readJson<RunState>(join(dir, "state.json"));
  assert.equal(after.run_id, state.run_id);
  const holder = await readJson<LockHolder>(join(dir, "run.lock"));
  assert.equal(holder.pid, first.pid, "the lock is still the first writer's");
  const done = await output(first);
  assert.equal(done.code, 0, done.stderr);
  const final = await readJson<RunState>(join(dir, "state.json"));
  assert.equal(final.phases["2"].attempts, 1, "phase 2 was started once");
  assert.equal(await exists(join(dir, "run.lock")), false, "the lock is released at exit");
  await Deno.remove(base, { recursive: true });
});

Deno.test("a stale lock (its process gone) is taken over with a message", async () => {
  const { base, dir } = await tempBase();
  const gone = new Deno.Command("true").spawn();
  await gone.status;
  await Deno.mkdir(dir, { recursive: true });
  const stale: LockHolder = { pid: gone.pid, host: Deno.hostname(), command: "a killed run", started_at: "earlier" };
  await Deno.writeTextFile(join(dir, "run.lock"), JSON.stringify(stale));
  const r = await output(spawn(Deno.execPath(), ["run", "-A", SCRIPT, ...runArgs(dir, base, 0)]));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`taking over a stale lock of pid ${gone.pid} .*a killed run.*that process is gone`));
  await Deno.remove(base, { recursive: true });
});

Deno.test("SIGTERM during training: exit 143, the phase is interrupted at a checkpointed step, and --resume gives the uninterrupted metrics", async () => {
  await uninterrupted();
  const { base, dir } = await tempBase();
  const p = spawn(Deno.execPath(), ["run", "-A", SCRIPT, ...runArgs(dir, base, 100)]);
  await waitForStep(dir, 7);
  p.kill("SIGTERM");
  const r = await output(p);
  assert.equal(r.code, 143, r.stderr);
  assert.match(r.stderr, /SIGTERM: stopping after the current optimizer step/);
  const state = await readJson<RunState>(join(dir, "state.json"));
  assert.equal(state.status, "interrupted");
  assert.equal(state.phases["1"].status, "completed");
  const p2 = state.phases["2"];
  assert.equal(p2.status, "interrupted");
  assert.equal(p2.interrupted_by, "SIGTERM");
  assert.ok(p2.interrupted_at_step! >= 7 && p2.interrupted_at_step! < 40, `step ${p2.interrupted_at_step}`);
  const latest = await readJson<{ step: number }>(join(dir, "phase-2-train", "checkpoints", "latest.json"));
  assert.equal(latest.step, p2.interrupted_at_step, "the checkpoint is at the step it stopped");
  assert.equal(await exists(join(dir, "phase-2-train", "result.json")), false);
  assert.equal(await exists(join(dir, "run.lock")), false);
  await resumeMatches(dir);
  await Deno.remove(base, { recursive: true });
});

Deno.test("a second SIGINT exits at once with 130", async () => {
  const { base, dir } = await tempBase();
  const p = spawn(Deno.execPath(), ["run", "-A", SCRIPT, ...runArgs(dir, base, 2000)]);
  await waitForStep(dir, 1);
  p.kill("SIGINT");
  await new Promise((r) => setTimeout(r, 300));
  p.kill("SIGINT");
  const t0 = Date.now();
  const r = await output(p);
  assert.equal(r.code, 130, r.stderr);
  assert.ok(Date.now() - t0 < 1500, "did not wait for the 2 s step");
  assert.match(r.stderr, /SIGINT again: exiting now/);
  assert.equal(await exists(join(dir, "run.lock")), false, "the lock is removed before the hard exit");
  await Deno.remove(base, { recursive: true });
});

const SHIM = await npmShim();
if (!SHIM) console.log("skipping the shim test: no npm-installed deno package (deno/bin.cjs) found");

/** A deno.json in `base` whose task `fixture` runs the fixture CLI, as README's `deno task pipeline` runs lib/cli.ts. */
async function taskConfig(base: string): Promise<string> {
  const file = join(base, "deno.json");
  const root = new URL("../", import.meta.url).pathname;
  await Deno.writeTextFile(file, JSON.stringify({ tasks: { fixture: `deno run -A ${SCRIPT}` }, nodeModulesDir: "auto" }));
  await Deno.symlink(join(root, "node_modules"), join(base, "node_modules"));
  await Deno.copyFile(join(root, "deno.lock"), join(base, "deno.lock"));
  return file;
}

for (const via of ["deno task", "the npm shim running deno task"] as const) {
  Deno.test({
    name: `SIGTERM to ${via} stops the pipeline gracefully and leaves no process running (ps)`,
    ignore: via !== "deno task" && !SHIM,
    fn: async () => {
      const { base, dir } = await tempBase();
      const config = await taskConfig(base);
      const args = ["task", "--config", config, "fixture", ...runArgs(dir, base, 100)];
      const p = via === "deno task" ? spawn(Deno.execPath(), args) : spawn("node", [SHIM!, ...args]);
      await waitForStep(dir, 5);
      assert.ok((await psMatching(dir)).length >= 1, "the pipeline is running");
      p.kill("SIGTERM");
      await output(p);
      assert.deepEqual(await orphansOf(dir), [], "no process of the run is left");
      const state = await readJson<RunState>(join(dir, "state.json"));
      assert.equal(state.phases["2"].status, "interrupted", "stopped gracefully, with a checkpoint");
      await resumeMatches(dir);
      await Deno.remove(base, { recursive: true });
    },
  });
}

/**
 * Makes `dir` read-only and returns the function that makes it writable again: a tmpfs mount
 * remounted read-only when running as root (root writes through file modes), file modes
 * otherwise; undefined (with the reason printed) where neither can be done.
 */
async function readOnlyFolder(dir: string): Promise<{ ro(): Promise<void>; rw(): Promise<void>; cleanup(): Promise<void> } | undefined> {
  const sh = async (cmd: string, ...args: string[]) =>
    (await new Deno.Command(cmd, { args, stderr: "null", stdout: "null" }).output()).success;
  if (Deno.uid() === 0) {
    await Deno.mkdir(dir, { recursive: true });
    if (!(await sh("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir))) {
      console.log("skipping the read-only test: running as root and cannot mount a tmpfs to make read-only");
      return undefined;
    }
    return {
      ro: async () => assert.ok(await sh("mount", "-o", "remount,ro", dir), "remount ro"),
      rw: async () => assert.ok(await sh("mount", "-o", "remount,rw", dir), "remount rw"),
      cleanup: async () => void (await sh("umount", dir)),
    };
  }
  const chmod = (mode: string) => sh("chmod", "-R", mode, dir);
  return {
    ro: async () => assert.ok(await chmod("a-w"), "chmod a-w"),
    rw: async () => assert.ok(await chmod("u+w"), "chmod u+w"),
    cleanup: async () => {},
  };
}

Deno.test("a run directory that turns read-only during a phase: a clear error naming the path, then --resume once writable gives the uninterrupted metrics", async () => {
  await uninterrupted();
  const { base } = await tempBase();
  const mnt = join(base, "mnt");
  const folder = await readOnlyFolder(mnt);
  if (!folder) return;
  const dir = join(mnt, "run");
  try {
    const p = spawn(Deno.execPath(), ["run", "-A", SCRIPT, ...runArgs(dir, base, 100)]);
    await waitForStep(dir, 7);
    await folder.ro();
    const r = await output(p);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`error: cannot write ${dir.replaceAll("/", "\\/")}\\/\\S+: .*(Read-only|Permission denied)`));
    assert.match(r.stderr, new RegExp(`the last good checkpoint is intact: .*--resume ${dir.replaceAll("/", "\\/")}`));
    await folder.rw();
    const latest = await readJson<{ step: number }>(join(dir, "phase-2-train", "checkpoints", "latest.json"));
    assert.ok(latest.step >= 5, `a checkpoint survived (step ${latest.step})`);
    await resumeMatches(dir);
  } finally {
    await folder.rw().catch(() => {});
    await folder.cleanup();
    await Deno.remove(base, { recursive: true });
  }
});
