/**
 * ARC (Abstraction and Reasoning Corpus) data types: a task is a few demonstration pairs
 * (`train`) and one or more test pairs, each pair an input grid and an output grid.
 */

/** A grid: rows of colours 0-9, rectangular, 1x1 to 30x30 (0 is the background). */
export type Grid = number[][];

/** One demonstration or test example. */
export interface ArcPair {
  input: Grid;
  output: Grid;
}

/** An ARC task: demonstrations and test pairs that follow one hidden rule. */
export interface ArcTask {
  /** The task's name, e.g. the file name without `.json` (not part of its content or hash). */
  id?: string;
  train: ArcPair[];
  test: ArcPair[];
}

/** Largest grid side in ARC. */
export const MAX_GRID_SIZE = 30;
