/**
 * A search's jobs on BullMQ over Redis, so that workers on any machines that have the repository
 * (and the search directory at the same path: shared storage) run them.
 *
 * - The coordinator (`deno task search --redis URL --parallel N`) adds each job with an id made of
 *   the search directory and the job's name: a coordinator that restarts adds the same ids again,
 *   which BullMQ ignores, and waits on the jobs already there.
 * - A worker (`deno task worker --redis URL`) runs one job at a time through `runTrial`, the
 *   function the in-process search uses, so results are the same.
 * - A worker killed mid-job stops renewing its lock; after `lockMs` another worker's stall check
 *   hands the job out again, and the new attempt continues the trial from its last checkpoint
 *   (lib/search/trial.ts). The coordinator records each job once, when BullMQ reports it completed.
 */
import { createHash } from "node:crypto";
import { Queue, QueueEvents, Worker } from "bullmq";
import { Redis } from "ioredis";
import type { BackendRequest } from "../backend/mod.ts";
import type { PhaseSpec } from "../phases/spec.ts";
import type { Executor } from "./run.ts";
import { runTrial, type TrialContext, type TrialJob, type TrialOutcome } from "./trial.ts";

/** The default queue name. */
export const QUEUE = "agent-forge-search";

/** A job's data on the queue. */
interface JobData {
  ctx: TrialContext;
  job: TrialJob;
}

function connect(url: string): Redis {
  // BullMQ needs maxRetriesPerRequest null for its blocking commands.
  return new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
}

/** The queue id of a job: stable across coordinator restarts, distinct across searches. */
export function queueJobId(c: TrialContext, job: TrialJob): string {
  return `${createHash("sha1").update(c.out).digest("hex").slice(0, 12)}-${job.name}`;
}

/** An Executor that runs each job on a worker through the queue; close() disconnects. */
export async function queueExecutor(o: { url: string; queue?: string; attempts?: number }): Promise<Required<Executor>> {
  const name = o.queue ?? QUEUE;
  const queue = new Queue<JobData, TrialOutcome>(name, { connection: connect(o.url) });
  const events = new QueueEvents(name, { connection: connect(o.url) });
  await events.waitUntilReady();
  return {
    async run(ctx, job) {
      const j = await queue.add(job.name, { ctx, job: { name: job.name, sets: job.sets } }, {
        jobId: queueJobId(ctx, job),
        attempts: o.attempts ?? 3, // a job that throws (not one whose worker died: that one is retried as stalled)
        backoff: { type: "fixed", delay: 1000 },
      });
      const out = await j.waitUntilFinished(events);
      return { score: out.score ?? -Infinity, heldout: out.heldout ?? NaN, seconds: out.seconds };
    },
    async close() {
      await events.close();
      await queue.close();
    },
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
export function startWorker(o: WorkerOptions): Worker<JobData, TrialOutcome> {
  const log = o.log ?? ((l: string) => console.log(l));
  const lockDuration = o.lockMs ?? 60_000;
  const worker = new Worker<JobData, TrialOutcome>(
    o.queue ?? QUEUE,
    async (job) => {
      const { ctx, job: trial } = job.data;
      log(`worker ${Deno.pid}: ${trial.name} of ${ctx.out} (attempt ${job.attemptsStarted}) ${trial.sets.join(" ")}`);
      const out = await runTrial(ctx, trial, { phases: o.phases, backend: o.backend, takeOverLock: true });
      log(`worker ${Deno.pid}: ${trial.name} done: score ${out.score}, held-out ${out.heldout} (${out.seconds.toFixed(1)} s)`);
      return out;
    },
    {
      connection: connect(o.url),
      concurrency: 1,
      lockDuration,
      stalledInterval: lockDuration,
      maxStalledCount: 3,
    },
  );
  worker.on("failed", (job, err) => log(`worker ${Deno.pid}: ${job?.data.job.name ?? "a job"} failed: ${err.message}`));
  return worker;
}
