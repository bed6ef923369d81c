/**
 * ARC tasks as plain text for a byte-level language model, and back. A grid's rows are labelled
 * (`a`, `b`, ... for rows 0, 1, ...) and followed by their digits; an output grid starts with its
 * shape (`2x3:a012b340`) and an input grid ends with it (`a012b340:2x3`), so that in
 *
 *   input>output\n  (per demonstration)   test-input>   answer
 *
 * the answer's shape comes right after the test input's. `gridAllowed` is the grammar of an
 * answer, for decoding restricted to well-formed grids.
 */
import type { ArcTask, Grid } from "./types.ts";

/** Row labels: row r of a grid is written as ROW_LABELS[r], then its digits (up to 30 rows). */
export const ROW_LABELS = "abcdefghijklmnopqrstuvwxyzABCD";
/** Every character an answer is written with. */
export const GRID_CHARS = `0123456789x:${ROW_LABELS}`;

/** A grid's rows as text: each row's label, then its digits (e.g. `a012b340`). */
export function rowsText(g: Grid): string {
  return g.map((row, r) => ROW_LABELS[r] + row.join("")).join("");
}

/** An output grid (an answer) as text: its shape, then its labelled rows (e.g. `2x3:a012b340`). */
export function gridText(g: Grid): string {
  return `${g.length}x${g[0].length}:${rowsText(g)}`;
}

/** An input grid as text: its labelled rows, then its shape (e.g. `a012b340:2x3`). */
export function inputText(g: Grid): string {
  return `${rowsText(g)}:${g.length}x${g[0].length}`;
}

/** A task's first test pair as a prompt (`input>output\n` per demonstration, then `test-input>`) and its answer. */
export function taskText(task: ArcTask): { prompt: string; answer: string } {
  const demos = task.train.map((p) => `${inputText(p.input)}>${gridText(p.output)}\n`).join("");
  return { prompt: `${demos}${inputText(task.test[0].input)}>`, answer: gridText(task.test[0].output) };
}

/** Parses `gridText` back into a grid; null when malformed (no shape header, rows or labels not matching it, sides outside 1-30). */
export function parseGrid(text: string): Grid | null {
  const m = /^([1-9][0-9]?)x([1-9][0-9]?):(.*)$/.exec(text);
  if (!m) return null;
  const h = Number(m[1]), w = Number(m[2]), body = m[3];
  if (h > 30 || w > 30 || body.length !== h * (w + 1)) return null;
  const rows = Array.from({ length: h }, (_, r) => body.slice(r * (w + 1), (r + 1) * (w + 1)));
  if (!rows.every((row, r) => row[0] === ROW_LABELS[r] && /^[0-9]+$/.test(row.slice(1)))) return null;
  return rows.map((row) => Array.from(row.slice(1), Number));
}

const code = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
const DIGITS = code("0123456789"), LABELS = code(ROW_LABELS), HEADER_CHARS = code("0123456789x:");
/** Prefixes of a shape header `HxW:` (sides 1-30, no leading zeros). */
const HEADER = /^(?:([1-9][0-9]?)(?:x(?:([1-9][0-9]?)(:)?)?)?)?$/;
const headerOk = (t: string) => {
  const m = HEADER.exec(t);
  return m !== null && !(Number(m[1]) > 30) && !(Number(m[2]) > 30);
};

/**
 * The characters (as codes) the grammar of an answer allows after `ids` (`HxW:` with sides 1-30,
 * then H rows of a label and W digits), `end` once the grid is complete; one element when the
 * grammar forces it, none when `ids` already left the grammar.
 */
export function gridAllowed(ids: readonly number[], end: number): number[] {
  const text = ids.every((id) => id < 128) ? String.fromCharCode(...ids) : "\u0000";
  const m = /^([0-9]+)x([0-9]+):/.exec(text);
  if (!m) return headerOk(text) ? HEADER_CHARS.filter((c) => headerOk(text + String.fromCharCode(c))) : [];
  const h = Number(m[1]), w = Number(m[2]), body = ids.slice(m[0].length);
  const bad = body.some((id, i) => (i % (w + 1) === 0 ? id !== LABELS[i / (w + 1)] : !DIGITS.includes(id)));
  const row = Math.floor(body.length / (w + 1)), cell = body.length % (w + 1);
  if (bad || row > h || (row === h && cell > 0)) return [];
  return row === h ? [end] : cell === 0 ? [LABELS[row]] : DIGITS;
}
