/** Cogment: the documented output fields and shapes, depth halting, causality, gradients, training. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { assertClose } from "../testing/gradcheck.ts";
import { DEFAULT_TRAIN, train } from "../train/trainer.ts";
import { Rng } from "../util/rng.ts";
import { type CogmentConfig, cogmentConfig, createCogment } from "./cogment.ts";

/** Small shapes: C = 16, one plain block + the shared block, 5 slots, chunks of 4. */
const SMALL: Partial<CogmentConfig> = { vocabSize: 11, dModel: 16, nHeads: 2, nLayers: 2, maxSeqLen: 12, memorySlots: 5, memChunkSize: 4 };

function ids(b: number, t: number, v: number, seed: number): tf.Tensor2D {
  const rng = new Rng(seed);
  return tf.tensor2d(Array.from({ length: b * t }, () => rng.int(v)), [b, t], "int32");
}

const sum = (a: ArrayLike<number>) => Array.from(a).reduce((x, y) => x + y, 0);

Deno.test("forward: hidden states, halting probabilities, refinement steps and memory use, with their shapes", async () => {
  await initBackend("cpu", { quiet: true });
  const [B, T, C, V, S] = [3, 10, 16, 11, 5];
  const m = createCogment({ ...SMALL, depthMaxSteps: 4, maxRefinementSteps: 3 }, 1);
  const o = m.forward(ids(B, T, V, 1));
  assert.deepEqual(o.logits.shape, [B, T, V]);
  assert.deepEqual(o.hidden.shape, [B, T, C]);
  // Depth ACT.
  const h = o.halting;
  assert.ok(h.stepsRun >= 1 && h.stepsRun <= 4, `depth steps run ${h.stepsRun}`);
  assert.deepEqual(h.probs.shape, [h.stepsRun, B, T]);
  assert.deepEqual(h.weights.shape, [h.stepsRun, B, T]);
  assert.deepEqual(h.steps.shape, [B, T]);
  const p = await h.probs.data();
  assert.ok(p.every((v) => v > 0 && v < 1));
  assertClose(await tf.sum(h.weights, 0).data(), new Float32Array(B * T).fill(1), 1e-5, 0, "halting weights sum to 1");
  const steps = await h.steps.data();
  assert.ok(steps.every((n) => n >= 1 && n <= h.stepsRun) && Math.max(...steps) === h.stepsRun);
  assert.ok((await h.ponder.data())[0] >= 1);
  // Refinement.
  const r = o.refinement;
  assert.ok(r.steps >= 1 && r.steps <= 3);
  assert.deepEqual(r.surprise.shape, [r.steps]);
  assert.deepEqual(r.positionSteps!.shape, [B, T]);
  assert.deepEqual(r.haltProbs!.shape, [r.steps, B, T]);
  assert.ok((await r.ponder!.data())[0] > 0);
  assert.ok(["halted", "maxSteps"].includes(r.stopReason));
  // Memory.
  const mem = o.memory;
  assert.deepEqual(mem.slotAttention.shape, [B, T, S]);
  assertClose(await tf.sum(mem.slotAttention, -1).data(), new Float32Array(B * T).fill(1), 1e-5, 0, "slot attention rows");
  assert.deepEqual(mem.slotUsage.shape, [S]);
  assertClose([sum(await mem.slotUsage.data())], [1], 1e-5);
  const util = (await mem.slotUtilization.data())[0];
  assert.ok(util > 0 && util <= 1 + 1e-6, `slot utilization ${util}`);
  assert.deepEqual(mem.ltmSurprise.shape, [B, Math.ceil(T / 4)]);
  const [writes, rate] = [(await mem.ltmWrites.data())[0], (await mem.ltmWriteRate.data())[0]];
  assertClose([rate], [writes / (B * 3)], 1e-6);
  assert.ok(rate >= 0 && rate <= 1);
  assert.equal(m.ltmStats().capacity, m.ltm.cfg.storeCapacity);
  m.dispose();
});

Deno.test("depth ACT: the halting bias sets how often the shared block runs; refinement without ACT runs to its maximum", async () => {
  await initBackend("cpu", { quiet: true });
  const x = ids(2, 6, 11, 2);
  const eager = createCogment({ ...SMALL, depthHaltBiasInit: 10 }, 3);
  assert.equal(eager.forward(x).halting.stepsRun, 1);
  eager.dispose();
  const slow = createCogment({ ...SMALL, depthHaltBiasInit: -10, depthMaxSteps: 5 }, 3);
  const o = slow.forward(x);
  assert.equal(o.halting.stepsRun, 5);
  assert.deepEqual(Array.from(await o.halting.steps.data()), new Array(12).fill(5));
  slow.dispose();
  const plain = createCogment({ ...SMALL, refineHalting: "none", maxRefinementSteps: 3 }, 3);
  const r = plain.forward(x).refinement;
  assert.deepEqual([r.steps, r.stopReason, r.positionSteps, r.ponder], [3, "maxSteps", undefined, undefined]);
  plain.dispose();
});

Deno.test("causal: logits at a position ignore later tokens", async () => {
  await initBackend("cpu", { quiet: true });
  const [B, T, cut] = [2, 11, 5];
  const a = ids(B, T, 11, 4);
  const b = tf.concat([tf.slice(a, [0, 0], [B, cut]), ids(B, T - cut, 11, 5)], 1) as tf.Tensor2D;
  const m = createCogment(SMALL, 4);
  const la = tf.slice(m.forward(a).logits, [0, 0, 0], [B, cut, 11]);
  const lb = tf.slice(m.forward(b).logits, [0, 0, 0], [B, cut, 11]);
  assertClose(await la.data(), await lb.data(), 1e-5, 0, "prefix logits");
  m.dispose();
});

Deno.test("every parameter gets a gradient; config errors name the field", async () => {
  await initBackend("cpu", { quiet: true });
  const m = createCogment(SMALL, 5);
  const { value, grads } = tf.variableGrads(() => m.loss(ids(2, 8, 11, 6), ids(2, 8, 11, 7)));
  assert.ok(Number.isFinite((await value.data())[0]));
  for (const [name, v] of m.params.vars) {
    assert.ok(grads[v.name], `no gradient for ${name}`);
    const n = (await tf.max(tf.abs(grads[v.name])).data())[0];
    assert.ok(n > 0 && Number.isFinite(n), `gradient of ${name} is ${n}`);
  }
  for (const prefix of ["depth.halt_", "stm.", "ltm.", "refine.", "l1."]) {
    assert.ok(m.params.names().some((n) => n.startsWith(prefix)), prefix);
  }
  m.dispose();
  assert.throws(() => cogmentConfig({ memorySlots: 0 }), /memorySlots/);
  assert.throws(() => cogmentConfig({ refineHalting: "q" as CogmentConfig["refineHalting"] }), /refineHalting/);
  assert.throws(() => cogmentConfig({ depthTau: -1 }), /depthTau/);
});

Deno.test("trainer: Cogment drives its loss down on next-token counting", async () => {
  await initBackend("wasm", { quiet: true });
  const m = createCogment({ ...SMALL, vocabSize: 16, dModel: 32, nHeads: 4 }, 1);
  const batch = (s: number) => {
    const rng = new Rng(31 * s + 5);
    const x: number[] = [], y: number[] = [];
    for (let r = 0; r < 16; r++) {
      const start = rng.int(16);
      for (let i = 0; i < 12; i++) x.push((start + i) % 16), y.push((start + i + 1) % 16);
    }
    return { x: tf.tensor2d(x, [16, 12], "int32"), y: tf.tensor2d(y, [16, 12], "int32") };
  };
  const res = await train(
    { params: m.params, batch, loss: (b) => m.loss(b.x, b.y) },
    { ...DEFAULT_TRAIN, steps: 40, lr: 1e-2, minLr: 1e-3, warmupSteps: 4 },
    { quiet: true },
  );
  const first = res.losses[0], last = (res.losses.at(-1)! + res.losses.at(-2)! + res.losses.at(-3)!) / 3;
  console.log(`cogment: loss ${first.toFixed(3)} -> ${last.toFixed(3)} in ${res.steps} steps, ${res.seconds.toFixed(1)} s`);
  assert.ok(last < 0.7 * first, `loss ${first} -> ${last}`);
  m.dispose();
});
