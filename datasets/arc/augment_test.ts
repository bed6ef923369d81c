/** Augmentations: each transform checked by hand, exact inverses (also on every real ARC task), and voting. */
import assert from "node:assert/strict";
import { Rng } from "../../lib/util/rng.ts";
import {
  type Augmentation,
  augmentGrid,
  augmentTask,
  dihedral,
  DIHEDRAL_INVERSE,
  DIHEDRAL_NAMES,
  IDENTITY_AUGMENTATION,
  invertColourPerm,
  isColourPerm,
  largestSide,
  permuteColours,
  randomAugmentation,
  randomColourPerm,
  translate,
  unaugmentGrid,
  untranslate,
  vote,
} from "./augment.ts";
import { gridKey, gridsEqual } from "./grid.ts";
import { haveArcTraining, realArcTasks } from "./testing.ts";
import type { ArcTask, Grid } from "./types.ts";

const haveArc = haveArcTraining("augment_test.ts");

function randomGrid(rng: Rng, maxSide = 12): Grid {
  const h = 1 + rng.int(maxSide), w = 1 + rng.int(maxSide);
  return Array.from({ length: h }, () => Array.from({ length: w }, () => rng.int(10)));
}

Deno.test("the 8 dihedral transforms of a 2x3 grid, worked out by hand", () => {
  const g = [[1, 2, 3], [4, 5, 6]];
  const expected: Record<string, Grid> = {
    identity: [[1, 2, 3], [4, 5, 6]],
    rot90: [[4, 1], [5, 2], [6, 3]],
    rot180: [[6, 5, 4], [3, 2, 1]],
    rot270: [[3, 6], [2, 5], [1, 4]],
    flip_lr: [[3, 2, 1], [6, 5, 4]],
    flip_ud: [[4, 5, 6], [1, 2, 3]],
    transpose: [[1, 4], [2, 5], [3, 6]],
    anti_transpose: [[6, 3], [5, 2], [4, 1]],
  };
  DIHEDRAL_NAMES.forEach((name, k) => assert.deepEqual(dihedral(g, k), expected[name], name));
  assert.throws(() => dihedral(g, 8), /k = 8/);
  assert.deepEqual(dihedral(g, 0) === g, false, "returns a new grid");
});

Deno.test("dihedral transforms form a group and DIHEDRAL_INVERSE undoes each one", () => {
  const rng = new Rng(3);
  const g = [[1, 2, 3], [4, 5, 6]];
  const keys = DIHEDRAL_NAMES.map((_, k) => gridKey(dihedral(g, k)));
  assert.equal(new Set(keys).size, 8, "eight different results on an asymmetric grid");
  for (let a = 0; a < 8; a++) {
    for (let b = 0; b < 8; b++) assert.ok(keys.includes(gridKey(dihedral(dihedral(g, a), b))), "closed under composition");
    assert.deepEqual(dihedral(dihedral(g, a), DIHEDRAL_INVERSE[a]), g);
  }
  for (let i = 0; i < 50; i++) {
    const x = randomGrid(rng);
    for (let k = 0; k < 8; k++) assert.deepEqual(dihedral(dihedral(x, k), DIHEDRAL_INVERSE[k]), x);
  }
});

Deno.test("colour permutations keep 0 and invert exactly", () => {
  const rng = new Rng(11);
  const seen = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const p = randomColourPerm(rng);
    assert.ok(isColourPerm(p));
    assert.equal(p[0], 0);
    seen.add(p.join(""));
    const inv = invertColourPerm(p);
    for (let c = 0; c < 10; c++) assert.equal(inv[p[c]], c);
    const g = randomGrid(rng);
    assert.deepEqual(permuteColours(permuteColours(g, p), inv), g);
  }
  assert.ok(seen.size > 25, "permutations vary");
  assert.deepEqual(permuteColours([[0, 1, 2]], [0, 2, 1, 3, 4, 5, 6, 7, 8, 9]), [[0, 2, 1]]);
  assert.ok(!isColourPerm([1, 0, 2, 3, 4, 5, 6, 7, 8, 9]), "0 must stay 0");
  assert.ok(!isColourPerm([0, 1, 1, 3, 4, 5, 6, 7, 8, 9]), "not a bijection");
  assert.ok(!isColourPerm([0, 1, 2]), "wrong length");
});

Deno.test("translation pads with zeros above and left; untranslate inverts it and rejects what it cannot come from", () => {
  assert.deepEqual(translate([[1, 2]], 1, 2), [[0, 0, 0, 0], [0, 0, 1, 2]]);
  assert.deepEqual(untranslate([[0, 0, 0, 0], [0, 0, 1, 2]], 1, 2), [[1, 2]]);
  assert.equal(untranslate([[0, 5, 0, 0], [0, 0, 1, 2]], 1, 2), null, "non-zero padding");
  assert.equal(untranslate([[0, 0], [0, 3]], 2, 0), null, "too small");
  const rng = new Rng(5);
  for (let i = 0; i < 50; i++) {
    const g = randomGrid(rng), dy = rng.int(4), dx = rng.int(4);
    assert.deepEqual(untranslate(translate(g, dy, dx), dy, dx), g);
  }
});

Deno.test("augmentGrid / unaugmentGrid are exact inverses; augmentTask maps every grid", () => {
  const rng = new Rng(8);
  for (let i = 0; i < 200; i++) {
    const g = randomGrid(rng);
    const aug: Augmentation = { dihedral: rng.int(8), colours: randomColourPerm(rng), dy: rng.int(3), dx: rng.int(3) };
    const a = augmentGrid(g, aug);
    assert.deepEqual(unaugmentGrid(a, aug), g);
  }
  const aug: Augmentation = { dihedral: 1, colours: [0, 2, 1, 3, 4, 5, 6, 7, 8, 9], dy: 1, dx: 0 };
  assert.deepEqual(augmentGrid([[1, 2]], aug), [[0], [2], [1]]);
  const task: ArcTask = { id: "t", train: [{ input: [[1, 2]], output: [[2]] }], test: [{ input: [[0, 1]], output: [[1]] }] };
  const at = augmentTask(task, aug);
  assert.equal(at.id, "t");
  assert.deepEqual(at.train[0], { input: [[0], [2], [1]], output: [[0], [1]] });
  assert.deepEqual(at.test[0], { input: [[0], [0], [2]], output: [[0], [2]] });
  assert.deepEqual(augmentTask(task, IDENTITY_AUGMENTATION), task);
});

Deno.test("randomAugmentation keeps every grid within 30x30", () => {
  const rng = new Rng(2);
  const big: ArcTask = { train: [{ input: Array(28).fill(Array(20).fill(1)), output: [[1]] }], test: [{ input: [[1]], output: [[1]] }] };
  assert.equal(largestSide(big), 28);
  const ks = new Set<number>();
  for (let i = 0; i < 100; i++) {
    const aug = randomAugmentation(rng, big, { maxShift: 10 });
    ks.add(aug.dihedral);
    assert.ok(aug.dy <= 2 && aug.dx <= 2);
    assert.ok(isColourPerm(aug.colours));
    assert.ok(largestSide(augmentTask(big, aug)) <= 30);
  }
  assert.equal(ks.size, 8);
  const plain = randomAugmentation(rng, big, { colours: false });
  assert.deepEqual([plain.colours, plain.dy, plain.dx], [IDENTITY_AUGMENTATION.colours, 0, 0]);
});

Deno.test("vote maps predictions back and ranks answers by votes (ties: first seen); unmappable ones are dropped", () => {
  const rng = new Rng(4);
  const right = [[1, 2, 0], [0, 3, 3]], wrong = [[1, 2, 0], [0, 3, 4]], other = [[5]];
  const augs = Array.from({ length: 7 }, () => ({ dihedral: rng.int(8), colours: randomColourPerm(rng), dy: rng.int(2), dx: rng.int(2) }));
  const preds = [
    { grid: augmentGrid(wrong, augs[0]), aug: augs[0] },
    { grid: augmentGrid(right, augs[1]), aug: augs[1] },
    { grid: augmentGrid(other, augs[2]), aug: augs[2] },
    { grid: augmentGrid(right, augs[3]), aug: augs[3] },
    { grid: augmentGrid(wrong, augs[4]), aug: augs[4] },
    { grid: augmentGrid(right, augs[5]), aug: augs[5] },
    { grid: [[7]], aug: { ...augs[6], dy: 1 } },
  ];
  const ranked = vote(preds);
  assert.deepEqual(ranked, [{ grid: right, votes: 3 }, { grid: wrong, votes: 2 }]);
  assert.deepEqual(vote(preds, 5).map((c) => c.votes), [3, 2, 1]);
  assert.deepEqual(vote(preds.slice(0, 3), 3).map((c) => c.grid), [wrong, right, other], "ties keep first-seen order");
  assert.deepEqual(vote([]), []);
});

Deno.test({
  name: "every real ARC task survives every dihedral transform and random colour + translation augmentations exactly",
  ignore: !haveArc,
  fn: async () => {
    const tasks = await realArcTasks();
    assert.equal(tasks.length, 400);
    const rng = new Rng(1);
    for (const task of tasks) {
      const augs: Augmentation[] = DIHEDRAL_NAMES.map((_, k) => ({ ...IDENTITY_AUGMENTATION, dihedral: k }));
      augs.push(randomAugmentation(rng, task, { maxShift: 3 }), randomAugmentation(rng, task, { maxShift: 3 }));
      for (const aug of augs) {
        const at = augmentTask(task, aug);
        assert.ok(largestSide(at) <= 30);
        const pairs = [...task.train, ...task.test], back = [...at.train, ...at.test];
        pairs.forEach((p, i) => {
          for (const side of ["input", "output"] as const) {
            const g = unaugmentGrid(back[i][side], aug);
            if (g === null || !gridsEqual(g, p[side])) assert.fail(`${task.id} pair ${i} ${side} ${JSON.stringify(aug)}`);
          }
        });
      }
    }
  },
});
