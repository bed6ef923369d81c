/**
 * Search trials and breeding's population members as jobs on BullMQ over Redis, so that workers
 * on any machines that have the repository (and the search or run directory at the same path:
 * shared storage) run them.
 *
 * - The coordinator (`deno task search --redis URL --parallel N`) adds each job with an id made of
 *   the search's identity (in its search.json) and the job's name: a coordinator that restarts
 *   adds the same ids again, which BullMQ ignores, and waits on the jobs already there; a new
 *   search in the same folder has another identity, so it never gets an old search's results.
 * - A worker (`deno task worker --redis URL`) runs one job at a time through `runTrial`, the
 *   function the in-process search uses, so results are the same.
 * - A worker killed mid-job stops renewing its lock; after `lockMs` another worker's stall check
 *   hands the job out again, and the new attempt continues the trial from its last checkpoint
 *   (lib/search/trial.ts). The coordinator records each job once, when BullMQ reports it completed.
 * - A population member (a merge recipe of a breeding run, lib/evolve/) is a job that scores the
 *   recipe's validation fitness on the run (`runFitness`); its id is the run's fingerprint (its
 *   folder and every phase's result.json, so a phase run again is another run) and the recipe, so
 *   a recipe asked for twice is scored once. `queueFitness` hands breedRecipe a generation at a time.
 */
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { Queue, QueueEvents, Worker } from "bullmq";
import { Redis } from "ioredis";
import { type BackendRequest, initBackend } from "../backend/mod.ts";
import type { PhaseSpec } from "../phases/spec.ts";
import { runFitness } from "../evolve/compare.ts";
import type { MergeRecipe } from "../evolve/merge.ts";
import type { Executor } from "./run.ts";
import { outcomeFromJson, runTrial, type TrialContext, type TrialJob, type TrialOutcome } from "./trial.ts";

/** The default queue name. */
export const QUEUE = "agent-forge-search";

/** A job's data on the queue: a search trial, or a merge recipe's fitness on a run. */
type JobData = { kind?: "trial"; ctx: TrialContext; job: TrialJob } | {
  kind: "fitness";
  runDir: string;
  /** runFingerprint(runDir) when the job was made: a worker reloads a run whose phases changed. */
  fingerprint: string;
  recipe: MergeRecipe;
};
type JobResult = TrialOutcome | { fitness: number };

const hash = (s: string) => createHash("sha1").update(s).digest("hex").slice(0, 12);

function connect(url: string): Redis {
  // BullMQ needs maxRetriesPerRequest null for its blocking commands.
  return new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
}

/** The queue id of a job: stable across coordinator restarts, distinct across searches. */
export function queueJobId(c: TrialContext, job: TrialJob): string {
  return `${c.id ?? hash(c.out)}-${job.name}`;
}

/** A run's fingerprint: its folder and the text of every phase's result.json (which holds its timings, so a rerun phase changes it). */
async function runFingerprint(runDir: string): Promise<string> {
  const parts = [runDir];
  const dirs: string[] = [];
  for await (const e of Deno.readDir(runDir)) if (e.isDirectory && /^phase-\d+-/.test(e.name)) dirs.push(e.name);
  for (const d of dirs.sort()) parts.push(await Deno.readTextFile(join(runDir, d, "result.json")).catch(() => ""));
  return hash(parts.join("\n"));
}

/** An Executor that runs each job on a worker through the queue; close() disconnects. */
export async function queueExecutor(o: { url: string; queue?: string; attempts?: number }): Promise<Required<Executor>> {
  const q = await open(o.url, o.queue), { queue, events } = q;
  return {
    async run(ctx, job) {
      const j = await queue.add(job.name, { kind: "trial", ctx, job: { name: job.name, sets: job.sets } }, {
        jobId: queueJobId(ctx, job),
        attempts: o.attempts ?? 3, // a job that throws (not one whose worker died: that one is retried as stalled)
        backoff: { type: "fixed", delay: 1000 },
      });
      return outcomeFromJson(await j.waitUntilFinished(events) as TrialOutcome);
    },
    close: () => shut(q),
  };
}

/** The coordinator's queue and its event stream, on connections of their own (BullMQ leaves given connections open: `shut` closes them). */
async function open(url: string, name = QUEUE) {
  const conns = [connect(url), connect(url)];
  const queue = new Queue<JobData, JobResult>(name, { connection: conns[0] });
  const events = new QueueEvents(name, { connection: conns[1] });
  await events.waitUntilReady();
  return { queue, events, conns };
}

async function shut(q: Awaited<ReturnType<typeof open>>): Promise<void> {
  await q.events.close();
  await q.queue.close();
  for (const c of q.conns) c.disconnect();
}

/**
 * Population members on workers: `evaluate(runDir)` is a BreedOptions.evaluate that scores each
 * recipe of a generation as a job (all of them in flight at once) and returns the fitnesses in order.
 */
export async function queueFitness(o: { url: string; queue?: string }): Promise<{
  evaluate: (runDir: string) => (recipes: MergeRecipe[]) => Promise<number[]>;
  close: () => Promise<void>;
}> {
  const q = await open(o.url, o.queue), { queue, events } = q;
  const fingerprints = new Map<string, Promise<string>>();
  const one = async (runDir: string, recipe: MergeRecipe) => {
    if (!fingerprints.has(runDir)) fingerprints.set(runDir, runFingerprint(runDir));
    const fingerprint = await fingerprints.get(runDir)!;
    const id = `fit-${fingerprint}-${hash(JSON.stringify(recipe))}`;
    const j = await queue.add("fitness", { kind: "fitness", runDir, fingerprint, recipe }, {
      jobId: id,
      attempts: 3,
      backoff: { type: "fixed", delay: 1000 },
    });
    const out = await j.waitUntilFinished(events) as { fitness: number | null };
    return out.fitness ?? -Infinity;
  };
  return {
    evaluate: (runDir) => (recipes) => Promise.all(recipes.map((r) => one(resolve(runDir), r))),
    close: () => shut(q),
  };
}

export interface WorkerOptions {
  url: string;
  queue?: string;
  phases: readonly PhaseSpec[];
  backend?: BackendRequest;
  /** How long a job's lock lasts unrenewed: after it, a dead worker's job goes to another (default 60 s). */
  lockMs?: number;
  log?: (line: string) => void;
}

/** Starts a worker that runs one job at a time until closed. */
export function startWorker(o: WorkerOptions): Worker<JobData, JobResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const lockDuration = o.lockMs ?? 60_000;
  // A run's breeding inputs (base, specialists, validation stages), loaded once per run and fingerprint.
  const connection = connect(o.url);
  const fitnessOf = new Map<string, Promise<(recipe: MergeRecipe) => Promise<number>>>();
  const worker = new Worker<JobData, JobResult>(
    o.queue ?? QUEUE,
    async (job) => {
      if (job.data.kind === "fitness") {
        const { runDir, fingerprint, recipe } = job.data;
        const key = `${runDir}#${fingerprint}`;
        if (!fitnessOf.has(key)) fitnessOf.set(key, initBackend(o.backend, { quiet: true }).then(() => runFitness(runDir)));
        const t0 = performance.now();
        const fitness = await (await fitnessOf.get(key)!)(recipe);
        log(
          `worker ${Deno.pid}: ${recipe.method} recipe on ${runDir}: fitness ${fitness} (${
            ((performance.now() - t0) / 1000).toFixed(1)
          } s)`,
        );
        return { fitness };
      }
      const { ctx, job: trial } = job.data;
      log(`worker ${Deno.pid}: ${trial.name} of ${ctx.out} (attempt ${job.attemptsStarted}) ${trial.sets.join(" ")}`);
      const out = await runTrial(ctx, trial, { phases: o.phases, backend: o.backend, takeOverLock: true });
      log(`worker ${Deno.pid}: ${trial.name} done: score ${out.score}, held-out ${out.heldout} (${out.seconds.toFixed(1)} s)`);
      return out;
    },
    {
      connection,
      concurrency: 1,
      lockDuration,
      stalledInterval: lockDuration,
      maxStalledCount: 3,
    },
  );
  worker.on("closed", () => connection.disconnect());
  worker.on("failed", (job, err) => log(`worker ${Deno.pid}: job ${job?.id ?? "?"} failed: ${err.message}`));
  return worker;
}
