/**
 * `deno task bench:workers --run DIR`: the search's throughput in one process and on 1 and 2
 * BullMQ workers (lib/search/queue.ts), the same search each time (phase 2's learning rate and
 * batch size, bench/search_phase2.json, ASHA over phases.2.steps). Prints wall seconds, rungs and
 * trial-steps per minute for each, and the speed-up against the in-process run.
 *
 * DIR: a run whose phases before --phase completed (the tiny preset keeps this short). Redis:
 * --redis URL, else a redis-server started here on a free port. Each worker gets
 * OPENBLAS_NUM_THREADS = max(1, cores / workers), so the workers share the machine's cores rather
 * than oversubscribe them; --blas-threads N sets it for all.
 *
 * Options: --run DIR  --phase N (2)  --space FILE (bench/search_phase2.json)  --trials N (9)
 *          --eta N (3)  --min-resource N (12)  --max-resource N (DIR's steps)  --workers 1,2
 *          --redis URL  --blas-threads N  --json FILE
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { cpus } from "node:os";
import { redisForRun } from "../lib/util/redis_server.ts";
import { readJson, writeJsonAtomic } from "../lib/util/fs.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    run: { type: "string" },
    phase: { type: "string", default: "2" },
    space: { type: "string", default: new URL("./search_phase2.json", import.meta.url).pathname },
    trials: { type: "string", default: "9" },
    eta: { type: "string", default: "3" },
    "min-resource": { type: "string", default: "12" },
    "max-resource": { type: "string" },
    workers: { type: "string", default: "1,2" },
    redis: { type: "string" },
    "blas-threads": { type: "string" },
    json: { type: "string" },
  },
});
if (!values.run) throw new Error("--run DIR: a run directory whose phases before --phase completed is required");
const phase = Number(values.phase);
const cfg = await readJson<{ phases: Record<string, { steps?: number }> }>(join(values.run, "config.json"));
const max = Number(values["max-resource"] ?? cfg.phases[String(phase)]?.steps);
if (!Number.isInteger(max) || max < 1) throw new Error(`--max-resource: give one (${values.run}/config.json has no phases.${phase}.steps)`);
const workerCounts = values.workers!.split(",").map(Number);
if (workerCounts.some((w) => !Number.isInteger(w) || w < 1)) throw new Error(`--workers ${values.workers}: expected counts such as 1,2`);
const cores = cpus().length;
const SEARCH = new URL("../lib/search/cli.ts", import.meta.url).pathname;
const WORKER = new URL("../lib/search/worker.ts", import.meta.url).pathname;

interface Row {
  how: string;
  workers: number;
  blas_threads: number | string;
  seconds: number;
  rungs: number;
  trial_steps: number;
  rungs_per_min: number;
  trial_steps_per_s: number;
  speedup: number;
}

const tmp = await Deno.makeTempDir({ prefix: "af-bench-workers-" });
const redis = values.redis ? { url: values.redis, stop: () => Promise.resolve() } : await redisForRun();
const rows: Row[] = [];
/** One search into a fresh folder; `workers` 0 runs it in-process. */
async function search(workers: number): Promise<void> {
  const out = join(tmp, `w${workers}`);
  const parallel = Math.max(1, workers);
  const args = [
    "run",
    "-A",
    SEARCH,
    ...["--space", values.space!, "--run", values.run!, "--phase", String(phase), "--out", out],
    ...["--trials", values.trials!, "--eta", values.eta!, "--min-resource", values["min-resource"]!, "--max-resource", String(max)],
    ...["--parallel", String(parallel), "--objective", "result", "--metric", "heldout_token_acc"],
  ];
  const queue = `bench-${crypto.randomUUID().slice(0, 8)}`;
  if (workers > 0) args.push("--redis", redis.url, "--queue", queue);
  const blas = values["blas-threads"] ?? String(Math.max(1, Math.floor(cores / parallel)));
  const procs = Array.from({ length: workers }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", WORKER, "--redis", redis.url, "--queue", queue],
      env: { OPENBLAS_NUM_THREADS: blas },
      stdout: "null",
      stderr: "inherit",
    }).spawn());
  const t0 = performance.now();
  const res = await new Deno.Command(Deno.execPath(), { args, env: { OPENBLAS_NUM_THREADS: blas }, stdout: "piped", stderr: "inherit" })
    .output();
  const seconds = (performance.now() - t0) / 1000;
  for (const p of procs) p.kill("SIGTERM");
  await Promise.all(procs.map((p) => p.status));
  const text = new TextDecoder().decode(res.stdout);
  if (!res.success) throw new Error(`search with ${workers} workers failed:\n${text}`);
  console.log(text.trim().split("\n").at(-1));
  const st = await readJson<{ jobs: number; trials: { results: { resource: number }[] }[]; baseline?: { resource: number } }>(
    join(out, "search.json"),
  );
  const steps = st.trials.reduce((a, t) => a + t.results.reduce((b, r) => b + r.resource, 0), 0) + (st.baseline?.resource ?? 0);
  const row: Row = {
    how: workers === 0 ? "in one process" : `BullMQ, ${workers} worker${workers > 1 ? "s" : ""}`,
    workers,
    blas_threads: blas,
    seconds: Math.round(seconds * 10) / 10,
    rungs: st.jobs,
    trial_steps: steps,
    rungs_per_min: Math.round((st.jobs / seconds) * 60 * 100) / 100,
    trial_steps_per_s: Math.round((steps / seconds) * 100) / 100,
    speedup: NaN,
  };
  rows.push(row);
  console.log(`${row.how}: ${row.seconds} s, ${row.rungs} rungs, ${row.trial_steps} trial-steps (OpenBLAS threads ${blas} each)`);
}

try {
  await search(0);
  for (const w of workerCounts) await search(w);
} finally {
  await redis.stop();
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
for (const r of rows) r.speedup = Math.round((r.trial_steps_per_s / rows[0].trial_steps_per_s) * 100) / 100;
const cols = ["how", "blas_threads", "seconds", "rungs", "trial_steps", "rungs_per_min", "trial_steps_per_s", "speedup"] as const;
console.log(
  `\n${cores} cores; phase ${phase} of ${values.run}, resources ${
    values["min-resource"]
  }..${max}, eta ${values.eta}, ${values.trials} trials\n`,
);
console.log(`| ${cols.join(" | ")} |\n| ${cols.map(() => "---").join(" | ")} |`);
for (const r of rows) console.log(`| ${cols.map((c) => String(r[c])).join(" | ")} |`);
if (values.json) await writeJsonAtomic(values.json, { cores, phase, run: values.run, rows });
