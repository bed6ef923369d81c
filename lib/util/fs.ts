/** File helpers: every write that other tools read is atomic (temp file + rename). */
import { dirname } from "node:path";
import { faultPoint, writeKind } from "./fault.ts";

/** A write that failed (a full disk, a read-only or vanished folder); the message names the path. */
export class WriteError extends Error {
  constructor(readonly path: string, cause: unknown) {
    super(`cannot write ${path}: ${(cause as Error).message ?? cause}`, { cause });
  }
}

/** Runs a write of `path`, turning its failure into a WriteError naming the path. */
export async function writing<T>(path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw e instanceof WriteError ? e : new WriteError(path, e);
  }
}

/** Writes bytes or text to `path` atomically: a reader sees the old file or the new one, never half. */
export function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  return writing(path, async () => {
    await Deno.mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    await Deno.writeFile(tmp, bytes);
    faultPoint(writeKind(path), () => Deno.truncateSync(tmp, Math.floor(bytes.length / 2)));
    await Deno.rename(tmp, path);
  });
}

/** Writes `value` as pretty JSON, atomically. */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Reads and parses a JSON file; the error names the file and what went wrong. */
export async function readJson<T = unknown>(path: string): Promise<T> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** True when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Appends one JSON line to a JSONL file (one write call, so lines never interleave). */
export function appendJsonl(path: string, value: unknown): Promise<void> {
  return writing(path, async () => {
    await Deno.mkdir(dirname(path), { recursive: true });
    // A kill mid-append leaves a torn last line without its newline: end it first, so this
    // record starts a line of its own instead of being glued to the torn one (readers skip it).
    const line = (await endsTorn(path) ? "\n" : "") + JSON.stringify(value) + "\n";
    faultPoint(writeKind(path), () => Deno.writeTextFileSync(path, line.slice(0, Math.floor(line.length / 2)), { append: true }));
    await Deno.writeTextFile(path, line, { append: true });
  });
}

/** True when `path` exists, is not empty and does not end with a newline. */
async function endsTorn(path: string): Promise<boolean> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
  try {
    const size = (await f.stat()).size;
    if (size === 0) return false;
    await f.seek(size - 1, Deno.SeekMode.Start);
    const last = new Uint8Array(1);
    await f.read(last);
    return last[0] !== 10;
  } finally {
    f.close();
  }
}
