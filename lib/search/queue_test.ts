/**
 * The search on BullMQ over a real Redis (Debian's redis-server): two worker processes, one of
 * them SIGKILLed in the middle of a trial. Every job completes exactly once, the killed trial
 * continues from its checkpoint on the other worker, and the results equal the in-process search.
 *
 * Redis: AGENT_FORGE_REDIS_URL when set (.ci/run starts one), else a redis-server this test
 * starts on a free port; without either the test is skipped with the reason printed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { openRun, runPhase } from "../pipeline/session.ts";
import { queueExecutor } from "./queue.ts";
import { runSearch, type SearchOptions, type SearchState } from "./run.ts";
import { parseSpace } from "./space.ts";
import { PHASES } from "./testdata/slow_phases.ts";
import { redisAvailable, redisForRun } from "../util/redis_server.ts";

const WORKER = new URL("./worker.ts", import.meta.url).pathname;
const FAKE_PHASES = new URL("./testdata/slow_phases.ts", import.meta.url).pathname;

const canRun = redisAvailable();
if (!canRun) console.log("queue_test skipped: no AGENT_FORGE_REDIS_URL and no redis-server on PATH (apt-get install redis-server)");

Deno.test({
  name: "search on BullMQ: 2 workers, one SIGKILLed mid-trial; every job completes once, results equal the in-process search",
  ignore: !canRun,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const base = await Deno.makeTempDir({ prefix: "af-queue-" });
    const { url, stop } = await redisForRun();
    const queueName = `af-test-${crypto.randomUUID().slice(0, 8)}`;
    const attempts = join(base, "attempts.jsonl");
    const workers: Deno.ChildProcess[] = [];
    try {
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
      const opts = (out: string): SearchOptions => ({
        baseRun,
        phase: 2,
        metric: "score",
        space: parseSpace({ "phases.2.lr": { log_uniform: [1e-4, 1] } }, "space"),
        resourceKey: "phases.2.steps",
        asha: { minResource: 10, maxResource: 90, eta: 3, maxTrials: 6 },
        sampler: "tpe",
        seed: 5,
        out,
        parallel: 2,
        phases: PHASES,
        backend: "cpu",
        log: () => {},
      });
      const local = await runSearch(opts(join(base, "local")));

      const spawnWorker = () =>
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            WORKER,
            "--redis",
            url,
            "--queue",
            queueName,
            "--phases",
            FAKE_PHASES,
            "--backend",
            "cpu",
            "--lock-ms",
            "1500",
          ],
          env: { AF_SEARCH_ATTEMPTS: attempts },
          stdout: "piped",
          stderr: "piped",
        }).spawn();
      // Worker 0 starts alone, so it takes the first job (the default config, 90 steps of 20 ms). Once
      // it has begun, worker 1 starts, and worker 0 is SIGKILLed 400 ms into the trial (after its
      // checkpoint at step 15); the job goes to worker 1 when worker 0's lock expires.
      workers.push(spawnWorker());
      const killer = (async () => {
        const victim = workers[0];
        while (true) {
          await new Promise((r) => setTimeout(r, 25));
          const text = await Deno.readTextFile(attempts).catch(() => "");
          const mine = text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as { pid: number; trial: string })
            .find((l) => l.pid === victim.pid);
          if (!mine) continue;
          workers.push(spawnWorker());
          await new Promise((r) => setTimeout(r, 400));
          victim.kill("SIGKILL");
          await victim.status;
          return mine.trial;
        }
      })();
      const exec = await queueExecutor({ url, queue: queueName });
      const remote = await runSearch({ ...opts(join(base, "remote")), executor: exec });
      await exec.close();
      const killed = await killer;

      const strip = (st: SearchState) => ({
        trials: st.trials.map((t) => ({ ...t, results: t.results.map(({ seconds: _, ...r }) => r) })),
        baseline: st.baseline,
        queue: st.queue.map((j) => j.name),
      });
      assert.ok(remote.done);
      assert.deepEqual(strip(remote), strip(local), "the same trials, rungs and scores as in one process");
      // Every job completed once on the queue, none failed.
      const q = new Queue(queueName, { connection: new Redis(url, { maxRetriesPerRequest: null }) });
      const counts = await q.getJobCounts("completed", "failed", "active", "wait", "delayed");
      assert.equal(counts.completed, remote.queue.length, JSON.stringify(counts));
      assert.equal(counts.failed + counts.active + counts.wait + counts.delayed, 0, JSON.stringify(counts));
      assert.equal(new Set(remote.queue.map((j) => j.name)).size, remote.queue.length, "no job handed out twice");
      // The killed trial ran twice: once on the killed worker, then on the other from its checkpoint.
      const lines = (await Deno.readTextFile(attempts)).trim().split("\n").map((l) =>
        JSON.parse(l) as { trial: string; pid: number; from: number }
      );
      const runs = lines.filter((l) => l.trial === killed);
      console.log(`killed during ${killed}; its attempts: ${JSON.stringify(runs)}; jobs ${remote.queue.length}, attempts ${lines.length}`);
      assert.equal(runs.length, 2, JSON.stringify(runs));
      assert.equal(runs[0].pid, workers[0].pid);
      assert.notEqual(runs[1].pid, workers[0].pid);
      assert.equal(killed, "default");
      assert.ok(runs[1].from >= 5, `the retry continued from the checkpoint (step ${runs[1].from})`);
      // Every other job ran once.
      assert.equal(lines.length, remote.queue.length + 1);
      // A new search in the same folder (the old one deleted) is another search: its jobs run again, on the surviving worker.
      await Deno.remove(join(base, "remote"), { recursive: true });
      const exec2 = await queueExecutor({ url, queue: queueName });
      const again = await runSearch({ ...opts(join(base, "remote")), executor: exec2 }).finally(() => exec2.close());
      assert.notEqual(again.id, remote.id);
      assert.deepEqual(strip(again), strip(local));
      const after = (await Deno.readTextFile(attempts)).trim().split("\n").length;
      assert.equal(after, lines.length + again.queue.length, "every job of the new search ran, none answered from the old one's");
      await q.obliterate({ force: true });
      await q.close();
    } finally {
      for (const w of workers) {
        try {
          w.kill("SIGKILL");
        } catch { /* already gone */ }
        await w.status;
        await w.stdout.cancel().catch(() => {});
        await w.stderr.cancel().catch(() => {});
      }
      await stop();
      await Deno.remove(base, { recursive: true });
    }
  },
});
