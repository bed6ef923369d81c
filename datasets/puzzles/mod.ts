/**
 * Algorithmic-puzzle datasets: Sudoku (4x4, 9x9), grid mazes with shortest paths, and
 * ListOps. Each item turns into a `TextExample` for a character-level model.
 */

/** One item as text: what the model reads, what it must write, and how hard the item is. */
export interface TextExample {
  prompt: string;
  answer: string;
  /** A per-task measure (Sudoku: blanks; maze: shortest path length; ListOps: nesting depth). */
  difficulty: number;
}

/** Outcome of a checker: ok, or the first problem found. */
export type CheckResult = { ok: true } | { ok: false; reason: string };

export * from "./sudoku.ts";
export * from "./maze.ts";
export * from "./listops.ts";
