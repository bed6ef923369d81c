/** Grid-native puzzles: targets solve their inputs, augmentation keeps them solved, held-out orbits stay disjoint. */
import assert from "node:assert/strict";
import { Rng } from "../../lib/util/rng.ts";
import {
  augmentGrid,
  canonicalKey,
  gridBatch,
  type GridPuzzle,
  gridPuzzle,
  gridSplit,
  type GridTaskConfig,
  MAZE_TOKENS,
  solveGrid,
} from "./grids.ts";
import { checkSudoku } from "./sudoku.ts";

const CONFIGS: GridTaskConfig[] = [
  { task: "sudoku4", minClues: 4, maxClues: 10, seed: 3 },
  { task: "sudoku9", minClues: 30, maxClues: 40, seed: 3 },
  { task: "maze", mazeSize: 4, seed: 3 },
];

/** Whether `p`'s target is a valid answer to its input, checked independently of the generator. */
function solves(p: GridPuzzle): boolean {
  if (p.task !== "maze") return checkSudoku(Uint8Array.from(p.input), Uint8Array.from(p.target)).ok;
  // The path squares, start and goal form a chain: start and goal have one path neighbour, others two.
  const s = p.side, on = (k: number) => p.target[k] !== MAZE_TOKENS.wall && p.target[k] !== MAZE_TOKENS.open;
  for (let k = 0; k < s * s; k++) {
    if (!on(k)) continue;
    if (p.input[k] === MAZE_TOKENS.wall) return false;
    const r = Math.floor(k / s), c = k % s;
    const n = [[r - 1, c], [r + 1, c], [r, c - 1], [r, c + 1]].filter(([a, b]) =>
      a >= 0 && a < s && b >= 0 && b < s && on(a * s + b)
    ).length;
    const end = p.target[k] === MAZE_TOKENS.start || p.target[k] === MAZE_TOKENS.goal;
    if (n !== (end ? 1 : 2)) return false;
  }
  return true;
}

Deno.test("every task's target solves its input and equals the exact solver's answer", () => {
  for (const c of CONFIGS) {
    for (let i = 0; i < (c.task === "sudoku9" ? 4 : 20); i++) {
      const p = gridPuzzle(c, i);
      assert.equal(p.input.length, p.side * p.side, c.task);
      assert.ok(solves(p), `${c.task} ${i}: target does not solve the input`);
      assert.deepEqual(solveGrid(p), p.target, `${c.task} ${i}`);
    }
  }
});

Deno.test("maze difficulty is the path length: path squares between start and goal", () => {
  for (let i = 0; i < 20; i++) {
    const p = gridPuzzle(CONFIGS[2], i);
    assert.equal(p.target.filter((t) => t === MAZE_TOKENS.path).length, p.difficulty - 1);
  }
});

Deno.test("augmentation maps a puzzle to a solved puzzle in its orbit, and reaches all 8 symmetries", () => {
  const rng = new Rng(7);
  for (const c of CONFIGS) {
    const p = gridPuzzle(c, 1);
    const seen = new Set<string>();
    for (let k = 0; k < 60; k++) {
      const a = augmentGrid(p, rng);
      assert.ok(solves(a), `${c.task}: augmented target does not solve the augmented input`);
      assert.deepEqual(solveGrid(a), a.target);
      assert.equal(canonicalKey(a), canonicalKey(p), `${c.task}: augmentation left the orbit`);
      seen.add(a.input.join(","));
    }
    assert.ok(seen.size >= 8, `${c.task}: only ${seen.size} distinct augmentations`);
  }
});

Deno.test("held-out puzzles share no orbit with the training puzzles", () => {
  const s = gridSplit({ task: "sudoku4", minClues: 4, maxClues: 4, seed: 1 }, 300, 10);
  const train = new Set(s.train.map(canonicalKey));
  assert.equal(s.test.length, 10);
  for (const p of s.test) assert.ok(!train.has(canonicalKey(p)));
  // With 4 clues, 4x4 puzzles repeat often up to symmetry: the split must have removed some.
  assert.ok(s.overlapRemoved > 0, "expected overlapping candidates to be removed");
});

Deno.test("batches are a pure function of (puzzles, seed, step)", () => {
  const train = Array.from({ length: 10 }, (_, i) => gridPuzzle(CONFIGS[0], i));
  const a = gridBatch(train, 4, 9, 3), b = gridBatch(train, 4, 9, 3), c = gridBatch(train, 4, 9, 4);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.ids, c.ids);
  assert.equal(a.ids.length, 4 * 16);
});

Deno.test("a bad maze size names the field", () => {
  assert.throws(() => gridPuzzle({ task: "maze", mazeSize: 1, seed: 0 }, 0), /maze size = 1/);
});
