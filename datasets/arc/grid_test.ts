/** Grid helpers: shapes, equality, keys, objects, bounding boxes and crops. */
import assert from "node:assert/strict";
import { boundingBox, cloneGrid, cropGrid, findObjects, gridKey, gridsEqual, gridShape, makeGrid, nonZeroCells } from "./grid.ts";

Deno.test("makeGrid, cloneGrid, gridShape, gridsEqual, gridKey", () => {
  const g = makeGrid(2, 3, 4);
  assert.deepEqual(g, [[4, 4, 4], [4, 4, 4]]);
  g[0][0] = 1;
  assert.equal(g[1][0], 4, "rows are not shared");
  const c = cloneGrid(g);
  c[0][1] = 9;
  assert.equal(g[0][1], 4, "clone is deep");
  assert.deepEqual(gridShape(g), [2, 3]);
  assert.ok(gridsEqual(g, cloneGrid(g)));
  assert.ok(!gridsEqual(g, c));
  assert.ok(!gridsEqual([[1, 2]], [[1], [2]]));
  assert.equal(gridKey([[1, 2], [3, 0]]), "12|30");
  assert.notEqual(gridKey([[1, 2]]), gridKey([[1], [2]]));
});

Deno.test("findObjects: 4-connected, split by colour or not, in reading order", () => {
  const g = [
    [1, 1, 0, 2],
    [0, 1, 0, 2],
    [3, 0, 2, 2],
    [3, 5, 0, 0],
  ];
  const byColour = findObjects(g);
  assert.deepEqual(byColour.map((o) => [o.colour, o.cells.length]), [[1, 3], [2, 4], [3, 2], [5, 1]]);
  assert.deepEqual(findObjects(g, false).map((o) => o.cells.length), [3, 4, 3]);
  assert.deepEqual(findObjects([[1, 0], [0, 1]]).length, 2, "diagonal cells are not connected");
  assert.deepEqual(findObjects([[0]]), []);
});

Deno.test("boundingBox, nonZeroCells, cropGrid", () => {
  const g = [[0, 0, 0], [0, 7, 0], [0, 0, 8]];
  assert.deepEqual(nonZeroCells(g), [[1, 1], [2, 2]]);
  assert.deepEqual(boundingBox(nonZeroCells(g)), [1, 1, 2, 2]);
  assert.equal(boundingBox([]), null);
  assert.deepEqual(cropGrid(g, 1, 1, 2, 2), [[7, 0], [0, 8]]);
});
