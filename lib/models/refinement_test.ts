/** Refinement core: gradients of one step and of the memory gate, the gate's identity at ctx = 0, stopping and history. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { ParamSet } from "../nn/params.ts";
import { assertClose, gradCheck } from "../testing/gradcheck.ts";
import { Rng } from "../util/rng.ts";
import { actConfig } from "./act.ts";
import { memoryGate, refinementConfig, RefinementCore } from "./refinement.ts";

const [B, T, C] = [2, 3, 4];
const rand = (n: number, seed: number, std = 1) => new Rng(seed).normals(n, std);
const states = (seed: number, std = 1) => tf.tensor3d(rand(B * T * C, seed, std), [B, T, C]);

/** Central differences of `loss` over up to `samples` entries of the variable v, against tf.variableGrads. */
async function paramGradCheck(loss: () => tf.Scalar, v: tf.Variable, what: string, samples = 12): Promise<void> {
  const { grads } = tf.variableGrads(loss, [v]);
  const analytic = await grads[v.name].data();
  tf.dispose(Object.values(grads));
  const base = (await v.data()) as Float32Array;
  const h = 1e-2;
  const at = (i: number, d: number) => {
    const x = base.slice();
    x[i] += d;
    v.assign(tf.tensor(x, v.shape));
    return tf.tidy(() => loss().dataSync()[0]);
  };
  for (let k = 0; k < Math.min(samples, base.length); k++) {
    const i = Math.floor((k * base.length) / Math.min(samples, base.length));
    const numeric = (at(i, h) - at(i, -h)) / (2 * h);
    const tol = 1e-3 + 3e-2 * Math.abs(numeric);
    assert.ok(Math.abs(analytic[i] - numeric) <= tol, `${what}[${i}]: analytic ${analytic[i]} vs numeric ${numeric}`);
  }
  v.assign(tf.tensor(base, v.shape));
}

Deno.test("refinement: one step's gradients (state, context, block and gate weights) match finite differences", async () => {
  await initBackend("cpu", { quiet: true });
  const p = new ParamSet(3);
  const core = new RefinementCore(p, refinementConfig({ dim: C, initStd: 0.4, gateBiasInit: 0.3 }), "r.");
  const h = states(1), ctx = states(2), probe = states(3);
  const loss = (hv: tf.Tensor, cv?: tf.Tensor) => tf.sum(tf.mul(core.step(hv, cv), probe)) as tf.Scalar;
  const opts = { samples: 12, atol: 2e-3, rtol: 3e-2 };
  await gradCheck((x) => loss(x, ctx), h, { ...opts, what: "d step / d h" });
  await gradCheck((x) => loss(h, x), ctx, { ...opts, what: "d step / d ctx" });
  await gradCheck((x) => loss(x), h, { ...opts, what: "d step / d h (no ctx)" });
  for (const name of ["r.fc1_w", "r.fc2_w", "r.ln_g", "r.gate_w", "r.gate_b"]) {
    await paramGradCheck(() => loss(h, ctx), p.get(name), `d step / d ${name}`);
  }
  assert.ok(p.names().every((n) => n.startsWith("r.")), `${p.names()}`);
  p.dispose();
});

Deno.test("memory gate: gradients match finite differences; ctx = 0 leaves h unchanged", async () => {
  await initBackend("cpu", { quiet: true });
  const h = states(10), ctx = states(11), probe = states(12);
  const w = tf.tensor2d(rand(2 * C * C, 13, 0.5), [2 * C, C]), b = tf.tensor1d(rand(C, 14, 0.5));
  const loss = (hv: tf.Tensor, cv: tf.Tensor, wv: tf.Tensor, bv: tf.Tensor) =>
    tf.sum(tf.mul(memoryGate(hv, cv, wv, bv), probe)) as tf.Scalar;
  const opts = { samples: 12, atol: 2e-3, rtol: 3e-2 };
  await gradCheck((x) => loss(x, ctx, w, b), h, { ...opts, what: "d gate / d h" });
  await gradCheck((x) => loss(h, x, w, b), ctx, { ...opts, what: "d gate / d ctx" });
  await gradCheck((x) => loss(h, ctx, x, b), w, { ...opts, what: "d gate / d w" });
  await gradCheck((x) => loss(h, ctx, w, x), b, { ...opts, what: "d gate / d b" });
  assert.deepEqual(await memoryGate(h, tf.zerosLike(h), w, b).data(), await h.data());
  // The step with a zero context equals the step without one.
  const p = new ParamSet(4);
  const core = new RefinementCore(p, refinementConfig({ dim: C, initStd: 0.4 }));
  assertClose(await core.step(h, tf.zerosLike(h)).data(), await core.step(h).data(), 0, 0, "step(h, 0) vs step(h)");
  p.dispose();
});

Deno.test("refinement: converges at once when the block is zeroed; never exceeds maxRefinementSteps; history matches steps", async () => {
  await initBackend("cpu", { quiet: true });
  const p = new ParamSet(5);
  const core = new RefinementCore(p, refinementConfig({ dim: C, initStd: 0.5, maxRefinementSteps: 5, convergenceThreshold: 1e-3 }));
  const h0 = states(20), ctx = states(21);
  // A lively block does not converge: it stops at the maximum.
  const busy = tf.tidy(() => core.refine(h0, { ctx, keepStates: true }));
  assert.equal(busy.steps, 5);
  assert.equal(busy.stopReason, "maxSteps");
  assert.equal(busy.history.surprise.shape[0], busy.steps);
  assert.equal(busy.history.states!.length, busy.steps);
  assert.deepEqual(await busy.history.states!.at(-1)!.data(), await busy.output.data());
  const s = await busy.history.surprise.data();
  assert.ok(s.every((v) => v > 1e-3), `surprise ${s}`);
  // The first surprise is the relative change of the first step, by hand.
  const prev = h0.dataSync(), next = tf.tidy(() => core.step(h0, ctx)).dataSync();
  const c = h0.shape[h0.shape.length - 1];
  let acc = 0;
  for (let r = 0; r < prev.length / c; r++) {
    let dn = 0, pn = 0;
    for (let j = r * c; j < (r + 1) * c; j++) {
      dn += (next[j] - prev[j]) ** 2;
      pn += prev[j] ** 2;
    }
    acc += Math.sqrt(dn) / (Math.sqrt(pn) + 1e-6);
  }
  assertClose([s[0]], [acc / (prev.length / c)], 1e-6, 1e-4, "surprise[0]");
  // Zeroed output weights make the block the identity: surprise 0, stop after one step.
  p.get("refine.fc2_w").assign(tf.zeros(p.get("refine.fc2_w").shape));
  p.get("refine.fc2_b").assign(tf.zeros(p.get("refine.fc2_b").shape));
  const still = tf.tidy(() => core.refine(h0, { ctx }));
  assert.equal(still.steps, 1);
  assert.equal(still.stopReason, "converged");
  assert.equal(still.history.surprise.shape[0], 1);
  assert.equal(still.history.states, undefined);
  assertClose(await still.output.data(), await h0.data(), 1e-6, 0, "fixed point");
  // Nearly zero (contractive updates): surprise falls under the threshold within the budget.
  p.get("refine.fc2_w").assign(tf.mul(tf.ones(p.get("refine.fc2_w").shape), 1e-5));
  const near = tf.tidy(() => core.refine(h0, { ctx }));
  assert.equal(near.stopReason, "converged");
  assert.ok(near.steps >= 1 && near.steps <= 5);
  // Threshold 0 turns convergence off: exactly maxRefinementSteps, and the hook is never asked.
  const off = new RefinementCore(new ParamSet(5), refinementConfig({ dim: C, maxRefinementSteps: 3, convergenceThreshold: 0 }));
  let asked = 0;
  const r = tf.tidy(() => off.refine(h0, { converged: () => (asked++, true) }));
  assert.equal(r.steps, 3);
  assert.equal(asked, 0);
  assert.equal(r.history.surprise.shape[0], 3);
  off.params.dispose();
  p.dispose();
});

Deno.test("refinement with ACT: halting stops the loop; weights sum to 1 per position; convergence still wins", async () => {
  await initBackend("cpu", { quiet: true });
  const h0 = states(30), ctx = states(31);
  const make = (haltBiasInit: number, seed = 6) =>
    new RefinementCore(
      new ParamSet(seed),
      refinementConfig({ dim: C, initStd: 0.5, maxRefinementSteps: 6, halting: "act", act: actConfig({ haltBiasInit }) }),
    );
  const quick = make(10), slow = make(-10), mid = make(0);
  const q = tf.tidy(() => quick.refine(h0, { ctx }));
  assert.equal(q.steps, 1);
  assert.equal(q.stopReason, "halted");
  assert.equal(q.history.surprise.shape[0], 1);
  const s = tf.tidy(() => slow.refine(h0, { ctx }));
  assert.equal(s.steps, 6);
  assert.equal(s.stopReason, "maxSteps");
  const m = tf.tidy(() => mid.refine(h0, { ctx }));
  assert.ok(m.steps > 1 && m.steps < 6, `steps ${m.steps}`);
  assert.equal(m.history.surprise.shape[0], m.steps);
  assert.deepEqual(m.act!.steps.shape, [B, T]);
  for (const r of [q, s, m]) {
    assert.equal(r.act!.stepsRun, r.steps);
    const sums = await tf.sum(r.act!.weights, 0).data();
    assertClose(sums, new Float32Array(B * T).fill(1), 1e-5, 0, "ACT weight sums");
  }
  // A zeroed block converges after one step, before ACT would halt; the weights stay a distribution.
  slow.params.get("refine.fc2_w").assign(tf.zeros(slow.params.get("refine.fc2_w").shape));
  const c = tf.tidy(() => slow.refine(h0, { ctx }));
  assert.equal(c.steps, 1);
  assert.equal(c.stopReason, "converged");
  assertClose(await tf.sum(c.act!.weights, 0).data(), new Float32Array(B * T).fill(1), 1e-5, 0, "weights after convergence");
  [quick, slow, mid].forEach((core) => core.params.dispose());
});
