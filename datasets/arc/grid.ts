/** Small pure helpers on grids: construction, comparison, objects (connected components), cropping. */
import type { Grid } from "./types.ts";

/** An h x w grid filled with `fill`. */
export function makeGrid(h: number, w: number, fill = 0): Grid {
  return Array.from({ length: h }, () => new Array<number>(w).fill(fill));
}

/** A deep copy of a grid. */
export function cloneGrid(g: Grid): Grid {
  return g.map((row) => row.slice());
}

/** [rows, columns] of a grid (columns of the first row). */
export function gridShape(g: Grid): [number, number] {
  return [g.length, g.length === 0 ? 0 : g[0].length];
}

/** True when both grids have the same shape and the same colours. */
export function gridsEqual(a: Grid, b: Grid): boolean {
  if (a.length !== b.length) return false;
  for (let r = 0; r < a.length; r++) {
    if (a[r].length !== b[r].length) return false;
    for (let c = 0; c < a[r].length; c++) if (a[r][c] !== b[r][c]) return false;
  }
  return true;
}

/** A compact string key of a grid, equal for equal grids (rows of digits joined by `|`). */
export function gridKey(g: Grid): string {
  return g.map((row) => row.join("")).join("|");
}

/** A connected group of cells. */
export interface GridObject {
  /** The colour when objects are split by colour, otherwise the colour of the first cell found. */
  colour: number;
  /** Cells as [row, col], in the order found (the first is the object's top-left-most in scan order). */
  cells: [number, number][];
}

/**
 * The 4-connected objects of non-zero cells, in row-major order of their first cell.
 * With `byColour` an object holds one colour; otherwise any non-zero neighbours join.
 */
export function findObjects(g: Grid, byColour = true): GridObject[] {
  const [h, w] = gridShape(g);
  const seen = makeGrid(h, w, 0);
  const objects: GridObject[] = [];
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      if (g[r][c] === 0 || seen[r][c]) continue;
      const colour = g[r][c];
      const cells: [number, number][] = [];
      const stack: [number, number][] = [[r, c]];
      seen[r][c] = 1;
      while (stack.length > 0) {
        const [y, x] = stack.pop()!;
        cells.push([y, x]);
        for (const [ny, nx] of [[y - 1, x], [y + 1, x], [y, x - 1], [y, x + 1]]) {
          if (ny < 0 || nx < 0 || ny >= h || nx >= w || seen[ny][nx] || g[ny][nx] === 0) continue;
          if (byColour && g[ny][nx] !== colour) continue;
          seen[ny][nx] = 1;
          stack.push([ny, nx]);
        }
      }
      objects.push({ colour, cells });
    }
  }
  return objects;
}

/** Inclusive bounding box of some cells: [top, left, bottom, right]; null when there are none. */
export function boundingBox(cells: [number, number][]): [number, number, number, number] | null {
  if (cells.length === 0) return null;
  let top = Infinity, left = Infinity, bottom = -Infinity, right = -Infinity;
  for (const [r, c] of cells) {
    top = Math.min(top, r);
    left = Math.min(left, c);
    bottom = Math.max(bottom, r);
    right = Math.max(right, c);
  }
  return [top, left, bottom, right];
}

/** The non-zero cells of a grid as [row, col]. */
export function nonZeroCells(g: Grid): [number, number][] {
  const cells: [number, number][] = [];
  g.forEach((row, r) => row.forEach((v, c) => v !== 0 && cells.push([r, c])));
  return cells;
}

/** The sub-grid of rows top..bottom and columns left..right (inclusive). */
export function cropGrid(g: Grid, top: number, left: number, bottom: number, right: number): Grid {
  return g.slice(top, bottom + 1).map((row) => row.slice(left, right + 1));
}
