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
 * Report, per length: accuracy of the final parity for both models and the reasoning model's
 * mean refinement steps at the last position, on distinct strings never trained on: within the
 * training lengths every string starting with one of 3 of the 16 four-bit prefixes is held out
 * of training (so no trained string shares its context), and lengths past --max-len (up to
 * --test-max-len, default max-len + 4) are reported separately.
 *
 * Options: --steps N  --batch N  --min-len N  --max-len N  --test-max-len N  --width N  --layers N  --heads N
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
    "test-max-len": { type: "string" },
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
const testMax = values["test-max-len"] === undefined ? maxLen + 4 : num("test-max-len", true, maxLen);
const evalN = num("eval", true, 1), seed = num("seed", true, 0);
const PAD = 2; // tokens: 0, 1 bits; 2 padding
/**
 * Held out of training: every string that starts with one of these 4-bit prefixes (3 of the 16).
 * A running-parity target at position i depends on the bits up to i, so holding out whole strings
 * is not enough (a held-out string would be the prefix of trained longer ones); holding out by
 * prefix means no trained string shares a held-out string's context from its 4th bit on.
 */
const HELD_PREFIXES = new Set(["0110", "1011", "1100"]);
/** Strings shorter than the prefix: at most 8 of each length, all of them trained on ("seen"). */
const HOLD_FROM = 4;

/** True when `bits` is held out of training (its first HOLD_FROM bits are a held-out prefix). */
function heldOut(bits: readonly number[]): boolean {
  return bits.length >= HOLD_FROM && HELD_PREFIXES.has(bits.slice(0, HOLD_FROM).join(""));
}

/** A random bit string of length n that is not held out. */
function trainingString(rng: Rng, n: number): number[] {
  for (;;) {
    const bits = Array.from({ length: n }, () => rng.int(2));
    if (!heldOut(bits)) return bits;
  }
}

/**
 * The evaluation strings of length n, distinct: within the training lengths only held-out ones
 * (never trained on), beyond them any; all of them when there are at most `evalN`.
 */
function evalStrings(n: number): number[][] {
  const rng = new Rng(deriveSeed(seed, `eval.${n}`));
  const keep = (bits: number[]) => n > maxLen || n < HOLD_FROM || heldOut(bits);
  const out = new Map<string, number[]>();
  if (2 ** n <= 4 * evalN) {
    for (let v = 0; v < 2 ** n; v++) {
      const bits = Array.from({ length: n }, (_, i) => (v >> i) & 1);
      if (keep(bits)) out.set(bits.join(""), bits);
    }
    const all = [...out.values()];
    return Array.from(rng.permutation(all.length), (i) => all[i]).slice(0, evalN);
  }
  for (let tries = 0; out.size < evalN && tries < 100 * evalN; tries++) {
    const bits = Array.from({ length: n }, () => rng.int(2));
    if (keep(bits)) out.set(bits.join(""), bits);
  }
  return [...out.values()];
}

/** Bit strings as ids, running-parity targets and a mask over the real positions, all [B, width]. */
function parityTensors(strings: readonly number[][], width: number) {
  const rows = strings.length;
  const x = new Int32Array(rows * width).fill(PAD), y = new Int32Array(rows * width).fill(PAD);
  const mask = new Float32Array(rows * width);
  strings.forEach((bits, r) => {
    let parity = 0;
    bits.forEach((bit, i) => {
      parity ^= bit;
      x[r * width + i] = bit;
      y[r * width + i] = parity;
      mask[r * width + i] = 1;
    });
  });
  return {
    x: tf.tensor2d(x, [rows, width], "int32"),
    y: tf.tensor2d(y, [rows, width], "int32"),
    mask: tf.tensor2d(mask, [rows, width]),
  };
}

/** A training batch: lengths uniform in [min-len, max-len], no held-out string. */
function parityBatch(rng: Rng, rows: number) {
  return parityTensors(Array.from({ length: rows }, () => trainingString(rng, minLen + rng.int(maxLen - minLen + 1))), maxLen);
}

const base: CognateConfig = cognateConfig({
  vocabSize: 3,
  dModel: num("width", true, 1),
  nHeads: num("heads", true, 1),
  nLayers: num("layers", true, 1),
  mlpRatio: 4,
  maxSeqLen: testMax, // positions past max-len exist (untrained) so longer strings can be scored
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
  /** held-out: within the training lengths, never trained on; seen: a length whose every string is trained on; beyond: longer than training. */
  kind: "held-out" | "seen" | "beyond";
  /** Distinct strings scored. */
  strings: number;
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

/** Final-parity accuracy (and mean ACT steps at the last position) of `m` on the evaluation strings of length n. */
async function score(m: Cognate, n: number, strings: number[][]): Promise<{ accuracy: number; meanSteps: number }> {
  const N = strings.length;
  const b = parityTensors(strings, n);
  const [right, stepsAt] = tf.tidy(() => {
    const o = m.forward(b.x);
    const pred = tf.slice(tf.argMax(o.logits, -1), [0, n - 1], [N, 1]); // [N, 1] prediction at the last bit
    const want = tf.slice(b.y, [0, n - 1], [N, 1]); // [N, 1]
    const ok = tf.mean(tf.cast(tf.equal(pred, want), "float32"));
    const st = o.extras.steps ? tf.mean(tf.slice(o.extras.steps, [0, n - 1], [N, 1])) : tf.scalar(0);
    return [ok, st];
  });
  const [accuracy, meanSteps] = [(await right.data())[0], (await stepsAt.data())[0]];
  tf.dispose([right, stepsAt, b.x, b.y, b.mask]);
  return { accuracy, meanSteps };
}

const rows: Row[] = [];
for (let n = minLen; n <= testMax; n++) {
  const kind: Row["kind"] = n > maxLen ? "beyond" : n < HOLD_FROM ? "seen" : "held-out";
  const strings = evalStrings(n);
  if (!strings.length) continue;
  const s = await score(models.standard, n, strings), r = await score(models.reasoning, n, strings);
  rows.push({
    length: n,
    kind,
    strings: strings.length,
    standardAccuracy: s.accuracy,
    reasoningAccuracy: r.accuracy,
    reasoningMeanSteps: r.meanSteps,
  });
}

const maxRefine = configs.reasoning.maxRefinementSteps;
console.log(
  `\nfinal-parity accuracy (chance 0.50) on distinct strings per length: held-out = starts with a 4-bit prefix no training ` +
    `string has (3 of 16), seen = lengths under ${HOLD_FROM} (every string is trained on), beyond = longer than any ` +
    `training string; reasoning steps out of ${maxRefine}`,
);
console.log("length | kind     | strings | standard acc | reasoning acc | reasoning mean steps");
console.log("-------|----------|---------|--------------|---------------|---------------------");
const line = (label: string, kind: string, count: string, r: Pick<Row, "standardAccuracy" | "reasoningAccuracy" | "reasoningMeanSteps">) =>
  console.log(
    `${label.padStart(6)} | ${kind.padEnd(8)} | ${count.padStart(7)} | ${r.standardAccuracy.toFixed(3).padStart(12)} | ` +
      `${r.reasoningAccuracy.toFixed(3).padStart(13)} | ${r.reasoningMeanSteps.toFixed(2).padStart(20)}`,
  );
for (const r of rows) line(String(r.length), r.kind, String(r.strings), r);
for (const kind of ["held-out", "beyond"] as const) {
  const sel = rows.filter((r) => r.kind === kind);
  if (!sel.length) continue;
  const mean = (k: "standardAccuracy" | "reasoningAccuracy" | "reasoningMeanSteps") => sel.reduce((a, r) => a + r[k], 0) / sel.length;
  line("mean", kind, String(sel.reduce((a, r) => a + r.strings, 0)), {
    standardAccuracy: mean("standardAccuracy"),
    reasoningAccuracy: mean("reasoningAccuracy"),
    reasoningMeanSteps: mean("reasoningMeanSteps"),
  });
}

if (values.json) {
  await writeJsonAtomic(values.json, {
    task: "running parity",
    backend: info.name,
    seed,
    lengths: [minLen, maxLen],
    testMaxLen: testMax,
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
