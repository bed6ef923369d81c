/**
 * One writer per run directory. Everything that writes a run directory (the CLI's run and
 * resume, a notebook's runPhase / ensurePhases) takes `<run>/run.lock` first. The lock file is
 * created atomically (written to a temp file, then hard-linked into place, which fails when it
 * exists) and holds the holder's pid, host, command, start time and the kernel's start time of
 * its process (so a reused pid is not mistaken for the holder). A second writer is refused at
 * once with a `RunLockedError` naming the holder; a lock whose process is gone on this host is
 * stale and taken over, with a message. Reading a run needs no lock.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { RUN_FILES } from "./run_dir.ts";
import { procStat } from "./stop.ts";

/** What run.lock holds. */
export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  started_at: string;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), on Linux. */
  proc_start?: string;
}

/** The run directory is held by another live writer. */
export class RunLockedError extends Error {
  constructor(readonly path: string, readonly holder: LockHolder | undefined) {
    super(
      holder
        ? `${path}: the run is being written by pid ${holder.pid} on ${holder.host} (${holder.command}, since ${holder.started_at}); ` +
          `wait for it to finish or stop it${holder.host !== hostname() ? `, or remove ${path} if that process is gone` : ""}`
        : `${path}: the run is locked by a process that is starting; try again`,
    );
  }
}

/** A held lock; `release` removes the file (when it is still ours). */
export interface RunLock {
  path: string;
  holder: LockHolder;
  release(): void;
}

/** The kernel's start time of `pid` (Linux), or undefined when the process does not exist (or is a zombie). */
export function processStart(pid: number): string | undefined {
  return procStat(pid)?.start;
}

/** True when `holder`'s process is certainly gone (same host, and no such process or another one with its pid). */
export function isStale(holder: LockHolder): boolean {
  if (holder.host !== hostname() || Deno.build.os !== "linux") return false;
  const start = processStart(holder.pid);
  return start === undefined || (holder.proc_start !== undefined && start !== holder.proc_start);
}

function readHolder(path: string): LockHolder | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(path)) as LockHolder;
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock of `runDir` for this process (creating the directory), or throws
 * RunLockedError. `log` hears about a stale lock taken over.
 */
export function acquireRunLock(runDir: string, command: string, log: (line: string) => void = (l) => console.error(l)): RunLock {
  Deno.mkdirSync(runDir, { recursive: true });
  const path = join(runDir, RUN_FILES.lock);
  const holder: LockHolder = { pid: Deno.pid, host: hostname(), command, started_at: new Date().toISOString() };
  const start = processStart(Deno.pid);
  if (start) holder.proc_start = start;
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  Deno.writeTextFileSync(tmp, JSON.stringify(holder) + "\n");
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        Deno.linkSync(tmp, path);
        let released = false;
        return {
          path,
          holder,
          release() {
            if (released) return;
            released = true;
            try {
              if (readHolder(path)?.pid === holder.pid) Deno.removeSync(path);
            } catch { /* a read-only or vanished folder: the next writer finds the lock stale */ }
          },
        };
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
      const other = readHolder(path);
      if (!other) continue; // it vanished between our link and our read (a lock is never half-written): try again
      if (!isStale(other)) throw new RunLockedError(path, other);
      takeOver(path, other, holder, log);
    }
    throw new RunLockedError(path, readHolder(path));
  } finally {
    try {
      Deno.removeSync(tmp);
    } catch { /* already gone */ }
  }
}

/**
 * Removes the stale lock of `stale` so the caller can link its own. Two processes may judge the
 * same lock stale at once: a second lock file, `run.lock.takeover`, created atomically, lets only
 * one of them remove it, and that one first checks that the lock is still the stale one (a
 * takeover lock left by a killed process is itself stale and removed).
 */
function takeOver(path: string, stale: LockHolder, me: LockHolder, log: (line: string) => void): void {
  const guard = `${path}.takeover`, tmp = `${guard}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  Deno.writeTextFileSync(tmp, JSON.stringify(me) + "\n");
  try {
    Deno.linkSync(tmp, guard);
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    const g = readHolder(guard);
    if (!g || isStale(g)) {
      try {
        Deno.removeSync(guard);
      } catch { /* another process removed it */ }
    }
    return; // someone else is taking over: the caller tries to link again
  } finally {
    Deno.removeSync(tmp);
  }
  try {
    if (JSON.stringify(readHolder(path)) !== JSON.stringify(stale)) return; // replaced meanwhile: not ours to remove
    log(
      `${path}: taking over a stale lock of pid ${stale.pid} on ${stale.host} (${stale.command}, since ${stale.started_at}): that process is gone`,
    );
    try {
      Deno.removeSync(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  } finally {
    Deno.removeSync(guard);
  }
}

/** Runs `fn` holding the lock of `runDir`, releasing it afterwards (also when `fn` throws). */
export async function withRunLock<T>(runDir: string, command: string, fn: () => Promise<T>, log?: (line: string) => void): Promise<T> {
  const lock = acquireRunLock(runDir, command, log);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
