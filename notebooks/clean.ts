/**
 * `deno task nb:clean`: strips outputs, execution counts and execution metadata from the
 * committed notebooks (committed notebooks carry no outputs). `--check` only reports the
 * notebooks that carry any and exits 1 when one does.
 *
 * Files are written as Jupyter writes them (keys sorted, one-space indent), so saving from
 * Jupyter and cleaning give the same bytes.
 */
import { basename } from "node:path";
import { writeAtomic } from "../lib/util/fs.ts";
import { listNotebooks, type Notebook } from "./run.ts";

/** Cell metadata keys that Jupyter and nbclient add while executing. */
const RUN_METADATA = ["execution", "collapsed", "scrolled", "ExecuteTime"];

/**
 * Cell source ending in a newline. Deno 2.9.6's `fmt --check` reports a notebook with a cell that
 * does not end in one as unformatted, although `deno fmt` leaves the file as it is (a warm
 * formatter cache hides it; CI's fresh one does not). Jupyter saves cells without it.
 */
function endInNewline(source: string | string[]): string[] {
  const lines = Array.isArray(source) ? [...source] : source.split(/(?<=\n)/);
  if (lines.length && !lines[lines.length - 1].endsWith("\n")) lines[lines.length - 1] += "\n";
  return lines;
}

/** A copy of `nb` without outputs, execution counts or execution metadata (every cell ending in a newline). */
export function stripOutputs(nb: Notebook): Notebook {
  return {
    ...nb,
    cells: nb.cells.map((c) => {
      const metadata = Object.fromEntries(Object.entries(c.metadata ?? {}).filter(([k]) => !RUN_METADATA.includes(k)));
      const source = endInNewline(c.source);
      return c.cell_type === "code" ? { ...c, metadata, source, outputs: [], execution_count: null } : { ...c, metadata, source };
    }),
  };
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  }
  return v;
}

/** A notebook as Jupyter writes it: keys sorted, indent 1, a final newline. */
export function notebookJson(nb: Notebook): string {
  return JSON.stringify(sortKeys(nb), null, 1) + "\n";
}

/** Cleans every notebook file (or, with `check`, only lists those that would change). Returns the changed ones. */
export async function cleanNotebooks(files: string[], check = false): Promise<string[]> {
  const changed: string[] = [];
  for (const f of files) {
    const text = await Deno.readTextFile(f);
    let nb: Notebook;
    try {
      nb = JSON.parse(text);
    } catch (e) {
      throw new Error(`${f}: not valid notebook JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(nb.cells)) throw new Error(`${f}: no "cells" array, not a notebook`);
    const clean = notebookJson(stripOutputs(nb));
    if (clean === text) continue;
    changed.push(f);
    if (!check) await writeAtomic(f, clean);
  }
  return changed;
}

if (import.meta.main) {
  const check = Deno.args.includes("--check");
  const files = Deno.args.filter((a) => a !== "--check");
  const changed = await cleanNotebooks(files.length ? files : await listNotebooks(), check);
  for (const f of changed) console.log(`${check ? "has outputs or is not in Jupyter's layout" : "cleaned"}: ${basename(f)}`);
  if (check && changed.length) Deno.exit(1);
}
