/** Grid tokenizer: exact layout, round trips, and errors on malformed token streams. */
import assert from "node:assert/strict";
import { Rng } from "../../lib/util/rng.ts";
import type { Grid } from "../arc/types.ts";
import { decodeGrid, encodeGrid, GRID_TOKENS, GRID_VOCAB_SIZE, isColourToken, textToTokens, tokenName, tokensToText } from "./grid.ts";

const { ROW_END: R, INPUT, OUTPUT, PAIR_SEP, BOS, EOS, PAD } = GRID_TOKENS;

function randomGrid(rng: Rng, maxSide = 30): Grid {
  const h = 1 + rng.int(maxSide), w = 1 + rng.int(maxSide);
  return Array.from({ length: h }, () => Array.from({ length: w }, () => rng.int(10)));
}

Deno.test("vocabulary: colours 0-9 then seven distinct special tokens, all below GRID_VOCAB_SIZE", () => {
  const specials = [R, INPUT, OUTPUT, PAIR_SEP, BOS, EOS, PAD];
  assert.deepEqual([...specials].sort((a, b) => a - b), [10, 11, 12, 13, 14, 15, 16]);
  assert.equal(GRID_VOCAB_SIZE, 17);
  for (let t = 0; t < 10; t++) assert.ok(isColourToken(t));
  for (const t of specials) assert.ok(!isColourToken(t));
  const names = new Set(Array.from({ length: GRID_VOCAB_SIZE }, (_, t) => tokenName(t)));
  assert.equal(names.size, GRID_VOCAB_SIZE, "token names must be distinct");
});

Deno.test("encodeGrid lays cells row by row with ROW_END after each row", () => {
  assert.deepEqual(encodeGrid([[1, 2, 3], [4, 5, 6]]), [1, 2, 3, R, 4, 5, 6, R]);
  assert.deepEqual(encodeGrid([[0]]), [0, R]);
  assert.deepEqual(encodeGrid([[7], [8]], [BOS]), [BOS, 7, R, 8, R], "appends to the given array");
  assert.throws(() => encodeGrid([[1, 10]]), /cell value 10/);
});

Deno.test("decodeGrid inverts encodeGrid for 200 random grids up to 30x30 and reports where it stopped", () => {
  const rng = new Rng(7);
  for (let i = 0; i < 200; i++) {
    const g = randomGrid(rng);
    const tokens = [INPUT, ...encodeGrid(g), OUTPUT, 3, R];
    const { grid, end } = decodeGrid(tokens, 1);
    assert.deepEqual(grid, g);
    assert.equal(tokens[end], OUTPUT);
  }
  // A grid at the very end of the stream.
  assert.deepEqual(decodeGrid([2, 2, R]), { grid: [[2, 2]], end: 3 });
});

Deno.test("decodeGrid rejects empty grids, open rows and ragged rows, naming the token position", () => {
  assert.throws(() => decodeGrid([OUTPUT, 1, R], 0), /expected a grid at token 0, found <out>/);
  assert.throws(() => decodeGrid([]), /found the end/);
  assert.throws(() => decodeGrid([1, 2, EOS]), /row 0 starting at token 0 is not closed by ROW_END \(found <eos>\)/);
  assert.throws(() => decodeGrid([1, 2, R, 3]), /not closed by ROW_END \(found the end\)/);
  assert.throws(() => decodeGrid([1, 2, R, 3, R]), /row 1 at token 3 has 1 cells, row 0 has 2/);
  // ROW_END straight after a row ends the grid: the stray ROW_END is left for the caller.
  assert.deepEqual(decodeGrid([1, R, R]), { grid: [[1]], end: 2 });
});

Deno.test("tokensToText and textToTokens round-trip every token", () => {
  const all = Array.from({ length: GRID_VOCAB_SIZE }, (_, t) => t);
  const text = tokensToText(all);
  assert.equal(text, "0 1 2 3 4 5 6 7 8 9 / <in> <out> <sep> <bos> <eos> <pad>");
  assert.deepEqual(textToTokens(text), all);
  assert.deepEqual(textToTokens("  <in> 3 4 /\n"), [INPUT, 3, 4, R]);
  assert.throws(() => textToTokens("<in> x"), /unknown token "x"/);
});
