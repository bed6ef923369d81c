/** Each generator rule on small hand-made grids with the answer worked out by hand. */
import assert from "node:assert/strict";
import {
  booleanHalves,
  completeSymmetry,
  connectPairs,
  copyBeside,
  countObjects,
  cropToContent,
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
import type { Grid } from "./types.ts";

/** Grids written as strings of digits, rows separated by spaces: "12 34" is [[1,2],[3,4]]. */
function g(s: string): Grid {
  return s.split(" ").map((row) => [...row].map(Number));
}

Deno.test("flip, transpose, rotate", () => {
  assert.deepEqual(flipGrid(g("123 456"), "lr"), g("321 654"));
  assert.deepEqual(flipGrid(g("123 456"), "ud"), g("456 123"));
  assert.deepEqual(transposeGrid(g("123 456")), g("14 25 36"));
  assert.deepEqual(rotateGrid(g("123 456"), 1), g("41 52 63"));
  assert.deepEqual(rotateGrid(g("123 456"), 2), g("654 321"));
  assert.deepEqual(rotateGrid(g("123 456"), 3), g("36 25 14"));
  assert.deepEqual(rotateGrid(g("123 456"), 4), g("123 456"));
});

Deno.test("recolour, invert, border", () => {
  assert.deepEqual(recolour(g("102 230"), [0, 5, 2, 1, 4, 5, 6, 7, 8, 9]), g("502 210"));
  assert.deepEqual(invertMask(g("102 030"), 7), g("070 707"));
  assert.deepEqual(drawBorder(g("0000 0120 0000"), 9), g("9999 9129 9999"));
});

Deno.test("gravity in four directions keeps the order of cells on a line", () => {
  const x = g("100 020 103");
  assert.deepEqual(gravity(x, "down"), g("000 100 123"));
  assert.deepEqual(gravity(x, "up"), g("123 100 000"));
  assert.deepEqual(gravity(x, "right"), g("001 002 013"));
  assert.deepEqual(gravity(x, "left"), g("100 200 130"));
});

Deno.test("extendRays stops at the next coloured cell", () => {
  assert.deepEqual(extendRays(g("01000 00020 30400"), "right"), g("01111 00022 33444"));
  assert.deepEqual(extendRays(g("01000 00020 30400"), "left"), g("11000 22220 34400"));
  assert.deepEqual(extendRays(g("010 000 200"), "down"), g("010 010 210"));
  assert.deepEqual(extendRays(g("010 000 200"), "up"), g("210 200 200"));
});

Deno.test("fillEnclosed fills closed areas only", () => {
  const x = g("111110 100010 111110 000000 222200 200000 222200");
  assert.deepEqual(fillEnclosed(x, 4), g("111110 144410 111110 000000 222200 200000 222200"));
  // A gap in the wall leaks to the border: nothing to fill.
  assert.deepEqual(fillEnclosed(g("101 101 111"), 4), g("101 101 111"));
});

Deno.test("shiftContent, copyBeside", () => {
  assert.deepEqual(shiftContent(g("120 300 000"), 1, 1), g("000 012 030"));
  assert.deepEqual(shiftContent(g("012 000"), 0, 1), g("001 000"), "cells past the edge are lost");
  assert.deepEqual(copyBeside(g("120000 300000"), "right", 0), g("121200 303000"));
  assert.deepEqual(copyBeside(g("120000 300000"), "right", 1), g("120120 300300"));
  assert.deepEqual(copyBeside(g("000 050 000 000"), "up", 0), g("050 050 000 000"));
  assert.deepEqual(copyBeside(g("000 000"), "left", 1), g("000 000"));
});

Deno.test("scale, tile, mirrorExtend", () => {
  assert.deepEqual(scaleGrid(g("12"), 2), g("1122 1122"));
  assert.deepEqual(scaleGrid(g("1 2"), 3), g("111 111 111 222 222 222"));
  assert.deepEqual(tileGrid(g("12"), 2, 3), g("121212 121212"));
  assert.deepEqual(tileGrid(g("1 2"), 2, 1), g("1 2 1 2"));
  assert.deepEqual(mirrorExtend(g("12 34"), "right"), g("1221 3443"));
  assert.deepEqual(mirrorExtend(g("12 34"), "left"), g("2112 4334"));
  assert.deepEqual(mirrorExtend(g("12 34"), "down"), g("12 34 34 12"));
  assert.deepEqual(mirrorExtend(g("12 34"), "up"), g("34 12 12 34"));
});

Deno.test("countObjects counts 4-connected groups of any colours; majorityColour breaks ties by the smaller colour", () => {
  assert.deepEqual(countObjects(g("1100 0020 3000 0044"), 5), g("5555"));
  assert.deepEqual(countObjects(g("10 01"), 5), g("55"), "diagonal cells are separate objects");
  assert.deepEqual(countObjects(g("00 00"), 5), g("0"));
  assert.deepEqual(majorityColour(g("1220 0302 0000"), 2, 2), g("22 22"));
  assert.deepEqual(majorityColour(g("3311 0000"), 1, 1), g("1"));
  assert.deepEqual(majorityColour(g("00 00"), 1, 2), g("00"));
});

Deno.test("completeSymmetry restores a mirrored pattern", () => {
  assert.deepEqual(completeSymmetry(g("1001 0220 3003"), "lr"), g("1001 0220 3003"));
  assert.deepEqual(completeSymmetry(g("0201 0020 3003"), "lr"), g("1221 0220 3003"));
  assert.deepEqual(completeSymmetry(g("00 34 12"), "ud"), g("12 34 12"));
  assert.deepEqual(completeSymmetry(g("000 003 120"), "both"), g("121 303 121"));
});

Deno.test("cropToContent and largestObject", () => {
  assert.deepEqual(cropToContent(g("0000 0120 0030 0000")), g("12 03"));
  assert.deepEqual(cropToContent(g("00 00")), g("0"));
  assert.deepEqual(largestObject(g("1000 0022 0002 3000")), g("22 02"));
  assert.deepEqual(largestObject(g("12 00")), g("1"), "ties: the first in reading order");
  // Colours split objects: 2 and 5 touch but are two objects.
  assert.deepEqual(largestObject(g("2550 0000 7770")), g("777"));
});

Deno.test("hollowOut, removeIsolated, connectPairs, recolourBySize, booleanHalves", () => {
  assert.deepEqual(hollowOut(g("11100 11100 11100 00022")), g("11100 10100 11100 00022"));
  assert.deepEqual(hollowOut(g("111 111")), g("111 111"), "cells on the grid's edge are outline");
  assert.deepEqual(removeIsolated(g("1000 0030 0003 5000")), g("0000 0030 0003 0000"));
  assert.deepEqual(connectPairs(g("20020 30400 50005"), "rows"), g("22220 30400 55555"));
  assert.deepEqual(connectPairs(g("20 00 23 03"), "cols"), g("20 20 23 03"));
  assert.deepEqual(recolourBySize(g("5005 0005 5505 0000 5055"), [1, 2, 3]), g("1003 0003 2203 0000 1022"));
  assert.deepEqual(recolourBySize(g("5555"), [1, 2]), g("5555"), "larger objects keep their colour");
  const x = g("10502 11530 00500");
  assert.deepEqual(booleanHalves(x, "and", 8), g("00 80 00"));
  assert.deepEqual(booleanHalves(x, "or", 8), g("88 88 00"));
  assert.deepEqual(booleanHalves(x, "xor", 8), g("88 08 00"));
});
