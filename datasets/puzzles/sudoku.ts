/**
 * Sudoku, 4x4 (2x2 boxes) and 9x9 (3x3 boxes), with unique solutions.
 *
 * A grid is a `Uint8Array` of n*n cells in row-major order, 0 for a blank and 1..n for a
 * digit; n is read off the length (16 or 81). The solver is backtracking with constraint
 * propagation: at every node it branches on the choice with the fewest alternatives (MRV),
 * which is either a cell's candidate digits or, for a digit still missing from a row,
 * column or box, the cells of that unit that can take it. A cell or a unit-digit with one
 * alternative is a forced move (naked / hidden single); none means a dead end.
 *
 * The generator fills a random full grid with the same solver (digits tried in a seeded
 * random order), then blanks cells in a seeded random order, keeping each removal only if
 * the solution stays unique, until the requested number of clues is left.
 */
import { deriveSeed, Rng } from "../../lib/util/rng.ts";
import type { CheckResult, TextExample } from "./types.ts";

/** A Sudoku grid: n*n cells row-major, 0 = blank, 1..n = digit. */
export type SudokuGrid = Uint8Array;

/** The side lengths supported. */
export type SudokuSize = 4 | 9;

export interface SudokuConfig {
  /** Side of the grid: 4 (2x2 boxes) or 9 (3x3 boxes). Default 9. */
  size: SudokuSize;
  /** Fewest clues an item may have; each item draws its clue count uniformly in [minClues, maxClues].
   * Default 26 for 9x9, 6 for 4x4. Smallest accepted: 17 (9x9), 4 (4x4). */
  minClues: number;
  /** Most clues an item may have (at most n*n). Default 36 for 9x9, 10 for 4x4. */
  maxClues: number;
  /** Full grids tried per item before giving up on a clue count too low to reach. Default 50. */
  maxAttempts: number;
  seed: number;
}

/** Defaults for a 9x9 dataset; `sudokuConfig({ size: 4 })` picks the 4x4 clue range instead. */
export const DEFAULT_SUDOKU: SudokuConfig = { size: 9, minClues: 26, maxClues: 36, maxAttempts: 50, seed: 0 };

/** Default clue range per size. */
const DEFAULT_CLUES: Record<SudokuSize, [number, number]> = { 4: [6, 10], 9: [26, 36] };

/** Fewest clues a uniquely solvable puzzle can have (4 for 4x4; 17 for 9x9, McGuire et al. 2012). */
export const SUDOKU_MIN_CLUES: Record<SudokuSize, number> = { 4: 4, 9: 17 };

/** A generated puzzle with its unique solution. */
export interface SudokuItem {
  size: SudokuSize;
  puzzle: SudokuGrid;
  solution: SudokuGrid;
  clues: number;
  /** Blank cells, n*n - clues: the difficulty knob. */
  difficulty: number;
}

/** Fills in defaults (clue range by size) and validates; throws naming the bad field. */
export function sudokuConfig(partial: Partial<SudokuConfig> = {}): SudokuConfig {
  const size = partial.size ?? DEFAULT_SUDOKU.size;
  if (size !== 4 && size !== 9) throw new Error(`sudoku.size = ${size}: expected 4 or 9`);
  const [lo, hi] = DEFAULT_CLUES[size];
  const cfg: SudokuConfig = {
    size,
    minClues: partial.minClues ?? lo,
    maxClues: partial.maxClues ?? hi,
    maxAttempts: partial.maxAttempts ?? DEFAULT_SUDOKU.maxAttempts,
    seed: partial.seed ?? DEFAULT_SUDOKU.seed,
  };
  validateSudokuConfig(cfg);
  return cfg;
}

/** Throws an error naming the field if `cfg` is not a usable configuration. */
export function validateSudokuConfig(cfg: SudokuConfig): void {
  const { size, minClues, maxClues, maxAttempts } = cfg;
  if (size !== 4 && size !== 9) throw new Error(`sudoku.size = ${size}: expected 4 or 9`);
  const cells = size * size, least = SUDOKU_MIN_CLUES[size];
  if (!Number.isInteger(minClues) || minClues < least || minClues > cells) {
    throw new Error(`sudoku.minClues = ${minClues}: expected an integer in [${least}, ${cells}] for size ${size}`);
  }
  if (!Number.isInteger(maxClues) || maxClues < minClues || maxClues > cells) {
    throw new Error(`sudoku.maxClues = ${maxClues}: expected an integer in [minClues = ${minClues}, ${cells}]`);
  }
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new Error(`sudoku.maxAttempts = ${maxAttempts}: expected an integer >= 1`);
  if (!Number.isInteger(cfg.seed)) throw new Error(`sudoku.seed = ${cfg.seed}: expected an integer`);
}

/** Cell-to-unit tables for one grid size. */
interface Geometry {
  n: number;
  cells: number;
  /** The three units (row r, column n + c, box 2n + b) of each cell, flat [cells, 3]. */
  cellUnits: Int16Array;
  /** The n cells of each of the 3n units, flat [3n, n]. */
  unitCells: Int16Array;
}

const geometries = new Map<number, Geometry>();

/** The unit tables for side n (4 or 9), built once. */
function geometry(n: number): Geometry {
  let g = geometries.get(n);
  if (g) return g;
  const box = Math.round(Math.sqrt(n)), cells = n * n;
  const cellUnits = new Int16Array(cells * 3), unitCells = new Int16Array(3 * n * n), fill = new Int32Array(3 * n);
  for (let cell = 0; cell < cells; cell++) {
    const r = Math.floor(cell / n), c = cell % n, b = Math.floor(r / box) * box + Math.floor(c / box);
    const units = [r, n + c, 2 * n + b];
    units.forEach((u, k) => {
      cellUnits[cell * 3 + k] = u;
      unitCells[u * n + fill[u]++] = cell;
    });
  }
  g = { n, cells, cellUnits, unitCells };
  geometries.set(n, g);
  return g;
}

/** Side length of a grid, from its cell count; throws on anything but 16 or 81 cells with digits 0..n. */
export function sudokuSide(grid: SudokuGrid): SudokuSize {
  const n = grid.length === 16 ? 4 : grid.length === 81 ? 9 : 0;
  if (n === 0) throw new Error(`sudoku grid has ${grid.length} cells: expected 16 (4x4) or 81 (9x9)`);
  for (const v of grid) if (v > n) throw new Error(`sudoku grid has digit ${v}: expected 0 (blank) to ${n}`);
  return n;
}

function popcount(x: number): number {
  let c = 0;
  while (x) {
    x &= x - 1;
    c++;
  }
  return c;
}

/** What a search found: the number of solutions (capped at the limit), the first one, and the nodes visited. */
export interface SudokuSearch {
  count: number;
  solution: SudokuGrid | null;
  nodes: number;
}

/**
 * Backtracking search from `puzzle`, stopping at `limit` solutions. With `rng`, the
 * alternatives at each node are tried in a random order (used to draw full grids).
 * A puzzle whose clues already clash has no solutions.
 */
export function searchSudoku(puzzle: SudokuGrid, limit = 2, rng?: Rng): SudokuSearch {
  const n = sudokuSide(puzzle);
  const { cells, cellUnits, unitCells } = geometry(n);
  const full = (1 << n) - 1;
  const grid = puzzle.slice();
  const used = new Int32Array(3 * n);
  for (let cell = 0; cell < cells; cell++) {
    const v = grid[cell];
    if (v === 0) continue;
    const bit = 1 << (v - 1);
    for (let k = 0; k < 3; k++) {
      const u = cellUnits[cell * 3 + k];
      if (used[u] & bit) return { count: 0, solution: null, nodes: 0 };
      used[u] |= bit;
    }
  }
  const candidates = (cell: number) => full & ~(used[cellUnits[cell * 3]] | used[cellUnits[cell * 3 + 1]] | used[cellUnits[cell * 3 + 2]]);
  const place = (cell: number, v: number) => {
    grid[cell] = v;
    for (let k = 0; k < 3; k++) used[cellUnits[cell * 3 + k]] |= 1 << (v - 1);
  };
  const unplace = (cell: number, v: number) => {
    grid[cell] = 0;
    for (let k = 0; k < 3; k++) used[cellUnits[cell * 3 + k]] &= ~(1 << (v - 1));
  };
  const result: SudokuSearch = { count: 0, solution: null, nodes: 0 };

  const search = (): void => {
    result.nodes++;
    const choices = bestBranch(grid, n, cells, unitCells, used, candidates);
    if (choices === null) {
      if (result.count === 0) result.solution = grid.slice();
      result.count++;
      return;
    }
    if (rng) shuffle(choices, rng);
    for (const [cell, v] of choices) {
      place(cell, v);
      search();
      unplace(cell, v);
      if (result.count >= limit) return;
    }
  };
  search();
  return result;
}

/**
 * The branching point with the fewest alternatives, as (cell, digit) moves; [] for a dead
 * end, null when the grid is full.
 */
function bestBranch(
  grid: SudokuGrid,
  n: number,
  cells: number,
  unitCells: Int16Array,
  used: Int32Array,
  candidates: (cell: number) => number,
): [number, number][] | null {
  let bestCell = -1, bestCount = n + 1, bestMask = 0;
  for (let cell = 0; cell < cells; cell++) {
    if (grid[cell] !== 0) continue;
    const mask = candidates(cell), c = popcount(mask);
    if (c < bestCount) {
      bestCell = cell;
      bestCount = c;
      bestMask = mask;
      if (c <= 1) break;
    }
  }
  if (bestCell < 0) return null;
  if (bestCount === 0) return [];
  // A digit missing from a unit may have fewer places there than the best cell has candidates.
  let bestPlaces: [number, number][] | null = null;
  for (let u = 0; u < 3 * n && bestCount > 1; u++) {
    for (let d = 0; d < n && bestCount > 1; d++) {
      const bit = 1 << d;
      if (used[u] & bit) continue;
      const places: [number, number][] = [];
      for (let k = 0; k < n; k++) {
        const cell = unitCells[u * n + k];
        if (grid[cell] === 0 && candidates(cell) & bit) places.push([cell, d + 1]);
      }
      if (places.length < bestCount) {
        bestPlaces = places;
        bestCount = places.length;
      }
    }
  }
  if (bestPlaces) return bestPlaces;
  const moves: [number, number][] = [];
  for (let d = 0; d < n; d++) if (bestMask & (1 << d)) moves.push([bestCell, d + 1]);
  return moves;
}

function shuffle<T>(xs: T[], rng: Rng): void {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
}

/** Number of solutions of `puzzle`, counted up to `limit` (2 is enough to decide uniqueness). */
export function countSudokuSolutions(puzzle: SudokuGrid, limit = 2): number {
  return searchSudoku(puzzle, limit).count;
}

/** A solution of `puzzle`, or null if it has none (the first found if there are several). */
export function solveSudoku(puzzle: SudokuGrid): SudokuGrid | null {
  return searchSudoku(puzzle, 1).solution;
}

/**
 * Whether `candidate` is a complete valid grid (every row, column and box holds 1..n once)
 * that keeps every clue of `puzzle`.
 */
export function checkSudoku(puzzle: SudokuGrid, candidate: SudokuGrid): CheckResult {
  const n = sudokuSide(puzzle);
  if (candidate.length !== puzzle.length) return { ok: false, reason: `candidate has ${candidate.length} cells, puzzle ${puzzle.length}` };
  const { cells, unitCells } = geometry(n);
  for (let cell = 0; cell < cells; cell++) {
    const v = candidate[cell];
    if (!(v >= 1 && v <= n)) return { ok: false, reason: `cell ${cell} holds ${v}: expected a digit 1..${n}` };
    if (puzzle[cell] !== 0 && puzzle[cell] !== v) return { ok: false, reason: `cell ${cell} holds ${v} but the clue is ${puzzle[cell]}` };
  }
  const kinds = ["row", "column", "box"];
  for (let u = 0; u < 3 * n; u++) {
    let seen = 0;
    for (let k = 0; k < n; k++) seen |= 1 << (candidate[unitCells[u * n + k]] - 1);
    if (seen !== (1 << n) - 1) return { ok: false, reason: `${kinds[Math.floor(u / n)]} ${u % n} repeats a digit` };
  }
  return { ok: true };
}

/** A random full valid grid of side n, drawn with `rng`. */
export function randomSudokuSolution(n: SudokuSize, rng: Rng): SudokuGrid {
  return searchSudoku(new Uint8Array(n * n), 1, rng).solution!;
}

/**
 * Blanks cells of `solution` in a random order while the puzzle stays uniquely solvable,
 * stopping at `targetClues`; returns the puzzle, which has more clues than asked when no
 * further cell could be blanked (a minimal puzzle).
 */
export function carveSudoku(solution: SudokuGrid, targetClues: number, rng: Rng): SudokuGrid {
  const puzzle = solution.slice();
  let clues = puzzle.length;
  // Blanking more cells only adds solutions, so a cell that once broke uniqueness never needs retrying.
  for (const cell of rng.permutation(puzzle.length)) {
    if (clues <= targetClues) break;
    const v = puzzle[cell];
    puzzle[cell] = 0;
    if (countSudokuSolutions(puzzle, 2) === 1) clues--;
    else puzzle[cell] = v;
  }
  return puzzle;
}

/** Item `index` of the dataset described by `cfg`; a pure function of (cfg, index). */
export function generateSudoku(cfg: SudokuConfig, index: number): SudokuItem {
  validateSudokuConfig(cfg);
  const { size, minClues, maxClues, maxAttempts } = cfg;
  const rng = new Rng(deriveSeed(cfg.seed, `sudoku-${size}-${index}`));
  const target = minClues + rng.int(maxClues - minClues + 1);
  let fewest = Infinity;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const solution = randomSudokuSolution(size, rng);
    const puzzle = carveSudoku(solution, target, rng);
    const clues = countClues(puzzle);
    if (clues === target) return { size, puzzle, solution, clues, difficulty: size * size - clues };
    fewest = Math.min(fewest, clues);
  }
  throw new Error(
    `sudoku.minClues = ${minClues}: item ${index} could not reach ${target} clues in ${maxAttempts} attempts ` +
      `(fewest ${fewest}); raise sudoku.minClues or sudoku.maxAttempts`,
  );
}

/** Items offset..offset+count-1 of the dataset. */
export function sudokuItems(cfg: SudokuConfig, count: number, offset = 0): SudokuItem[] {
  return Array.from({ length: count }, (_, i) => generateSudoku(cfg, offset + i));
}

/** Non-blank cells. */
export function countClues(grid: SudokuGrid): number {
  let c = 0;
  for (const v of grid) if (v !== 0) c++;
  return c;
}

/** Row-major digit string, 0 for blanks (`"530070000..."`). */
export function formatSudoku(grid: SudokuGrid): string {
  return grid.join("");
}

/** Reads a digit string ('0' or '.' for blanks) of 16 or 81 characters. */
export function parseSudoku(text: string): SudokuGrid {
  const grid = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "." || ch === "0") continue;
    if (!(ch >= "1" && ch <= "9")) throw new Error(`sudoku text: character ${JSON.stringify(ch)} at ${i}: expected 0-9 or '.'`);
    grid[i] = Number(ch);
  }
  sudokuSide(grid);
  return grid;
}

/** Prompt: the puzzle's digit string (0 = blank); answer: the solution's digit string. */
export function sudokuToText(item: SudokuItem): TextExample {
  return { prompt: formatSudoku(item.puzzle), answer: formatSudoku(item.solution), difficulty: item.difficulty };
}
