/**
 * Fault injection for `deno task bench:faults`: with AGENT_FORGE_FAULT set, a process kills
 * itself (SIGKILL) in the middle of a write, to show that a kill at the worst moment loses
 * nothing. `<kind>:<n>` fires during the n-th write of that kind (the partial write happens
 * first: half a temp file, half a JSON line); `count:<file>` only appends each write's kind to
 * <file>, so the bench knows how many writes of each kind a run makes. Unset, it does nothing.
 */

/** What a write is, from its path. */
export type WriteKind = "checkpoint" | "state" | "metrics" | "result" | "config" | "other";

/** The kind of the write to `path`. */
export function writeKind(path: string): WriteKind {
  const name = path.split(/[\\/]/).pop() ?? "";
  if (name.startsWith("state.json")) return "state";
  if (name === "metrics.jsonl") return "metrics";
  if (name.startsWith("result.json")) return "result";
  if (name.startsWith("config.json")) return "config";
  if (/[\\/](ckpt|checkpoints)[\\/]/.test(path)) return "checkpoint";
  return "other";
}

const SPEC = (() => {
  try {
    return Deno.env.get("AGENT_FORGE_FAULT");
  } catch {
    return undefined; // no env permission: no faults
  }
})();
const seen = new Map<string, number>();

/**
 * A point inside a write of `kind`: counts it, and when AGENT_FORGE_FAULT names this write,
 * runs `partial` (the half-done write) and kills the process.
 */
export function faultPoint(kind: WriteKind, partial?: () => void): void {
  if (!SPEC) return;
  const [what, arg] = [SPEC.slice(0, SPEC.indexOf(":")), SPEC.slice(SPEC.indexOf(":") + 1)];
  if (what === "count") {
    Deno.writeTextFileSync(arg, kind + "\n", { append: true });
    return;
  }
  if (what !== kind) return;
  const n = (seen.get(kind) ?? 0) + 1;
  seen.set(kind, n);
  if (n !== Number(arg)) return;
  partial?.();
  console.error(`fault: SIGKILL during ${kind} write #${n}`);
  Deno.kill(Deno.pid, "SIGKILL");
}
