/** Merge recipes against hand-computed entries: task arithmetic, TIES (trim, elect, disjoint mean), DARE (drop, rescale). */
import assert from "node:assert/strict";
import type { HostTensor } from "../nn/params.ts";
import { applyRecipe, groupOf, type MergeRecipe, parameterGroups, trimThreshold, uniformRecipe } from "./merge.ts";

const t = (data: number[]): HostTensor => ({ shape: [data.length], data: Float32Array.from(data) });
const close = (a: ArrayLike<number>, b: number[], what: string) => {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-6, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
};

Deno.test("groups: embed, blocks in order, head, other", () => {
  assert.equal(groupOf("tok"), "embed");
  assert.equal(groupOf("l12.qkv_w"), "l12");
  assert.equal(groupOf("lnf_g"), "head");
  assert.equal(groupOf("ltm.wk"), "other");
  assert.deepEqual(parameterGroups(["head_w", "l10.fc1_w", "tok", "l2.ln1_g", "pos", "ltm.x"]), ["embed", "l2", "l10", "head", "other"]);
});

Deno.test("task arithmetic: base + sum of weighted task vectors, per group", () => {
  const base = new Map([["tok", t([1, 1])], ["l0.w", t([0, 0])]]);
  const a = new Map([["tok", t([2, 3])], ["l0.w", t([1, -1])]]);
  const b = new Map([["tok", t([0, 1])], ["l0.w", t([4, 4])]]);
  const r: MergeRecipe = { method: "task_arithmetic", groups: ["embed", "l0"], weights: [[0.5, 1], [1, 0]], density: 1, seed: 0 };
  const out = applyRecipe(base, [a, b], r);
  // tok: 1 + 0.5 * (1, 2) + 1 * (-1, 0); l0.w: 0 + 1 * (1, -1) + 0 * (4, 4)
  close(out.get("tok")!.data, [0.5, 2], "tok");
  close(out.get("l0.w")!.data, [1, -1], "l0.w");
  assert.throws(() => applyRecipe(base, [a], r), /2 weight rows for 1 specialists/);
  assert.throws(() => applyRecipe(base, [a, b], { ...r, groups: ["embed"], weights: [[1], [1]] }), /group 'l0'/);
});

Deno.test("TIES: trims small entries, elects the sign of the weighted sum, averages only agreeing entries", () => {
  const base = new Map([["l0.w", t([0, 0, 0, 0])]]);
  const a = new Map([["l0.w", t([3, -2, 0.1, 1])]]);
  const b = new Map([["l0.w", t([1, 4, -0.2, -3])]]);
  // density 1: no trim. Entry 0: both +, mean 2. Entry 1: sum +2 -> +, only b agrees: 4. Entry 2: sum -0.1 -> -, only b: -0.2.
  // Entry 3: sum -2 -> -, only b: -3.
  close(applyRecipe(base, [a, b], uniformRecipe("ties", ["l0"], 2, 1, 1)).get("l0.w")!.data, [2, 4, -0.2, -3], "density 1");
  // density 0.5: a keeps (3, -2), b keeps (4, -3). Entry 0: only a: 3. Entry 1: sum 2 -> +, b: 4. Entry 2: 0. Entry 3: -3.
  assert.equal(trimThreshold(Float32Array.from([3, -2, 0.1, 1]), 0.5), 2);
  close(applyRecipe(base, [a, b], uniformRecipe("ties", ["l0"], 2, 1, 0.5)).get("l0.w")!.data, [3, 4, 0, -3], "density 0.5");
  // A weight scales its specialist's entries before the election.
  close(applyRecipe(base, [a, b], { ...uniformRecipe("ties", ["l0"], 2, 1, 1), weights: [[2], [0.5]] }).get("l0.w")!.data, [
    3.25,
    -4,
    0.2,
    2,
  ], "weighted");
});

Deno.test("DARE: keeps about `density` of each task vector, rescaled, deterministic by seed", () => {
  const n = 20000;
  const base = new Map([["l0.w", t(Array(n).fill(0))]]);
  const a = new Map([["l0.w", t(Array(n).fill(1))]]);
  const r = uniformRecipe("dare", ["l0"], 1, 1, 0.25, 7);
  const out = applyRecipe(base, [a], r).get("l0.w")!.data;
  const kept = out.filter((x) => x !== 0);
  assert.ok(Math.abs(kept.length / n - 0.25) < 0.02, `kept ${kept.length / n}`);
  assert.ok(kept.every((x) => Math.abs(x - 4) < 1e-6), "kept entries rescaled by 1 / density");
  const mean = out.reduce((s, x) => s + x, 0) / n;
  assert.ok(Math.abs(mean - 1) < 0.05, `unbiased: mean ${mean}`);
  assert.deepEqual(applyRecipe(base, [a], r).get("l0.w")!.data, out, "same seed, same masks");
  assert.notDeepEqual(applyRecipe(base, [a], { ...r, seed: 8 }).get("l0.w")!.data, out);
  assert.throws(() => applyRecipe(base, [a], { ...r, density: 0 }), /density = 0/);
});
