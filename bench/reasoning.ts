/**
 * `deno task bench:reasoning`: does thinking longer help? The standard and the reasoning
 * cognate (lib/models/cognate.ts), sized to the same parameter budget, trained with the same
 * data, steps and seed on running parity of bit strings of mixed length, then scored per length.
 *
 * Task: a string of n random bits (n uniform in [min-len, max-len]), padded to max-len; at
 * every position the target is the parity of the bits so far, so the last target is the
 * parity of the whole string and longer strings are harder. Loss on the real positions only.
 * The reasoning model's refinement core halts per position (ACT), so its steps at a string's
 * last position show how long it thinks about the whole string.
 *
 * The halting unit starts at bias -3 (h ~ 0.05 per step: every position runs all
 * max-refine steps at first) and the ponder cost then teaches it where to stop; from the
 * model's default -1 (about 4 steps) ACT collapses to ~1 step within a few dozen Adam steps,
 * before the refinement block has learned anything worth iterating. The ponder weight is
 * 0.003, not the model's 0.01: at 0.01 (seed 0, 800 steps) halting collapsed to 1 step by the
 * end and the reasoning model fell below the standard one.
 *
 * Report, per length: accuracy of the final parity for both models (held-out strings) and
 * the reasoning model's mean refinement steps at the last position.
 *
 * Options: --steps N  --batch N  --min-len N  --max-len N  --width N  --layers N  --heads N
 *          --max-refine N  --tau X  --halt-bias=X (an = for negative values)  --lr X
 *          --eval N (strings per length)  --seed N  --json FILE
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "node:util";
import { describeBackend, initBackend } from "../lib/backend/mod.ts";
import { Cognate, type CognateConfig, cognateConfig, cognateParamCount, type CognateVariant, sizeCognate } from "../lib/models/cognate.ts";
import { DEFAULT_TRAIN, train, type TrainConfig } from "../lib/train/trainer.ts";
import { writeJsonAtomic } from "../lib/util/fs.ts";
import { deriveSeed, Rng } from "../lib/util/rng.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    steps: { type: "string", default: "800" },
    batch: { type: "string", default: "64" },
    "min-len": { type: "string", default: "2" },
    "max-len": { type: "string", default: "10" },
    width: { type: "string", default: "64" },
    layers: { type: "string", default: "2" },
    heads: { type: "string", default: "4" },
    "max-refine": { type: "string", default: "8" },
    tau: { type: "string", default: "0.003" },
    "halt-bias": { type: "string", default: "-3" },
    lr: { type: "string", default: "0.003" },
    eval: { type: "string", default: "256" },
    seed: { type: "string", default: "0" },
    json: { type: "string" },
  },
});

function num(name: keyof typeof values, integer: boolean, min: number): number {
  const v = Number(values[name]);
  if (!Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min) {
    throw new Error(`--${name} = ${values[name]}: expected ${integer ? "an integer" : "a number"} >= ${min}`);
  }
  return v;
}

const steps = num("steps", true, 1), batchSize = num("batch", true, 1);
const minLen = num("min-len", true, 1), maxLen = num("max-len", true, 1);
if (minLen > maxLen) throw new Error(`--min-len ${minLen} exceeds --max-len ${maxLen}`);
const evalN = num("eval", true, 1), seed = num("seed", true, 0);
const PAD = 2; // tokens: 0, 1 bits; 2 padding

/** A batch of bit strings: ids, running-parity targets and a mask over the real positions, all [B, maxLen]. */
function parityBatch(rng: Rng, rows: number, length?: number) {
  const x = new Int32Array(rows * maxLen).fill(PAD), y = new Int32Array(rows * maxLen).fill(PAD);
  const mask = new Float32Array(rows * maxLen);
  for (let r = 0; r < rows; r++) {
    const n = length ?? minLen + rng.int(maxLen - minLen + 1);
    let parity = 0;
    for (let i = 0; i < n; i++) {
      const bit = rng.int(2);
      parity ^= bit;
      x[r * maxLen + i] = bit;
      y[r * maxLen + i] = parity;
      mask[r * maxLen + i] = 1;
    }
  }
  return {
    x: tf.tensor2d(x, [rows, maxLen], "int32"),
    y: tf.tensor2d(y, [rows, maxLen], "int32"),
    mask: tf.tensor2d(mask, [rows, maxLen]),
  };
}

const base: CognateConfig = cognateConfig({
  vocabSize: 3,
  dModel: num("width", true, 1),
  nHeads: num("heads", true, 1),
  nLayers: num("layers", true, 1),
  mlpRatio: 4,
  maxSeqLen: maxLen,
  positions: "learned",
  maxRefinementSteps: num("max-refine", true, 1),
  ponderTau: num("tau", false, 0),
  haltBiasInit: num("halt-bias", false, -Infinity),
});
const budget = cognateParamCount(base);
const configs: Record<"standard" | "reasoning", CognateConfig> = { standard: base, reasoning: base };
for (const v of ["standard", "reasoning"] as const) {
  const s = sizeCognate(base, v as CognateVariant, budget);
  configs[v] = cognateConfig({ ...base, variant: v, nLayers: s.nLayers, mlpRatio: s.mlpRatio });
}
const trainCfg: TrainConfig = {
  ...DEFAULT_TRAIN,
  steps,
  lr: num("lr", false, 0),
  minLr: num("lr", false, 0) / 10,
  warmupSteps: Math.min(20, Math.floor(steps / 10)),
  logEvery: 50,
};

interface Row {
  length: number;
  standardAccuracy: number;
  reasoningAccuracy: number;
  reasoningMeanSteps: number;
}

const info = await initBackend("auto", { quiet: true });
console.log(describeBackend(info));
console.log(
  `running parity, lengths ${minLen}..${maxLen}; ${steps} steps of ${batchSize} strings, lr ${trainCfg.lr}, seed ${seed}; ` +
    `budget ${budget} parameters`,
);

const models: Record<string, Cognate> = {};
const trained: Record<string, { seconds: number; firstLoss: number; lastLoss: number; params: number; nLayers: number; mlpRatio: number }> =
  {};
for (const v of ["standard", "reasoning"] as const) {
  const m = new Cognate(configs[v], seed);
  models[v] = m;
  const res = await train(
    {
      params: m.params,
      batch: (step) => parityBatch(new Rng(deriveSeed(seed, `train.${step}`)), batchSize),
      loss: (b) => m.loss(b.x, b.y, b.mask),
      tokensPerBatch: batchSize * maxLen,
    },
    trainCfg,
    { label: `${v} cognate`, quiet: true },
  );
  const tail = res.losses.slice(-10);
  trained[v] = {
    seconds: res.seconds,
    firstLoss: res.losses[0],
    lastLoss: tail.reduce((a, b) => a + b, 0) / tail.length,
    params: m.params.count(),
    nLayers: m.cfg.nLayers,
    mlpRatio: m.cfg.mlpRatio,
  };
  const t = trained[v];
  console.log(
    `${v.padEnd(9)}: ${t.params} params (${t.nLayers} layers, mlp ${t.mlpRatio.toFixed(3)}), ` +
      `loss ${t.firstLoss.toFixed(3)} -> ${t.lastLoss.toFixed(3)} in ${t.seconds.toFixed(1)} s`,
  );
}

/** Final-parity accuracy (and mean ACT steps at the last position) of `m` on held-out strings of length n. */
async function score(m: Cognate, n: number): Promise<{ accuracy: number; meanSteps: number }> {
  const b = parityBatch(new Rng(deriveSeed(seed, `eval.${n}`)), evalN, n);
  const [right, stepsAt] = tf.tidy(() => {
    const o = m.forward(b.x);
    const pred = tf.slice(tf.argMax(o.logits, -1), [0, n - 1], [evalN, 1]); // [N, 1] prediction at the last bit
    const want = tf.slice(b.y, [0, n - 1], [evalN, 1]); // [N, 1]
    const ok = tf.mean(tf.cast(tf.equal(pred, want), "float32"));
    const st = o.extras.steps ? tf.mean(tf.slice(o.extras.steps, [0, n - 1], [evalN, 1])) : tf.scalar(0);
    return [ok, st];
  });
  const [accuracy, meanSteps] = [(await right.data())[0], (await stepsAt.data())[0]];
  tf.dispose([right, stepsAt, b.x, b.y, b.mask]);
  return { accuracy, meanSteps };
}

const rows: Row[] = [];
for (let n = minLen; n <= maxLen; n++) {
  const s = await score(models.standard, n), r = await score(models.reasoning, n);
  rows.push({ length: n, standardAccuracy: s.accuracy, reasoningAccuracy: r.accuracy, reasoningMeanSteps: r.meanSteps });
}

const maxRefine = configs.reasoning.maxRefinementSteps;
console.log(`\nfinal-parity accuracy on ${evalN} held-out strings per length (chance 0.50); reasoning steps out of ${maxRefine}`);
console.log("length | standard acc | reasoning acc | reasoning mean steps");
console.log("-------|--------------|---------------|---------------------");
for (const r of rows) {
  console.log(
    `${String(r.length).padStart(6)} | ${r.standardAccuracy.toFixed(3).padStart(12)} | ${r.reasoningAccuracy.toFixed(3).padStart(13)} | ` +
      `${r.reasoningMeanSteps.toFixed(2).padStart(20)}`,
  );
}
const mean = (k: keyof Row) => rows.reduce((a, r) => a + r[k], 0) / rows.length;
console.log(
  `  mean | ${mean("standardAccuracy").toFixed(3).padStart(12)} | ${mean("reasoningAccuracy").toFixed(3).padStart(13)} | ` +
    `${mean("reasoningMeanSteps").toFixed(2).padStart(20)}`,
);

if (values.json) {
  await writeJsonAtomic(values.json, {
    task: "running parity",
    backend: info.name,
    seed,
    lengths: [minLen, maxLen],
    evalPerLength: evalN,
    budget,
    training: trainCfg,
    batchSize,
    models: Object.fromEntries(Object.entries(configs).map(([k, c]) => [k, { config: c, ...trained[k] }])),
    rows,
  });
  console.log(`wrote ${values.json}`);
}
for (const m of Object.values(models)) m.dispose();
