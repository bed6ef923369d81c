/** AdamW, the schedule and clipping against direct computations of their formulas. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { assertClose } from "../testing/gradcheck.ts";
import { AdamW, clipByGlobalNorm, warmupCosine } from "./optim.ts";

for (const mode of ["decoupled", "l2"] as const) {
  Deno.test(`AdamW (${mode} weight decay) follows torch.optim.${mode === "l2" ? "Adam" : "AdamW"}'s update over several steps`, async () => {
    await initBackend("cpu", { quiet: true });
    const o = { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, decayMode: mode };
    const opt = new AdamW(o);
    const p = tf.variable(tf.tensor1d([0.5, -1, 2]));
    const params = new Map([["p", p]]);
    const ref = [0.5, -1, 2];
    const m = [0, 0, 0], v = [0, 0, 0];
    const lrs = [0.1, 0.05, 0.02];
    for (let t = 1; t <= 3; t++) {
      const g = ref.map((x, i) => Math.sin(x * (i + 1)) + t); // any deterministic gradient
      opt.step(params, new Map([["p", tf.tensor1d(g)]]), lrs[t - 1]);
      const lr = lrs[t - 1];
      for (let i = 0; i < 3; i++) {
        if (mode === "decoupled") ref[i] *= 1 - lr * o.weightDecay;
        else g[i] += o.weightDecay * ref[i];
        m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i];
        v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i];
        const denom = Math.sqrt(v[i]) / Math.sqrt(1 - o.beta2 ** t) + o.eps;
        ref[i] -= (lr / (1 - o.beta1 ** t)) * (m[i] / denom);
      }
      assertClose(await p.data(), ref, 1e-6, 1e-6, `step ${t}`);
    }
    assert.equal(opt.t, 3);
    opt.dispose();
  });
}

Deno.test("warmup + cosine: linear warmup to lr, cosine to minLr at the last step", () => {
  const s = { lr: 1, minLr: 0.1, warmupSteps: 10, totalSteps: 110 };
  assert.equal(warmupCosine(0, s), 0.1);
  assert.equal(warmupCosine(9, s), 1);
  assert.equal(warmupCosine(10, s), 1);
  assert.ok(Math.abs(warmupCosine(60, s) - 0.55) < 1e-12);
  assert.ok(Math.abs(warmupCosine(110, s) - 0.1) < 1e-12);
  for (let i = 11; i < 110; i++) assert.ok(warmupCosine(i, s) < warmupCosine(i - 1, s), "decreasing after warmup");
});

Deno.test("clipByGlobalNorm scales to the max norm only when above it", async () => {
  await initBackend("cpu", { quiet: true });
  const grads = new Map([["a", tf.tensor1d([3, 0])], ["b", tf.tensor1d([0, 4])]]);
  const big = clipByGlobalNorm(grads, 1);
  assert.ok(Math.abs((await big.norm.data())[0] - 5) < 1e-6);
  assertClose(await big.grads.get("a")!.data(), [0.6, 0], 1e-6);
  assertClose(await big.grads.get("b")!.data(), [0, 0.8], 1e-6);
  const small = clipByGlobalNorm(grads, 10);
  assertClose(await small.grads.get("b")!.data(), [0, 4], 1e-6);
});
