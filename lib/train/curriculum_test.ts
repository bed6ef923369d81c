import assert from "node:assert/strict";
import { admissibleCount, competence, difficultyLevels, rowLevels } from "./curriculum.ts";

Deno.test("competence: c0 at step 0, the square-root schedule, 1 from fullAt on", () => {
  const s = { start: 0.2, fullAt: 100 };
  assert.ok(Math.abs(competence(0, s) - 0.2) < 1e-12);
  assert.equal(competence(100, s), 1);
  assert.equal(competence(250, s), 1);
  // Halfway, sqrt((0.5 * 0.96) + 0.04) = sqrt(0.52): above the linear schedule's 0.6.
  assert.ok(Math.abs(competence(50, s) - Math.sqrt(0.52)) < 1e-12);
  for (let t = 1; t <= 100; t++) assert.ok(competence(t, s) > competence(t - 1, s), `increasing at ${t}`);
  assert.ok(Math.abs(competence(50, { ...s, power: 1 }) - 0.6) < 1e-12, "power 1 is linear");
  assert.throws(() => competence(0, { start: 0, fullAt: 10 }), /start = 0/);
  assert.throws(() => competence(0, { start: 0.5, fullAt: 0 }), /fullAt = 0/);
});

Deno.test("difficultyLevels: the fraction strictly easier within each group; ties share a level", () => {
  // Group a: 3, 1, 1, 2; group b: 10, 20 (another scale, the same spread).
  const lv = difficultyLevels([3, 1, 1, 2, 10, 20], ["a", "a", "a", "a", "b", "b"]);
  assert.deepEqual([...lv], [0.75, 0, 0, 0.5, 0, 0.5]);
  assert.deepEqual([...difficultyLevels([5, 5, 5])], [0, 0, 0]);
  assert.throws(() => difficultyLevels([1, NaN]), /item 1 has difficulty NaN/);
});

Deno.test("admissibleCount: the levels below c, never fewer than one", () => {
  const sorted = Float64Array.from([0, 0, 0.25, 0.5, 0.75]);
  assert.equal(admissibleCount(sorted, 0.2), 2);
  assert.equal(admissibleCount(sorted, 0.25), 2);
  assert.equal(admissibleCount(sorted, 0.26), 3);
  assert.equal(admissibleCount(sorted, 1), 5);
  assert.equal(admissibleCount(Float64Array.from([0.5, 0.6]), 0.1), 1);
});

Deno.test("rowLevels: the mean level of the items packed into each row", () => {
  const lv = rowLevels(Float64Array.from([0, 0.5, 1, 0.25]), Int32Array.from([0, 0, 1, 2]), 3);
  assert.deepEqual([...lv], [0.25, 1, 0.25]);
});
