/** ACT and Q-learning halting: weights, ponder cost, gradients, compute saving, decisions, and a trained easy/hard split. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { crossEntropy, embedding, linear } from "../nn/layers.ts";
import { ParamSet } from "../nn/params.ts";
import { assertClose, gradCheck } from "../testing/gradcheck.ts";
import { DEFAULT_TRAIN, train } from "../train/trainer.ts";
import { Rng } from "../util/rng.ts";
import {
  type ActConfig,
  actConfig,
  actLoop,
  addHaltingUnit,
  alwaysContinue,
  type HaltingWeights,
  ponderLoss,
  qHaltConfig,
  qHaltLoop,
  qHaltLoss,
  qHaltTargets,
  type StepFn,
} from "./act.ts";

const rand = (n: number, seed: number, std = 1) => new Rng(seed).normals(n, std);

/** s' = tanh(s W): a step with a tiny dense recurrence. */
const tanhStep = (w: tf.Tensor): StepFn => (s) => tf.tanh(linear(s, w));

function haltUnit(c: number, seed: number, std: number, bias: number): HaltingWeights {
  return { w: tf.tensor2d(rand(c, seed, std), [c, 1]), b: tf.tensor1d([bias]) };
}

Deno.test("ACT: weights sum to 1 per row and per position; N and the loop never exceed maxSteps", async () => {
  await initBackend("cpu", { quiet: true });
  const C = 5;
  const W = tf.tensor2d(rand(C * C, 1, 0.8), [C, C]);
  for (const shape of [[6, C], [3, 4, C]]) {
    for (const [bias, maxSteps] of [[-1, 5], [0, 3], [-8, 4], [3, 6]]) {
      const cfg = actConfig({ maxSteps, eps: 0.01 });
      const s0 = tf.tensor(rand(shape.reduce((a, b) => a * b), 2 + maxSteps), shape);
      const r = tf.tidy(() => actLoop(s0, tanhStep(W), haltUnit(C, 3, 1, bias), cfg));
      const sums = await tf.sum(r.weights, 0).data();
      assertClose(sums, new Float32Array(sums.length).fill(1), 1e-5, 0, `weight sums ${shape} bias ${bias}`);
      const n = await r.steps.data();
      assert.ok(n.every((v) => v >= 1 && v <= maxSteps), `N ${n}`);
      assert.ok(r.stepsRun <= maxSteps && r.stepsRun === Math.max(...n), `stepsRun ${r.stepsRun}, N ${n}`);
      assert.deepEqual(r.weights.shape, [r.stepsRun, ...shape.slice(0, -1)]);
      assert.deepEqual(r.output.shape, shape);
    }
  }
});

Deno.test("ACT: halting probabilities, N, weights and ponder cost match a plain-TypeScript recomputation", async () => {
  await initBackend("cpu", { quiet: true });
  const [B, C, MAX, EPS] = [7, 4, 6, 0.05];
  const w = rand(C * C, 10, 0.9), hw = rand(C, 11, 1.2), hb = -0.8, s0 = rand(B * C, 12);
  const cfg = actConfig({ maxSteps: MAX, eps: EPS });
  const r = tf.tidy(() => actLoop(tf.tensor2d(s0, [B, C]), tanhStep(tf.tensor2d(w, [C, C])), haltUnit(C, 11, 1.2, hb), cfg));
  const [hs, ps, nOut, rOut, out] = await Promise.all([
    r.haltProbs.data(),
    r.weights.data(),
    r.steps.data(),
    r.remainder.data(),
    r.output.data(),
  ]);
  const S = r.stepsRun;
  let ponder = 0;
  const ns: number[] = [];
  for (let i = 0; i < B; i++) {
    let s = Array.from(s0.subarray(i * C, (i + 1) * C));
    let cum = 0, halted = false;
    const o = new Array(C).fill(0);
    for (let n = 1; n <= S; n++) {
      s = s.map((_, j) => Math.tanh(s.reduce((a, v, k) => a + v * w[k * C + j], 0)));
      const h = 1 / (1 + Math.exp(-(s.reduce((a, v, k) => a + v * hw[k], 0) + hb)));
      assertClose([hs[(n - 1) * B + i]], [h], 1e-5, 1e-5, `h row ${i} step ${n}`);
      let p = 0;
      if (!halted) {
        if (cum + h >= 1 - EPS || n === MAX) {
          halted = true;
          p = 1 - cum;
          ns.push(n);
          assert.equal(nOut[i], n, `N row ${i}`);
          assertClose([rOut[i]], [p], 1e-5, 0, `R row ${i}`);
          ponder += n + p;
        } else {
          p = h;
          cum += h;
        }
      }
      assertClose([ps[(n - 1) * B + i]], [p], 1e-5, 0, `p row ${i} step ${n}`);
      s.forEach((v, j) => (o[j] += p * v));
    }
    assert.ok(halted, `row ${i} halted within the steps run`);
    assertClose(out.subarray(i * C, (i + 1) * C), o, 1e-5, 1e-5, `output row ${i}`);
  }
  assert.equal(S, Math.max(...ns));
  assert.ok(new Set(ns).size > 1, `rows should halt at different steps: ${ns}`);
  assertClose(await r.ponderCost.data(), [ponder / B], 1e-5, 1e-5, "ponder cost");
  assertClose(await ponderLoss(r, { ...cfg, tau: 0.1 }).data(), [(0.1 * ponder) / B], 1e-5, 1e-5, "ponder loss");
});

Deno.test("ACT: gradients through the weighting, the halting unit and the steps match finite differences (N fixed)", async () => {
  await initBackend("cpu", { quiet: true });
  const [B, T, C] = [2, 3, 4];
  const cfg = actConfig({ maxSteps: 4, eps: 0.01 });
  const s0 = tf.tensor3d(rand(B * T * C, 20), [B, T, C]);
  const W = tf.tensor2d(rand(C * C, 21, 0.7), [C, C]);
  const halt = haltUnit(C, 22, 0.8, -0.6);
  const probe = tf.tensor3d(rand(B * T * C, 23), [B, T, C]);
  const baseN = tf.tidy(() => actLoop(s0, tanhStep(W), halt, cfg).steps.dataSync().slice());
  assert.ok(new Set(baseN).size > 1, `positions should halt at different steps: ${baseN}`);
  const loss = (s: tf.Tensor, w: tf.Tensor, h: HaltingWeights) => {
    const r = actLoop(s, tanhStep(w), h, cfg);
    assert.deepEqual(r.steps.dataSync(), baseN, "a finite-difference probe moved the discrete N");
    return tf.add(tf.sum(tf.mul(r.output, probe)), r.ponderCost) as tf.Scalar;
  };
  const opts = { samples: 12, atol: 2e-3, rtol: 3e-2 };
  await gradCheck((x) => loss(s0, W, { w: x, b: halt.b }), halt.w, { ...opts, what: "d/d halt_w" });
  await gradCheck((x) => loss(s0, W, { w: halt.w, b: x }), halt.b, { ...opts, what: "d/d halt_b" });
  await gradCheck((x) => loss(s0, x, halt), W, { ...opts, what: "d/d step W" });
  await gradCheck((x) => loss(x, W, halt), s0, { ...opts, what: "d/d state0" });
});

Deno.test("ACT saves compute: a large positive halting bias runs one step, a large negative one runs maxSteps", async () => {
  await initBackend("cpu", { quiet: true });
  const [B, C, MAX] = [4, 3, 7];
  const cfg: ActConfig = actConfig({ maxSteps: MAX });
  const W = tf.tensor2d(rand(C * C, 30, 0.5), [C, C]);
  const s0 = tf.tensor2d(rand(B * C, 31), [B, C]);
  const runCounting = (bias: number, shouldContinue?: (t: tf.Tensor, n: number) => boolean) => {
    let calls = 0;
    const step: StepFn = (s, n) => {
      calls++;
      return tf.add(tanhStep(W)(s, n), 0);
    };
    const r = tf.tidy(() => actLoop(s0, step, haltUnit(C, 32, 0.1, bias), cfg, { shouldContinue }));
    return { calls, r };
  };
  const fast = runCounting(10), slow = runCounting(-10);
  assert.equal(fast.calls, 1);
  assert.equal(fast.r.stepsRun, 1);
  assert.equal(slow.calls, MAX);
  assert.deepEqual(Array.from(await slow.r.steps.data()), new Array(B).fill(MAX));
  // Without the host read the loop runs to maxSteps, but halted rows contribute nothing more.
  const all = runCounting(10, alwaysContinue);
  assert.equal(all.calls, MAX);
  assertClose(await all.r.output.data(), await fast.r.output.data(), 1e-6, 0, "output");
  assertClose(await all.r.ponderCost.data(), await fast.r.ponderCost.data(), 1e-6, 0, "ponder");
  const w = await all.r.weights.data();
  assert.ok(w.slice(B).every((v) => v === 0), "weights after halting are 0");
  // The hook sees a [B] mask; stopping early halts the running rows with their remainders.
  const seen: number[][] = [];
  const early = runCounting(-10, (t, n) => {
    seen.push([...t.shape, n]);
    return n < 3;
  });
  assert.equal(early.calls, 3);
  assert.deepEqual(seen, [[B, 1], [B, 2], [B, 3]]);
  const sums = await tf.sum(early.r.weights, 0).data();
  assertClose(sums, new Float32Array(B).fill(1), 1e-5, 0, "weight sums after an early stop");
});

Deno.test("Q-halting: rows halt at the first step with Q_halt > Q_continue; exploration sets a minimum; targets and loss", async () => {
  await initBackend("cpu", { quiet: true });
  // State [B, 1] counts up by one per step; Q_halt = s, Q_continue = 3.5: halt once s >= 4.
  const q = { w: tf.tensor2d([[1, 0]]), b: tf.tensor1d([0, 3.5]) };
  const step: StepFn = (s) => tf.add(s, 1);
  const cfg = qHaltConfig({ maxSteps: 6 });
  const s0 = tf.tensor2d([[0], [2], [5], [-10]]);
  const r = tf.tidy(() => qHaltLoop(s0, step, q, cfg));
  assert.deepEqual(Array.from(await r.steps.data()), [4, 2, 1, 6]);
  assert.equal(r.stepsRun, 6);
  assert.deepEqual(Array.from(await r.output.data()), [4, 4, 6, -4]);
  // The decisions follow the Q values the loop reports.
  const [qh, qc, n] = [await r.qHalt.array(), await r.qContinue.array(), await r.steps.data()];
  for (let i = 0; i < 4; i++) {
    const first = qh.findIndex((row, k) => row[i] > qc[k][i]);
    assert.equal(n[i], first < 0 ? cfg.maxSteps : first + 1, `row ${i}`);
  }
  // Compute saving: without the slow row the loop stops after 4 steps.
  let calls = 0;
  const fewer = tf.tidy(() => qHaltLoop(tf.slice(s0, [0, 0], [3, 1]), (s) => (calls++, tf.add(s, 1)), q, cfg));
  assert.equal(fewer.stepsRun, 4);
  assert.equal(calls, 4);
  // Training with explore = 1: every row runs at least its random minimum in [2, maxSteps].
  const ex = tf.tidy(() => qHaltLoop(s0, step, q, { ...cfg, explore: 1 }, { training: true, rng: new Rng(5) }));
  const exN = await ex.steps.data();
  ex.minSteps.forEach((m, i) => {
    assert.ok(m >= 2 && m <= cfg.maxSteps && Number.isInteger(m), `min ${m}`);
    assert.equal(exN[i], Math.max(m, [4, 2, 1, 6][i]), `row ${i}`);
  });
  // Targets: halt = correct; continue = sigmoid(best next logit), Q_halt only when the next step is the last.
  const correct = tf.tensor2d(Array.from({ length: 6 * 4 }, (_, k) => k % 3 === 0 ? 1 : 0), [6, 4]);
  const t = tf.tidy(() => qHaltTargets(r, correct, cfg));
  const [tc, hm, cm] = [await t.continue.array(), await t.haltMask.array(), await t.continueMask.array()];
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  for (let k = 0; k < 6; k++) {
    for (let i = 0; i < 4; i++) {
      const want = k === 5 ? 0 : k + 2 === cfg.maxSteps ? sig(qh[k + 1][i]) : sig(Math.max(qh[k + 1][i], qc[k + 1][i]));
      assertClose([tc[k][i]], [want], 1e-6, 1e-5, `continue target ${k},${i}`);
      assert.equal(hm[k][i], k + 1 <= n[i] ? 1 : 0);
      assert.equal(cm[k][i], k + 1 <= n[i] && k < 5 ? 1 : 0);
    }
  }
  assert.deepEqual(await t.halt.array(), await correct.array());
  // The loss trains the Q head; the bootstrapped target carries no gradient.
  const g = tf.tidy(() =>
    tf.grads((w: tf.Tensor, b: tf.Tensor) => qHaltLoss(qHaltLoop(s0, step, { w, b }, cfg), correct, cfg))([q.w, q.b])
  );
  const gv = [...(await g[0].data()), ...(await g[1].data())];
  assert.ok(gv.every(Number.isFinite) && gv.some((v) => v !== 0), `grads ${gv}`);
  const l = tf.tidy(() => qHaltLoss(r, correct, cfg).dataSync()[0]);
  assert.ok(Number.isFinite(l) && l > 0);
});

Deno.test("ACT, trained: a batch of easy inputs runs fewer steps than a batch of hard ones", async () => {
  await initBackend("cpu", { quiet: true });
  // Step n reads token n of the input; the answer is the last payload token before the padding (0).
  // A payload of k tokens needs k steps to read and one more to see it ended.
  const [V, H, MAX, B, KMAX] = [4, 16, 6, 32, 4];
  const cfg = actConfig({ maxSteps: MAX, tau: 0.01, haltBiasInit: 0 });
  const p = new ParamSet(1);
  const emb = p.add("emb", [V, H], { kind: "normal", std: 0.5 }) as tf.Variable<tf.Rank.R2>;
  const ws = p.add("step_w", [H, H], { kind: "normal", std: 0.3 });
  const bs = p.add("step_b", [H], { kind: "const", value: 0 });
  const halt = addHaltingUnit(p, "act.", H, cfg);
  const ow = p.add("out_w", [H, V], { kind: "normal", std: 0.3 });
  const ob = p.add("out_b", [V], { kind: "const", value: 0 });
  const makeBatch = (rng: Rng, ks: number[]) => {
    const x: number[] = [], y: number[] = [];
    for (const k of ks) {
      for (let i = 0; i < MAX; i++) x.push(i < k ? 1 + rng.int(V - 1) : 0);
      y.push(x[x.length - MAX + k - 1]);
    }
    return { x: tf.tensor2d(x, [ks.length, MAX], "int32"), y: tf.tensor1d(y, "int32") };
  };
  const run = (x: tf.Tensor2D) => {
    const b = x.shape[0];
    const step: StepFn = (s, n) => {
      const tok = tf.reshape(tf.slice(x, [0, n - 1], [b, 1]), [b]); // [B]
      return tf.tanh(tf.add(linear(s, ws, bs), embedding(emb, tok))); // [B, H]
    };
    return actLoop(tf.zeros([b, H]), step, halt, cfg);
  };
  const measure = (k: number) =>
    tf.tidy(() => {
      const bt = makeBatch(new Rng(900 + k), new Array(B).fill(k));
      const r = run(bt.x);
      const acc = tf.mean(tf.cast(tf.equal(tf.argMax(linear(r.output, ow, ob), 1), bt.y), "float32"));
      return { meanN: tf.mean(r.steps).dataSync()[0], stepsRun: r.stepsRun, acc: acc.dataSync()[0] };
    });
  const [easy0, hard0] = [measure(1), measure(KMAX)];
  assert.ok(Math.abs(easy0.meanN - hard0.meanN) < 0.5, `untrained: N easy ${easy0.meanN} vs hard ${hard0.meanN}`);
  await train(
    {
      params: p,
      batch: (s) => {
        const rng = new Rng(s + 1);
        return makeBatch(rng, Array.from({ length: B }, () => 1 + rng.int(KMAX)));
      },
      loss: (bt) => {
        const r = run(bt.x);
        return tf.add(crossEntropy(linear(r.output, ow, ob) as tf.Tensor2D, bt.y), ponderLoss(r, cfg)) as tf.Scalar;
      },
    },
    { ...DEFAULT_TRAIN, steps: 300, lr: 1e-2, minLr: 1e-3, warmupSteps: 10, weightDecay: 0 },
    { quiet: true },
  );
  const [easy, hard] = [measure(1), measure(KMAX)];
  assert.ok(easy.acc >= 0.9 && hard.acc >= 0.9, `accuracy easy ${easy.acc}, hard ${hard.acc}`);
  assert.ok(easy.meanN + 1.5 < hard.meanN, `trained: mean N easy ${easy.meanN} vs hard ${hard.meanN}`);
  assert.ok(easy.stepsRun < hard.stepsRun, `steps run easy ${easy.stepsRun} vs hard ${hard.stepsRun}`);
  console.log(
    `  mean N: easy (k=1) ${easy.meanN.toFixed(2)}, hard (k=${KMAX}) ${hard.meanN.toFixed(2)}; untrained ${easy0.meanN} / ${hard0.meanN}`,
  );
  p.dispose();
});
