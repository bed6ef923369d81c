/** Breeding finds coefficients a fitness rewards, keeps the start as a floor, and is deterministic by seed. */
import assert from "node:assert/strict";
import type { HostTensor } from "../nn/params.ts";
import { initBackend } from "../backend/mod.ts";
import { resolveConfig } from "../config/config.ts";
import { stageContext } from "../eval/stage.ts";
import { breedRecipe, validationContext } from "./breed.ts";
import { applyRecipe, parameterGroups } from "./merge.ts";
import { Rng } from "../util/rng.ts";

/** Base and two specialists over two groups of random tensors. */
function inputs() {
  const rng = new Rng(1);
  const rand = (n: number) => ({ shape: [n], data: rng.normals(n) }) as HostTensor;
  const base = new Map([["tok", rand(50)], ["l0.w", rand(50)]]);
  const spec = () =>
    new Map([...base].map(([n, t]) => [n, { shape: t.shape, data: t.data.map((x) => x + rng.normal()) }] as [string, HostTensor]));
  return { base, specialists: [spec(), spec()] };
}

Deno.test("breedRecipe: CMA-ES finds the per-group coefficients a fitness rewards, from phase 6's start", async () => {
  const { base, specialists } = inputs();
  const groups = parameterGroups(base.keys());
  // The fitness rewards a target merge: embed 0.8 / 0.1, l0 -0.2 / 1.2 (far from the start, 0.5 everywhere).
  const target = applyRecipe(base, specialists, {
    method: "task_arithmetic",
    groups,
    weights: [[0.8, -0.2], [0.1, 1.2]],
    density: 1,
    seed: 0,
  });
  const fitness = (t: Map<string, HostTensor>) => {
    let d = 0;
    for (const [n, x] of t) for (let i = 0; i < x.data.length; i++) d += (x.data[i] - target.get(n)!.data[i]) ** 2;
    return Promise.resolve(-d);
  };
  const gens: number[] = [];
  const r = await breedRecipe(base, specialists, groups, fitness, {
    method: "task_arithmetic",
    generations: 60,
    seed: 3,
    onGeneration: (g) => void gens.push(g.bestEver),
  });
  assert.deepEqual(r.start.recipe.weights, [[0.5, 0.5], [0.5, 0.5]]);
  assert.ok(r.best.fitness > r.start.fitness, "better than the start");
  for (const [i, want] of [[0.8, -0.2], [0.1, 1.2]].entries()) {
    for (const [g, w] of want.entries()) {
      assert.ok(Math.abs(r.best.recipe.weights[i][g] - w) < 0.05, `w[${i}][${g}] = ${r.best.recipe.weights[i][g]}, want ${w}`);
    }
  }
  assert.equal(gens.length, 60);
  assert.ok(gens.every((f, i) => i === 0 || f >= gens[i - 1]), "best so far never falls");
  assert.ok(r.evaluations > 60);
  // Deterministic for a seed.
  const again = await breedRecipe(base, specialists, groups, fitness, { method: "task_arithmetic", generations: 5, seed: 3 });
  const same = await breedRecipe(base, specialists, groups, fitness, { method: "task_arithmetic", generations: 5, seed: 3 });
  assert.deepEqual(again.best, same.best);
  // A fitness that the start already maximizes: the start is what comes back.
  const flat = await breedRecipe(base, specialists, groups, (t) => fitness(t).then(() => 0), { method: "ties", generations: 2, seed: 3 });
  assert.deepEqual(flat.best.recipe.weights, flat.start.recipe.weights);
});

Deno.test("validationContext: the stage's section with overrides, another seed than its held-out set", async () => {
  await initBackend("cpu", { quiet: true });
  const config = resolveConfig({ preset: "tiny" });
  const v = validationContext(config, 2, { eval_tasks: 3 });
  const t = stageContext(config, 2);
  assert.notEqual(v.seed, t.seed);
  assert.equal(v.phaseConfig.eval_tasks, 3);
  assert.equal(v.phaseConfig.seq_len, t.phaseConfig.seq_len);
});
