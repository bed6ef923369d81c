import assert from "node:assert/strict";
import { join } from "node:path";
import { acquireRunLock, isStale, type LockHolder, processStart, RunLockedError } from "./run_lock.ts";

const quiet = () => {};

Deno.test("run.lock: a second acquire is refused naming the holder; release frees it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "af-lock-" });
  const a = acquireRunLock(dir, "first writer", quiet);
  const held = JSON.parse(await Deno.readTextFile(join(dir, "run.lock"))) as LockHolder;
  assert.deepEqual([held.pid, held.command], [Deno.pid, "first writer"]);
  assert.throws(() => acquireRunLock(dir, "second writer", quiet), (e: unknown) => {
    return e instanceof RunLockedError && new RegExp(`being written by pid ${Deno.pid} on .*\\(first writer, since`).test(e.message);
  });
  assert.equal(JSON.parse(await Deno.readTextFile(join(dir, "run.lock"))).command, "first writer", "the refused writer wrote nothing");
  a.release();
  assert.equal((await Array.fromAsync(Deno.readDir(dir))).length, 0, "no lock and no temp file left");
  acquireRunLock(dir, "third writer", quiet).release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("run.lock: a dead holder's lock, or one whose pid now belongs to another process, is stale and taken over", async () => {
  const dir = await Deno.makeTempDir({ prefix: "af-lock-" });
  const gone = new Deno.Command("true").spawn();
  await gone.status;
  const host = Deno.hostname();
  const dead: LockHolder = { pid: gone.pid, host, command: "killed", started_at: "then" };
  assert.ok(isStale(dead));
  assert.ok(!isStale({ ...dead, pid: Deno.pid, proc_start: processStart(Deno.pid) }), "this live process is not stale");
  assert.ok(isStale({ ...dead, pid: Deno.pid, proc_start: "1" }), "same pid, another process: stale");
  assert.ok(!isStale({ ...dead, host: "elsewhere" }), "another host's lock is never judged stale here");
  await Deno.writeTextFile(join(dir, "run.lock"), JSON.stringify(dead));
  const lines: string[] = [];
  const lock = acquireRunLock(dir, "after a kill", (l) => lines.push(l));
  assert.match(
    lines.join("\n"),
    new RegExp(`taking over a stale lock of pid ${gone.pid} .*\\(killed, since then\\): that process is gone`),
  );
  lock.release();
  await Deno.writeTextFile(join(dir, "run.lock"), JSON.stringify({ ...dead, host: "elsewhere" }));
  assert.throws(() => acquireRunLock(dir, "x", quiet), /on elsewhere .*remove .*run\.lock if that process is gone/);
  await Deno.remove(dir, { recursive: true });
});
