/**
 * Augmentations of ARC tasks with exact inverses: the 8 dihedral transforms (rotations and
 * reflections), colour permutations that keep the background 0, and translation by zero padding.
 * A model's prediction on an augmented task is mapped back through the inverse and `vote`
 * ranks the mapped-back answers (pass@2 takes the first two).
 */
import type { Rng } from "../../lib/util/rng.ts";
import { gridKey } from "./grid.ts";
import { type ArcTask, type Grid, MAX_GRID_SIZE } from "./types.ts";

/** Names of the dihedral transforms by index 0-7 (rotations are clockwise). */
export const DIHEDRAL_NAMES = ["identity", "rot90", "rot180", "rot270", "flip_lr", "flip_ud", "transpose", "anti_transpose"] as const;

/** The index of the transform that undoes dihedral transform `k`. */
export const DIHEDRAL_INVERSE: readonly number[] = [0, 3, 2, 1, 4, 5, 6, 7];

/** Applies dihedral transform k (0-7, see DIHEDRAL_NAMES) to a grid; returns a new grid. */
export function dihedral(g: Grid, k: number): Grid {
  const h = g.length, w = g[0].length;
  const swap = k === 1 || k === 3 || k === 6 || k === 7;
  const [oh, ow] = swap ? [w, h] : [h, w];
  // Source cell of output cell (r, c) for each transform.
  const src: (r: number, c: number) => number = [
    (r: number, c: number) => g[r][c],
    (r: number, c: number) => g[h - 1 - c][r],
    (r: number, c: number) => g[h - 1 - r][w - 1 - c],
    (r: number, c: number) => g[c][w - 1 - r],
    (r: number, c: number) => g[r][w - 1 - c],
    (r: number, c: number) => g[h - 1 - r][c],
    (r: number, c: number) => g[c][r],
    (r: number, c: number) => g[h - 1 - c][w - 1 - r],
  ][k];
  if (!src) throw new Error(`dihedral: k = ${k}, expected 0-7`);
  return Array.from({ length: oh }, (_, r) => Array.from({ length: ow }, (_, c) => src(r, c)));
}

/** True when `perm` is a permutation of 0-9 that maps 0 to 0. */
export function isColourPerm(perm: readonly number[]): boolean {
  if (perm.length !== 10 || perm[0] !== 0) return false;
  return new Set(perm).size === 10 && perm.every((v) => Number.isInteger(v) && v >= 0 && v <= 9);
}

/** A random colour permutation keeping 0. */
export function randomColourPerm(rng: Rng): number[] {
  return [0, ...Array.from(rng.permutation(9), (v) => v + 1)];
}

/** The inverse permutation. */
export function invertColourPerm(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((to, from) => (inv[to] = from));
  return inv;
}

/** Replaces every colour v by perm[v]. */
export function permuteColours(g: Grid, perm: readonly number[]): Grid {
  return g.map((row) => row.map((v) => perm[v]));
}

/** Moves the content down by dy and right by dx, padding with dy rows and dx columns of 0 (the grid grows). */
export function translate(g: Grid, dy: number, dx: number): Grid {
  const w = g[0].length + dx;
  return [...Array.from({ length: dy }, () => new Array<number>(w).fill(0)), ...g.map((row) => [...new Array<number>(dx).fill(0), ...row])];
}

/** Undoes `translate`: drops the first dy rows and dx columns; null when they are missing or not all 0. */
export function untranslate(g: Grid, dy: number, dx: number): Grid | null {
  if (g.length <= dy || g[0].length <= dx) return null;
  for (let r = 0; r < g.length; r++) {
    for (let c = 0; c < g[r].length; c++) if ((r < dy || c < dx) && g[r][c] !== 0) return null;
  }
  return g.slice(dy).map((row) => row.slice(dx));
}

/** One augmentation: a dihedral transform, then a colour permutation, then a translation. */
export interface Augmentation {
  /** Dihedral transform 0-7. */
  dihedral: number;
  /** Colour permutation (length 10, colours[0] = 0). */
  colours: number[];
  /** Rows of padding above. */
  dy: number;
  /** Columns of padding on the left. */
  dx: number;
}

/** The augmentation that changes nothing. */
export const IDENTITY_AUGMENTATION: Readonly<Augmentation> = Object.freeze({
  dihedral: 0,
  colours: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  dy: 0,
  dx: 0,
});

/** Applies an augmentation to a grid. */
export function augmentGrid(g: Grid, aug: Augmentation): Grid {
  return translate(permuteColours(dihedral(g, aug.dihedral), aug.colours), aug.dy, aug.dx);
}

/** Maps a grid of the augmented task back to the original task; null if it cannot come from `augmentGrid`. */
export function unaugmentGrid(g: Grid, aug: Augmentation): Grid | null {
  const moved = untranslate(g, aug.dy, aug.dx);
  if (moved === null) return null;
  return dihedral(permuteColours(moved, invertColourPerm(aug.colours)), DIHEDRAL_INVERSE[aug.dihedral]);
}

/** Applies an augmentation to every grid of a task (the id is kept). */
export function augmentTask(task: ArcTask, aug: Augmentation): ArcTask {
  const map = (pairs: ArcTask["train"]) => pairs.map((p) => ({ input: augmentGrid(p.input, aug), output: augmentGrid(p.output, aug) }));
  return { ...(task.id === undefined ? {} : { id: task.id }), train: map(task.train), test: map(task.test) };
}

/** The largest side of any grid of a task. */
export function largestSide(task: ArcTask): number {
  let m = 0;
  for (const p of [...task.train, ...task.test]) for (const g of [p.input, p.output]) m = Math.max(m, g.length, g[0].length);
  return m;
}

/** Options of `randomAugmentation`. */
export interface AugmentOptions {
  /** Use colour permutations (default true). */
  colours?: boolean;
  /** Largest translation in each direction (default 0: none); capped so every grid stays within 30x30. */
  maxShift?: number;
}

/** A random augmentation for a task: uniform dihedral, random colour permutation, translation within 30x30. */
export function randomAugmentation(rng: Rng, task: ArcTask, opts: AugmentOptions = {}): Augmentation {
  const k = rng.int(8);
  const colours = opts.colours === false ? [...IDENTITY_AUGMENTATION.colours] : randomColourPerm(rng);
  const room = Math.max(0, Math.min(opts.maxShift ?? 0, MAX_GRID_SIZE - largestSide(task)));
  return { dihedral: k, colours, dy: rng.int(room + 1), dx: rng.int(room + 1) };
}

/** A predicted output grid on an augmented task, with the augmentation that was used. */
export interface Prediction {
  grid: Grid;
  aug: Augmentation;
}

/** An answer for the original task and the number of predictions that agree on it. */
export interface Candidate {
  grid: Grid;
  votes: number;
}

/**
 * Maps each prediction back through its augmentation's inverse (dropping those that cannot be
 * mapped back) and ranks the distinct answers by votes, ties by first appearance. Returns the best `top`.
 */
export function vote(predictions: readonly Prediction[], top = 2): Candidate[] {
  const tally = new Map<string, Candidate>();
  for (const p of predictions) {
    const g = unaugmentGrid(p.grid, p.aug);
    if (g === null) continue;
    const key = gridKey(g);
    const c = tally.get(key);
    if (c) c.votes++;
    else tally.set(key, { grid: g, votes: 1 });
  }
  // Map iteration keeps insertion order and Array.sort is stable, so ties stay in first-seen order.
  return [...tally.values()].sort((a, b) => b.votes - a.votes).slice(0, top);
}
