/**
 * The hidden rules of the procedural ARC generator: small pure functions from an input grid
 * (and the rule's parameters) to the output grid. Each is defined for any grid, not only the
 * inputs the generator draws; `generator.ts` pairs each rule with an input sampler.
 */
import { boundingBox, cloneGrid, cropGrid, findObjects, gridShape, makeGrid, nonZeroCells } from "./grid.ts";
import type { Grid } from "./types.ts";

/** A direction of travel. */
export type Direction = "up" | "down" | "left" | "right";
/** The four directions. */
export const DIRECTIONS: readonly Direction[] = ["up", "down", "left", "right"];

/** Mirror left-right ("lr") or upside down ("ud"). */
export function flipGrid(g: Grid, axis: "lr" | "ud"): Grid {
  return axis === "lr" ? g.map((row) => row.slice().reverse()) : g.slice().reverse().map((row) => row.slice());
}

/** Rows become columns. */
export function transposeGrid(g: Grid): Grid {
  const [h, w] = gridShape(g);
  return Array.from({ length: w }, (_, r) => Array.from({ length: h }, (_, c) => g[c][r]));
}

/** Rotates clockwise by `quarterTurns` x 90 degrees. */
export function rotateGrid(g: Grid, quarterTurns: number): Grid {
  let out = cloneGrid(g);
  for (let i = 0; i < ((quarterTurns % 4) + 4) % 4; i++) out = flipGrid(transposeGrid(out), "lr");
  return out;
}

/** Replaces every colour v by map[v]. */
export function recolour(g: Grid, map: readonly number[]): Grid {
  return g.map((row) => row.map((v) => map[v]));
}

/**
 * Applies `f` to every line of cells along `dir` (each column read top-down for "down",
 * bottom-up for "up", each row left-right for "right", right-left for "left") and writes the result back.
 */
export function mapLines(g: Grid, dir: Direction, f: (line: number[]) => number[]): Grid {
  const [h, w] = gridShape(g);
  const out = makeGrid(h, w);
  const vertical = dir === "up" || dir === "down";
  const reversed = dir === "up" || dir === "left";
  const lines = vertical ? w : h, len = vertical ? h : w;
  for (let l = 0; l < lines; l++) {
    const at = (i: number): [number, number] => {
      const j = reversed ? len - 1 - i : i;
      return vertical ? [j, l] : [l, j];
    };
    const line = Array.from({ length: len }, (_, i) => {
      const [r, c] = at(i);
      return g[r][c];
    });
    f(line).forEach((v, i) => {
      const [r, c] = at(i);
      out[r][c] = v;
    });
  }
  return out;
}

/** Every non-zero cell slides towards `dir` until it meets the edge or another cell (order kept). */
export function gravity(g: Grid, dir: Direction): Grid {
  return mapLines(g, dir, (line) => {
    const cells = line.filter((v) => v !== 0);
    return [...new Array<number>(line.length - cells.length).fill(0), ...cells];
  });
}

/** Every non-zero cell casts a ray of its colour towards `dir` over empty cells, up to the next non-zero cell. */
export function extendRays(g: Grid, dir: Direction): Grid {
  return mapLines(g, dir, (line) => {
    let last = 0;
    return line.map((v) => (v !== 0 ? (last = v) : last));
  });
}

/** Empty cells that cannot reach the border through empty cells (4-connected) get colour `fill`. */
export function fillEnclosed(g: Grid, fill: number): Grid {
  const [h, w] = gridShape(g);
  const outside = makeGrid(h, w);
  const stack: [number, number][] = [];
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) if ((r === 0 || c === 0 || r === h - 1 || c === w - 1) && g[r][c] === 0) stack.push([r, c]);
  }
  for (const [r, c] of stack) outside[r][c] = 1;
  while (stack.length > 0) {
    const [r, c] = stack.pop()!;
    for (const [y, x] of [[r - 1, c], [r + 1, c], [r, c - 1], [r, c + 1]]) {
      if (y < 0 || x < 0 || y >= h || x >= w || outside[y][x] || g[y][x] !== 0) continue;
      outside[y][x] = 1;
      stack.push([y, x]);
    }
  }
  return g.map((row, r) => row.map((v, c) => (v === 0 && !outside[r][c] ? fill : v)));
}

/** Moves all content by (dy, dx); cells moved past the edge are lost, vacated cells become 0. */
export function shiftContent(g: Grid, dy: number, dx: number): Grid {
  const [h, w] = gridShape(g);
  const out = makeGrid(h, w);
  for (const [r, c] of nonZeroCells(g)) {
    if (r + dy >= 0 && r + dy < h && c + dx >= 0 && c + dx < w) out[r + dy][c + dx] = g[r][c];
  }
  return out;
}

/**
 * Copies the content next to itself towards `dir`, offset by its bounding box's extent plus `gap`;
 * the copy is drawn only on empty cells and clipped at the edge.
 */
export function copyBeside(g: Grid, dir: Direction, gap: number): Grid {
  const cells = nonZeroCells(g);
  const box = boundingBox(cells);
  if (!box) return cloneGrid(g);
  const [top, left, bottom, right] = box;
  const sh = bottom - top + 1 + gap, sw = right - left + 1 + gap;
  const [dy, dx] = { up: [-sh, 0], down: [sh, 0], left: [0, -sw], right: [0, sw] }[dir];
  const out = cloneGrid(g);
  const [h, w] = gridShape(g);
  for (const [r, c] of cells) {
    const y = r + dy, x = c + dx;
    if (y >= 0 && y < h && x >= 0 && x < w && g[y][x] === 0) out[y][x] = g[r][c];
  }
  return out;
}

/** Every cell becomes an f x f block. */
export function scaleGrid(g: Grid, f: number): Grid {
  return g.flatMap((row) => Array.from({ length: f }, () => row.flatMap((v) => new Array<number>(f).fill(v))));
}

/** The grid repeated ty times down and tx times across. */
export function tileGrid(g: Grid, ty: number, tx: number): Grid {
  return Array.from({ length: ty }, () => g.map((row) => Array.from({ length: tx }, () => row).flat())).flat();
}

/** A 1 x n row of `colour`, n = number of objects (4-connected groups of non-zero cells); [[0]] when there are none. */
export function countObjects(g: Grid, colour: number): Grid {
  const n = findObjects(g, false).length;
  return n === 0 ? [[0]] : [new Array<number>(n).fill(colour)];
}

/** An h x w grid of the most frequent non-zero colour (ties: the smaller colour; 0 when empty). */
export function majorityColour(g: Grid, h: number, w: number): Grid {
  const counts = new Array<number>(10).fill(0);
  for (const row of g) for (const v of row) counts[v]++;
  let best = 0;
  for (let c = 1; c < 10; c++) if (counts[c] > 0 && (best === 0 || counts[c] > counts[best])) best = c;
  return makeGrid(h, w, best);
}

/** Fills each empty cell from its mirror image(s) across the centre line(s) of `axis` ("both": both lines and the centre). */
export function completeSymmetry(g: Grid, axis: "lr" | "ud" | "both"): Grid {
  const [h, w] = gridShape(g);
  return g.map((row, r) =>
    row.map((v, c) => {
      if (v !== 0) return v;
      const mirrors: number[] = [];
      if (axis !== "ud") mirrors.push(g[r][w - 1 - c]);
      if (axis !== "lr") mirrors.push(g[h - 1 - r][c]);
      if (axis === "both") mirrors.push(g[h - 1 - r][w - 1 - c]);
      return mirrors.find((m) => m !== 0) ?? 0;
    })
  );
}

/** The grid followed, on side `side`, by its mirror image (the size doubles along that axis). */
export function mirrorExtend(g: Grid, side: Direction): Grid {
  switch (side) {
    case "right":
      return g.map((row) => [...row, ...row.slice().reverse()]);
    case "left":
      return g.map((row) => [...row.slice().reverse(), ...row]);
    case "down":
      return [...g, ...g.slice().reverse()].map((row) => row.slice());
    case "up":
      return [...g.slice().reverse(), ...g].map((row) => row.slice());
  }
}

/** The bounding box of all non-zero cells; [[0]] when there are none. */
export function cropToContent(g: Grid): Grid {
  const box = boundingBox(nonZeroCells(g));
  return box ? cropGrid(g, ...box) : [[0]];
}

/** The largest single-colour object (4-connected; ties: first in reading order), cropped, other cells 0. */
export function largestObject(g: Grid): Grid {
  const objects = findObjects(g, true);
  if (objects.length === 0) return [[0]];
  const best = objects.reduce((a, b) => (b.cells.length > a.cells.length ? b : a));
  const [top, left, bottom, right] = boundingBox(best.cells)!;
  const out = makeGrid(bottom - top + 1, right - left + 1);
  for (const [r, c] of best.cells) out[r - top][c - left] = best.colour;
  return out;
}

/** Clears the interior of shapes: a non-zero cell whose four neighbours all exist and are non-zero becomes 0. */
export function hollowOut(g: Grid): Grid {
  const [h, w] = gridShape(g);
  const filled = (r: number, c: number) => r >= 0 && c >= 0 && r < h && c < w && g[r][c] !== 0;
  return g.map((row, r) =>
    row.map((v, c) => (v !== 0 && filled(r - 1, c) && filled(r + 1, c) && filled(r, c - 1) && filled(r, c + 1) ? 0 : v))
  );
}

/** Two consecutive non-zero cells of one colour on a row ("rows") or column ("cols") are joined by a line of that colour. */
export function connectPairs(g: Grid, axis: "rows" | "cols"): Grid {
  if (axis === "cols") return transposeGrid(connectPairs(transposeGrid(g), "rows"));
  return g.map((row) => {
    const out = row.slice();
    let prev = -1;
    row.forEach((v, c) => {
      if (v === 0) return;
      if (prev >= 0 && row[prev] === v) out.fill(v, prev + 1, c);
      prev = c;
    });
    return out;
  });
}

/** Removes noise: a non-zero cell with no non-zero cell among its 8 neighbours becomes 0. */
export function removeIsolated(g: Grid): Grid {
  const [h, w] = gridShape(g);
  const hasNeighbour = (r: number, c: number) => {
    for (let y = r - 1; y <= r + 1; y++) {
      for (let x = c - 1; x <= c + 1; x++) if ((y !== r || x !== c) && y >= 0 && x >= 0 && y < h && x < w && g[y][x] !== 0) return true;
    }
    return false;
  };
  return g.map((row, r) => row.map((v, c) => (v !== 0 && !hasNeighbour(r, c) ? 0 : v)));
}

/** Each single-colour object of s cells (s <= palette.length) takes colour palette[s - 1]; larger objects keep theirs. */
export function recolourBySize(g: Grid, palette: readonly number[]): Grid {
  const out = cloneGrid(g);
  for (const o of findObjects(g, true)) {
    const s = o.cells.length;
    if (s <= palette.length) { for (const [r, c] of o.cells) out[r][c] = palette[s - 1]; }
  }
  return out;
}

/** Swaps figure and ground: empty cells get `colour`, non-zero cells become 0. */
export function invertMask(g: Grid, colour: number): Grid {
  return g.map((row) => row.map((v) => (v === 0 ? colour : 0)));
}

/** Paints the outermost ring of cells with `colour`. */
export function drawBorder(g: Grid, colour: number): Grid {
  const [h, w] = gridShape(g);
  return g.map((row, r) => row.map((v, c) => (r === 0 || c === 0 || r === h - 1 || c === w - 1 ? colour : v)));
}

/** A boolean operation on two cells' "is non-zero". */
export type BoolOp = "and" | "or" | "xor";

/**
 * Overlays the left and right halves of a grid split by a middle column (width 2w+1, or 2w):
 * output h x w, `colour` where op(left non-zero, right non-zero), else 0.
 */
export function booleanHalves(g: Grid, op: BoolOp, colour: number): Grid {
  const [h, width] = gridShape(g);
  const w = Math.floor(width / 2);
  const f =
    { and: (a: boolean, b: boolean) => a && b, or: (a: boolean, b: boolean) => a || b, xor: (a: boolean, b: boolean) => a !== b }[op];
  return Array.from(
    { length: h },
    (_, r) => Array.from({ length: w }, (_, c) => (f(g[r][c] !== 0, g[r][width - w + c] !== 0) ? colour : 0)),
  );
}
