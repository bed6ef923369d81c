/**
 * Procedural ARC-like tasks, the embedded default when no ARC folder is given. Each family pairs
 * a hidden rule (a pure function in `rules.ts`) with a sampler of its parameters and of input grids;
 * a task draws the parameters once, then several demonstration pairs and a test pair, all
 * outputs being the rule applied to the inputs. Seeded and deterministic; every grid side is at
 * most `maxSize`, and inputs of families that do not enlarge the grid have sides of at least `minSize`.
 */
import { deriveSeed, Rng } from "../../lib/util/rng.ts";
import { gridKey, gridsEqual, gridShape, makeGrid } from "./grid.ts";
import { gridProblem } from "./loader.ts";
import {
  booleanHalves,
  type BoolOp,
  completeSymmetry,
  connectPairs,
  copyBeside,
  countObjects,
  cropToContent,
  type Direction,
  DIRECTIONS,
  drawBorder,
  extendRays,
  fillEnclosed,
  flipGrid,
  gravity,
  hollowOut,
  invertMask,
  largestObject,
  majorityColour,
  mirrorExtend,
  recolour,
  recolourBySize,
  removeIsolated,
  rotateGrid,
  scaleGrid,
  shiftContent,
  tileGrid,
  transposeGrid,
} from "./rules.ts";
import { type ArcPair, type ArcTask, type Grid, MAX_GRID_SIZE } from "./types.ts";

/** Side lengths allowed for grids. */
export interface SizeRange {
  min: number;
  max: number;
}

/** A family of tasks: one hidden rule with parameters drawn per task. */
export interface Family<P> {
  name: string;
  description: string;
  /** Draws the rule's parameters for one task (JSON-serializable). */
  params(rng: Rng, size: SizeRange): P;
  /** Draws one input grid suited to the rule. */
  input(rng: Rng, params: P, size: SizeRange): Grid;
  /** The hidden rule. */
  rule(input: Grid, params: P): Grid;
}

// ---------------------------------------------------------------- sampling helpers

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

/** n distinct colours from 1-9, none in `exclude`. */
function colours(rng: Rng, n: number, exclude: readonly number[] = []): number[] {
  return Array.from(rng.permutation(9), (v) => v + 1).filter((c) => !exclude.includes(c)).slice(0, n);
}

/** A side length in [min(lo, cap), cap]. */
function side(rng: Rng, lo: number, cap: number): number {
  const a = Math.min(lo, cap);
  return a + rng.int(cap - a + 1);
}

/** An h x w grid whose cells are, with probability `density`, a random palette colour (else 0). */
function sparse(rng: Rng, h: number, w: number, density: number, palette: readonly number[]): Grid {
  return Array.from({ length: h }, () => Array.from({ length: w }, () => (rng.next() < density ? pick(rng, palette) : 0)));
}

/** A random connected shape of `cells` cells grown inside a boxH x boxW box, cropped to its bounding box. */
function blob(rng: Rng, boxH: number, boxW: number, cells: number, colour: () => number): Grid {
  const box = makeGrid(boxH, boxW);
  const start: [number, number] = [rng.int(boxH), rng.int(boxW)];
  const taken: [number, number][] = [start];
  box[start[0]][start[1]] = colour();
  const target = Math.min(cells, boxH * boxW);
  while (taken.length < target) {
    const [r, c] = pick(rng, taken);
    const [y, x] = pick(rng, [[r - 1, c], [r + 1, c], [r, c - 1], [r, c + 1]]);
    if (y < 0 || x < 0 || y >= boxH || x >= boxW || box[y][x] !== 0) continue;
    box[y][x] = colour();
    taken.push([y, x]);
  }
  const rows = taken.map(([r]) => r), cols = taken.map(([, c]) => c);
  const top = Math.min(...rows), left = Math.min(...cols);
  return box.slice(top, Math.max(...rows) + 1).map((row) => row.slice(left, Math.max(...cols) + 1));
}

/**
 * Stamps `shape` at a random place of `g` (in place) where no non-zero cell of the shape comes within
 * `margin` cells (8-neighbourhood) of a non-zero cell already there. Returns false when 50 tries fail.
 */
function place(rng: Rng, g: Grid, shape: Grid, margin = 1): boolean {
  const [h, w] = gridShape(g), [sh, sw] = gridShape(shape);
  if (sh > h || sw > w) return false;
  for (let t = 0; t < 50; t++) {
    const r0 = rng.int(h - sh + 1), c0 = rng.int(w - sw + 1);
    let free = true;
    for (let r = 0; r < sh && free; r++) {
      for (let c = 0; c < sw && free; c++) {
        if (shape[r][c] === 0) continue;
        for (let y = r0 + r - margin; y <= r0 + r + margin && free; y++) {
          for (let x = c0 + c - margin; x <= c0 + c + margin; x++) if (y >= 0 && x >= 0 && y < h && x < w && g[y][x] !== 0) free = false;
        }
      }
    }
    if (!free) continue;
    shape.forEach((row, r) => row.forEach((v, c) => v !== 0 && (g[r0 + r][c0 + c] = v)));
    return true;
  }
  return false;
}

/** A filled h x w rectangle of one colour. */
function rect(h: number, w: number, colour: number): Grid {
  return makeGrid(h, w, colour);
}

/** A hollow h x w rectangle (outline only). */
function frame(h: number, w: number, colour: number): Grid {
  return hollowOut(rect(h, w, colour));
}

/** A random input: sides in the size range, density 0.25-0.6, one to four colours. */
function noiseGrid(rng: Rng, size: SizeRange, capH = size.max, capW = size.max): Grid {
  const h = side(rng, size.min, capH), w = side(rng, size.min, capW);
  return sparse(rng, h, w, 0.25 + 0.35 * rng.next(), colours(rng, 1 + rng.int(4)));
}

/** Erases family types (parameters are opaque outside their family). */
function family<P>(f: Family<P>): Family<unknown> {
  return f as Family<unknown>;
}

// ---------------------------------------------------------------- the families

/** All generator families, by name. */
export const FAMILIES: readonly Family<unknown>[] = [
  family<{ axis: "lr" | "ud" }>({
    name: "flip",
    description: "mirror the grid left-right or upside down",
    params: (rng) => ({ axis: pick(rng, ["lr", "ud"] as const) }),
    input: (rng, _p, size) => noiseGrid(rng, size),
    rule: (g, p) => flipGrid(g, p.axis),
  }),
  family<{ turns: number }>({
    name: "rotate",
    description: "rotate by 90, 180 or 270 degrees clockwise",
    params: (rng) => ({ turns: 1 + rng.int(3) }),
    input: (rng, _p, size) => noiseGrid(rng, size),
    rule: (g, p) => rotateGrid(g, p.turns),
  }),
  family<Record<string, never>>({
    name: "transpose",
    description: "swap rows and columns",
    params: () => ({}),
    input: (rng, _p, size) => noiseGrid(rng, size),
    rule: (g) => transposeGrid(g),
  }),
  family<{ map: number[] }>({
    name: "colour_map",
    description: "replace some colours by others",
    params: (rng) => {
      const map = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
      for (const c of colours(rng, 2 + rng.int(3))) map[c] = colours(rng, 1, [c])[0];
      return { map };
    },
    input: (rng, p, size) => {
      const sources = p.map.map((to, from) => (to !== from ? from : 0)).filter((c) => c !== 0);
      return sparse(rng, side(rng, size.min, size.max), side(rng, size.min, size.max), 0.3 + 0.4 * rng.next(), sources);
    },
    rule: (g, p) => recolour(g, p.map),
  }),
  family<{ dir: Direction }>({
    name: "gravity",
    description: "cells fall towards one side",
    params: (rng) => ({ dir: pick(rng, DIRECTIONS) }),
    input: (rng, _p, size) =>
      sparse(rng, side(rng, size.min, size.max), side(rng, size.min, size.max), 0.15 + 0.2 * rng.next(), colours(rng, 1 + rng.int(3))),
    rule: (g, p) => gravity(g, p.dir),
  }),
  family<{ fill: number }>({
    name: "fill_enclosed",
    description: "fill the areas enclosed by walls with one colour",
    params: (rng) => ({ fill: 1 + rng.int(9) }),
    input: (rng, p, size) => {
      const h = side(rng, Math.max(3, size.min), size.max), w = side(rng, Math.max(3, size.min), size.max);
      const wall = colours(rng, 1, [p.fill])[0];
      const g = makeGrid(h, w);
      const n = 1 + rng.int(3);
      for (let i = 0; i < n; i++) {
        const f = frame(3 + rng.int(Math.min(h, 7) - 2), 3 + rng.int(Math.min(w, 7) - 2), wall);
        // Later frames may get a gap in their wall, which leaves them open.
        if (i > 0 && rng.next() < 0.5) f[0][1 + rng.int(f[0].length - 2)] = 0;
        place(rng, g, f);
      }
      return g;
    },
    rule: (g, p) => fillEnclosed(g, p.fill),
  }),
  family<{ dy: number; dx: number }>({
    name: "move",
    description: "move every object by a fixed vector",
    params: (rng) => {
      const [dy, dx] = pick(rng, [[-1, 0], [1, 0], [0, -1], [0, 1], [-2, 0], [2, 0], [0, -2], [0, 2], [1, 1], [-1, -1], [1, -1], [-1, 1]]);
      return { dy, dx };
    },
    input: (rng, p, size) => {
      const h = side(rng, size.min, size.max), w = side(rng, size.min, size.max);
      const inner = makeGrid(h - Math.abs(p.dy), w - Math.abs(p.dx));
      for (let i = 0, n = 1 + rng.int(2); i < n; i++) place(rng, inner, blob(rng, 3, 3, 2 + rng.int(5), () => 1 + rng.int(9)));
      const g = makeGrid(h, w);
      inner.forEach((row, r) => row.forEach((v, c) => (g[r + Math.max(0, -p.dy)][c + Math.max(0, -p.dx)] = v)));
      return g;
    },
    rule: (g, p) => shiftContent(g, p.dy, p.dx),
  }),
  family<{ dir: Direction; gap: number }>({
    name: "copy",
    description: "copy the object next to itself in one direction",
    params: (rng) => ({ dir: pick(rng, DIRECTIONS), gap: rng.int(2) }),
    input: (rng, p, size) => {
      const h = side(rng, size.min, size.max), w = side(rng, size.min, size.max);
      const vertical = p.dir === "up" || p.dir === "down";
      const along = vertical ? h : w, across = vertical ? w : h;
      const len = 1 + rng.int(Math.max(1, Math.min(4, Math.floor((along - p.gap) / 2)))), wid = 1 + rng.int(Math.min(4, across));
      const shape = blob(rng, vertical ? len : wid, vertical ? wid : len, 1 + rng.int(len * wid), () => 1 + rng.int(9));
      const [sh, sw] = gridShape(shape);
      const ext = vertical ? sh : sw;
      // Offset of the original along the axis so that the copy fits, and across it anywhere.
      const lo = p.dir === "up" || p.dir === "left" ? ext + p.gap : 0;
      const at = lo + rng.int(along - 2 * ext - p.gap + 1);
      const cross = rng.int(across - (vertical ? sw : sh) + 1);
      const [r0, c0] = vertical ? [at, cross] : [cross, at];
      const g = makeGrid(h, w);
      shape.forEach((row, r) => row.forEach((v, c) => (g[r0 + r][c0 + c] = v)));
      return g;
    },
    rule: (g, p) => copyBeside(g, p.dir, p.gap),
  }),
  family<{ factor: number }>({
    name: "scale",
    description: "enlarge every cell to a factor x factor block",
    params: (rng, size) => ({ factor: size.max >= 6 && rng.next() < 0.4 ? 3 : 2 }),
    input: (rng, p, size) => noiseGrid(rng, size, Math.floor(size.max / p.factor), Math.floor(size.max / p.factor)),
    rule: (g, p) => scaleGrid(g, p.factor),
  }),
  family<{ ty: number; tx: number }>({
    name: "tile",
    description: "repeat the grid ty x tx times",
    params: (rng, size) => {
      const fits = [[1, 2], [2, 1], [2, 2], [1, 3], [3, 1], [3, 3]].filter(([ty, tx]) => Math.floor(size.max / Math.max(ty, tx)) >= 2);
      const [ty, tx] = pick(rng, fits);
      return { ty, tx };
    },
    input: (rng, p, size) => noiseGrid(rng, size, Math.floor(size.max / p.ty), Math.floor(size.max / p.tx)),
    rule: (g, p) => tileGrid(g, p.ty, p.tx),
  }),
  family<{ colour: number }>({
    name: "count_objects",
    description: "a row with one cell per object",
    params: (rng) => ({ colour: 1 + rng.int(9) }),
    input: (rng, _p, size) => {
      const g = makeGrid(side(rng, size.min, size.max), side(rng, size.min, size.max));
      for (let i = 0, n = 1 + rng.int(Math.min(6, size.max)); i < n; i++) {
        const c = 1 + rng.int(9);
        place(rng, g, blob(rng, 2, 2, 1 + rng.int(4), () => c));
      }
      return g;
    },
    rule: (g, p) => countObjects(g, p.colour),
  }),
  family<{ h: number; w: number }>({
    name: "majority_colour",
    description: "a small grid of the most frequent colour",
    params: (rng) => ({ h: 1 + rng.int(3), w: 1 + rng.int(3) }),
    input: (rng, _p, size) => {
      const h = side(rng, size.min, size.max), w = side(rng, size.min, size.max);
      const palette = colours(rng, 2 + rng.int(2));
      // Draw until one colour is strictly the most frequent (else the rule's tie-break would be hidden knowledge).
      for (let t = 0;; t++) {
        const g = sparse(rng, h, w, 0.4 + 0.4 * rng.next(), palette);
        const counts = palette.map((c) => g.flat().filter((v) => v === c).length).sort((a, b) => b - a);
        if (counts[0] > counts[1] || t >= 20) return g;
      }
    },
    rule: (g, p) => majorityColour(g, p.h, p.w),
  }),
  family<{ axis: "lr" | "ud" | "both" }>({
    name: "symmetry_complete",
    description: "restore the erased part of a symmetric pattern",
    params: (rng) => ({ axis: pick(rng, ["lr", "ud", "both"] as const) }),
    input: (rng, p, size) => {
      const h = side(rng, Math.max(size.min, 4), size.max), w = side(rng, Math.max(size.min, 4), size.max);
      const base = sparse(rng, h, w, 0.5 + 0.4 * rng.next(), colours(rng, 2 + rng.int(3)));
      const g = base.map((row, r) =>
        row.map((v, c) => {
          const rr = p.axis !== "lr" && r >= h / 2 ? h - 1 - r : r;
          const cc = p.axis !== "ud" && c >= w / 2 ? w - 1 - c : c;
          return rr === r && cc === c ? v : base[rr][cc];
        })
      );
      // Erase a patch strictly inside one half (or quadrant) so that its mirror images survive.
      const rows = p.axis === "lr" ? h : Math.floor(h / 2), cols = p.axis === "ud" ? w : Math.floor(w / 2);
      const ph = 1 + rng.int(Math.min(3, rows)), pw = 1 + rng.int(Math.min(3, cols));
      const r0 = rng.int(rows - ph + 1), c0 = rng.int(cols - pw + 1);
      for (let r = r0; r < r0 + ph; r++) for (let c = c0; c < c0 + pw; c++) g[r][c] = 0;
      return g;
    },
    rule: (g, p) => completeSymmetry(g, p.axis),
  }),
  family<{ side: Direction }>({
    name: "mirror_extend",
    description: "append the grid's mirror image on one side",
    params: (rng) => ({ side: pick(rng, DIRECTIONS) }),
    input: (rng, p, size) => {
      const vertical = p.side === "up" || p.side === "down";
      const half = Math.floor(size.max / 2);
      return noiseGrid(rng, size, vertical ? half : size.max, vertical ? size.max : half);
    },
    rule: (g, p) => mirrorExtend(g, p.side),
  }),
  family<Record<string, never>>({
    name: "crop_object",
    description: "crop to the object",
    params: () => ({}),
    input: (rng, _p, size) => {
      const g = makeGrid(side(rng, size.min, size.max), side(rng, size.min, size.max));
      const [h, w] = gridShape(g);
      const bh = 2 + rng.int(Math.min(h - 2, 6)), bw = 2 + rng.int(Math.min(w - 2, 6));
      const palette = colours(rng, 1 + rng.int(3));
      place(rng, g, blob(rng, bh, bw, Math.ceil(bh * bw * (0.5 + 0.5 * rng.next())), () => pick(rng, palette)), 0);
      return g;
    },
    rule: (g) => cropToContent(g),
  }),
  family<Record<string, never>>({
    name: "largest_object",
    description: "crop to the largest object",
    params: () => ({}),
    input: (rng, _p, size) => {
      const g = makeGrid(side(rng, size.min, size.max), side(rng, size.min, size.max));
      // Distinct sizes, so that the largest object is unique.
      for (const s of Array.from(rng.permutation(8), (v) => v + 1).slice(0, 2 + rng.int(3))) {
        const c = 1 + rng.int(9);
        place(rng, g, blob(rng, 4, 4, s, () => c));
      }
      return g;
    },
    rule: (g) => largestObject(g),
  }),
  family<Record<string, never>>({
    name: "outline",
    description: "keep only the outline of solid shapes",
    params: () => ({}),
    input: (rng, _p, size) => {
      const h = side(rng, Math.max(3, size.min), size.max), w = side(rng, Math.max(3, size.min), size.max);
      const g = makeGrid(h, w);
      for (let i = 0, n = 1 + rng.int(3); i < n; i++) {
        place(rng, g, rect(3 + rng.int(Math.min(h, 6) - 2), 3 + rng.int(Math.min(w, 6) - 2), 1 + rng.int(9)));
      }
      return g;
    },
    rule: (g) => hollowOut(g),
  }),
  family<{ dir: Direction }>({
    name: "draw_lines",
    description: "every dot extends a line to the edge in one direction",
    params: (rng) => ({ dir: pick(rng, DIRECTIONS) }),
    input: (rng, p, size) => {
      const h = side(rng, size.min, size.max), w = side(rng, size.min, size.max);
      const g = makeGrid(h, w);
      const vertical = p.dir === "up" || p.dir === "down";
      const lines = Array.from(rng.permutation(vertical ? w : h)).slice(0, 1 + rng.int(4));
      for (const l of lines) {
        const at = rng.int(vertical ? h : w);
        if (vertical) g[at][l] = 1 + rng.int(9);
        else g[l][at] = 1 + rng.int(9);
      }
      return g;
    },
    rule: (g, p) => extendRays(g, p.dir),
  }),
  family<{ axis: "rows" | "cols" }>({
    name: "connect_pairs",
    description: "join two dots of one colour on a row or column",
    params: (rng) => ({ axis: pick(rng, ["rows", "cols"] as const) }),
    input: (rng, p, size) => {
      const h = side(rng, Math.max(3, size.min), size.max), w = side(rng, Math.max(3, size.min), size.max);
      // Drawn along rows, transposed for columns.
      const [lines, len] = p.axis === "rows" ? [h, w] : [w, h];
      const g = makeGrid(lines, len);
      const used = Array.from(rng.permutation(lines)).slice(0, 1 + rng.int(Math.min(4, lines)));
      used.forEach((l, i) => {
        const c = 1 + rng.int(9);
        if (i > 0 && rng.next() < 0.3) {
          g[l][rng.int(len)] = c; // a lone dot stays as it is
          return;
        }
        const a = rng.int(len - 2), b = a + 2 + rng.int(len - a - 2);
        g[l][a] = c;
        g[l][b] = c;
      });
      return p.axis === "rows" ? g : transposeGrid(g);
    },
    rule: (g, p) => connectPairs(g, p.axis),
  }),
  family<Record<string, never>>({
    name: "denoise",
    description: "remove isolated pixels, keep the shapes",
    params: () => ({}),
    input: (rng, _p, size) => {
      const h = side(rng, Math.max(4, size.min), size.max), w = side(rng, Math.max(4, size.min), size.max);
      const g = makeGrid(h, w);
      for (let i = 0, n = 1 + rng.int(2); i < n; i++) {
        place(rng, g, rect(2 + rng.int(Math.min(h, 6) - 1), 2 + rng.int(Math.min(w, 6) - 1), 1 + rng.int(9)));
      }
      const noise = 1 + rng.int(9);
      for (let i = 0, n = 1 + rng.int(5); i < n; i++) place(rng, g, [[noise]]);
      return g;
    },
    rule: (g) => removeIsolated(g),
  }),
  family<{ palette: number[]; source: number }>({
    name: "recolour_by_size",
    description: "colour each object by its number of cells",
    params: (rng) => {
      const [source, ...palette] = colours(rng, 4 + rng.int(2));
      return { source, palette };
    },
    input: (rng, p, size) => {
      const g = makeGrid(side(rng, size.min, size.max), side(rng, size.min, size.max));
      for (let i = 0, n = 2 + rng.int(4); i < n; i++) place(rng, g, blob(rng, 3, 3, 1 + rng.int(p.palette.length), () => p.source));
      return g;
    },
    rule: (g, p) => recolourBySize(g, p.palette),
  }),
  family<{ colour: number }>({
    name: "invert",
    description: "swap figure and background",
    params: (rng) => ({ colour: 1 + rng.int(9) }),
    input: (rng, _p, size) => noiseGrid(rng, size),
    rule: (g, p) => invertMask(g, p.colour),
  }),
  family<{ colour: number }>({
    name: "border",
    description: "paint the grid's outer ring",
    params: (rng) => ({ colour: 1 + rng.int(9) }),
    input: (rng, p, size) =>
      sparse(rng, side(rng, size.min, size.max), side(rng, size.min, size.max), 0.3 * rng.next(), colours(rng, 2, [p.colour])),
    rule: (g, p) => drawBorder(g, p.colour),
  }),
  family<{ op: BoolOp; colour: number; left: number; right: number; divider: number }>({
    name: "boolean_halves",
    description: "overlay two halves split by a divider with and/or/xor",
    params: (rng) => {
      const [colour, left, right, divider] = colours(rng, 4);
      return { op: pick(rng, ["and", "or", "xor"] as const), colour, left, right, divider };
    },
    input: (rng, p, size) => {
      const h = side(rng, size.min, size.max);
      const w = side(rng, Math.max(2, Math.ceil((size.min - 1) / 2)), Math.floor((size.max - 1) / 2));
      const a = sparse(rng, h, w, 0.5, [p.left]), b = sparse(rng, h, w, 0.5, [p.right]);
      return a.map((row, r) => [...row, p.divider, ...b[r]]);
    },
    rule: (g, p) => booleanHalves(g, p.op, p.colour),
  }),
];

/** The family called `name`; throws listing the names when there is none. */
export function familyByName(name: string): Family<unknown> {
  const f = FAMILIES.find((f) => f.name === name);
  if (!f) throw new Error(`unknown ARC generator family "${name}", expected one of ${FAMILIES.map((f) => f.name).join(", ")}`);
  return f;
}

// ---------------------------------------------------------------- tasks

/** Settings of the generator. */
export interface GeneratorConfig {
  /** Smallest input side (3-30) for families that do not enlarge the grid. Default 3. */
  minSize: number;
  /** Largest side of any grid, input or output (6-30). Default 12. */
  maxSize: number;
  /** Demonstration pairs per task (1-10). Default 3. */
  trainPairs: number;
  /** Test pairs per task (1-3). Default 1. */
  testPairs: number;
}

/** The generator's defaults. */
export const DEFAULT_GENERATOR: GeneratorConfig = { minSize: 3, maxSize: 12, trainPairs: 3, testPairs: 1 };

/** A generated task with the family and parameters of its hidden rule. */
export interface GeneratedTask extends ArcTask {
  id: string;
  family: string;
  params: unknown;
  seed: number;
}

function checkConfig(cfg: GeneratorConfig): void {
  const int = (v: number, lo: number, hi: number, name: string) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`arc generator ${name} = ${v}: expected an integer ${lo}-${hi}`);
  };
  int(cfg.maxSize, 6, MAX_GRID_SIZE, "maxSize");
  int(cfg.minSize, 3, cfg.maxSize, "minSize");
  int(cfg.trainPairs, 1, 10, "trainPairs");
  int(cfg.testPairs, 1, 3, "testPairs");
}

/** A pair is usable when both grids are valid and within maxSize, and the rule changed the grid. */
function usable(p: ArcPair, maxSize: number): boolean {
  for (const g of [p.input, p.output]) {
    if (gridProblem(g, "") !== null) return false;
    const [h, w] = gridShape(g);
    if (h > maxSize || w > maxSize) return false;
  }
  return !gridsEqual(p.input, p.output);
}

/**
 * One task of a family: parameters drawn once, then `trainPairs + testPairs` distinct pairs whose
 * outputs are the rule applied to their inputs. Deterministic in (family, seed, config).
 */
export function generateTask(familyName: string, seed: number, config: Partial<GeneratorConfig> = {}): GeneratedTask {
  const cfg = { ...DEFAULT_GENERATOR, ...config };
  checkConfig(cfg);
  const fam = familyByName(familyName);
  const rng = new Rng(deriveSeed(seed, fam.name));
  const size = { min: cfg.minSize, max: cfg.maxSize };
  const params = fam.params(rng, size);
  const pairs: ArcPair[] = [];
  const seen = new Set<string>();
  for (let attempt = 0; pairs.length < cfg.trainPairs + cfg.testPairs; attempt++) {
    if (attempt >= 200) {
      throw new Error(`arc generator ${fam.name}: no valid pair after 200 tries (seed ${seed}, sizes ${size.min}-${size.max})`);
    }
    const input = fam.input(rng, params, size);
    const pair = { input, output: fam.rule(input, params) };
    if (!usable(pair, cfg.maxSize) || seen.has(gridKey(input))) continue;
    seen.add(gridKey(input));
    pairs.push(pair);
  }
  return {
    id: `${fam.name}-${(seed >>> 0).toString(16)}`,
    family: fam.name,
    params,
    seed,
    train: pairs.slice(0, cfg.trainPairs),
    test: pairs.slice(cfg.trainPairs),
  };
}

/** `count` tasks cycling through `families` (default all), task i seeded by deriveSeed(seed, `task${i}`). */
export function generateTasks(
  count: number,
  seed: number,
  config: Partial<GeneratorConfig> & { families?: readonly string[] } = {},
): GeneratedTask[] {
  const { families, ...cfg } = config;
  const names = families ?? FAMILIES.map((f) => f.name);
  if (names.length === 0) throw new Error("generateTasks: families is empty");
  return Array.from({ length: count }, (_, i) => generateTask(names[i % names.length], deriveSeed(seed, `task${i}`), cfg));
}
