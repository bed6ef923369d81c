/** GrokFast filters against a direct computation of the paper's formulas over several steps. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { assertClose } from "../testing/gradcheck.ts";
import { Rng } from "../util/rng.ts";
import { emaStep, grokfastFromConfig, makeGradFilter, maStep, validateGrokfast } from "./grokfast.ts";
import type { GradMap } from "./optim.ts";

const STEPS = 12;
/** A gradient sequence for two parameters: a slow drift plus noise. */
function sequence(seed: number): { a: number[][]; b: number[][] } {
  const rng = new Rng(seed);
  const a: number[][] = [], b: number[][] = [];
  for (let t = 0; t < STEPS; t++) {
    a.push([0.1 * t + rng.normal(), -0.05 * t + rng.normal(), rng.normal()]);
    b.push([rng.normal() + 1, rng.normal()]);
  }
  return { a, b };
}
const gradsAt = (s: { a: number[][]; b: number[][] }, t: number): GradMap =>
  new Map([["a", tf.tensor1d(s.a[t])], ["b", tf.tensor1d(s.b[t])]]);

Deno.test("Grokfast-EMA: mu_0 = g_0, mu <- alpha mu + (1 - alpha) g, g <- g + lambda mu", async () => {
  await initBackend("cpu", { quiet: true });
  const [alpha, lambda] = [0.9, 2];
  const s = sequence(1);
  let state: Map<string, tf.Tensor> | undefined;
  const mu = { a: [...s.a[0]], b: [...s.b[0]] };
  for (let t = 0; t < STEPS; t++) {
    const r = emaStep(gradsAt(s, t), state, alpha, lambda);
    for (const k of ["a", "b"] as const) {
      const g = s[k][t];
      mu[k] = mu[k].map((m, i) => alpha * m + (1 - alpha) * g[i]);
      assertClose(await r.grads.get(k)!.data(), g.map((v, i) => v + lambda * mu[k][i]), 1e-5, 1e-5, `ema ${k} step ${t}`);
      assertClose(await r.state!.get(k)!.data(), mu[k], 1e-5, 1e-5, `ema state ${k} step ${t}`);
    }
    if (state) tf.dispose([...state.values()]);
    state = r.state;
  }
});

Deno.test("Grokfast-MA: unchanged until the window fills, then g + lambda * mean(last w)", async () => {
  await initBackend("cpu", { quiet: true });
  const [window, lambda] = [4, 5];
  const s = sequence(2);
  let state: ReturnType<typeof maStep>["state"] | undefined;
  for (let t = 0; t < STEPS; t++) {
    const r = maStep(gradsAt(s, t), state, window, lambda);
    for (const k of ["a", "b"] as const) {
      const g = s[k][t];
      const want = t + 1 < window ? g : g.map((v, i) => {
        let sum = 0;
        for (let j = t - window + 1; j <= t; j++) sum += s[k][j][i];
        return v + (lambda * sum) / window;
      });
      assertClose(await r.grads.get(k)!.data(), want, 1e-5, 1e-5, `ma ${k} step ${t}`);
      assert.equal(r.state.history.get(k)!.length, Math.min(window, t + 1));
    }
    if (state) tf.dispose([...state.sum.values()]);
    state = r.state;
  }
});

Deno.test("makeGradFilter: passes gradients through during warmup while its state accumulates, and frees its state", async () => {
  await initBackend("cpu", { quiet: true });
  const s = sequence(3);
  const f = makeGradFilter({ kind: "ema", alpha: 0.5, lambda: 1, window: 1, warmup: 2 });
  const before = tf.memory().numTensors;
  const mu = [...s.a[0]];
  for (let t = 0; t < 4; t++) {
    const g = gradsAt(s, t);
    const out = f.filter(g, t);
    mu.forEach((m, i) => (mu[i] = 0.5 * m + 0.5 * s.a[t][i]));
    const want = t < 2 ? s.a[t] : s.a[t].map((v, i) => v + mu[i]);
    assertClose(await out.get("a")!.data(), want, 1e-5, 1e-5, `step ${t}`);
    tf.dispose([...g.values(), ...out.values()]);
  }
  assert.equal(f.steps(), 4);
  f.dispose();
  assert.equal(tf.memory().numTensors, before, "the filter leaked tensors");
  // The MA filter too: its window history is freed.
  const m = makeGradFilter({ kind: "ma", alpha: 0.98, lambda: 1, window: 3, warmup: 0 });
  for (let t = 0; t < 5; t++) {
    const g = gradsAt(s, t);
    const out = m.filter(g, t);
    tf.dispose([...g.values(), ...out.values()]);
  }
  m.dispose();
  assert.equal(tf.memory().numTensors, before, "the MA filter leaked tensors");
});

Deno.test("Grokfast options are checked, naming the field; a disabled config section gives no filter", () => {
  const section = { enabled: false, kind: "ma" as const, alpha: 0.98, lambda: 5, window: 100, warmup: 0 };
  assert.equal(grokfastFromConfig(section), undefined);
  const f = grokfastFromConfig({ ...section, enabled: true });
  assert.ok(f);
  f.dispose();
  assert.throws(() => validateGrokfast({ kind: "fir" as "ema", alpha: 0.9, lambda: 1, window: 1, warmup: 0 }), /grokfast.kind = fir/);
  assert.throws(() => validateGrokfast({ kind: "ema", alpha: 1, lambda: 1, window: 1, warmup: 0 }), /grokfast.alpha = 1/);
  assert.throws(() => validateGrokfast({ kind: "ma", alpha: 0.9, lambda: 1, window: 0, warmup: 0 }), /grokfast.window = 0/);
});
