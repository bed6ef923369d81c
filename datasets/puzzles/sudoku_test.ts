/** Sudoku: unique solutions, exact clue counts, a correct solver and checker, determinism, config errors. */
import assert from "node:assert/strict";
import { Rng } from "../../lib/util/rng.ts";
import {
  carveSudoku,
  checkSudoku,
  countClues,
  countSudokuSolutions,
  formatSudoku,
  generateSudoku,
  parseSudoku,
  randomSudokuSolution,
  solveSudoku,
  sudokuConfig,
  sudokuItems,
  sudokuToText,
} from "./sudoku.ts";

/** Arto Inkala's 2012 "world's hardest sudoku" and its published solution. */
const HARD = "800000000003600000070090200050007000000045700000100030001000068008500010090000400";
const HARD_SOLUTION = "812753649943682175675491283154237896369845721287169534521974368438526917796318452";

Deno.test("generated puzzles have exactly one solution, the stored one, for 4x4 and 9x9 over several seeds", () => {
  for (const size of [4, 9] as const) {
    for (const seed of [0, 1, 2]) {
      const cfg = sudokuConfig({ size, seed });
      for (const item of sudokuItems(cfg, size === 4 ? 20 : 8)) {
        assert.equal(countSudokuSolutions(item.puzzle, 2), 1, `size ${size} seed ${seed}: not unique`);
        assert.deepEqual(solveSudoku(item.puzzle), item.solution);
        assert.deepEqual(checkSudoku(item.puzzle, item.solution), { ok: true });
        assert.equal(countClues(item.puzzle), item.clues);
        assert.ok(item.clues >= cfg.minClues && item.clues <= cfg.maxClues, `clues ${item.clues}`);
        assert.equal(item.difficulty, size * size - item.clues);
      }
    }
  }
});

Deno.test("clue counts match the requested difficulty exactly", () => {
  for (const [size, clues] of [[4, 4], [4, 6], [4, 9], [9, 24], [9, 30], [9, 45]] as const) {
    const items = sudokuItems(sudokuConfig({ size, minClues: clues, maxClues: clues, seed: 7 }), 3);
    for (const item of items) {
      assert.equal(countClues(item.puzzle), clues);
      assert.equal(countSudokuSolutions(item.puzzle), 1);
    }
  }
  // A range is covered, not just its ends.
  const seen = new Set(sudokuItems(sudokuConfig({ size: 4, minClues: 5, maxClues: 8 }), 40).map((i) => i.clues));
  assert.deepEqual([...seen].sort(), [5, 6, 7, 8]);
});

Deno.test("the solver solves a known hard 9x9 puzzle and proves it unique", () => {
  const puzzle = parseSudoku(HARD);
  assert.equal(formatSudoku(solveSudoku(puzzle)!), HARD_SOLUTION);
  assert.equal(countSudokuSolutions(puzzle, 10), 1);
  assert.deepEqual(checkSudoku(puzzle, parseSudoku(HARD_SOLUTION)), { ok: true });
});

Deno.test("solution counting: 288 full 4x4 grids, clashing clues give 0, a minimal puzzle loses uniqueness with any clue removed", () => {
  assert.equal(countSudokuSolutions(new Uint8Array(16), 1000), 288);
  assert.equal(countSudokuSolutions(new Uint8Array(16), 2), 2);
  assert.equal(countSudokuSolutions(parseSudoku("1100" + "0".repeat(12)), 2), 0);
  assert.equal(solveSudoku(parseSudoku("1100" + "0".repeat(12))), null);
  const rng = new Rng(3);
  const minimal = carveSudoku(randomSudokuSolution(9, rng), 0, rng);
  assert.equal(countSudokuSolutions(minimal), 1);
  for (let cell = 0; cell < 81; cell++) {
    if (minimal[cell] === 0) continue;
    const fewer = minimal.slice();
    fewer[cell] = 0;
    assert.equal(countSudokuSolutions(fewer, 2), 2, `removing clue ${cell} kept a unique solution`);
  }
});

Deno.test("the checker rejects wrong digits, broken units, blanks and clue changes", () => {
  const puzzle = parseSudoku(HARD), good = parseSudoku(HARD_SOLUTION);
  const bad = (edit: (g: Uint8Array) => void) => {
    const g = good.slice();
    edit(g);
    return checkSudoku(puzzle, g);
  };
  assert.match((bad((g) => g[1] = 0) as { reason: string }).reason, /cell 1 holds 0/);
  assert.match((bad((g) => g[0] = 1) as { reason: string }).reason, /clue is 8/);
  // Swapping two non-clue cells of a row keeps the row but breaks a column.
  assert.match((bad((g) => [g[1], g[2]] = [g[2], g[1]]) as { reason: string }).reason, /column|box/);
  assert.equal(bad((g) => g[80] = 10).ok, false);
  assert.equal(checkSudoku(puzzle, good.subarray(0, 80)).ok, false);
  // A valid grid that ignores the clues.
  const other = solveSudoku(new Uint8Array(81))!;
  assert.equal(checkSudoku(new Uint8Array(81), other).ok, true);
  assert.equal(checkSudoku(puzzle, other).ok, false);
});

Deno.test("text form: digit strings with 0 for blanks that parse back", () => {
  const item = generateSudoku(sudokuConfig({ seed: 5 }), 0);
  const { prompt, answer, difficulty } = sudokuToText(item);
  assert.match(prompt, /^[0-9]{81}$/);
  assert.match(answer, /^[1-9]{81}$/);
  assert.equal([...prompt].filter((c) => c === "0").length, difficulty);
  assert.deepEqual(parseSudoku(prompt), item.puzzle);
  assert.deepEqual(parseSudoku(answer), item.solution);
  assert.throws(() => parseSudoku("12x4" + "0".repeat(12)), /character "x" at 2/);
  assert.throws(() => parseSudoku("123"), /3 cells: expected 16/);
});

Deno.test("deterministic by seed and index, different across seeds", () => {
  const cfg = sudokuConfig({ seed: 11 });
  const a = sudokuItems(cfg, 5); // generation speed is measured by bench:datasets, not asserted here
  assert.deepEqual(sudokuItems(cfg, 5), a);
  assert.deepEqual(sudokuItems(cfg, 2, 3), a.slice(3));
  assert.notDeepEqual(sudokuItems(sudokuConfig({ seed: 12 }), 5).map((i) => i.puzzle), a.map((i) => i.puzzle));
  assert.notDeepEqual(a[0].solution, a[1].solution);
});

Deno.test("bad configs are rejected naming the field", () => {
  assert.throws(() => sudokuConfig({ size: 5 as 4 }), /sudoku.size = 5: expected 4 or 9/);
  assert.throws(() => sudokuConfig({ minClues: 16 }), /sudoku.minClues = 16: expected an integer in \[17, 81\]/);
  assert.throws(() => sudokuConfig({ size: 4, minClues: 3 }), /sudoku.minClues = 3: expected an integer in \[4, 16\]/);
  assert.throws(() => sudokuConfig({ minClues: 30, maxClues: 29 }), /sudoku.maxClues = 29/);
  assert.throws(() => sudokuConfig({ maxClues: 82 }), /sudoku.maxClues = 82/);
  assert.throws(() => sudokuConfig({ maxAttempts: 0 }), /sudoku.maxAttempts = 0/);
  assert.throws(() => sudokuConfig({ seed: 0.5 }), /sudoku.seed = 0.5/);
  // Too few clues to reach: the error names the field and says what to change.
  assert.throws(
    () => generateSudoku(sudokuConfig({ minClues: 17, maxClues: 17, maxAttempts: 1 }), 0),
    /sudoku.minClues = 17: .*could not reach 17/,
  );
});
