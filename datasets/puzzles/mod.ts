/**
 * Algorithmic-puzzle datasets: Sudoku (4x4, 9x9), grid mazes with shortest paths, and
 * ListOps. Each item turns into a `TextExample` for a character-level model.
 */
export type { CheckResult, TextExample } from "./types.ts";
export * from "./sudoku.ts";
export * from "./maze.ts";
export * from "./listops.ts";
