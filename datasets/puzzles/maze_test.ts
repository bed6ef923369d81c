/** Mazes: perfect mazes are trees, braiding adds loops, BFS paths are shortest (checked exhaustively), determinism, config errors. */
import assert from "node:assert/strict";
import {
  bfsDistances,
  checkMazePath,
  generateMaze,
  type Maze,
  mazeConfig,
  mazeItems,
  mazeToInnerText,
  mazeToText,
  parseMaze,
  renderMaze,
  shortestPath,
  step,
} from "./maze.ts";

const MOVES = ["D", "L", "R", "U"];

/** Cells and passages (open squares between two cells) of a drawn maze, and the number of passages at each cell. */
function cellGraph(maze: Maze) {
  const width = (maze.cols - 1) / 2, height = (maze.rows - 1) / 2;
  let passages = 0;
  const degree: number[] = [];
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) {
      const at = (2 * i + 1) * maze.cols + 2 * j + 1;
      assert.equal(maze.walls[at], 0, "every cell is open");
      let d = 0;
      for (const m of MOVES) if (!maze.walls[step(maze, at, m)]) d++;
      degree.push(d);
      if (!maze.walls[at + 1]) passages++; // passage to the right
      if (!maze.walls[at + maze.cols]) passages++; // passage below
    }
  }
  return { cells: width * height, passages, degree };
}

/** Exhaustive search over every simple path from start to goal: the fewest moves and the smallest such move string. */
function bruteForceShortest(maze: Maze): { length: number; best: string } {
  let length = Infinity, best = "";
  const onPath = new Uint8Array(maze.rows * maze.cols);
  const go = (at: number, path: string) => {
    if (at === maze.goal) {
      if (path.length < length || (path.length === length && path < best)) [length, best] = [path.length, path];
      return;
    }
    onPath[at] = 1;
    for (const m of MOVES) {
      const next = step(maze, at, m);
      if (next >= 0 && !maze.walls[next] && !onPath[next]) go(next, path + m);
    }
    onPath[at] = 0;
  };
  go(maze.start, "");
  return { length, best };
}

Deno.test("perfect mazes are spanning trees: cells - 1 passages, every cell reachable", () => {
  for (const [width, height] of [[8, 8], [1, 5], [13, 4], [30, 30]]) {
    for (const item of mazeItems(mazeConfig({ width, height, seed: width }), 5)) {
      const { cells, passages } = cellGraph(item.maze);
      assert.equal(passages, cells - 1);
      const dist = bfsDistances(item.maze, item.maze.start);
      for (let k = 0; k < dist.length; k++) assert.equal(dist[k] >= 0, item.maze.walls[k] === 0, `square ${k}`);
    }
  }
});

Deno.test("braiding adds loops: braid 1 leaves no dead ends, braid 0.5 fewer than a perfect maze", () => {
  let deadPerfect = 0, deadHalf = 0;
  for (let seed = 0; seed < 10; seed++) {
    const full = generateMaze(mazeConfig({ width: 10, height: 7, braid: 1, seed }), 0).maze;
    const g = cellGraph(full);
    assert.ok(g.degree.every((d) => d >= 2), "a dead end survived braid 1");
    assert.ok(g.passages > g.cells - 1);
    deadPerfect += cellGraph(generateMaze(mazeConfig({ width: 10, height: 7, seed }), 0).maze).degree.filter((d) => d === 1).length;
    deadHalf += cellGraph(generateMaze(mazeConfig({ width: 10, height: 7, braid: 0.5, seed }), 0).maze).degree.filter((d) =>
      d === 1
    ).length;
  }
  assert.ok(deadHalf < 0.8 * deadPerfect, `dead ends: ${deadHalf} with braid 0.5, ${deadPerfect} perfect`);
});

Deno.test("BFS paths are shortest and lexicographically smallest, by exhaustive search over all simple paths", () => {
  let loops = 0;
  for (const braid of [0, 0.5, 1]) {
    for (let seed = 0; seed < 15; seed++) {
      const item = generateMaze(mazeConfig({ width: 4, height: 4, braid, endpoints: "random", seed }), 0);
      const brute = bruteForceShortest(item.maze);
      assert.equal(item.path.length, brute.length);
      assert.equal(item.path, brute.best);
      assert.equal(item.difficulty, brute.length);
      assert.deepEqual(checkMazePath(item.maze, item.path), { ok: true });
      if (cellGraph(item.maze).passages > 15) loops++;
    }
  }
  assert.ok(loops >= 20, "braided mazes should have loops, so more than one path");
});

Deno.test("BFS distances agree with an independent relaxation to a fixed point on large braided mazes", () => {
  for (let seed = 0; seed < 3; seed++) {
    const { maze, path } = generateMaze(mazeConfig({ width: 25, height: 20, braid: 0.3, endpoints: "random", seed }), 0);
    const n = maze.rows * maze.cols, dist = new Array<number>(n).fill(Infinity);
    dist[maze.start] = 0;
    for (let changed = true; changed;) {
      changed = false;
      for (let k = 0; k < n; k++) {
        if (maze.walls[k]) continue;
        for (const off of [-1, 1, -maze.cols, maze.cols]) {
          if (!maze.walls[k + off] && dist[k + off] + 1 < dist[k]) [dist[k], changed] = [dist[k + off] + 1, true];
        }
      }
    }
    const bfs = bfsDistances(maze, maze.start);
    for (let k = 0; k < n; k++) assert.equal(bfs[k], dist[k] === Infinity ? -1 : dist[k]);
    assert.equal(path.length, dist[maze.goal]);
    assert.deepEqual(checkMazePath(maze, path), { ok: true });
  }
});

Deno.test("the checker rejects walls, bad moves, wrong ends and detours", () => {
  const { maze, path } = generateMaze(mazeConfig({ width: 6, height: 6, seed: 2 }), 0);
  const reason = (p: string) => {
    const r = checkMazePath(maze, p);
    assert.equal(r.ok, false, p);
    return (r as { reason: string }).reason;
  };
  assert.match(reason("U" + path), /move 0 \(U\) runs into a wall/); // the start is on the top row of cells
  assert.match(reason(path.slice(0, -1)), /not at the goal/);
  assert.match(reason(path.replace(/.$/, "x")), /expected one of U, D, L, R/);
  // A detour: step off the path and back somewhere along it.
  const back: Record<string, string> = { D: "U", U: "D", L: "R", R: "L" };
  let at = maze.start, detour = "";
  for (let k = 0; k <= path.length && !detour; k++) {
    for (const m of MOVES) {
      const next = step(maze, at, m);
      if (!maze.walls[next] && m !== path[k] && !detour) detour = path.slice(0, k) + m + back[m] + path.slice(k);
    }
    if (k < path.length) at = step(maze, at, path[k]);
  }
  assert.match(reason(detour), new RegExp(`${path.length + 2} moves; the shortest has ${path.length}`));
  // Unreachable goal.
  const walled = { ...maze, walls: maze.walls.slice() };
  walled.walls[walled.goal - 1] = walled.walls[walled.goal - walled.cols] = 1;
  assert.equal(shortestPath(walled), null);
});

Deno.test("text form: '#', '.', 'S', 'G' rows that parse back, answer a move string; corners endpoints", () => {
  const item = generateMaze(mazeConfig({ width: 5, height: 3, braid: 0.5, seed: 4 }), 2);
  const { prompt, answer, difficulty } = mazeToText(item);
  const lines = prompt.split("\n");
  assert.equal(lines.length, 7);
  assert.ok(lines.every((l) => l.length === 11 && /^[#.SG]+$/.test(l)));
  assert.equal(lines[1][1], "S");
  assert.equal(lines[5][9], "G");
  assert.match(answer, /^[UDLR]+$/);
  assert.equal(difficulty, answer.length);
  assert.deepEqual(parseMaze(prompt), item.maze);
  assert.equal(renderMaze(parseMaze(prompt)), prompt);
  // Without the border ring: the inner rectangle of the full drawing, same moves.
  const inner = mazeToInnerText(item);
  assert.equal(inner.prompt, lines.slice(1, -1).map((l) => l.slice(1, -1)).join("\n"));
  assert.equal(inner.answer, answer);
  assert.throws(() => parseMaze("#S#\n#x#\n#G#"), /"x" at row 1, column 1/);
  assert.throws(() => parseMaze("#S#\n#.#"), /needs one 'S' and one 'G'/);
});

Deno.test("deterministic by seed and index, different across seeds", () => {
  const cfg = mazeConfig({ width: 9, height: 7, braid: 0.2, endpoints: "random", seed: 3 });
  const a = mazeItems(cfg, 6);
  assert.deepEqual(mazeItems(cfg, 6), a);
  assert.deepEqual(mazeItems(cfg, 3, 3), a.slice(3));
  assert.notDeepEqual(mazeItems({ ...cfg, seed: 4 }, 6).map(renderMazeOf), a.map(renderMazeOf));
  assert.notEqual(renderMazeOf(a[0]), renderMazeOf(a[1]));
});

function renderMazeOf(item: { maze: Maze }): string {
  return renderMaze(item.maze);
}

Deno.test("bad configs are rejected naming the field", () => {
  assert.throws(() => mazeConfig({ width: 0 }), /maze.width = 0: expected an integer in \[1, 200\]/);
  assert.throws(() => mazeConfig({ height: 2.5 }), /maze.height = 2.5/);
  assert.throws(() => mazeConfig({ width: 1, height: 1 }), /need at least 2 cells/);
  assert.throws(() => mazeConfig({ braid: 1.5 }), /maze.braid = 1.5: expected a number in \[0, 1\]/);
  assert.throws(() => mazeConfig({ braid: NaN }), /maze.braid = NaN/);
  assert.throws(() => mazeConfig({ endpoints: "edges" as "corners" }), /maze.endpoints = edges/);
});
