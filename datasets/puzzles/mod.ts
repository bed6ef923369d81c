/**
 * Algorithmic-puzzle datasets: Sudoku (4x4, 9x9), grid mazes with shortest paths, and
 * ListOps. Each item turns into a `TextExample` for a character-level model; grids.ts encodes
 * Sudoku and mazes grid-natively (one token per cell) with their augmentation.
 */
export type { CheckResult, TextExample } from "./types.ts";
export * from "./sudoku.ts";
export * from "./maze.ts";
export * from "./listops.ts";
export * from "./grids.ts";
