/**
 * Graceful stops. The first SIGTERM or SIGINT only sets a flag: the trainer finishes its current
 * optimizer step, writes a checkpoint and throws `StopRequested`, and the controller marks the
 * phase `interrupted` in state.json, so `--resume` continues from that checkpoint. A second
 * signal exits at once (with the same code). Exit codes follow the shell's convention:
 * 130 after SIGINT, 143 after SIGTERM.
 *
 * The `deno` that `npm install -g deno` can put on PATH is a Node.js shim (deno's `bin.cjs`)
 * that runs the real binary with spawnSync and forwards no signal: a SIGTERM to it kills the
 * shim and leaves this process running, reparented. So when one of this process's ancestors is
 * that shim, its death counts as a SIGTERM too (polled twice a second).
 */

export type StopSignal = "SIGTERM" | "SIGINT";

/** Raised by the trainer once it has checkpointed after a stop request. */
export class StopRequested extends Error {
  constructor(readonly signal: StopSignal, readonly step?: number) {
    super(`stopped by ${signal}${step !== undefined ? ` after step ${step} (checkpoint written)` : ""}`);
  }
}

/** The exit code after a stop by `signal`: 128 + the signal's number. */
export function exitCodeFor(signal: StopSignal): number {
  return signal === "SIGINT" ? 130 : 143;
}

let requested: StopSignal | undefined;
const hooks = new Set<() => void>();

/** The signal of a pending stop request, if any. */
export function stopRequested(): StopSignal | undefined {
  return requested;
}

/** Asks the running work to stop at its next safe point, as the first signal does (tests use it to interrupt a run). */
export function requestStop(signal: StopSignal = "SIGTERM"): void {
  requested ??= signal;
}

/** Forgets a stop request (tests, after an interrupted run). */
export function clearStop(): void {
  requested = undefined;
}

/** Throws StopRequested when a stop was asked for: a safe point outside the trainer (between a phase's evaluations). */
export function throwIfStopRequested(): void {
  if (requested) throw new StopRequested(requested);
}

/** Runs `fn` (synchronous, e.g. removing a lock file) before a second signal exits the process. */
export function beforeHardExit(fn: () => void): () => void {
  hooks.add(fn);
  return () => hooks.delete(fn);
}

function onSignal(signal: StopSignal, log: (line: string) => void): void {
  if (requested) {
    log(`${signal} again: exiting now`);
    for (const h of hooks) {
      try {
        h();
      } catch { /* best effort */ }
    }
    Deno.exit(exitCodeFor(requested));
  }
  requested = signal;
  log(`${signal}: stopping after the current optimizer step with a checkpoint (send it again to exit at once)`);
}

/** /proc/<pid>/stat fields: [ppid, start time] (Linux), or undefined when the process is gone (a zombie counts as gone). */
export function procStat(pid: number): { ppid: number; start: string } | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // after "pid (comm) ": state, ppid, ...
    if (f[0] === "Z" || f[0] === "X") return undefined; // exited, not yet reaped
    return { ppid: Number(f[1]), start: f[19] };
  } catch {
    return undefined;
  }
}

/** The nearest ancestor that is npm's deno shim (node running deno's bin.cjs), if any. */
export function shimAncestor(pid = Deno.pid): { pid: number; start: string } | undefined {
  for (let p = procStat(pid)?.ppid, hops = 0; p && p > 1 && hops < 16; p = procStat(p)?.ppid, hops++) {
    let cmd = "";
    try {
      cmd = Deno.readTextFileSync(`/proc/${p}/cmdline`).replaceAll("\0", " ");
    } catch {
      return undefined;
    }
    if (/\bnode\b/.test(cmd) && /deno[\\/]bin\.cjs/.test(cmd)) {
      const st = procStat(p);
      return st ? { pid: p, start: st.start } : undefined;
    }
  }
  return undefined;
}

/**
 * Calls `onGone` once if npm's deno shim that started this process (an ancestor) exits, checked
 * twice a second; returns the function that stops watching. Does nothing without such a shim.
 */
export function watchShim(onGone: (shimPid: number) => void): () => void {
  const shim = Deno.build.os === "linux" ? shimAncestor() : undefined;
  if (!shim) return () => {};
  const timer = setInterval(() => {
    if (procStat(shim.pid)?.start !== shim.start) {
      clearInterval(timer);
      onGone(shim.pid);
    }
  }, 500);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

/**
 * Installs the SIGTERM / SIGINT handlers (and the watch on a deno shim ancestor) for the life
 * of a run; returns the function that removes them.
 */
export function installStopHandlers(log: (line: string) => void = (l) => console.error(l)): () => void {
  const term = () => onSignal("SIGTERM", log);
  const int = () => onSignal("SIGINT", log);
  Deno.addSignalListener("SIGTERM", term);
  Deno.addSignalListener("SIGINT", int);
  const unwatch = watchShim((pid) => {
    log(`the deno shim (pid ${pid}) that started this process is gone: treating it as SIGTERM`);
    if (!requested) onSignal("SIGTERM", log);
  });
  return () => {
    Deno.removeSignalListener("SIGTERM", term);
    Deno.removeSignalListener("SIGINT", int);
    unwatch();
  };
}
