import assert from "node:assert/strict";
import { Rng } from "../util/rng.ts";
import { linearCka, predictionDiversity, sanitySplit } from "./p1_cognate.ts";
import { resolveConfig } from "../config/config.ts";
import { stageContext } from "../eval/stage.ts";
import { phase1 } from "./p1_cognate.ts";

const rand = (n: number, seed: number) => Float32Array.from(new Rng(seed).normals(n));

Deno.test("linear CKA: 1 for the same features up to rotation and scale, near 0 for independent ones", () => {
  const n = 200, d = 4;
  const x = rand(n * d, 1);
  // y = 3 * x rotated by 90 degrees in the first two coordinates: same representation.
  const y = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    y[i * d] = -3 * x[i * d + 1];
    y[i * d + 1] = 3 * x[i * d];
    y[i * d + 2] = 3 * x[i * d + 2];
    y[i * d + 3] = 3 * x[i * d + 3];
  }
  assert.ok(Math.abs(linearCka(x, d, y, d, n) - 1) < 1e-9);
  const z = rand(n * d, 2);
  assert.ok(linearCka(x, d, z, d, n) < 0.15, `independent features: ${linearCka(x, d, z, d, n)}`);
});

Deno.test("prediction diversity: zero for identical log-probs, counts argmax disagreements and symmetric KL", () => {
  const lp = (ps: number[][]) => Float32Array.from(ps.flat().map(Math.log));
  const p = lp([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]);
  assert.deepEqual(predictionDiversity(p, p, 2, 3), { disagreement: 0, sym_kl: 0 });
  const q = lp([[0.2, 0.7, 0.1], [0.1, 0.8, 0.1]]);
  const d = predictionDiversity(p, q, 2, 3);
  assert.equal(d.disagreement, 0.5);
  const kl = 0.5 * ((0.7 - 0.2) * Math.log(0.7 / 0.2) + (0.2 - 0.7) * Math.log(0.2 / 0.7)); // row 0; row 1 is 0
  assert.ok(Math.abs(d.sym_kl - kl / 2) < 1e-6, `${d.sym_kl} vs ${kl / 2}`);
});

Deno.test("the sanity split is deterministic in the seed; validation (early stopping) and test (reported, gated) share no prompt with training or each other", () => {
  const config = resolveConfig({ preset: "tiny", phases: [phase1] });
  const a = sanitySplit(stageContext(config, 1)), b = sanitySplit(stageContext(config, 1));
  assert.deepEqual(a, b);
  const train = new Set(a.train.map((i) => i.prompt)), val = new Set(a.val.map((i) => i.prompt));
  assert.ok(a.val.length > 50 && a.val.every((i) => !train.has(i.prompt)));
  assert.ok(a.test.length > 50 && a.test.every((i) => !train.has(i.prompt) && !val.has(i.prompt)));
});
