/**
 * `deno task bench:faults`: kills the tiny pipeline at random points and checks that a resume
 * loses nothing. First an uninterrupted run gives the reference metrics, its wall time and how
 * many writes of each kind it makes (checkpoint, state.json, metrics.jsonl, result.json; counted
 * through AGENT_FORGE_FAULT=count:FILE). Then each trial runs the same pipeline and SIGKILLs it,
 * either at a random moment of the reference's wall time or in the middle of a random write
 * (AGENT_FORGE_FAULT=<kind>:<n>: half a temp file or half a JSON line is written, then the process
 * kills itself), resumes it with `--resume`, and compares every phase's result.json metrics
 * (timings aside) with the reference. One more trial makes the run directory read-only during a
 * phase (a tmpfs remounted read-only as root, file modes otherwise): the run must stop with an
 * error naming the path and resume once the folder is writable again. Last line:
 * `N of N resumed, identical metrics`, or each failure with its kill point.
 *
 * Options: --trials N (default 20)  --to N (last phase, default 7)  --seed S (default 0)
 *          --keep (keep the run directories)  --no-readonly (skip the read-only trial)
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readJson } from "../lib/util/fs.ts";
import type { PhaseResultFile } from "../lib/util/run_dir.ts";
import { Rng } from "../lib/util/rng.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    trials: { type: "string", default: "20" },
    to: { type: "string", default: "7" },
    seed: { type: "string", default: "0" },
    keep: { type: "boolean", default: false },
    "no-readonly": { type: "boolean", default: false },
  },
});
const intOpt = (name: "trials" | "to" | "seed", min: number, max = Infinity) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`--${name} ${values[name]}: expected an integer from ${min}${max < Infinity ? ` to ${max}` : ""}`);
    Deno.exit(2);
  }
  return n;
};
const TRIALS = intOpt("trials", 1), TO = intOpt("to", 1, 7), SEED = intOpt("seed", 0);
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const BASE = await Deno.makeTempDir({ prefix: "af-faults-" });
const KINDS = ["checkpoint", "state", "metrics", "result"] as const;

/** Runs the tiny pipeline CLI (`--resume DIR` when `resume`), with `env` added; kills it after `killMs` when given. */
async function pipeline(dir: string, opts: { resume?: boolean; env?: Record<string, string>; killMs?: number } = {}) {
  const args = opts.resume ? ["--resume", dir] : [
    "--preset",
    "tiny",
    "--to",
    String(TO),
    "--out",
    dir,
    "--backend",
    "wasm",
    "--set",
    `pipeline.baseline_file=${join(BASE, "baselines.json")}`,
  ];
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "lib/cli.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const timer = opts.killMs !== undefined ? setTimeout(() => child.kill("SIGKILL"), opts.killMs) : undefined;
  const out = await child.output();
  if (timer !== undefined) clearTimeout(timer);
  return { code: out.code, signal: out.signal, stderr: new TextDecoder().decode(out.stderr), seconds: (performance.now() - t0) / 1000 };
}

/** Keys whose values are times or speeds, or the step a resume started from: they differ between any two runs. */
const TIMING = /(^|_)(s|ms|seconds|sec)(_|$)|per_s|tokens_per|latency|speed|timing|peak_rss|_at$|^p\d\d|^resumed_from$/;

/** A result's metrics without timings, flattened to `path: value`. */
function flatMetrics(x: unknown, path = "", out: Map<string, string> = new Map()): Map<string, string> {
  if (x && typeof x === "object") {
    for (const [k, v] of Object.entries(x)) {
      if (!TIMING.test(k)) flatMetrics(v, path ? `${path}.${k}` : k, out);
    }
  } else out.set(path, JSON.stringify(x));
  return out;
}

/** Every phase's metrics of the run in `dir`. */
async function runMetrics(dir: string): Promise<Map<string, string>> {
  const all = new Map<string, string>();
  for await (const e of Deno.readDir(dir)) {
    if (!e.isDirectory || !e.name.startsWith("phase-")) continue;
    const r = await readJson<PhaseResultFile>(join(dir, e.name, "result.json"));
    for (const [k, v] of flatMetrics(r.metrics)) all.set(`${e.name}.${k}`, v);
    all.set(`${e.name}.status`, r.status);
  }
  return all;
}

/** The keys whose values differ between two runs' metrics. */
function differences(want: Map<string, string>, got: Map<string, string>): string[] {
  const keys = new Set([...want.keys(), ...got.keys()]);
  return [...keys].filter((k) => want.get(k) !== got.get(k)).sort();
}

// ---------------------------------------------------------------------------------------------
// The reference run

console.log(`bench:faults: tiny pipeline, phases 1-${TO}, ${TRIALS} trials, seed ${SEED}; run directories in ${BASE}`);
const countFile = join(BASE, "writes.txt");
const refDir = join(BASE, "reference");
const ref = await pipeline(refDir, { env: { AGENT_FORGE_FAULT: `count:${countFile}` } });
if (ref.code !== 0) {
  console.error(`the uninterrupted run failed (exit ${ref.code}):\n${ref.stderr.slice(-2000)}`);
  Deno.exit(1);
}
const counts: Record<string, number> = {};
for (const k of (await Deno.readTextFile(countFile)).split("\n").filter(Boolean)) counts[k] = (counts[k] ?? 0) + 1;
const reference = await runMetrics(refDir);
console.log(
  `reference: ${ref.seconds.toFixed(0)} s, ${reference.size} metric values; writes: ${
    KINDS.map((k) => `${k} ${counts[k] ?? 0}`).join(", ")
  }`,
);

// ---------------------------------------------------------------------------------------------
// Trials

const rng = new Rng(SEED);
const failures: string[] = [];
let identical = 0, killedTrials = 0;
for (let t = 1; t <= TRIALS; t++) {
  const dir = join(BASE, `trial-${t}`);
  // Half the trials kill at a random moment, half in the middle of a random write.
  const kinds = KINDS.filter((k) => (counts[k] ?? 0) > 0);
  let point: string, env: Record<string, string> | undefined, killMs: number | undefined;
  if (t % 2 === 1 || !kinds.length) {
    killMs = Math.round((0.03 + 0.94 * rng.next()) * ref.seconds * 1000);
    point = `SIGKILL at ${(killMs / 1000).toFixed(1)} s`;
  } else {
    const kind = kinds[rng.int(kinds.length)];
    const n = 1 + rng.int(counts[kind]);
    env = { AGENT_FORGE_FAULT: `${kind}:${n}` };
    point = `SIGKILL during ${kind} write ${n} of ${counts[kind]}`;
  }
  let killed = await pipeline(dir, { env, killMs });
  // A run can end before its kill time (the reference ran on a busier machine): try again, earlier,
  // so that every timed trial really kills a run.
  for (let retry = 0; killed.signal !== "SIGKILL" && killMs !== undefined && retry < 4; retry++) {
    await Deno.remove(dir, { recursive: true });
    killMs = Math.round(killMs / 2);
    point = `SIGKILL at ${(killMs / 1000).toFixed(1)} s (the run ended before the first kill time)`;
    killed = await pipeline(dir, { env, killMs });
  }
  const hit = killed.signal === "SIGKILL";
  if (hit) killedTrials++;
  const resumed = hit ? await pipeline(dir, { resume: true }) : killed;
  let verdict: string;
  if (resumed.code !== 0) {
    verdict = `resume failed (exit ${resumed.code}): ${resumed.stderr.trim().split("\n").slice(-3).join(" | ")}`;
  } else {
    const diff = differences(reference, await runMetrics(dir));
    verdict = diff.length ? `${diff.length} metrics differ: ${diff.slice(0, 5).join(", ")}${diff.length > 5 ? ", ..." : ""}` : "identical";
  }
  if (verdict === "identical") identical++;
  else failures.push(`trial ${t} (${point}): ${verdict}`);
  console.log(`trial ${String(t).padStart(2)}/${TRIALS}: ${point}${hit ? "" : " (ended before the kill)"} -> ${verdict}`);
  if (!values.keep) await Deno.remove(dir, { recursive: true });
}

// ---------------------------------------------------------------------------------------------
// A run directory that turns read-only during a phase

async function sh(cmd: string, ...args: string[]): Promise<boolean> {
  return (await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output()).success;
}

if (!values["no-readonly"]) {
  const mnt = join(BASE, "ro");
  await Deno.mkdir(mnt);
  const root = Deno.uid() === 0;
  const mounted = root && await sh("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", mnt);
  if (root && !mounted) console.log("read-only trial: skipped (root, and no tmpfs could be mounted to make read-only)");
  else {
    const dir = join(mnt, "run");
    const setRo = (ro: boolean) =>
      root ? sh("mount", "-o", `remount,${ro ? "ro" : "rw"}`, mnt) : sh("chmod", "-R", ro ? "a-w" : "u+w", mnt);
    const at = Math.round(0.3 * ref.seconds * 1000);
    const child = pipeline(dir);
    await new Promise((r) => setTimeout(r, at));
    await setRo(true);
    const stopped = await child;
    await setRo(false);
    const named = /error: cannot write \S+/.exec(stopped.stderr)?.[0];
    const resumed = stopped.code === 0 ? stopped : await pipeline(dir, { resume: true });
    const diff = resumed.code === 0 ? differences(reference, await runMetrics(dir)) : ["(resume failed)"];
    const ok = stopped.code === 1 && named !== undefined && resumed.code === 0 && diff.length === 0;
    const line = `read-only at ${(at / 1000).toFixed(1)} s: exit ${stopped.code}, ${named ?? "no error naming a path"}; ` +
      `resumed once writable: ${diff.length ? `${diff.length} metrics differ` : "identical metrics"}`;
    console.log(line);
    if (!ok) failures.push(line);
    if (root) await sh("umount", mnt);
  }
}

if (!values.keep) await Deno.remove(BASE, { recursive: true }).catch(() => {});
for (const f of failures) console.log(`FAILED ${f}`);
console.log(`${killedTrials} of ${TRIALS} trials killed a run (the rest ended before every kill time tried)`);
console.log(
  failures.length
    ? `${identical} of ${TRIALS} resumed with identical metrics; ${failures.length} failure(s) above`
    : `${TRIALS} of ${TRIALS} resumed, identical metrics`,
);
Deno.exit(failures.length ? 1 : 0);
