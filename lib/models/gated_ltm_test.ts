/** GatedLTM: gradients through the in-pass memory updates, recall after distractors, surprise gating, the store, training. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { crossEntropy, embedding, linear } from "../nn/layers.ts";
import { ParamSet } from "../nn/params.ts";
import { assertClose, gradCheck } from "../testing/gradcheck.ts";
import { DEFAULT_TRAIN, train } from "../train/trainer.ts";
import { Rng } from "../util/rng.ts";
import {
  associativeGrad,
  associativeLoss,
  GatedLTM,
  type GatedLTMConfig,
  gatedLtmConfig,
  gatedLtmForward,
  LongTermStore,
} from "./gated_ltm.ts";

const rand = (n: number, seed: number, std = 1) => new Rng(seed).normals(n, std);
const logit = (p: number) => Math.log(p / (1 - p));

/** Unit vectors: n rows of width d. */
function unitRows(n: number, d: number, rng: Rng): Float32Array {
  const out = rng.normals(n * d);
  for (let i = 0; i < n; i++) {
    const row = out.subarray(i * d, (i + 1) * d);
    const norm = Math.hypot(...row);
    for (let j = 0; j < d; j++) row[j] /= norm;
  }
  return out;
}

/**
 * Fixes a model with dModel = 2D to identity-like projections: a token [key | value] gives
 * k = q = key and v = value; the read goes to the value half at full gate; the gates are
 * constants alpha, eta and theta (weights zero).
 */
function identityLike(model: GatedLTM, gates: { alpha: number; eta: number; theta: number }): void {
  const { memDim: D, dModel: C, thetaMax } = model.cfg;
  const set = (n: string, t: tf.Tensor) => {
    model.params.get(`${model.prefix}.${n}`).assign(t);
    t.dispose();
  };
  const eye = tf.eye(D), zeros = tf.zeros([D, D]);
  set("wk", tf.concat([eye, zeros], 0)); // [C, D]
  set("wq", tf.concat([eye, zeros], 0)); // [C, D]
  set("wv", tf.concat([zeros, eye], 0)); // [C, D]
  set("wo", tf.concat([zeros, eye], 1)); // [D, C]
  set("gate_w", tf.zeros([C, 3]));
  set("gate_b", tf.tensor1d([logit(gates.alpha), logit(gates.eta), logit(gates.theta / thetaMax)]));
  set("read_w", tf.zeros([C, C]));
  set("read_b", tf.fill([C], 20));
  tf.dispose([eye, zeros]);
}

/** Tokens [key | value] for a batch of 1. keys, values [n, D] -> [1, n, 2D]. */
function pairTokens(keys: Float32Array, values: Float32Array, n: number, d: number): tf.Tensor3D {
  return tf.tidy(() => tf.reshape(tf.concat([tf.tensor2d(keys, [n, d]), tf.tensor2d(values, [n, d])], 1), [1, n, 2 * d]));
}

Deno.test("config: defaults, overrides and validation", () => {
  const c = gatedLtmConfig(16, { chunkSize: 4 });
  assert.equal(c.memDim, 16);
  assert.equal(c.chunkSize, 4);
  assert.equal(c.initStd, 0.25);
  assert.throws(() => gatedLtmConfig(16, { chunkSize: 0 }), /chunkSize/);
  assert.throws(() => gatedLtmConfig(16, { forgetInit: 1 }), /forgetInit/);
});

Deno.test("closed-form grad_M of the associative loss equals autodiff", async () => {
  await initBackend("cpu", { quiet: true });
  const [B, n, D] = [2, 5, 4];
  const k = tf.tensor3d(rand(B * n * D, 1), [B, n, D]);
  const v = tf.tensor3d(rand(B * n * D, 2), [B, n, D]);
  const m = tf.tensor3d(rand(B * D * D, 3), [B, D, D]);
  const closed = tf.tidy(() => associativeGrad(k, v, m));
  const auto = tf.tidy(() => tf.grad((mm: tf.Tensor) => tf.sum(associativeLoss(k, v, mm as tf.Tensor3D)))(m));
  assertClose(await closed.data(), await auto.data(), 1e-4, 1e-4, "grad_M");
  // And a plain loop for one entry: (2/n) sum_t k[t, i] (k_t M - v_t)[j].
  const [kh, vh, mh] = [await k.data(), await v.data(), await m.data()];
  const [b, i, j] = [1, 2, 3];
  let ref = 0;
  for (let t = 0; t < n; t++) {
    let pred = 0;
    for (let r = 0; r < D; r++) pred += kh[(b * n + t) * D + r] * mh[(b * D + r) * D + j];
    ref += kh[(b * n + t) * D + i] * (pred - vh[(b * n + t) * D + j]);
  }
  assertClose([(await closed.data())[(b * D + i) * D + j]], [(2 / n) * ref], 1e-4, 1e-4, "loop");
  tf.dispose([k, v, m, closed, auto]);
});

Deno.test("gradient through two chunk updates matches finite differences (key, value, query, gate weights)", async () => {
  await initBackend("cpu", { quiet: true });
  const [B, T, C, D] = [2, 6, 4, 3]; // 3 chunks of 2: the last read sees two updates
  // Default gates (surprises here are 0.46..1.18, the soft gate mostly open), then a soft gate in its
  // sensitive range (threshold 0.7, temperature 0.3) so the gradient through the surprise gate counts too.
  for (const over of [{}, { surpriseThreshold: 0.7, surpriseTemperature: 0.3 }]) {
    const cfg = gatedLtmConfig(C, { memDim: D, chunkSize: 2, ...over });
    const model = new GatedLTM(cfg, new ParamSet(7));
    const x = tf.tensor3d(rand(B * T * C, 8), [B, T, C]);
    const r = tf.tensor3d(rand(B * T * C, 9), [B, T, C]); // random readout of y
    const w = model.weights();
    for (const name of ["wk", "wv", "wq", "gateW"] as const) {
      const f = (p: tf.Tensor) => tf.sum(tf.mul(gatedLtmForward({ ...w, [name]: p }, x, cfg).y, r)) as tf.Scalar;
      await gradCheck(f, w[name], { what: name, h: 1e-2, samples: 12, atol: 2e-3, rtol: 3e-2 });
    }
    // The last chunk's read depends on the keys and values only through the two earlier writes.
    for (const name of ["wk", "wv"] as const) {
      const fLast = (p: tf.Tensor) =>
        tf.sum(tf.square(tf.slice(gatedLtmForward({ ...w, [name]: p }, x, cfg).read, [0, 4, 0], [B, 2, D]))) as tf.Scalar;
      await gradCheck(fLast, w[name], { what: `${name} (last read)`, h: 1e-2, samples: 12, atol: 2e-3, rtol: 3e-2 });
    }
    tf.dispose([x, r]);
    model.params.dispose();
  }
});

Deno.test("pairs written k -> v read back after many distractors, far better than without memory", async () => {
  await initBackend("cpu", { quiet: true });
  // 4 pairs, then 32 random distractor tokens (8x the pairs), then the 4 keys as queries; 4 independent rows.
  const [B, D, n, pairs, distractorChunks] = [4, 128, 4, 4, 8];
  const cfg = gatedLtmConfig(2 * D, { memDim: D, chunkSize: n, thetaMax: 2 });
  const model = new GatedLTM(cfg, new ParamSet(3));
  identityLike(model, { alpha: 0.002, eta: 0.05, theta: 1.8 }); // 2 theta / n = 0.9 of each pair written per chunk
  const rng = new Rng(11);
  const distract = distractorChunks * n;
  const rows: tf.Tensor3D[] = [], allValues: Float32Array[] = [];
  for (let b = 0; b < B; b++) {
    const keys = unitRows(pairs, D, rng), values = unitRows(pairs, D, rng);
    allValues.push(values);
    rows.push(
      tf.concat([
        pairTokens(keys, values, pairs, D),
        pairTokens(unitRows(distract, D, rng), unitRows(distract, D, rng), distract, D),
        pairTokens(keys, new Float32Array(pairs * D), pairs, D), // queries: [key | 0]
      ], 1) as tf.Tensor3D,
    );
  }
  const seq = tf.concat(rows, 0) as tf.Tensor3D; // [B, T, 2D]
  const target = tf.tensor3d(Float32Array.from(allValues.flatMap((v) => [...v])), [B, pairs, D]);
  const T = seq.shape[1];
  const readErr = async (c: GatedLTMConfig, x = seq, t = T) => {
    const e = tf.tidy(() => {
      const out = gatedLtmForward(model.weights(), x, c);
      const got = tf.slice(out.y, [0, t - pairs, D], [B, pairs, D]); // value half of the query tokens
      return tf.mean(tf.sum(tf.square(tf.sub(got, target)), 2));
    });
    const v = (await e.data())[0];
    e.dispose();
    return v;
  };
  const withMemory = await readErr(cfg);
  const noMemory = await readErr({ ...cfg, thetaMax: 0 }); // same model, memory never written: reads M0
  // Without distractors (pairs then queries): the error that interference adds to.
  const direct = tf.concat(
    [tf.slice(seq, [0, 0, 0], [B, pairs, 2 * D]), tf.slice(seq, [0, T - pairs, 0], [B, pairs, 2 * D])],
    1,
  ) as tf.Tensor3D;
  const noDistractors = await readErr(cfg, direct, 2 * pairs);
  console.log(
    `recall: squared read error ${withMemory.toFixed(3)} after ${distract} distractors (${noDistractors.toFixed(3)} without them) ` +
      `vs ${noMemory.toFixed(3)} reading M0`,
  );
  assert.ok(noMemory > 0.9, `baseline error ${noMemory}`); // unit values, small M0
  assert.ok(noDistractors < 0.15 * noMemory, `no distractors ${noDistractors} vs baseline ${noMemory}`);
  assert.ok(withMemory < 0.4 * noMemory, `with memory ${withMemory} vs baseline ${noMemory}`);
  tf.dispose([seq, target, direct, ...rows]);
  model.params.dispose();
});

Deno.test("repeating an unsurprising chunk writes less than novel chunks", async () => {
  await initBackend("cpu", { quiet: true });
  const [D, n, chunks] = [32, 4, 8];
  const cfg = gatedLtmConfig(2 * D, { memDim: D, chunkSize: n, thetaMax: 1 });
  const model = new GatedLTM(cfg, new ParamSet(5));
  identityLike(model, { alpha: 0.01, eta: 0.3, theta: 0.5 }); // a quarter of each pair per write: repeats need a few writes
  const rng = new Rng(21);
  const k1 = unitRows(n, D, rng), v1 = unitRows(n, D, rng);
  const repeated = tf.tile(pairTokens(k1, v1, n, D), [1, chunks, 1]) as tf.Tensor3D; // [1, chunks * n, 2D]
  const novel = pairTokens(unitRows(chunks * n, D, rng), unitRows(chunks * n, D, rng), chunks * n, D);
  const report = async (x: tf.Tensor3D) => {
    const out = tf.tidy(() => {
      const o = model.forward(x);
      return { writes: o.writes, soft: o.softWrites, surprise: o.surprise };
    });
    const r = { writes: (await out.writes.data())[0], soft: (await out.soft.data())[0], surprise: [...await out.surprise.data()] };
    tf.dispose([out.writes, out.soft, out.surprise]);
    return r;
  };
  const rep = await report(repeated), nov = await report(novel);
  const fmt = (s: number[]) => s.map((v) => v.toFixed(2)).join(" ");
  console.log(`surprise: repeated writes ${rep.writes} (soft ${rep.soft.toFixed(2)}) [${fmt(rep.surprise)}]`);
  console.log(`surprise: novel    writes ${nov.writes} (soft ${nov.soft.toFixed(2)}) [${fmt(nov.surprise)}]`);
  assert.equal(nov.writes, chunks);
  assert.ok(rep.writes <= chunks / 2, `repeated chunk wrote ${rep.writes} times`);
  assert.ok(rep.soft < 0.5 * nov.soft);
  assert.ok(rep.surprise[chunks - 1] < cfg.surpriseThreshold, "the repeated chunk stops being surprising");
  tf.dispose([repeated, novel]);
  model.params.dispose();
});

Deno.test("memory state continues across calls: two halves equal one whole", async () => {
  await initBackend("cpu", { quiet: true });
  const [B, T, C] = [2, 8, 8];
  const cfg = gatedLtmConfig(C, { chunkSize: 2 });
  const model = new GatedLTM(cfg, new ParamSet(1));
  const x = tf.tensor3d(rand(B * T * C, 2), [B, T, C]);
  const [whole, split] = tf.tidy(() => {
    const all = model.forward(x);
    const a = model.forward(tf.slice(x, [0, 0, 0], [B, 4, C]) as tf.Tensor3D);
    const b = model.forward(tf.slice(x, [0, 4, 0], [B, 4, C]) as tf.Tensor3D, { memory: a.finalMemory, momentum: a.finalMomentum });
    return [tf.concat([all.y, all.finalMemory], 1), tf.concat([tf.concat([a.y, b.y], 1), b.finalMemory], 1)];
  });
  assertClose(await split.data(), await whole.data(), 1e-5, 1e-5, "continued");
  tf.dispose([x, whole, split]);
  model.params.dispose();
});

Deno.test("persistent store: bounded, decays, evicts the weakest, retrieves the most similar", async () => {
  await initBackend("cpu", { quiet: true });
  const D = 8;
  const store = new LongTermStore({ dim: D, capacity: 3, decay: 0.5, minStrength: 0.07, mergeCos: 0.99 });
  const rng = new Rng(4);
  const keys = Array.from({ length: 5 }, () => unitRows(1, D, rng));
  const val = (i: number) => new Float32Array(D).fill(i);
  assert.equal(store.write(keys[0], val(0), 1.0), "added");
  assert.equal(store.write(keys[1], val(1), 0.2), "added");
  assert.equal(store.write(keys[2], val(2), 0.6), "added");
  assert.equal(store.write(keys[3], val(3), 0.8), "evicted"); // replaces key 1 (0.2)
  assert.deepEqual(store.slots.map((s) => s.value[0]).sort(), [0, 2, 3]);
  assert.equal(store.write(keys[4], val(4), 0.1), "rejected"); // weaker than every slot
  assert.equal(store.slots.length, 3);
  store.tick();
  assertClose(store.slots.map((s) => s.strength), [0.5, 0.4, 0.3], 1e-6, 0, "decayed");
  // Retrieval: a noisy copy of key 2 finds slot with value 2 first.
  const noise = rand(D, 9, 0.05);
  const query = keys[2].map((v, i) => v + noise[i]);
  const hits = store.retrieve(query, 2);
  assert.equal(hits.length, 2);
  assert.equal(hits[0].value[0], 2);
  assert.ok(hits[0].similarity > 0.95 && hits[0].similarity >= hits[1].similarity);
  const t = store.retrieveTensor(tf.tensor2d(query, [1, D]), 2);
  assert.deepEqual(t.values.shape, [1, 2, D]);
  assertClose(await t.similarity.data(), hits.map((h) => h.similarity), 1e-5, 0, "tensor sims");
  assert.equal((await t.values.data())[0], 2);
  // A near-duplicate key reinforces instead of taking a slot.
  assert.equal(store.write(keys[2], val(7), 0.5), "merged");
  assert.ok(Math.abs(store.retrieve(keys[2], 1)[0].strength - 0.8) < 1e-6);
  // Decay frees weak slots: 0.5, 0.4, 0.8 -> 0.0625, 0.05, 0.1 after three ticks; below 0.07 goes.
  for (let i = 0; i < 3; i++) store.tick();
  const st = store.stats();
  assert.equal(st.capacity, 3);
  assert.equal(st.slotsUsed, 1);
  assert.equal(store.slots[0].value[0], 7);
  assert.equal(st.writes, 5);
  assert.equal(st.evictions, 1);
  tf.dispose([t.values, t.similarity]);
});

Deno.test("GatedLTM.remember writes the most surprising chunks; recall returns them; stats report use", async () => {
  await initBackend("cpu", { quiet: true });
  const [B, T, C] = [2, 16, 8];
  const cfg = gatedLtmConfig(C, { chunkSize: 4, storeCapacity: 5, storeWritesPerCall: 3, storeTopK: 2 });
  const model = new GatedLTM(cfg, new ParamSet(2));
  for (let call = 0; call < 3; call++) {
    const x = tf.tensor3d(rand(B * T * C, 100 + call), [B, T, C]);
    const out = model.forward(x);
    const written = await model.remember(out);
    assert.ok(written <= 3);
    if (call === 2) {
      const ctx = model.recall(out.chunkQueries);
      assert.deepEqual(ctx.values.shape, [B, T / 4, 2, C]);
      const sims = await ctx.similarity.data();
      assert.ok(sims.every((s) => s <= 1 + 1e-5 && s >= -1 - 1e-5));
      tf.dispose([ctx.values, ctx.similarity]);
    }
    tf.dispose([x, ...Object.values(out)]);
  }
  const st = model.stats();
  assert.equal(st.calls, 3);
  assert.equal(st.memoryChunks, 3 * B * (T / 4));
  assert.ok(st.memoryWrites > 0, "random chunks against a near-zero M0 are surprising");
  assert.equal(st.slotsUsed, 5); // 9 writes into 5 slots
  assert.ok(st.meanStrength > 0);
  assert.equal(st.utilization, 1);
  model.params.dispose();
});

Deno.test("embedding -> GatedLTM -> head learns associative recall", async () => {
  await initBackend("wasm", { quiet: true }); // the cpu backend's broadcast Multiply and Slice are ~5x slower here
  // Pair tokens (key, value) -> id key * V + value, then query tokens id K * V + key. Predict the value at queries.
  const [K, V, P, B, C] = [8, 8, 4, 16, 32];
  const T = 2 * P;
  const params = new ParamSet(1);
  params.add("emb", [K * V + K, C], { kind: "normal", std: 1 });
  const ltm = new GatedLTM(gatedLtmConfig(C, { chunkSize: P }), params, "ltm");
  params.add("head_w", [C, V], { kind: "normal", std: 0.1 });
  const batch = (step: number) => {
    const rng = new Rng(step + 1);
    const ids: number[] = [], targets: number[] = [];
    for (let b = 0; b < B; b++) {
      const keys = rng.permutation(K).slice(0, P), vals = Array.from({ length: P }, () => rng.int(V));
      for (let i = 0; i < P; i++) ids.push(keys[i] * V + vals[i]);
      const order = rng.permutation(P);
      for (const i of order) {
        ids.push(K * V + keys[i]);
        targets.push(vals[i]);
      }
    }
    return { ids: tf.tensor2d(ids, [B, T], "int32"), targets: tf.tensor1d(targets, "int32") };
  };
  const loss = (b: { ids: tf.Tensor2D; targets: tf.Tensor1D }, cfg = ltm.cfg) => {
    const x = embedding(params.get("emb") as tf.Tensor2D, b.ids) as tf.Tensor3D; // [B, T, C]
    const y = gatedLtmForward(ltm.weights(), x, cfg).y; // [B, T, C]
    const queries = tf.reshape(tf.slice(y, [0, P, 0], [B, P, C]), [B * P, C]); // [B * P, C]
    return crossEntropy(linear(queries, params.get("head_w")) as tf.Tensor2D, b.targets);
  };
  const evalLoss = async (cfg = ltm.cfg) => {
    const b = batch(10_000);
    const l = tf.tidy(() => loss(b, cfg));
    const v = (await l.data())[0];
    tf.dispose([l, b.ids, b.targets]);
    return v;
  };
  const before = await evalLoss();
  const t0 = performance.now();
  const res = await train({ params, batch: (s) => batch(s), loss: (b) => loss(b) }, {
    ...DEFAULT_TRAIN,
    steps: 100,
    lr: 1e-2,
    minLr: 1e-3,
    warmupSteps: 10,
  }, {
    quiet: true,
  });
  const after = await evalLoss();
  console.log(
    `train: held-out loss ${before.toFixed(3)} -> ${after.toFixed(3)} in ${res.steps} steps (train loss every 10: ${
      res.losses.filter((_, i) => i % 10 === 0).map((l) => l.toFixed(2)).join(" ")
    }), ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const ablated = await evalLoss({ ...ltm.cfg, thetaMax: 0 }); // the trained model with its memory never written
  console.log(`train: same trained model without memory writes: ${ablated.toFixed(3)}`);
  assert.ok(after < 0.7 * before, `loss ${before} -> ${after}`);
  assert.ok(ablated > 2 * after, `the recall goes through the memory: ablated ${ablated} vs ${after}`);
  params.dispose();
});
