/**
 * Grid tokenizer for ARC: one token per cell, a row terminator after every row, and
 * markers that lay out demonstration pairs in one sequence.
 *
 * Vocabulary (GRID_VOCAB_SIZE = 17):
 *
 * | id   | token      | meaning                                   |
 * | ---- | ---------- | ----------------------------------------- |
 * | 0-9  | colours    | one grid cell (0 is the background)       |
 * | 10   | ROW_END    | ends every row (so the width is implicit) |
 * | 11   | INPUT      | an input grid follows                     |
 * | 12   | OUTPUT     | an output grid follows                    |
 * | 13   | PAIR_SEP   | ends a demonstration pair                 |
 * | 14   | BOS        | starts a sequence                         |
 * | 15   | EOS        | ends a sequence                           |
 * | 16   | PAD        | filler after EOS, never predicted         |
 *
 * A grid [[1,2],[3,4]] is `1 2 ROW_END 3 4 ROW_END`. The layout of whole tasks is in
 * `datasets/arc/serialize.ts`.
 */
import type { Grid } from "../arc/types.ts";

/** Ids of the non-colour tokens. */
export const GRID_TOKENS = {
  ROW_END: 10,
  INPUT: 11,
  OUTPUT: 12,
  PAIR_SEP: 13,
  BOS: 14,
  EOS: 15,
  PAD: 16,
} as const;

/** Number of token ids: 10 colours + ROW_END, INPUT, OUTPUT, PAIR_SEP, BOS, EOS, PAD. */
export const GRID_VOCAB_SIZE = 17;

const NAMES: Record<number, string> = {
  [GRID_TOKENS.ROW_END]: "/",
  [GRID_TOKENS.INPUT]: "<in>",
  [GRID_TOKENS.OUTPUT]: "<out>",
  [GRID_TOKENS.PAIR_SEP]: "<sep>",
  [GRID_TOKENS.BOS]: "<bos>",
  [GRID_TOKENS.EOS]: "<eos>",
  [GRID_TOKENS.PAD]: "<pad>",
};

/** True for the ten colour tokens 0-9. */
export function isColourToken(t: number): boolean {
  return Number.isInteger(t) && t >= 0 && t <= 9;
}

/** Appends the tokens of a grid (cells row by row, ROW_END after each row) to `out` and returns it. */
export function encodeGrid(grid: Grid, out: number[] = []): number[] {
  for (const row of grid) {
    for (const v of row) {
      if (!isColourToken(v)) throw new Error(`encodeGrid: cell value ${v}, colours are 0-9`);
      out.push(v);
    }
    out.push(GRID_TOKENS.ROW_END);
  }
  return out;
}

/**
 * Reads one grid starting at `start`: rows of colours, each closed by ROW_END, up to the
 * first token after a ROW_END that is not a colour. Returns the grid and the index just past it.
 * Throws, naming the position, on an empty grid or row, a ragged row, or a row left open.
 */
export function decodeGrid(tokens: ArrayLike<number>, start = 0): { grid: Grid; end: number } {
  const grid: Grid = [];
  let i = start;
  while (i < tokens.length && isColourToken(tokens[i])) {
    const row: number[] = [];
    while (i < tokens.length && isColourToken(tokens[i])) row.push(tokens[i++]);
    if (i >= tokens.length || tokens[i] !== GRID_TOKENS.ROW_END) {
      const what = i >= tokens.length ? "the end" : tokenName(tokens[i]);
      throw new Error(`decodeGrid: row ${grid.length} starting at token ${i - row.length} is not closed by ROW_END (found ${what})`);
    }
    if (grid.length > 0 && row.length !== grid[0].length) {
      throw new Error(`decodeGrid: row ${grid.length} at token ${i - row.length} has ${row.length} cells, row 0 has ${grid[0].length}`);
    }
    grid.push(row);
    i++;
  }
  if (grid.length === 0) {
    const what = i >= tokens.length ? "the end" : tokenName(tokens[i]);
    throw new Error(`decodeGrid: expected a grid at token ${start}, found ${what}`);
  }
  return { grid, end: i };
}

/** A short readable name of a token: the digit for colours, `/` for ROW_END, `<in>`, `<out>`, ... */
export function tokenName(t: number): string {
  if (isColourToken(t)) return String(t);
  return NAMES[t] ?? `<?${t}>`;
}

/** Tokens as readable text, names separated by spaces (for logs and debugging). */
export function tokensToText(tokens: ArrayLike<number>): string {
  return Array.from(tokens, tokenName).join(" ");
}

/** The inverse of `tokensToText`; throws on an unknown name. */
export function textToTokens(text: string): number[] {
  const ids = new Map<string, number>();
  for (let t = 0; t < GRID_VOCAB_SIZE; t++) ids.set(tokenName(t), t);
  return text.split(/\s+/).filter((s) => s.length > 0).map((s) => {
    const t = ids.get(s);
    if (t === undefined) throw new Error(`textToTokens: unknown token "${s}"`);
    return t;
  });
}
