/**
 * Grid mazes with shortest paths.
 *
 * A maze of width x height cells is drawn on a (2*height+1) x (2*width+1) character grid:
 * cell (i, j) sits at (2i+1, 2j+1), the characters between cells are walls or passages,
 * and the border is wall. Paths move one character at a time: U, D, L, R.
 *
 * Generation: a perfect maze (a spanning tree of the cells, so exactly one path between any
 * two cells) by a seeded depth-first "recursive backtracker"; braiding then opens a wall at
 * each dead end with probability `braid`, which adds loops (braid 1: no dead ends left).
 *
 * The answer for an item is the lexicographically smallest shortest path (in the order
 * D < L < R < U), so it is a function of the maze alone; the checker accepts any shortest path.
 */
import { deriveSeed, Rng } from "../../lib/util/rng.ts";
import type { CheckResult, TextExample } from "./types.ts";

/** A maze on a character grid: `walls[r * cols + c]` is 1 for wall, 0 for open. */
export interface Maze {
  rows: number;
  cols: number;
  walls: Uint8Array;
  /** Index (r * cols + c) of the start square. */
  start: number;
  /** Index (r * cols + c) of the goal square. */
  goal: number;
}

export interface MazeConfig {
  /** Cells per row (the drawing is 2*width+1 characters wide). Default 8. */
  width: number;
  /** Cells per column (the drawing has 2*height+1 rows). Default 8. */
  height: number;
  /** Chance that each dead end gets a wall knocked out, in [0, 1]: 0 = perfect maze. Default 0. */
  braid: number;
  /** "corners": start top-left, goal bottom-right; "random": two distinct random cells. Default "corners". */
  endpoints: "corners" | "random";
  seed: number;
}

export const DEFAULT_MAZE: MazeConfig = { width: 8, height: 8, braid: 0, endpoints: "corners", seed: 0 };

/** Largest width or height accepted. */
export const MAZE_MAX_SIDE = 200;

/** A generated maze with its canonical shortest path. */
export interface MazeItem {
  maze: Maze;
  /** The lexicographically smallest shortest path from start to goal. */
  path: string;
  /** Shortest path length in moves. */
  difficulty: number;
}

/** The moves, in the order used to break ties (alphabetical). */
export const MAZE_MOVES = ["D", "L", "R", "U"] as const;
const DR: Record<string, number> = { D: 1, L: 0, R: 0, U: -1 };
const DC: Record<string, number> = { D: 0, L: -1, R: 1, U: 0 };

/** Fills in defaults and validates; throws naming the bad field. */
export function mazeConfig(partial: Partial<MazeConfig> = {}): MazeConfig {
  const cfg = { ...DEFAULT_MAZE, ...partial };
  validateMazeConfig(cfg);
  return cfg;
}

/** Throws an error naming the field if `cfg` is not a usable configuration. */
export function validateMazeConfig(cfg: MazeConfig): void {
  for (const field of ["width", "height"] as const) {
    const v = cfg[field];
    if (!Number.isInteger(v) || v < 1 || v > MAZE_MAX_SIDE) {
      throw new Error(`maze.${field} = ${v}: expected an integer in [1, ${MAZE_MAX_SIDE}]`);
    }
  }
  if (cfg.width * cfg.height < 2) throw new Error(`maze.width = ${cfg.width}, maze.height = ${cfg.height}: need at least 2 cells`);
  if (!(cfg.braid >= 0 && cfg.braid <= 1)) throw new Error(`maze.braid = ${cfg.braid}: expected a number in [0, 1]`);
  if (cfg.endpoints !== "corners" && cfg.endpoints !== "random") {
    throw new Error(`maze.endpoints = ${cfg.endpoints}: expected "corners" or "random"`);
  }
  if (!Number.isInteger(cfg.seed)) throw new Error(`maze.seed = ${cfg.seed}: expected an integer`);
}

/** Character index of cell (i, j) in a maze drawn for `width` cells per row. */
function cellIndex(i: number, j: number, width: number): number {
  return (2 * i + 1) * (2 * width + 1) + 2 * j + 1;
}

/** Cell neighbours of (i, j) inside the grid, as [i, j] pairs. */
function cellNeighbours(i: number, j: number, width: number, height: number): [number, number][] {
  const out: [number, number][] = [];
  if (i > 0) out.push([i - 1, j]);
  if (i < height - 1) out.push([i + 1, j]);
  if (j > 0) out.push([i, j - 1]);
  if (j < width - 1) out.push([i, j + 1]);
  return out;
}

/** A perfect maze (all walls of a spanning tree removed) by seeded depth-first search; endpoints unset (0). */
export function perfectMaze(width: number, height: number, rng: Rng): Maze {
  const rows = 2 * height + 1, cols = 2 * width + 1;
  const walls = new Uint8Array(rows * cols).fill(1);
  const visited = new Uint8Array(width * height);
  const stack: [number, number][] = [[rng.int(height), rng.int(width)]];
  visited[stack[0][0] * width + stack[0][1]] = 1;
  walls[cellIndex(stack[0][0], stack[0][1], width)] = 0;
  while (stack.length > 0) {
    const [i, j] = stack[stack.length - 1];
    const fresh = cellNeighbours(i, j, width, height).filter(([a, b]) => !visited[a * width + b]);
    if (fresh.length === 0) {
      stack.pop();
      continue;
    }
    const [a, b] = fresh[rng.int(fresh.length)];
    visited[a * width + b] = 1;
    walls[cellIndex(a, b, width)] = 0;
    walls[(cellIndex(i, j, width) + cellIndex(a, b, width)) / 2] = 0;
    stack.push([a, b]);
  }
  return { rows, cols, walls, start: 0, goal: 0 };
}

/** Open passages out of cell (i, j). */
function openDegree(maze: Maze, i: number, j: number, width: number, height: number): number {
  const here = cellIndex(i, j, width);
  return cellNeighbours(i, j, width, height).filter(([a, b]) => maze.walls[(here + cellIndex(a, b, width)) / 2] === 0).length;
}

/**
 * Knocks out one wall at each dead end (cell with one passage), with probability `braid`,
 * visiting dead ends in a random order; prefers a wall to another dead end. Mutates `maze`.
 */
export function braidMaze(maze: Maze, braid: number, rng: Rng): void {
  const width = (maze.cols - 1) / 2, height = (maze.rows - 1) / 2;
  for (const k of rng.permutation(width * height)) {
    const i = Math.floor(k / width), j = k % width;
    if (openDegree(maze, i, j, width, height) !== 1 || rng.next() >= braid) continue;
    const here = cellIndex(i, j, width);
    const closed = cellNeighbours(i, j, width, height).filter(([a, b]) => maze.walls[(here + cellIndex(a, b, width)) / 2] === 1);
    const deadEnds = closed.filter(([a, b]) => openDegree(maze, a, b, width, height) === 1);
    const pool = deadEnds.length > 0 ? deadEnds : closed;
    if (pool.length === 0) continue;
    const [a, b] = pool[rng.int(pool.length)];
    maze.walls[(here + cellIndex(a, b, width)) / 2] = 0;
  }
}

/** Item `index` of the dataset described by `cfg`; a pure function of (cfg, index). */
export function generateMaze(cfg: MazeConfig, index: number): MazeItem {
  validateMazeConfig(cfg);
  const { width, height } = cfg;
  const rng = new Rng(deriveSeed(cfg.seed, `maze-${width}x${height}-${index}`));
  const maze = perfectMaze(width, height, rng);
  if (cfg.braid > 0) braidMaze(maze, cfg.braid, rng);
  if (cfg.endpoints === "corners") {
    maze.start = cellIndex(0, 0, width);
    maze.goal = cellIndex(height - 1, width - 1, width);
  } else {
    const cells = rng.permutation(width * height);
    maze.start = cellIndex(Math.floor(cells[0] / width), cells[0] % width, width);
    maze.goal = cellIndex(Math.floor(cells[1] / width), cells[1] % width, width);
  }
  const path = shortestPath(maze)!;
  return { maze, path, difficulty: path.length };
}

/** Items offset..offset+count-1 of the dataset. */
export function mazeItems(cfg: MazeConfig, count: number, offset = 0): MazeItem[] {
  return Array.from({ length: count }, (_, i) => generateMaze(cfg, offset + i));
}

/** The square one `move` away from `at`, or -1 if that leaves the grid. */
export function step(maze: Maze, at: number, move: string): number {
  const r = Math.floor(at / maze.cols) + DR[move], c = (at % maze.cols) + DC[move];
  return r < 0 || r >= maze.rows || c < 0 || c >= maze.cols ? -1 : r * maze.cols + c;
}

/** Breadth-first distances (in moves) from `from` to every open square; -1 where unreachable or wall. */
export function bfsDistances(maze: Maze, from: number): Int32Array {
  const dist = new Int32Array(maze.rows * maze.cols).fill(-1);
  if (maze.walls[from]) return dist;
  const queue = new Int32Array(maze.rows * maze.cols);
  let head = 0, tail = 0;
  queue[tail++] = from;
  dist[from] = 0;
  while (head < tail) {
    const at = queue[head++];
    for (const move of MAZE_MOVES) {
      const next = step(maze, at, move);
      if (next >= 0 && !maze.walls[next] && dist[next] < 0) {
        dist[next] = dist[at] + 1;
        queue[tail++] = next;
      }
    }
  }
  return dist;
}

/**
 * The lexicographically smallest shortest path from start to goal as a move string, or
 * null if the goal is unreachable: BFS from the goal, then from the start always take the
 * first move (D, L, R, U) that gets one step closer.
 */
export function shortestPath(maze: Maze): string | null {
  const toGoal = bfsDistances(maze, maze.goal);
  if (toGoal[maze.start] < 0) return null;
  let at = maze.start, path = "";
  while (at !== maze.goal) {
    const move = MAZE_MOVES.find((m) => {
      const next = step(maze, at, m);
      return next >= 0 && toGoal[next] === toGoal[at] - 1;
    })!;
    path += move;
    at = step(maze, at, move);
  }
  return path;
}

/** Where `path` leads from the start, or a reason it is not a legal walk. */
function walk(maze: Maze, path: string): { end: number } | { reason: string } {
  let at = maze.start;
  for (let k = 0; k < path.length; k++) {
    const move = path[k];
    if (!(move in DR)) return { reason: `move ${k} is ${JSON.stringify(move)}: expected one of U, D, L, R` };
    const next = step(maze, at, move);
    if (next < 0) return { reason: `move ${k} (${move}) leaves the grid` };
    if (maze.walls[next]) return { reason: `move ${k} (${move}) runs into a wall` };
    at = next;
  }
  return { end: at };
}

/** Whether `path` walks from start to goal through open squares only, in the fewest possible moves. */
export function checkMazePath(maze: Maze, path: string): CheckResult {
  const w = walk(maze, path);
  if ("reason" in w) return { ok: false, reason: w.reason };
  if (w.end !== maze.goal) {
    return { ok: false, reason: `path ends at (${Math.floor(w.end / maze.cols)}, ${w.end % maze.cols}), not at the goal` };
  }
  const best = bfsDistances(maze, maze.start)[maze.goal];
  if (path.length !== best) return { ok: false, reason: `path has ${path.length} moves; the shortest has ${best}` };
  return { ok: true };
}

/**
 * The maze as text rows joined by newlines: '#' wall, '.' open, 'S' start, 'G' goal. With
 * `border` false the outer wall ring (always wall in a generated maze) is left out, which
 * shortens the text from (2h+1)(2w+2)-1 to (2h-1)(2w)-1 characters; moves are unchanged.
 */
export function renderMaze(maze: Maze, border = true): string {
  const lines: string[] = [];
  const k0 = border ? 0 : 1;
  for (let r = k0; r < maze.rows - k0; r++) {
    let line = "";
    for (let c = k0; c < maze.cols - k0; c++) {
      const k = r * maze.cols + c;
      line += k === maze.start ? "S" : k === maze.goal ? "G" : maze.walls[k] ? "#" : ".";
    }
    lines.push(line);
  }
  return lines.join("\n");
}

/** Reads the text form of `renderMaze` (any rectangle of '#', '.', one 'S', one 'G'). */
export function parseMaze(text: string): Maze {
  const lines = text.split("\n");
  const rows = lines.length, cols = lines[0].length;
  const walls = new Uint8Array(rows * cols);
  let start = -1, goal = -1;
  lines.forEach((line, r) => {
    if (line.length !== cols) throw new Error(`maze text: row ${r} has ${line.length} characters, row 0 has ${cols}`);
    for (let c = 0; c < cols; c++) {
      const ch = line[c], k = r * cols + c;
      if (ch === "#") walls[k] = 1;
      else if (ch === "S" && start < 0) start = k;
      else if (ch === "G" && goal < 0) goal = k;
      else if (ch !== ".") {
        throw new Error(`maze text: ${JSON.stringify(ch)} at row ${r}, column ${c}: expected '#', '.', one 'S' and one 'G'`);
      }
    }
  });
  if (start < 0 || goal < 0) throw new Error("maze text: needs one 'S' and one 'G'");
  return { rows, cols, walls, start, goal };
}

/** Prompt: the drawn maze; answer: the canonical shortest path as a move string. */
export function mazeToText(item: MazeItem): TextExample {
  return { prompt: renderMaze(item.maze), answer: item.path, difficulty: item.difficulty };
}

/** As `mazeToText`, with the maze drawn without its outer wall ring (shorter prompts for short contexts). */
export function mazeToInnerText(item: MazeItem): TextExample {
  return { prompt: renderMaze(item.maze, false), answer: item.path, difficulty: item.difficulty };
}
