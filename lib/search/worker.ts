/**
 * `deno task worker --redis URL`: runs search jobs from the queue (lib/search/queue.ts) until
 * stopped. Start one per machine (or per core budget) that has the repository and sees the search
 * directory at the same path; the coordinator is `deno task search --redis URL --parallel N`.
 *
 * Options: --redis URL (required)  --queue NAME (default agent-forge-search)  --backend B
 *          --lock-ms N (default 60000: after this long without a sign of life, a job goes to
 *          another worker)  --phases MODULE (a module exporting PHASES, default the pipeline's)
 *
 * A stopped or killed worker's job is handed to another worker when its lock expires, and that
 * one continues the trial from its last checkpoint.
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseBackend } from "../backend/mod.ts";
import type { PhaseSpec } from "../phases/spec.ts";
import { QUEUE, startWorker } from "./queue.ts";

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      redis: { type: "string" },
      queue: { type: "string", default: QUEUE },
      backend: { type: "string" },
      "lock-ms": { type: "string", default: "60000" },
      phases: { type: "string" },
    },
  });
  if (!values.redis) {
    console.error("worker: --redis URL is required (e.g. --redis redis://127.0.0.1:6379)");
    return 2;
  }
  const lockMs = Number(values["lock-ms"]);
  if (!Number.isInteger(lockMs) || lockMs < 500) throw new Error(`--lock-ms ${values["lock-ms"]}: expected an integer >= 500`);
  const mod = values.phases
    ? await import(pathToFileURL(resolve(values.phases)).href) as { PHASES?: PhaseSpec[] }
    : await import("../phases/mod.ts");
  if (!Array.isArray(mod.PHASES)) throw new Error(`--phases ${values.phases}: the module exports no PHASES array`);
  const worker = startWorker({
    url: values.redis,
    queue: values.queue,
    phases: mod.PHASES,
    backend: values.backend ? parseBackend(values.backend, "--backend") : undefined,
    lockMs,
  });
  await worker.waitUntilReady();
  console.log(`worker ${Deno.pid}: waiting for jobs on ${values.queue} at ${values.redis}`);
  await new Promise<void>((done) => worker.on("closed", () => done()));
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`worker: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
