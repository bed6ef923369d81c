/**
 * Procedural ARC generator: at least 20 families, valid grids, one hidden rule per task (re-applied
 * to every pair, and checked against an independent property of each family), determinism and size control.
 */
import assert from "node:assert/strict";
import { dihedral } from "./augment.ts";
import { FAMILIES, familyByName, type GeneratedTask, generateTask, generateTasks } from "./generator.ts";
import { findObjects, gridsEqual, gridShape, nonZeroCells } from "./grid.ts";
import { gridProblem } from "./loader.ts";
import type { ArcPair, Grid } from "./types.ts";

const allPairs = (t: GeneratedTask): ArcPair[] => [...t.train, ...t.test];
const count = (g: Grid, f: (v: number) => boolean) => g.flat().filter(f).length;
const shape = (g: Grid) => gridShape(g).join("x");
// deno-lint-ignore no-explicit-any
type Params = any;

/**
 * A property of each family's pairs checked without the family's rule function, so that a wrong or
 * stub rule fails here even though the generator built the outputs with it.
 */
const PROPERTIES: Record<string, (p: ArcPair, params: Params, t: GeneratedTask) => void> = {
  flip: (p, q) => assert.deepEqual(p.output, dihedral(p.input, q.axis === "lr" ? 4 : 5)),
  rotate: (p, q) => assert.deepEqual(p.output, dihedral(p.input, q.turns)),
  transpose: (p) => assert.deepEqual(p.output, dihedral(p.input, 6)),
  colour_map: (_p, _q, t) => {
    // One colour map explains every pair of the task.
    const map = new Map<number, number>();
    for (const { input, output } of allPairs(t)) {
      input.forEach((row, r) =>
        row.forEach((v, c) => {
          assert.equal(map.get(v) ?? output[r][c], output[r][c], `colour ${v} maps to two colours`);
          map.set(v, output[r][c]);
        })
      );
    }
    assert.ok(![...map].every(([a, b]) => a === b));
  },
  gravity: (p, q) => {
    assert.equal(shape(p.output), shape(p.input));
    for (let v = 1; v < 10; v++) assert.equal(count(p.output, (x) => x === v), count(p.input, (x) => x === v));
    // Along the direction of travel, no empty cell lies beyond a full one.
    const g = dihedral(p.output, { down: 0, up: 2, right: 6, left: 7 }[q.dir as string]!);
    for (let c = 0; c < g[0].length; c++) {
      const col = g.map((row) => row[c] !== 0);
      assert.ok(col.indexOf(true) === -1 || col.slice(col.indexOf(true)).every((x) => x), "gap after gravity");
    }
  },
  fill_enclosed: (p, q) => {
    p.input.forEach((row, r) => row.forEach((v, c) => assert.ok(p.output[r][c] === v || (v === 0 && p.output[r][c] === q.fill))));
  },
  move: (p, q) => {
    assert.equal(count(p.output, (v) => v !== 0), count(p.input, (v) => v !== 0), "nothing may fall off the grid");
    for (const [r, c] of nonZeroCells(p.input)) assert.equal(p.output[r + q.dy][c + q.dx], p.input[r][c]);
  },
  copy: (p) => assert.equal(count(p.output, (v) => v !== 0), 2 * count(p.input, (v) => v !== 0), "the copy must fit beside the original"),
  scale: (p, q) => {
    assert.deepEqual(gridShape(p.output), gridShape(p.input).map((n) => n * q.factor));
    p.output.forEach((row, r) => row.forEach((v, c) => assert.equal(v, p.input[Math.floor(r / q.factor)][Math.floor(c / q.factor)])));
  },
  tile: (p, q) => {
    const [h, w] = gridShape(p.input);
    assert.deepEqual(gridShape(p.output), [h * q.ty, w * q.tx]);
    p.output.forEach((row, r) => row.forEach((v, c) => assert.equal(v, p.input[r % h][c % w])));
  },
  count_objects: (p, q) => {
    const n = findObjects(p.input, false).length;
    assert.deepEqual(p.output, [new Array(n).fill(q.colour)]);
  },
  majority_colour: (p, q) => {
    assert.deepEqual(gridShape(p.output), [q.h, q.w]);
    const top = count(p.input, (v) => v === p.output[0][0]);
    for (let v = 1; v < 10; v++) if (v !== p.output[0][0]) assert.ok(count(p.input, (x) => x === v) < top, "majority must be strict");
  },
  symmetry_complete: (p, q) => {
    const mirrors = q.axis === "lr" ? [4] : q.axis === "ud" ? [5] : [4, 5];
    for (const k of mirrors) assert.deepEqual(dihedral(p.output, k), p.output, "output is symmetric");
    nonZeroCells(p.input).forEach(([r, c]) => assert.equal(p.output[r][c], p.input[r][c]));
  },
  mirror_extend: (p, q) => {
    const vertical = q.side === "up" || q.side === "down";
    assert.deepEqual(dihedral(p.output, vertical ? 5 : 4), p.output);
    const [h, w] = gridShape(p.input);
    assert.deepEqual(gridShape(p.output), vertical ? [2 * h, w] : [h, 2 * w]);
  },
  crop_object: (p) => {
    assert.equal(count(p.output, (v) => v !== 0), count(p.input, (v) => v !== 0));
    for (const line of [p.output[0], p.output.at(-1)!, p.output.map((r) => r[0]), p.output.map((r) => r.at(-1)!)]) {
      assert.ok(line.some((v) => v !== 0));
    }
  },
  largest_object: (p) => {
    const sizes = findObjects(p.input).map((o) => o.cells.length).sort((a, b) => b - a);
    assert.ok(sizes.length < 2 || sizes[0] > sizes[1], "largest object must be unique");
    assert.equal(count(p.output, (v) => v !== 0), sizes[0]);
  },
  outline: (p) => {
    p.output.forEach((row, r) => row.forEach((v, c) => assert.ok(v === 0 || v === p.input[r][c])));
    assert.ok(count(p.output, (v) => v !== 0) < count(p.input, (v) => v !== 0));
  },
  draw_lines: (p) => {
    nonZeroCells(p.input).forEach(([r, c]) => assert.equal(p.output[r][c], p.input[r][c]));
    assert.ok(count(p.output, (v) => v !== 0) > count(p.input, (v) => v !== 0));
  },
  connect_pairs: (p) => {
    nonZeroCells(p.input).forEach(([r, c]) => assert.equal(p.output[r][c], p.input[r][c]));
    for (let v = 1; v < 10; v++) if (count(p.input, (x) => x === v) === 0) assert.equal(count(p.output, (x) => x === v), 0);
  },
  denoise: (p) => {
    const removed = nonZeroCells(p.input).filter(([r, c]) => p.output[r][c] === 0);
    assert.ok(removed.length > 0 && findObjects(p.input, false).filter((o) => o.cells.length === 1).length === removed.length);
  },
  recolour_by_size: (p, q) => {
    for (const o of findObjects(p.input)) for (const [r, c] of o.cells) assert.equal(p.output[r][c], q.palette[o.cells.length - 1]);
  },
  invert: (p) => p.input.forEach((row, r) => row.forEach((v, c) => assert.equal(v === 0, p.output[r][c] !== 0))),
  border: (p, q) => {
    const [h, w] = gridShape(p.output);
    assert.ok(
      [...p.output[0], ...p.output[h - 1], ...p.output.map((r) => r[0]), ...p.output.map((r) => r[w - 1])].every((v) => v === q.colour),
    );
  },
  boolean_halves: (p, q) => {
    const [h, w] = gridShape(p.input);
    assert.equal(w % 2, 1);
    assert.ok(p.input.every((row) => row[(w - 1) / 2] === q.divider));
    assert.deepEqual(gridShape(p.output), [h, (w - 1) / 2]);
  },
};

Deno.test("at least 20 named families, each with an independent property check", () => {
  assert.ok(FAMILIES.length >= 20, `${FAMILIES.length} families`);
  const names = FAMILIES.map((f) => f.name);
  assert.equal(new Set(names).size, names.length, "family names are unique");
  assert.deepEqual(Object.keys(PROPERTIES).sort(), [...names].sort());
  assert.equal(familyByName("gravity").name, "gravity");
  assert.throws(() => familyByName("nope"), /unknown ARC generator family "nope", expected one of flip, rotate/);
});

Deno.test("every family: valid grids, one hidden rule for all pairs (re-applied and property-checked), distinct inputs", () => {
  for (const f of FAMILIES) {
    for (const [minSize, maxSize] of [[3, 6], [3, 12], [12, 30]]) {
      for (let seed = 0; seed < 6; seed++) {
        const t = generateTask(f.name, seed, { minSize, maxSize, trainPairs: 4 });
        const where = `${f.name} seed ${seed} sizes ${minSize}-${maxSize}`;
        assert.equal(t.family, f.name);
        assert.equal(t.train.length, 4, where);
        assert.equal(t.test.length, 1, where);
        // Parameters survive JSON, so a saved task still names its rule.
        const params = JSON.parse(JSON.stringify(t.params));
        const inputs = new Set<string>();
        for (const p of allPairs(t)) {
          for (const g of [p.input, p.output]) {
            assert.equal(gridProblem(g, "grid"), null, `${where}: ${gridProblem(g, "grid")}`);
            assert.ok(g.length <= maxSize && g[0].length <= maxSize, `${where}: ${shape(g)} exceeds ${maxSize}`);
          }
          assert.deepEqual(familyByName(t.family).rule(p.input, params), p.output, `${where}: pair does not follow the rule`);
          assert.ok(!gridsEqual(p.input, p.output), `${where}: output equals input`);
          PROPERTIES[f.name](p, params, t);
          inputs.add(JSON.stringify(p.input));
        }
        assert.equal(inputs.size, 5, `${where}: repeated inputs`);
      }
    }
  }
});

Deno.test("deterministic by seed: same seed same task, different seeds different tasks", () => {
  for (const f of FAMILIES) {
    assert.deepEqual(generateTask(f.name, 42), generateTask(f.name, 42));
    const variants = new Set([0, 1, 2, 3].map((s) => JSON.stringify(generateTask(f.name, s).train)));
    assert.ok(variants.size >= 3, `${f.name}: seeds give ${variants.size} distinct tasks`);
  }
  const a = generateTasks(60, 9, { maxSize: 10 });
  assert.deepEqual(a, generateTasks(60, 9, { maxSize: 10 }));
  assert.notDeepEqual(a, generateTasks(60, 10, { maxSize: 10 }));
  assert.deepEqual(a.slice(0, FAMILIES.length).map((t) => t.family), FAMILIES.map((f) => f.name), "families in turn");
  assert.deepEqual(new Set(generateTasks(10, 1, { families: ["flip", "tile"] }).map((t) => t.family)), new Set(["flip", "tile"]));
});

Deno.test("size control: every grid within maxSize; inputs of non-enlarging families at least minSize", () => {
  const enlarging = new Set(["scale", "tile", "mirror_extend", "boolean_halves"]);
  for (const [minSize, maxSize] of [[8, 8], [20, 30], [3, 6]]) {
    for (const t of generateTasks(3 * FAMILIES.length, 5, { minSize, maxSize })) {
      for (const p of allPairs(t)) {
        for (const g of [p.input, p.output]) assert.ok(Math.max(...gridShape(g)) <= maxSize, `${t.id}: ${shape(g)} > ${maxSize}`);
        const least = enlarging.has(t.family) ? (t.family === "boolean_halves" ? minSize - 1 : 1) : minSize;
        assert.ok(Math.min(...gridShape(p.input)) >= least, `${t.id}: input ${shape(p.input)} < ${least}`);
      }
    }
  }
  // Bigger settings give bigger grids.
  const area = (ts: GeneratedTask[]) => ts.flatMap(allPairs).reduce((s, p) => s + p.input.length * p.input[0].length, 0);
  assert.ok(area(generateTasks(48, 1, { minSize: 10, maxSize: 20 })) > 4 * area(generateTasks(48, 1, { minSize: 3, maxSize: 6 })));
});

Deno.test("bad generator settings are refused with the setting's name", () => {
  assert.throws(() => generateTask("flip", 0, { maxSize: 31 }), /maxSize = 31: expected an integer 6-30/);
  assert.throws(() => generateTask("flip", 0, { maxSize: 5 }), /maxSize = 5/);
  assert.throws(() => generateTask("flip", 0, { minSize: 2 }), /minSize = 2: expected an integer 3-12/);
  assert.throws(() => generateTask("flip", 0, { minSize: 9, maxSize: 8 }), /minSize = 9/);
  assert.throws(() => generateTask("flip", 0, { trainPairs: 0 }), /trainPairs = 0/);
  assert.throws(() => generateTasks(3, 0, { families: [] }), /families is empty/);
});
