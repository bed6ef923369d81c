/**
 * Loader for ARC-AGI task folders: one JSON file per task,
 * `{"train": [{"input": grid, "output": grid}, ...], "test": [...]}`.
 *
 * Every value is checked; a malformed task throws an `ArcFormatError` whose message names
 * the file, the JSON path and what was expected, e.g.
 * `0a938d79.json: train[2].output[3][4] = 12, colours are 0-9`.
 */
import { type ArcPair, type ArcTask, type Grid, MAX_GRID_SIZE } from "./types.ts";

/** A task file that does not hold a valid ARC task. */
export class ArcFormatError extends Error {
  /** The file name as given to the validator. */
  file: string;
  /** The JSON path of the offending value, e.g. `train[2].output[3][4]` (empty for the whole file). */
  path: string;
  constructor(file: string, path: string, problem: string) {
    super(`${file}: ${path}${path ? " " : ""}${problem}`);
    this.name = "ArcFormatError";
    this.file = file;
    this.path = path;
  }
}

/** A value as short JSON for error messages. */
function show(v: unknown): string {
  const s = v === undefined ? "undefined" : JSON.stringify(v);
  return s.length > 40 ? s.slice(0, 37) + "..." : s;
}

const SIZES = `grids are 1x1 to ${MAX_GRID_SIZE}x${MAX_GRID_SIZE}`;

/**
 * Checks that `value` is a grid: a non-empty array of at most 30 rows, each a non-empty array of
 * at most 30 integers 0-9, all rows the same length. Returns null, or `[path, problem]` for the first fault.
 */
export function gridProblem(value: unknown, path: string): [string, string] | null {
  if (!Array.isArray(value)) return [path, `= ${show(value)}, expected a grid (an array of rows)`];
  if (value.length === 0) return [path, `= [], ${SIZES}`];
  if (value.length > MAX_GRID_SIZE) return [path, `has ${value.length} rows, ${SIZES}`];
  let width = -1;
  for (let r = 0; r < value.length; r++) {
    const row: unknown = value[r];
    const rp = `${path}[${r}]`;
    if (!Array.isArray(row)) return [rp, `= ${show(row)}, expected a row (an array of colours)`];
    if (row.length === 0) return [rp, `= [], ${SIZES}`];
    if (row.length > MAX_GRID_SIZE) return [rp, `has ${row.length} cells, ${SIZES}`];
    if (width >= 0 && row.length !== width) return [rp, `has ${row.length} cells but row 0 has ${width} (ragged rows)`];
    width = row.length;
    for (let c = 0; c < row.length; c++) {
      const v: unknown = row[c];
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 9) return [`${rp}[${c}]`, `= ${show(v)}, colours are 0-9`];
    }
  }
  return null;
}

function checkPairs(json: Record<string, unknown>, key: "train" | "test", file: string): ArcPair[] {
  const list = json[key];
  if (list === undefined) throw new ArcFormatError(file, key, `is missing, expected an array of {"input", "output"} pairs`);
  if (!Array.isArray(list)) throw new ArcFormatError(file, key, `= ${show(list)}, expected an array of {"input", "output"} pairs`);
  if (list.length === 0) throw new ArcFormatError(file, key, `= [], expected at least one pair`);
  return list.map((pair: unknown, i) => {
    const pp = `${key}[${i}]`;
    if (typeof pair !== "object" || pair === null || Array.isArray(pair)) {
      throw new ArcFormatError(file, pp, `= ${show(pair)}, expected {"input": grid, "output": grid}`);
    }
    const p = pair as Record<string, unknown>;
    for (const side of ["input", "output"]) {
      if (p[side] === undefined) throw new ArcFormatError(file, `${pp}.${side}`, "is missing, expected a grid");
      const problem = gridProblem(p[side], `${pp}.${side}`);
      if (problem) throw new ArcFormatError(file, problem[0], problem[1]);
    }
    return { input: p.input as Grid, output: p.output as Grid };
  });
}

/** Validates parsed JSON as an ARC task; `file` names it in errors and becomes the id (without `.json`). */
export function validateTask(json: unknown, file: string): ArcTask {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ArcFormatError(file, "", `is ${show(json)}, expected an object {"train": [...], "test": [...]}`);
  }
  const obj = json as Record<string, unknown>;
  const train = checkPairs(obj, "train", file);
  const test = checkPairs(obj, "test", file);
  return { id: file.replace(/\.json$/, ""), train, test };
}

/** Parses and validates the text of a task file. */
export function parseTaskJson(text: string, file: string): ArcTask {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ArcFormatError(file, "", `is not valid JSON (${(e as Error).message})`);
  }
  return validateTask(json, file);
}

/** The base name of a path. */
function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

/** Reads one task file. */
export async function loadTaskFile(path: string): Promise<ArcTask> {
  return parseTaskJson(await Deno.readTextFile(path), baseName(path));
}

/** Options of `loadTaskFolder`. */
export interface LoadOptions {
  /** Skip malformed files (listed in `skipped`) instead of throwing on the first. Default false. */
  skipInvalid?: boolean;
  /** Read at most this many files (in name order). */
  limit?: number;
}

/** Tasks read from a folder, and the files skipped with their errors. */
export interface LoadResult {
  tasks: ArcTask[];
  skipped: { file: string; error: string }[];
}

/** Reads every `*.json` file of a folder, in file-name order, as ARC tasks. */
export async function loadTaskFolder(dir: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile && e.name.endsWith(".json")) names.push(e.name);
  names.sort();
  const result: LoadResult = { tasks: [], skipped: [] };
  for (const name of names.slice(0, opts.limit ?? names.length)) {
    try {
      result.tasks.push(parseTaskJson(await Deno.readTextFile(`${dir}/${name}`), name));
    } catch (e) {
      if (!opts.skipInvalid || !(e instanceof ArcFormatError)) throw e;
      result.skipped.push({ file: name, error: e.message });
    }
  }
  return result;
}
