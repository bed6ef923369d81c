/** HRRM: gradients through the carry, detaching, segments, Q-halting, the planner and memory variants, training. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { assertClose, gradCheck } from "../testing/gradcheck.ts";
import { DEFAULT_TRAIN, train } from "../train/trainer.ts";
import { Rng } from "../util/rng.ts";
import { type HaltRule, haltTest, Hrrm, type HrrmConfig, hrrmConfig, tokenMlp } from "./hrrm.ts";
import { stopGradient } from "../nn/grad.ts";
import { join } from "node:path";
import { loadModel, saveModel } from "./io.ts";

/** Tiny shapes for gradient checks: B=2, T=3, C=8. */
const TINY: Partial<HrrmConfig> = { vocabSize: 5, maxSeqLen: 4, dModel: 8, nHeads: 2, mlpRatio: 2 };
/** High-level blocks at TINY (the default): a three-level model adds as many strategic blocks of 6 tensors each. */
const TINY_HIGH_LAYERS = 1;

function ids(b: number, t: number, v: number, seed: number): tf.Tensor2D {
  const rng = new Rng(seed);
  return tf.tensor2d(Array.from({ length: b * t }, () => rng.int(v)), [b, t], "int32");
}

function randn(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(new Rng(seed).normals(shape.reduce((a, b) => a * b, 1)), shape);
}

/** Cross-entropy of one segment's logits against fixed targets. */
function segLoss(m: Hrrm, x: tf.Tensor2D, y: tf.Tensor2D, zH: tf.Tensor, zL: tf.Tensor): tf.Scalar {
  const o = m.segment(x, { zH: zH as tf.Tensor3D, zL: zL as tf.Tensor3D });
  return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(y, [-1]), m.cfg.vocabSize), tf.reshape(o.logits, [-1, m.cfg.vocabSize]));
}

Deno.test("gradient check through the carried state within a segment (full BPTT, every variant)", async () => {
  await initBackend("cpu", { quiet: true });
  for (const variant of ["reasoner", "planner", "memory"] as const) {
    const m = new Hrrm(hrrmConfig({ ...TINY, variant, oneStepGrad: false, nHigh: 2, tLow: 2 }), 3);
    const x = ids(2, 3, 5, 1), y = ids(2, 3, 5, 2);
    const zH = randn([2, 3, 8], 4), zL = randn([2, 3, 8], 5);
    await gradCheck((z) => segLoss(m, x, y, z, zL), zH, { what: `${variant} dL/dzH`, samples: 12, atol: 2e-3, rtol: 5e-2 });
    await gradCheck((z) => segLoss(m, x, y, zH, z), zL, { what: `${variant} dL/dzL`, samples: 12, atol: 2e-3, rtol: 5e-2 });
    const g = tf.grad((z: tf.Tensor) => segLoss(m, x, y, z, zL))(zH);
    assert.ok((await tf.max(tf.abs(g)).data())[0] > 1e-4, `${variant}: gradient reaches the carry`);
    m.dispose();
  }
});

Deno.test("one-step gradient: exact for one update pair; otherwise zero to the carry but every parameter learns", async () => {
  await initBackend("cpu", { quiet: true });
  const x = ids(2, 3, 5, 1), y = ids(2, 3, 5, 2);
  const zH = randn([2, 3, 8], 4), zL = randn([2, 3, 8], 5);
  const one = new Hrrm(hrrmConfig({ ...TINY, nHigh: 1, tLow: 1, oneStepGrad: true }), 3);
  await gradCheck((z) => segLoss(one, x, y, z, zL), zH, { what: "1x1 dL/dzH", samples: 12, atol: 2e-3, rtol: 5e-2 });
  for (const variant of ["reasoner", "planner", "memory"] as const) {
    const m = new Hrrm(hrrmConfig({ ...TINY, variant, nHigh: 2, tLow: 2, oneStepGrad: true }), 3);
    const g = tf.grad((z: tf.Tensor) => segLoss(m, x, y, z, zL))(zH);
    assert.equal((await tf.max(tf.abs(g)).data())[0], 0, `${variant}: one-step gradient to the incoming carry`);
    const { grads } = tf.variableGrads(() => m.loss(x, y));
    assert.deepEqual(Object.keys(grads).length, m.params.vars.size, `${variant}: every parameter gets a gradient`);
    for (const [name, v] of m.params.vars) {
      const n = (await tf.max(tf.abs(grads[v.name])).data())[0];
      assert.ok(n > 0 && Number.isFinite(n), `${variant}: gradient of ${name} is ${n}`);
    }
    m.dispose();
  }
  one.dispose();
});

Deno.test("stopGradient between segments: the second segment's loss depends on, but sends zero gradient to, the first's carry", async () => {
  await initBackend("cpu", { quiet: true });
  const m = new Hrrm(hrrmConfig({ ...TINY, oneStepGrad: false }), 3);
  const x = ids(2, 3, 5, 1), y = ids(2, 3, 5, 2);
  const zL = randn([2, 3, 8], 5);
  const second = (zH: tf.Tensor) => {
    const o = m.segment(x, { zH: zH as tf.Tensor3D, zL: zL as tf.Tensor3D });
    return segLoss(m, x, y, stopGradient(o.carry.zH), stopGradient(o.carry.zL));
  };
  const zH = randn([2, 3, 8], 4);
  const g = tf.grad(second)(zH);
  assert.equal((await tf.max(tf.abs(g)).data())[0], 0);
  const moved = tf.add(zH, randn([2, 3, 8], 9));
  const [a, b] = [(await second(zH).data())[0], (await second(moved).data())[0]];
  assert.ok(Math.abs(a - b) > 1e-4, `loss ${a} vs ${b}: the detached carry still carries the value`);
  m.dispose();
});

Deno.test("carried state changes the output across segments (no repeated identical passes)", async () => {
  await initBackend("cpu", { quiet: true });
  for (const variant of ["reasoner", "planner", "memory"] as const) {
    const m = new Hrrm(hrrmConfig({ ...TINY, variant }), 11);
    const x = ids(2, 3, 5, 1);
    const c0 = m.initialCarry(2, 3);
    const s1 = m.segment(x, c0);
    const s2 = m.segment(x, { zH: stopGradient(s1.carry.zH), zL: stopGradient(s1.carry.zL) });
    const again = m.segment(x, c0);
    const diff = (await tf.max(tf.abs(tf.sub(s1.logits, s2.logits))).data())[0];
    assert.ok(diff > 1e-3, `${variant}: segment 2 logits differ from segment 1 by ${diff}`);
    assertClose(await again.logits.data(), await s1.logits.data(), 0, 0, `${variant}: same carry, same logits`);
    m.dispose();
  }
});

Deno.test("Q-halting: halt at the first Q_halt > Q_continue, never past maxSegments", async () => {
  await initBackend("cpu", { quiet: true });
  const m = new Hrrm(hrrmConfig({ ...TINY, maxSegments: 5 }), 5);
  const x = ids(8, 3, 5, 7);
  const check = (r: Awaited<ReturnType<Hrrm["infer"]>>, max: number) => {
    for (let i = 0; i < 8; i++) {
      const first = r.qHalt.findIndex((h, s) => h[i] > r.qContinue[s][i]);
      assert.equal(r.segments[i], first === -1 ? max : Math.min(first + 1, max), `sequence ${i}`);
      assert.ok(r.segments[i] >= 1 && r.segments[i] <= max);
    }
    assert.equal(r.segmentsRun, Math.max(...r.segments));
    assert.ok(r.segmentsRun <= max);
    assert.deepEqual(r.logits.shape, [8, 3, 5]);
  };
  // At init both Q logits are -5: nothing halts early.
  let r = await m.infer(x);
  assert.deepEqual(r.segments, new Array(8).fill(5));
  check(r, 5);
  // Random Q weights: sequences halt at different segments.
  // Random Q weights, the halt bias set so that about half the batch halts after segment 1.
  m.params.get("q_w").assign(tf.mul(randn([8, 2], 21), 3));
  m.params.get("q_b").assign(tf.tensor1d([0, 0]));
  const o = m.segment(x, m.initialCarry(8, 3));
  const d = Array.from(await tf.sub(o.qHalt, o.qContinue).data()).sort((a, b) => a - b);
  m.params.get("q_b").assign(tf.tensor1d([-(d[3] + d[4]) / 2, 0]));
  const seen = new Set<number>();
  for (const max of [5, 3, 1]) {
    r = await m.infer(x, { maxSegments: max });
    check(r, max);
    r.segments.forEach((n) => seen.add(n));
  }
  assert.ok(seen.size >= 2, `segments seen ${[...seen]}`);
  // Halting wins everywhere: one segment each.
  m.params.get("q_w").assign(tf.zeros([8, 2]));
  m.params.get("q_b").assign(tf.tensor1d([5, -5]));
  r = await m.infer(x);
  assert.deepEqual(r.segments, new Array(8).fill(1));
  // The halted logits are those of the halting segment.
  assertClose(await r.logits.data(), await m.segment(x, m.initialCarry(8, 3)).logits.data(), 1e-5);
  // halt: false ignores the Q head and runs every segment.
  r = await m.infer(x, { halt: false });
  assert.deepEqual(r.segments, new Array(8).fill(5));
  m.dispose();
});

Deno.test("halting rules: 'confident' halts at the first Q_halt > 0 whatever Q_continue says; 'compare' at Q_halt > Q_continue", async () => {
  await initBackend("cpu", { quiet: true });
  const m = new Hrrm(hrrmConfig({ ...TINY, maxSegments: 5 }), 5);
  const x = ids(8, 3, 5, 7);
  // Q_halt below 0 but above Q_continue: HRM's rule stops after one segment, TRM's runs to the end.
  m.params.get("q_w").assign(tf.zeros([8, 2]));
  m.params.get("q_b").assign(tf.tensor1d([-1, -3]));
  assert.deepEqual((await m.infer(x, { rule: "compare" })).segments, new Array(8).fill(1));
  assert.deepEqual((await m.infer(x, { rule: "confident" })).segments, new Array(8).fill(5));
  // Q_halt above 0 but below Q_continue: the other way round.
  m.params.get("q_b").assign(tf.tensor1d([1, 3]));
  assert.deepEqual((await m.infer(x, { rule: "compare" })).segments, new Array(8).fill(5));
  assert.deepEqual((await m.infer(x, { rule: "confident" })).segments, new Array(8).fill(1));
  // Random Q weights: each sequence stops at the first segment whose Q_halt is positive.
  m.params.get("q_w").assign(tf.mul(randn([8, 2], 22), 3));
  m.params.get("q_b").assign(tf.tensor1d([0, 0]));
  const o = m.segment(x, m.initialCarry(8, 3));
  const h = Array.from(await o.qHalt.data()).sort((a, b) => a - b);
  m.params.get("q_b").assign(tf.tensor1d([-(h[3] + h[4]) / 2, 0])); // about half the batch positive after segment 1
  const all = await m.infer(x, { halt: false });
  const r = await m.infer(x, { rule: "confident" });
  for (let i = 0; i < 8; i++) {
    const first = all.qHalt.findIndex((q) => q[i] > 0);
    assert.equal(r.segments[i], first === -1 ? 5 : first + 1, `sequence ${i}`);
  }
  assert.ok(new Set(r.segments).size >= 2, `segments ${r.segments}`);
  assert.throws(() => haltTest("never" as HaltRule), /hrrm: halt rule 'never': expected one of compare, confident/);
  m.dispose();
});

Deno.test("grid2d positions: a row embedding plus a column embedding, row-major; other lengths are refused", async () => {
  await initBackend("cpu", { quiet: true });
  const m = new Hrrm(hrrmConfig({ ...TINY, maxSeqLen: 9, positions: "grid2d", gridSide: 3 }), 2);
  assert.ok(!m.params.has("pos"));
  const table = await m.positionTable(9).array();
  const rows = await m.params.get("pos_row").array() as number[][], cols = await m.params.get("pos_col").array() as number[][];
  for (let k = 0; k < 9; k++) assertClose(table[k], rows[Math.floor(k / 3)].map((v, c) => v + cols[k % 3][c]), 1e-6);
  assert.throws(() => m.embed(ids(2, 4, 5, 1)), /grid2d positions need 9 tokens \(a 3x3 grid\), got 4/);
  assert.throws(() => hrrmConfig({ ...TINY, maxSeqLen: 8, positions: "grid2d", gridSide: 3 }), /hrrm.gridSide = 3/);
  m.dispose();
});

Deno.test("mlp mixer: an MLP across the tokens, equal to a host reference; gradients check; fixed length only", async () => {
  await initBackend("cpu", { quiet: true });
  const [B, T, C, F] = [2, 4, 3, 5];
  const x = randn([B, T, C], 1), w1 = randn([T, F], 2), w2 = randn([F, T], 3);
  const got = await tokenMlp(x as tf.Tensor3D, w1, w2).array();
  const xs = await x.array() as number[][][], a = await w1.array() as number[][], b = await w2.array() as number[][];
  const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  for (let n = 0; n < B; n++) {
    for (let c = 0; c < C; c++) {
      const hid = Array.from({ length: F }, (_, f) => gelu(xs[n].reduce((s, row, t) => s + row[c] * a[t][f], 0)));
      for (let t = 0; t < T; t++) {
        assertClose([got[n][t][c]], [hid.reduce((s, h, f) => s + h * b[f][t], 0)], 1e-4, 1e-4, `out[${n}][${t}][${c}]`);
      }
    }
  }
  // Through the model: full BPTT gradients to the carry, and token 0's logits move when only token 3 changes.
  const m = new Hrrm(hrrmConfig({ ...TINY, mixer: "mlp", oneStepGrad: false }), 3);
  assert.ok(m.params.has("L0.mix1_w") && !m.params.has("L0.qkv_w"));
  const xi = ids(2, 4, 5, 1), y = ids(2, 4, 5, 2);
  const zH = randn([2, 4, 8], 4), zL = randn([2, 4, 8], 5);
  await gradCheck((z) => segLoss(m, xi, y, z, zL), zH, { what: "mlp mixer dL/dzH", samples: 12, atol: 2e-3, rtol: 5e-2 });
  const other = tf.concat([tf.slice(xi, [0, 0], [2, 3]), tf.fill([2, 1], 4, "int32")], 1) as tf.Tensor2D;
  const first = (t: tf.Tensor2D) => tf.slice(m.segment(t, m.initialCarry(2, 4)).logits, [0, 0, 0], [2, 1, 5]).data();
  const l0 = await first(xi), l1 = await first(other);
  assert.ok(l0.some((v, i) => Math.abs(v - l1[i]) > 1e-4), "token 0 reads token 3");
  assert.throws(() => m.segment(ids(2, 3, 5, 1), m.initialCarry(2, 3)), /mlp mixer needs sequences of exactly 4 tokens, got 3/);
  assert.throws(() => hrrmConfig({ mixer: "mlp", positions: "cells", gridSide: 4 }), /hrrm.mixer = mlp/);
  assert.throws(() => hrrmConfig({ mixer: "conv" as HrrmConfig["mixer"] }), /hrrm.mixer = conv/);
  m.dispose();
});

Deno.test("three levels: the strategic state is carried, read by the high level, and trained; two-level weights are unchanged", async () => {
  await initBackend("cpu", { quiet: true });
  const x = ids(2, 3, 5, 1), y = ids(2, 3, 5, 2);
  const m = new Hrrm(hrrmConfig({ ...TINY, levels: 3, oneStepGrad: false }), 3);
  const c0 = m.initialCarry(2, 3);
  assert.ok(c0.zS, "the initial carry has a strategic state");
  // Full BPTT: the loss's gradient to the carried strategic state matches finite differences.
  const zS = randn([2, 3, 8], 6) as tf.Tensor3D;
  const lossS = (z: tf.Tensor): tf.Scalar => {
    const o = m.segment(x, { zH: c0.zH, zL: c0.zL, zS: z as tf.Tensor3D });
    return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(y, [-1]), 5), tf.reshape(o.logits, [-1, 5])) as tf.Scalar;
  };
  await gradCheck(lossS, zS, { what: "dL/dzS", samples: 12, atol: 2e-3, rtol: 5e-2 });
  // The segment moves z_S and hands it on; the logits depend on it.
  const o = m.segment(x, { ...c0, zS });
  assert.ok((await tf.max(tf.abs(tf.sub(o.carry.zS!, zS))).data())[0] > 1e-3, "z_S is updated");
  const other = m.segment(x, { ...c0, zS: tf.mul(zS, -1) as tf.Tensor3D });
  assert.ok((await tf.max(tf.abs(tf.sub(o.logits, other.logits))).data())[0] > 1e-4, "the logits read z_S");
  assert.throws(() => m.segment(x, { zH: c0.zH, zL: c0.zL }), /carry needs zS/);
  // With the one-step gradient, deep supervision still trains the strategic blocks.
  const one = new Hrrm(hrrmConfig({ ...TINY, levels: 3, oneStepGrad: true }), 3);
  const { grads } = tf.variableGrads(() => one.loss(x, y));
  for (const [name, v] of one.params.vars) {
    if (!name.startsWith("S")) continue;
    const n = (await tf.max(tf.abs(grads[v.name])).data())[0];
    assert.ok(n > 0 && Number.isFinite(n), `gradient of ${name} is ${n}`);
  }
  // Inference carries it too; a two-level model of the same seed has the same weights, less S's.
  const r = await one.infer(x, { halt: false });
  assert.deepEqual(r.logits.shape, [2, 3, 5]);
  const two = new Hrrm(hrrmConfig({ ...TINY, oneStepGrad: true }), 3);
  assert.equal(one.params.vars.size, two.params.vars.size + 6 * TINY_HIGH_LAYERS);
  for (const [name, v] of two.params.vars) assertClose(await v.data(), await one.params.get(name).data(), 0, 0, name);
  assert.throws(() => hrrmConfig({ levels: 4 as HrrmConfig["levels"] }), /hrrm.levels = 4/);
  for (const h of [m, one, two]) h.dispose();
});

Deno.test("planner: actions [nHigh, B, T] per segment, and the plan embedding changes the low-level input", async () => {
  await initBackend("cpu", { quiet: true });
  for (const planMode of ["soft", "straight-through"] as const) {
    for (const oneStepGrad of [true, false]) {
      const m = new Hrrm(hrrmConfig({ ...TINY, variant: "planner", planActions: 3, nHigh: 3, tLow: 2, planMode, oneStepGrad }), 2);
      const x = ids(2, 3, 5, 1);
      const o = m.segment(x, m.initialCarry(2, 3));
      assert.deepEqual(o.actions!.shape, [3, 2, 3]);
      assert.equal(o.actions!.dtype, "int32");
      const a = await o.actions!.data();
      assert.ok(a.every((v) => v >= 0 && v < 3));
      // The first cycle's action is the controller's argmax on the initial z_H.
      const c = m.initialCarry(2, 3);
      const p = m.plan(c.zH);
      assert.deepEqual(Array.from(a.slice(0, 6)), Array.from(await p.actions.data()));
      // L input with the plan = without it + (softmax or one-hot) @ plan_emb.
      const emb = m.embed(x);
      const diff = tf.sub(m.lowInput(c.zL, c.zH, emb, p.emb), m.lowInput(c.zL, c.zH, emb));
      const w = planMode === "soft" ? tf.softmax(p.logits) : tf.oneHot(p.actions, 3);
      const expected = tf.matMul(tf.reshape(w, [-1, 3]), m.params.get("plan_emb"));
      assertClose(await diff.data(), await expected.data(), 1e-5, 0, `${planMode} plan term`);
      assert.ok((await tf.max(tf.abs(diff)).data())[0] > 1e-2);
      // And through the whole segment: a different plan table, different logits.
      const before = await o.logits.data();
      m.params.get("plan_emb").assign(tf.mul(m.params.get("plan_emb"), -1));
      const after = await m.segment(x, m.initialCarry(2, 3)).logits.data();
      assert.ok(before.some((v, i) => Math.abs(v - after[i]) > 1e-4), "plan embedding reaches the logits");
      m.dispose();
    }
  }
  const r = new Hrrm(hrrmConfig(TINY), 2);
  assert.equal(r.segment(ids(2, 3, 5, 1), r.initialCarry(2, 3)).actions, undefined);
  assert.throws(() => r.plan(r.initialCarry(2, 3).zH), /planner/);
  r.dispose();
});

Deno.test("memory: the gated slot read joins the high-level input", async () => {
  await initBackend("cpu", { quiet: true });
  const m = new Hrrm(hrrmConfig({ ...TINY, variant: "memory", memorySlots: 4 }), 2);
  const c = m.initialCarry(2, 3);
  const diff = tf.sub(m.highInput(c.zH, c.zL), tf.add(c.zH, c.zL));
  assertClose(await diff.data(), await m.memoryRead(c.zH).data(), 1e-6);
  assert.ok((await tf.max(tf.abs(diff)).data())[0] > 1e-2);
  m.dispose();
});

/** `n` random (input, solution) pairs of t tokens below v, as setEpisodes takes them. */
function randomEpisodes(seed: number, n: number, t: number, v: number) {
  const rng = new Rng(seed);
  const draw = () => Int32Array.from({ length: n * t }, () => rng.int(v));
  return { inputs: draw(), solutions: draw() };
}

Deno.test("external memory: the read equals a host reference, its gradient checks, and it starts unread", async () => {
  await initBackend("cpu", { quiet: true });
  const [n, t, C, V] = [5, 4, 8, 5];
  const m = new Hrrm(hrrmConfig({ ...TINY, episodes: n, oneStepGrad: false }), 3);
  const plain = new Hrrm(hrrmConfig({ ...TINY, oneStepGrad: false }), 3);
  const x = ids(2, t, V, 1);
  assert.throws(() => m.segment(x, m.initialCarry(2, t)), /hrrm.episodes = 5: fill the memory with setEpisodes\(\)/);
  const ep = randomEpisodes(9, n, t, V);
  m.setEpisodes(ep.inputs, ep.solutions, n);
  // Wo starts at 0: the same answers as the model without memory (its weights are drawn last).
  assertClose(await m.segment(x, m.initialCarry(2, t)).logits.data(), await plain.segment(x, plain.initialCarry(2, t)).logits.data(), 1e-6);
  m.params.get("epi_o_w").assign(randn([C, C], 11));
  // Host reference: keys from pooled embeddings, softmax over the stored puzzles, solutions' embeddings weighted per cell.
  const tok = await m.params.get("tok").array() as number[][], pos = await m.positionTable(t).array();
  const wk = await m.params.get("epi_k_w").array() as number[][], wo = await m.params.get("epi_o_w").array() as number[][];
  const emb = (row: ArrayLike<number>) => Array.from({ length: t }, (_, j) => tok[row[j]].map((v, c) => v + pos[j][c]));
  const key = (e: number[][]) => {
    const mean = Array.from({ length: C }, (_, c) => e.reduce((s, r, j) => s + r[c] * pos[j][c], 0) / t);
    return Array.from({ length: C }, (_, k) => mean.reduce((s, v, c) => s + v * wk[c][k], 0));
  };
  const keys = Array.from({ length: n }, (_, i) => key(emb(ep.inputs.subarray(i * t, (i + 1) * t))));
  const xr = await x.array();
  const got = await m.episodeRead(m.embed(x)).array();
  for (let b = 0; b < 2; b++) {
    const q = key(emb(xr[b]));
    const logit = keys.map((k) => k.reduce((s, v, c) => s + v * q[c], 0) / Math.sqrt(C));
    const mx = Math.max(...logit), w = logit.map((l) => Math.exp(l - mx)), z = w.reduce((a, c) => a + c, 0);
    for (let j = 0; j < t; j++) {
      const read = Array.from({ length: C }, (_, c) => w.reduce((s, wi, i) => s + (wi / z) * tok[ep.solutions[i * t + j]][c], 0));
      const want = Array.from({ length: C }, (_, k) => read.reduce((s, v, c) => s + v * wo[c][k], 0));
      assertClose(got[b][j], want, 1e-4, 1e-4, `read[${b}][${j}]`);
    }
  }
  // Gradient of the read through the query, by finite differences.
  const x0 = m.embed(x);
  await gradCheck((e) => tf.sum(tf.square(m.episodeRead(e as tf.Tensor3D))) as tf.Scalar, x0, {
    what: "memory read d/dx",
    samples: 12,
    atol: 2e-3,
    rtol: 5e-2,
  });
  // The logits now read what the memory holds: another stored solution changes them.
  const before = await m.segment(x, m.initialCarry(2, t)).logits.data();
  const changed = Int32Array.from(ep.solutions, (v) => (v + 1) % V);
  m.setEpisodes(ep.inputs, changed, n);
  const after = await m.segment(x, m.initialCarry(2, t)).logits.data();
  assert.ok(before.some((v, i) => Math.abs(v - after[i]) > 1e-4), "the logits depend on the stored solutions");
  assert.throws(() => m.setEpisodes(ep.inputs, ep.solutions, 4), /hrrm.episodes = 5: setEpisodes got 4 puzzles/);
  assert.throws(() => plain.setEpisodes(ep.inputs, ep.solutions, n), /needs hrrm.episodes > 0/);
  assert.throws(() => hrrmConfig({ episodes: 2, positions: "cells", gridSide: 4 }), /hrrm.episodes needs sequences of a fixed length/);
  m.dispose();
  plain.dispose();
});

Deno.test("external memory: trained on lookups of a fresh memory every step, it answers from the memory; without it, chance", async () => {
  await initBackend("wasm", { quiet: true });
  // Every batch: 16 new random (input, solution) pairs are stored, and the batch asks for 16 of their solutions by input.
  // Nothing can be memorized across steps: only reading the memory answers.
  const [n, t, V] = [16, 4, 6];
  const lookups = (m: Hrrm, seed: number) => {
    const ep = randomEpisodes(seed, n, t, V);
    if (m.cfg.episodes) m.setEpisodes(ep.inputs, ep.solutions, n);
    return { x: tf.tensor2d(ep.inputs, [n, t], "int32"), y: tf.tensor2d(ep.solutions, [n, t], "int32") };
  };
  const accuracy = async (m: Hrrm) => {
    let right = 0;
    for (let k = 0; k < 4; k++) {
      const b = lookups(m, 900_000 + k);
      const pred = await tf.argMax((await m.infer(b.x)).logits, -1).data(), want = await b.y.data();
      right += pred.filter((p, i) => p === want[i]).length;
    }
    return right / (4 * n * t);
  };
  const cfg = { vocabSize: V, maxSeqLen: t, dModel: 32, nHeads: 4, trainSegments: 1, maxSegments: 1 };
  const acc: number[] = [];
  for (const episodes of [n, 0]) {
    const m = new Hrrm(hrrmConfig({ ...cfg, episodes }), 1);
    await train(
      { params: m.params, batch: (s) => lookups(m, 7919 * s + 1), loss: (b: { x: tf.Tensor2D; y: tf.Tensor2D }) => m.loss(b.x, b.y) },
      { ...DEFAULT_TRAIN, steps: 300, lr: 1e-2, minLr: 1e-3, warmupSteps: 5 },
      { quiet: true },
    );
    acc.push(await accuracy(m));
    m.dispose();
  }
  console.log(
    `held-out lookups: token accuracy ${acc[0].toFixed(3)} with the memory, ${acc[1].toFixed(3)} without (chance ${(1 / V).toFixed(3)})`,
  );
  assert.ok(acc[0] > 0.9, `with the memory: ${acc[0]}`);
  assert.ok(acc[1] < 0.3, `without: ${acc[1]}`);
});

Deno.test("config: factory defaults and named errors", () => {
  assert.equal(hrrmConfig().variant, "reasoner");
  assert.throws(() => hrrmConfig({ dModel: 10, nHeads: 4 }), /dModel/);
  assert.throws(() => hrrmConfig({ trainSegments: 5, maxSegments: 4 }), /trainSegments/);
  assert.throws(() => hrrmConfig({ variant: "oracle" as HrrmConfig["variant"] }), /variant/);
  assert.throws(() => hrrmConfig({ tLow: 0 }), /tLow/);
});

/** Reverse sequences of t digits 0..v-1. */
function reverseBatch(seed: number, rows: number, t: number, v: number) {
  const rng = new Rng(seed);
  const x: number[] = [], y: number[] = [];
  for (let r = 0; r < rows; r++) {
    const d = Array.from({ length: t }, () => rng.int(v));
    x.push(...d);
    y.push(...d.reverse());
  }
  return { x: tf.tensor2d(x, [rows, t], "int32"), y: tf.tensor2d(y, [rows, t], "int32") };
}

/** Trains `variant` on reversal through the trainer; checks the loss falls and held-out inference is right. */
async function trainReverse(variant: HrrmConfig["variant"], mixer: HrrmConfig["mixer"] = "attention") {
  await initBackend("wasm", { quiet: true });
  const m = new Hrrm(hrrmConfig({ variant, mixer, vocabSize: 6, maxSeqLen: 4, dModel: 32, nHeads: 4, trainSegments: 2 }), 1);
  const t0 = performance.now();
  const res = await train(
    {
      params: m.params,
      batch: (s) => reverseBatch(7919 * s + 1, 16, 4, 6),
      loss: (b: { x: tf.Tensor2D; y: tf.Tensor2D }) => m.loss(b.x, b.y),
    },
    { ...DEFAULT_TRAIN, steps: 60, lr: 2e-2, minLr: 2e-3, warmupSteps: 5 },
    { quiet: true },
  );
  const secs = (performance.now() - t0) / 1000;
  const first = res.losses[0], last = (res.losses.at(-1)! + res.losses.at(-2)! + res.losses.at(-3)!) / 3;
  // Held-out batch through adaptive inference.
  const test = reverseBatch(424242, 64, 4, 6);
  const r = await m.infer(test.x);
  const pred = await tf.argMax(r.logits, -1).data(), want = await test.y.data();
  const acc = pred.filter((p, i) => p === want[i]).length / want.length;
  const meanSeg = r.segments.reduce((a, b) => a + b, 0) / r.segments.length;
  console.log(
    `hrrm ${variant} (${mixer}) reverse: loss ${first.toFixed(3)} -> ${last.toFixed(3)} in ${res.steps} steps, ${secs.toFixed(1)} s; ` +
      `held-out token accuracy ${acc.toFixed(3)}, mean segments ${meanSeg.toFixed(2)} (max ${m.cfg.maxSegments})`,
  );
  assert.ok(last < 0.7 * first, `loss ${first} -> ${last}`);
  assert.ok(acc > 0.5, `held-out token accuracy ${acc}`);
  m.dispose();
}

Deno.test("trainer: HRRM reasoner learns to reverse digit sequences (deep supervision + Q loss)", () => trainReverse("reasoner"));
Deno.test("trainer: HRRM planner learns to reverse digit sequences", () => trainReverse("planner"));
Deno.test("trainer: HRRM memory variant learns to reverse digit sequences", () => trainReverse("memory"));
Deno.test("trainer: HRRM with the mlp mixer learns to reverse digit sequences", () => trainReverse("reasoner", "mlp"));

Deno.test("a saved HRRM loads with the same answers (the fixed initial carry does not depend on the model's seed)", async () => {
  await initBackend("cpu", { quiet: true });
  const cfg = hrrmConfig({ ...TINY, maxSeqLen: 9, positions: "grid2d", gridSide: 3 });
  const m = new Hrrm(cfg, 17);
  const path = join(await Deno.makeTempDir(), "hrrm.safetensors");
  await saveModel(path, m, { key: "hrrm-reasoner", config: { ...cfg } });
  const { model } = await loadModel(path);
  const x = ids(4, 9, 5, 3);
  const [a, b] = [await m.infer(x, { halt: false }), await (model as Hrrm).infer(x, { halt: false })];
  assertClose(await a.logits.data(), await b.logits.data(), 1e-6);
  m.dispose();
  model.dispose();
});
