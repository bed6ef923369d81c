/**
 * Grid-native puzzles: one input token and one target token per cell, every cell answered at
 * once (the encoding HRM and TRM train on), instead of a prompt and an answer as text.
 *
 * - `sudoku4`, `sudoku9`: input 0 = blank, 1..n = a clue; target: the unique solution.
 *   Vocabulary n + 1. Difficulty: blanks.
 * - `maze`: the maze drawn without its outer wall ring, (2h-1) x (2w-1) squares; input
 *   0 = wall, 1 = open, 2 = start, 3 = goal; target: the same grid with every open square of the
 *   shortest path marked 4. Mazes are perfect (no loops), so the path is unique. Vocabulary 5.
 *   Difficulty: shortest path length in moves.
 *
 * Augmentation (`augmentGrid`): the 8 symmetries of the square (every task's grids are
 * square), and for Sudoku a permutation of the digits; both map a puzzle to another puzzle
 * with the transformed solution. `canonicalKey` names a puzzle's orbit under that group, so a
 * held-out split can exclude every puzzle that augmentation could turn a training puzzle into.
 */
import { deriveSeed, Rng } from "../../lib/util/rng.ts";
import { generateMaze, mazeConfig, shortestPath } from "./maze.ts";
import { generateSudoku, solveSudoku, sudokuConfig, type SudokuSize } from "./sudoku.ts";

/** The grid tasks. */
export const GRID_TASKS = ["sudoku4", "sudoku9", "maze"] as const;
export type GridTask = typeof GRID_TASKS[number];

/** A puzzle as one token per cell. */
export interface GridPuzzle {
  task: GridTask;
  /** Side of the square grid. */
  side: number;
  /** Input tokens, side*side, row-major. */
  input: Int32Array;
  /** Target tokens, side*side, row-major. */
  target: Int32Array;
  /** Sudoku: blanks; maze: shortest path length. */
  difficulty: number;
}

/** Maze tokens. */
export const MAZE_TOKENS = { wall: 0, open: 1, start: 2, goal: 3, path: 4 } as const;

/** How a task's puzzles are drawn. */
export interface GridTaskConfig {
  task: GridTask;
  /** Sudoku: fewest and most clues (each item draws its count uniformly between them). */
  minClues?: number;
  maxClues?: number;
  /** Maze: cells per side (the grid is 2 * mazeSize - 1 squares wide). */
  mazeSize?: number;
  seed: number;
}

/** Tokens in a task's vocabulary (input and target share it). */
export function gridVocab(task: GridTask): number {
  return task === "sudoku4" ? 5 : task === "sudoku9" ? 10 : 5;
}

/** Side of a task's grid. */
export function gridSide(c: GridTaskConfig): number {
  if (c.task === "sudoku4") return 4;
  if (c.task === "sudoku9") return 9;
  return 2 * mazeSizeOf(c) - 1;
}

function mazeSizeOf(c: GridTaskConfig): number {
  const s = c.mazeSize ?? 4;
  if (!Number.isInteger(s) || s < 2) throw new Error(`maze size = ${s}: expected an integer >= 2`);
  return s;
}

/** Puzzle `index` of a task: a pure function of (config, index). */
export function gridPuzzle(c: GridTaskConfig, index: number): GridPuzzle {
  if (c.task === "maze") {
    const n = mazeSizeOf(c);
    const it = generateMaze(mazeConfig({ width: n, height: n, endpoints: "random", seed: c.seed }), index);
    const { input, target } = mazeGrids(it.maze);
    return { task: c.task, side: 2 * n - 1, input, target, difficulty: it.difficulty };
  }
  const size: SudokuSize = c.task === "sudoku4" ? 4 : 9;
  const it = generateSudoku(sudokuConfig({ size, minClues: c.minClues, maxClues: c.maxClues, seed: c.seed }), index);
  return { task: c.task, side: size, input: Int32Array.from(it.puzzle), target: Int32Array.from(it.solution), difficulty: it.difficulty };
}

/** A generated maze (with its border ring) as inner-grid input and target tokens. */
function mazeGrids(maze: { rows: number; cols: number; walls: Uint8Array; start: number; goal: number }) {
  const side = maze.rows - 2, input = new Int32Array(side * side);
  const inner = (k: number) => (Math.floor(k / maze.cols) - 1) * side + (k % maze.cols) - 1;
  for (let r = 0; r < side; r++) {
    for (let q = 0; q < side; q++) input[r * side + q] = maze.walls[(r + 1) * maze.cols + q + 1] ? MAZE_TOKENS.wall : MAZE_TOKENS.open;
  }
  input[inner(maze.start)] = MAZE_TOKENS.start;
  input[inner(maze.goal)] = MAZE_TOKENS.goal;
  const target = input.slice();
  const path = shortestPath(maze)!;
  let at = maze.start;
  for (const m of path) {
    at += m === "D" ? maze.cols : m === "U" ? -maze.cols : m === "R" ? 1 : -1;
    if (at !== maze.goal) target[inner(at)] = MAZE_TOKENS.path;
  }
  return { input, target };
}

/**
 * The exact solver (the ceiling): the task's solution computed from the input alone, by
 * the Sudoku backtracking solver or breadth-first search on the maze. Null when unsolvable.
 */
export function solveGrid(p: GridPuzzle): Int32Array | null {
  if (p.task !== "maze") {
    const sol = solveSudoku(Uint8Array.from(p.input));
    return sol ? Int32Array.from(sol) : null;
  }
  const side = p.side, cols = side + 2;
  const walls = new Uint8Array(cols * cols).fill(1);
  let start = -1, goal = -1;
  for (let r = 0; r < side; r++) {
    for (let q = 0; q < side; q++) {
      const tok = p.input[r * side + q], k = (r + 1) * cols + q + 1;
      if (tok !== MAZE_TOKENS.wall) walls[k] = 0;
      if (tok === MAZE_TOKENS.start) start = k;
      if (tok === MAZE_TOKENS.goal) goal = k;
    }
  }
  if (start < 0 || goal < 0 || !shortestPath({ rows: cols, cols, walls, start, goal })) return null;
  return mazeGrids({ rows: cols, cols, walls, start, goal }).target;
}

/** Index in a side x side grid of (r, c) after symmetry `d` of the square (0..7: 4 rotations, each optionally transposed first). */
export function dihedralIndex(r: number, c: number, side: number, d: number): number {
  let [a, b] = d >= 4 ? [c, r] : [r, c];
  for (let k = 0; k < d % 4; k++) [a, b] = [b, side - 1 - a];
  return a * side + b;
}

/** `grid` moved by symmetry d with every token passed through `relabel`. */
function transformGrid(grid: Int32Array, side: number, d: number, relabel?: readonly number[]): Int32Array {
  const out = new Int32Array(grid.length);
  for (let r = 0; r < side; r++) {
    for (let c = 0; c < side; c++) {
      const v = grid[r * side + c];
      out[dihedralIndex(r, c, side, d)] = relabel ? relabel[v] : v;
    }
  }
  return out;
}

/**
 * A random symmetry of `p`: one of the 8 symmetries of the square, and for Sudoku a random
 * permutation of the digits (blank stays 0). Input and target move together.
 */
export function augmentGrid(p: GridPuzzle, rng: Rng): GridPuzzle {
  const d = rng.int(8);
  let relabel: number[] | undefined;
  if (p.task !== "maze") relabel = [0, ...rng.permutation(p.side).map((x) => x + 1)];
  return { ...p, input: transformGrid(p.input, p.side, d, relabel), target: transformGrid(p.target, p.side, d, relabel) };
}

/**
 * A name for the orbit of `p`'s input under the augmentation group: the smallest of the 8
 * transformed inputs, Sudoku digits relabelled in order of first appearance. Two puzzles have
 * the same key exactly when one is an augmentation of the other.
 */
export function canonicalKey(p: GridPuzzle): string {
  let best = "";
  for (let d = 0; d < 8; d++) {
    const g = transformGrid(p.input, p.side, d);
    if (p.task !== "maze") {
      const map = new Map<number, number>([[0, 0]]);
      for (let i = 0; i < g.length; i++) {
        if (!map.has(g[i])) map.set(g[i], map.size);
        g[i] = map.get(g[i])!;
      }
    }
    const key = g.join(",");
    if (!best || key < best) best = key;
  }
  return best;
}

/** Training puzzles and held-out puzzles whose orbits (under augmentation) no training puzzle shares. */
export interface GridSplit {
  train: GridPuzzle[];
  test: GridPuzzle[];
  /** Held-out candidates skipped because augmentation could reach them from a training puzzle. */
  overlapRemoved: number;
}

/**
 * `trainCount` training puzzles (indices 0..trainCount-1) and `testCount` held-out ones drawn
 * from the indices after them, skipping any in a training puzzle's orbit or repeating one.
 */
export function gridSplit(c: GridTaskConfig, trainCount: number, testCount: number): GridSplit {
  const train = Array.from({ length: trainCount }, (_, i) => gridPuzzle(c, i));
  const seen = new Set(train.map(canonicalKey));
  const test: GridPuzzle[] = [];
  let removed = 0;
  for (let i = trainCount; test.length < testCount; i++) {
    if (i >= trainCount + 50 * testCount + 100) {
      throw new Error(`${c.task}: too few held-out puzzles outside the training orbits; use fewer training puzzles or bigger grids`);
    }
    const p = gridPuzzle(c, i), key = canonicalKey(p);
    if (seen.has(key)) removed++;
    else {
      seen.add(key);
      test.push(p);
    }
  }
  return { train, test, overlapRemoved: removed };
}

/**
 * Batch `step` of augmented training puzzles: ids and targets int32 [batch * side * side],
 * row by row; a pure function of (puzzles, seed, step), so a resumed run sees the same batches.
 */
export function gridBatch(train: readonly GridPuzzle[], batch: number, seed: number, step: number) {
  const rng = new Rng(deriveSeed(seed, `grid-batch-${step}`));
  const cells = train[0].input.length;
  const ids = new Int32Array(batch * cells), targets = new Int32Array(batch * cells);
  for (let b = 0; b < batch; b++) {
    const p = augmentGrid(train[rng.int(train.length)], rng);
    ids.set(p.input, b * cells);
    targets.set(p.target, b * cells);
  }
  return { ids, targets, cells };
}
