/** Cognate: counts from configs, parameter parity per preset, the variants' extras, causality, gradients, training. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { assertClose } from "../testing/gradcheck.ts";
import { DEFAULT_TRAIN, train } from "../train/trainer.ts";
import { Rng } from "../util/rng.ts";
import {
  Cognate,
  COGNATE_PRESETS,
  COGNATE_VARIANTS,
  type CognateConfig,
  cognateConfig,
  cognateParamCount,
  cognatePresetConfig,
  type CognatePresetName,
  type CognateVariant,
  createCognate,
  memoryLayer,
  sizeCognate,
} from "./cognate.ts";

/** Small shapes for the behavioural tests: C = 16, 3 blocks, T <= 12. */
const SMALL: Partial<CognateConfig> = { vocabSize: 11, dModel: 16, nHeads: 2, nLayers: 3, maxSeqLen: 12, memChunkSize: 4 };

function ids(b: number, t: number, v: number, seed: number): tf.Tensor2D {
  const rng = new Rng(seed);
  return tf.tensor2d(Array.from({ length: b * t }, () => rng.int(v)), [b, t], "int32");
}

const maxAbs = async (t: tf.Tensor) => (await tf.max(tf.abs(t)).data())[0];

Deno.test("parameter counts from configs equal the built ParamSets (tiny preset and config variations)", async () => {
  await initBackend("cpu", { quiet: true });
  const configs: CognateConfig[] = COGNATE_VARIANTS.map((v) => cognatePresetConfig("tiny", v));
  const shapes: Partial<CognateConfig>[] = [
    {},
    { positions: "rope", tieEmbeddings: true },
    { mlp: "swiglu", norm: "rmsnorm", bias: false },
    { memDim: 8, refineMlpRatio: 3, mlpRatio: 2.5 },
    { prevTokens: 2 },
  ];
  for (const s of shapes) for (const variant of COGNATE_VARIANTS) configs.push(cognateConfig({ ...SMALL, ...s, variant }));
  for (const c of configs) {
    const m = new Cognate(c, 1);
    assert.equal(cognateParamCount(c), m.params.count(), `${c.variant} ${JSON.stringify(c)}`);
    m.dispose();
  }
});

Deno.test("parity: at tiny, small and 25m the three variants are within 0.1% of each other (as README states)", () => {
  const rows: string[] = [];
  for (const preset of Object.keys(COGNATE_PRESETS) as CognatePresetName[]) {
    const p = COGNATE_PRESETS[preset];
    const counts = COGNATE_VARIANTS.map((v) => {
      const c = cognatePresetConfig(preset, v);
      const s = sizeCognate(p.base, v, p.targetParams);
      assert.equal(cognateParamCount(c), s.params);
      assert.equal(c.nLayers, s.nLayers);
      rows.push(
        `${preset.padEnd(5)} ${v.padEnd(9)} layers ${String(c.nLayers).padStart(2)}  mlp ${c.mlpRatio.toFixed(3)}  params ${s.params}`,
      );
      return s.params;
    });
    const spread = Math.max(...counts) / Math.min(...counts) - 1;
    rows.push(`${preset}: spread ${(100 * spread).toFixed(3)}% (${p.source})`);
    assert.ok(spread < 0.001, `${preset}: spread ${(100 * spread).toFixed(3)}% (${counts})`);
    if (p.targetParams) {
      for (const n of counts) assert.ok(Math.abs(n / p.targetParams - 1) < 0.02, `${preset}: ${n} vs ${p.targetParams}`);
    }
  }
  console.log(rows.join("\n"));
  // tiny and small are the pipeline's presets: the standard model keeps their shape.
  assert.equal(cognatePresetConfig("small", "standard").dModel, 128);
  assert.equal(cognatePresetConfig("small", "standard").nLayers, 4);
  assert.equal(cognatePresetConfig("tiny", "standard").mlpRatio, 4);
  // 25m lands near 25M.
  const n25 = cognateParamCount(cognatePresetConfig("25m", "reasoning"));
  assert.ok(n25 > 24e6 && n25 < 26e6, `${n25}`);
});

Deno.test("sizeCognate: own budget returns the base shape; a big extra module costs layers; impossible budgets throw", () => {
  const base = cognateConfig({ ...SMALL, dModel: 32, nHeads: 4, nLayers: 4, mlpRatio: 4 });
  const std = sizeCognate(base, "standard");
  assert.deepEqual([std.nLayers, std.mlpRatio, std.params], [4, 4, cognateParamCount(base)]);
  // A refinement block 16x wide costs ~3 of the 4 layers: sizing drops layers rather than squeezing the MLP to nothing.
  const big = sizeCognate({ ...base, refineMlpRatio: 16 }, "reasoning", std.params);
  assert.ok(big.nLayers < 4, `layers ${big.nLayers}`);
  assert.ok(big.mlpRatio > 1, `ratio ${big.mlpRatio}`);
  assert.ok(Math.abs(big.params / std.params - 1) < 0.1, `${big.params} vs ${std.params}`);
  // Larger budgets, larger models.
  assert.ok(sizeCognate(base, "memory", 2 * std.params).params > sizeCognate(base, "memory", std.params).params);
  assert.throws(() => sizeCognate(base, "memory", 1000), /budget of 1000/);
});

Deno.test("config: defaults, factory, named errors", () => {
  assert.equal(cognateConfig().variant, "standard");
  assert.throws(() => cognateConfig({ variant: "dreaming" as CognateVariant }), /variant/);
  assert.throws(() => cognateConfig({ memoryAfter: 3, nLayers: 3 }), /memoryAfter/);
  assert.throws(() => cognateConfig({ maxRefinementSteps: 0 }), /maxRefinementSteps/);
  assert.throws(() => cognateConfig({ dModel: 10, nHeads: 4 }), /dModel/);
  assert.equal(memoryLayer(cognateConfig({ nLayers: 4 })), 1);
  assert.equal(memoryLayer(cognateConfig({ nLayers: 1 })), 0);
  assert.equal(memoryLayer(cognateConfig({ nLayers: 4, memoryAfter: 3 })), 3);
  const m = createCognate({ ...SMALL, variant: "memory" }, 2);
  assert.ok(m.ltm && !m.core);
  m.dispose();
});

Deno.test("forward: logits, hidden and each variant's extras", async () => {
  await initBackend("cpu", { quiet: true });
  const [B, T] = [3, 10];
  const x = ids(B, T, 11, 1), y = ids(B, T, 11, 2);
  for (const variant of COGNATE_VARIANTS) {
    const m = createCognate({ ...SMALL, variant, maxRefinementSteps: 5 }, 3);
    const o = m.forward(x);
    assert.deepEqual(o.logits.shape, [B, T, 11]);
    assert.deepEqual(o.hidden.shape, [B, T, 16]);
    const { loss, ce } = m.lossParts(x, y);
    if (variant === "standard") {
      assert.deepEqual(Object.keys(o.extras), []);
      assertClose(await loss.data(), await ce.data(), 0);
    }
    if (variant === "memory") {
      assert.deepEqual(o.extras.surprise!.shape, [B, Math.ceil(T / 4)]);
      assert.equal(o.extras.writes!.rank, 0);
      const w = (await o.extras.writes!.data())[0];
      assert.ok(Number.isInteger(w) && w >= 0 && w <= B * 3, `writes ${w}`);
      assertClose(await loss.data(), await ce.data(), 0);
    }
    if (variant === "reasoning") {
      const steps = await o.extras.steps!.data();
      assert.deepEqual(o.extras.steps!.shape, [B, T]);
      assert.ok(steps.every((n) => n >= 1 && n <= 5), `steps ${steps}`);
      assert.ok(o.extras.stepsRun! <= 5 && o.extras.stepsRun === Math.max(...steps));
      assert.deepEqual(o.extras.haltProbs!.shape, [o.extras.stepsRun!, B, T]);
      const ponder = (await o.extras.ponder!.data())[0];
      assert.ok(ponder > 0, `ponder ${ponder}`);
      // The loss is CE + tau * ponder.
      assertClose(await loss.data(), [(await ce.data())[0] + m.cfg.ponderTau * ponder], 1e-5);
    }
    m.dispose();
  }
});

Deno.test("memory and reasoning reduce to their transformer when the extra module outputs zero", async () => {
  await initBackend("cpu", { quiet: true });
  const x = ids(2, 9, 11, 5);
  for (const variant of ["memory", "reasoning"] as const) {
    const m = createCognate({ ...SMALL, variant }, 4);
    const plain = await m.decoder.forward(x).logits.data();
    const withModule = await m.forward(x).logits.data();
    assert.ok(withModule.some((v, i) => Math.abs(v - plain[i]) > 1e-6), `${variant}: the module changes the logits`);
    // memory: a zero read projection; reasoning: a zero MLP output makes every step the identity (ACT's weights sum to 1).
    const zero = variant === "memory" ? "ltm.wo" : "refine.fc2_w";
    m.params.get(zero).assign(tf.zerosLike(m.params.get(zero)));
    if (variant === "reasoning") m.params.get("refine.fc2_b").assign(tf.zerosLike(m.params.get("refine.fc2_b")));
    assertClose(await m.forward(x).logits.data(), plain, 1e-5, 0, `${variant} with a silent module`);
    m.dispose();
  }
});

Deno.test("causal: logits at a position ignore later tokens (every variant)", async () => {
  await initBackend("cpu", { quiet: true });
  const [B, T, cut] = [2, 11, 6];
  const a = ids(B, T, 11, 7);
  const b = tf.concat([tf.slice(a, [0, 0], [B, cut]), ids(B, T - cut, 11, 8)], 1) as tf.Tensor2D; // same prefix, new suffix
  for (const variant of COGNATE_VARIANTS) {
    const m = createCognate({ ...SMALL, variant }, 6);
    const la = tf.slice(m.forward(a).logits, [0, 0, 0], [B, cut, 11]);
    const lb = tf.slice(m.forward(b).logits, [0, 0, 0], [B, cut, 11]);
    assertClose(await la.data(), await lb.data(), 1e-5, 0, `${variant} prefix logits`);
    m.dispose();
  }
});

Deno.test("every parameter of every variant gets a gradient", async () => {
  await initBackend("cpu", { quiet: true });
  const x = ids(2, 8, 11, 9), y = ids(2, 8, 11, 10);
  for (const variant of COGNATE_VARIANTS) {
    const m = createCognate({ ...SMALL, variant }, 7);
    const { grads } = tf.variableGrads(() => m.loss(x, y));
    for (const [name, v] of m.params.vars) {
      const g = grads[v.name];
      assert.ok(g, `${variant}: no gradient for ${name}`);
      const n = await maxAbs(g);
      assert.ok(n > 0 && Number.isFinite(n), `${variant}: gradient of ${name} is ${n}`);
    }
    tf.dispose(Object.values(grads));
    m.dispose();
  }
});

/** Counting sequences mod v from random starts: the next token is (token + 1) mod v. */
function countingBatch(seed: number, rows: number, t: number, v: number) {
  const rng = new Rng(seed);
  const x: number[] = [], y: number[] = [];
  for (let r = 0; r < rows; r++) {
    const s = rng.int(v);
    for (let i = 0; i < t; i++) {
      x.push((s + i) % v);
      y.push((s + i + 1) % v);
    }
  }
  return { x: tf.tensor2d(x, [rows, t], "int32"), y: tf.tensor2d(y, [rows, t], "int32") };
}

for (const variant of COGNATE_VARIANTS) {
  Deno.test(`trainer: the ${variant} cognate drives its loss down on next-token counting`, async () => {
    await initBackend("wasm", { quiet: true });
    const m = createCognate({ ...SMALL, variant, vocabSize: 16, dModel: 32, nHeads: 4, nLayers: 2 }, 1);
    const res = await train(
      { params: m.params, batch: (s) => countingBatch(31 * s + 5, 16, 12, 16), loss: (b) => m.loss(b.x, b.y) },
      { ...DEFAULT_TRAIN, steps: 40, lr: 1e-2, minLr: 1e-3, warmupSteps: 4 },
      { quiet: true },
    );
    const first = res.losses[0], last = (res.losses.at(-1)! + res.losses.at(-2)! + res.losses.at(-3)!) / 3;
    console.log(`cognate ${variant}: loss ${first.toFixed(3)} -> ${last.toFixed(3)} in ${res.steps} steps, ${res.seconds.toFixed(1)} s`);
    assert.ok(last < 0.7 * first, `loss ${first} -> ${last}`);
    m.dispose();
  });
}
