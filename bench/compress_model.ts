/**
 * `deno task bench:compress-model`: accuracy retention of a small trained model under each
 * compressor. A 2-layer decoder learns the phase-1 sanity tasks (copy, reverse, sort,
 * addition, parity, recall; byte tokens); every 2-D weight with >= 4,096 entries is then
 * compressed at 4 bits (SeedLM C 8 P 3, VPTQ v 2 k 256), 3 bits, or ternary (BitNet
 * post-training, and BitNet after quantization-aware fine-tuning with the straight-through
 * estimator), and held-out answer-token accuracy is measured with the reconstructed weights.
 * QAT's extra steps get a control: the dense model trained as many steps on the same batches,
 * unquantized, so QAT is read against what the extra training alone gives.
 * Prints accuracy, retention (compressed / dense) and the serialized size of every variant, and
 * the speed of compressed inference against dense (`measureInference`, lib/compress/inference.ts):
 * median ms of one forward pass on the same batch (8 x 48 tokens, logits read back), dense and
 * compressed alternating, 5 repetitions after a warm-up. On the webgpu backend the compressed
 * matmuls run in the WGSL kernels (mode "kernels"); elsewhere the weights are decompressed once
 * (mode "reconstructed", the same work as dense).
 *
 * With --webgpu-speed the compressed files are also timed through the WGSL kernels: a child
 * process of this script (`--speed-child DIR`, so WebGPU never shares a process with the wasm or
 * cpu backend) loads each file still compressed and runs `measureInference` on tfjs-webgpu.
 *
 * Options: --steps N (dense training, default 2000)  --qat-steps N (default 1000)  --seed N
 *          --backend auto|webgpu|wasm|cpu (default auto)  --speed-reps N (default 5)
 *          --webgpu-speed (also time the kernels on WebGPU)  --json FILE
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "node:util";
import { describeBackend, initBackend, parseBackend } from "../lib/backend/mod.ts";
import { Decoder, type DecoderConfig, SMALL_DECODER } from "../lib/nn/decoder.ts";
import type { HostTensor } from "../lib/nn/params.ts";
import { AdamW, type GradMap } from "../lib/train/optim.ts";
import { DEFAULT_TRAIN, train } from "../lib/train/trainer.ts";
import { bitnetCompress } from "../lib/compress/bitnet.ts";
import {
  compressedLayers,
  type CompressionOption,
  compressToTarget,
  loadCompressedLayers,
  STANDARD_OPTIONS,
} from "../lib/compress/pipeline.ts";
import { decodeSafetensors, encodeSafetensors } from "../lib/train/safetensors.ts";
import { type InferenceSpeed, measureInference } from "../lib/compress/inference.ts";
import { seedlmCompress } from "../lib/compress/seedlm.ts";
import { vptqCompress } from "../lib/compress/vptq.ts";
import { batchExamples, generateExamples } from "../datasets/manager.ts";
import { ByteTokenizer } from "../datasets/tokenizers/byte.ts";
import { writeJsonAtomic } from "../lib/util/fs.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    steps: { type: "string", default: "2000" },
    "qat-steps": { type: "string", default: "1000" },
    seed: { type: "string", default: "0" },
    backend: { type: "string", default: "auto" },
    "speed-reps": { type: "string", default: "5" },
    "webgpu-speed": { type: "boolean", default: false },
    "speed-child": { type: "string" },
    json: { type: "string" },
  },
});
const SPEED_BATCH = 8;
if (values["speed-child"]) {
  await speedChild(values["speed-child"]);
  Deno.exit(0);
}

/** Child mode: times every variant of DIR/manifest.json through the kernels on tfjs-webgpu; one JSON line per variant. */
async function speedChild(dir: string): Promise<void> {
  await initBackend("webgpu", { quiet: true });
  const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`)) as {
    cfg: DecoderConfig;
    seqLen: number;
    reps: number;
    variants: { variant: string; file: string }[];
  };
  const dense = decodeSafetensors(await Deno.readFile(`${dir}/dense.safetensors`)).tensors;
  for (const v of m.variants) {
    const { layers } = loadCompressedLayers(await Deno.readFile(v.file), v.file);
    const speed = await measureInference(m.cfg, dense, layers, { batch: SPEED_BATCH, seqLen: m.seqLen, reps: m.reps });
    console.log(JSON.stringify({ variant: v.variant, speed }));
  }
}
const steps = Number(values.steps), qatSteps = Number(values["qat-steps"]), seed = Number(values.seed);
const speedReps = Number(values["speed-reps"]);
if (!Number.isInteger(speedReps) || speedReps < 1) throw new Error(`--speed-reps = ${values["speed-reps"]}: expected a positive integer`);
const info = await initBackend(parseBackend(values.backend!, "--backend"), { quiet: true });
const tok = new ByteTokenizer();
const SEQ = 48, BATCH = 32;
const cfg: DecoderConfig = { ...SMALL_DECODER, vocabSize: tok.vocabSize, maxSeqLen: SEQ };
const windows = (n: number, s: number) => batchExamples(generateExamples("sanity", n, s), tok, { seqLen: SEQ, pack: true });
const trainSet = windows(20000, seed), testSet = windows(1500, seed + 1000);

type Batch = { x: tf.Tensor2D; y: tf.Tensor2D; m: tf.Tensor2D };
const rowsOf = (w: ReturnType<typeof windows>, start: number, n: number): Batch => {
  const idx = Array.from({ length: n }, (_, i) => (start + i) % w.count);
  const take = (a: Int32Array | Float32Array) => idx.flatMap((r) => Array.from(a.subarray(r * SEQ, (r + 1) * SEQ)));
  return {
    x: tf.tensor2d(take(w.ids), [n, SEQ], "int32"),
    y: tf.tensor2d(take(w.targets), [n, SEQ], "int32"),
    m: tf.tensor2d(take(w.mask), [n, SEQ]),
  };
};

/** Answer-token accuracy (teacher forced) on the held-out windows. */
async function accuracy(model: Decoder): Promise<number> {
  let hit = 0, total = 0;
  for (let s = 0; s < testSet.count; s += 256) {
    const n = Math.min(256, testSet.count - s);
    const [h, t] = tf.tidy(() => {
      const b = rowsOf(testSet, s, n);
      const pred = tf.argMax(model.forward(b.x).logits, -1); // [n, SEQ]
      const ok = tf.mul(tf.cast(tf.equal(pred, b.y), "float32"), b.m);
      return [tf.sum(ok), tf.sum(b.m)];
    });
    hit += (await h.data())[0];
    total += (await t.data())[0];
    tf.dispose([h, t]);
  }
  return hit / total;
}

const model = new Decoder(cfg, seed);
const lossOf = (b: Batch) => model.loss(b.x, b.y, b.m);
console.error(
  `${describeBackend(info)}\ntraining the dense model (${model.params.count().toLocaleString("en-US")} parameters, ${steps} steps)...`,
);
await train({ params: model.params, batch: (s) => rowsOf(trainSet, s * BATCH, BATCH), loss: lossOf, tokensPerBatch: BATCH * SEQ }, {
  ...DEFAULT_TRAIN,
  steps,
  lr: 3e-3,
  minLr: 3e-4,
  warmupSteps: 20,
  logEvery: 50,
}, { label: "dense" });
const dense = await model.params.toHost();
const denseAcc = await accuracy(model);
const denseBytes = [...dense.values()].reduce((s, t) => s + t.data.length * 4, 0);

interface Row {
  variant: string;
  accuracy: number;
  retention: number;
  bytes: number;
  ratio: number;
  speed?: InferenceSpeed;
  /** The serialized compressed model (for the WebGPU timing). */
  file?: Uint8Array;
  /** Forward-pass timing through the kernels on WebGPU (--webgpu-speed). */
  webgpu?: InferenceSpeed;
}
const rows: Row[] = [{ variant: "dense f32", accuracy: denseAcc, retention: 1, bytes: denseBytes, ratio: 1 }];

/** Compresses every eligible matrix with `option` (no size target: one setting everywhere) and evaluates. */
async function evaluate(variant: string, weights: Map<string, HostTensor>, option: CompressionOption): Promise<void> {
  const { plan, file } = compressToTarget(weights, { targetBytes: 1, options: [option] }); // smallest candidate everywhere
  const rec = new Map(weights);
  for (const e of plan.entries) if (e.chosen.layer) rec.set(e.name, { shape: e.shape, data: e.chosen.layer.decompress() });
  model.params.load(rec, { source: variant });
  const acc = await accuracy(model);
  const speed = await measureInference(cfg, weights, compressedLayers(plan), { batch: SPEED_BATCH, seqLen: SEQ, reps: speedReps, seed });
  rows.push({
    variant,
    accuracy: acc,
    retention: acc / denseAcc,
    bytes: file.byteLength,
    ratio: denseBytes / file.byteLength,
    speed,
    file,
  });
  console.error(
    `  ${variant}: accuracy ${acc.toFixed(4)}, forward ${speed.compressedMs.toFixed(1)} ms vs dense ${speed.denseMs.toFixed(1)} ms`,
  );
}

console.error("compressing...");
await evaluate("SeedLM C 8 P 3 (4 bits)", dense, { label: "seedlm C8 P3", compress: (m) => seedlmCompress(m, { C: 8, P: 3 }) });
await evaluate("VPTQ v 2 k 256 (4 bits)", dense, { label: "vptq v2 k256", compress: (m) => vptqCompress(m, { v: 2, k: 256, seed }) });
await evaluate("SeedLM C 12 P 4 (3 bits)", dense, STANDARD_OPTIONS.seedlm[1]);
await evaluate("VPTQ v 2 k 64 (3 bits)", dense, STANDARD_OPTIONS.vptq[1]);
const ternary: CompressionOption = {
  label: "bitnet base3/column",
  compress: (m) => bitnetCompress(m, { packing: "base3", scale: "column" }),
};
await evaluate("BitNet b1.58 post-training", dense, ternary);

// Quantization-aware fine-tuning: the forward pass and gradients at the ternary weights, the
// update applied to the latent float weights (the straight-through estimator). Its control is
// the dense model trained the same extra steps, on the same batches, with the same optimizer,
// without quantization: QAT's gain must be read against what those steps give anyway.
const quantized = [...dense].filter(([, t]) => t.shape.length === 2 && t.data.length >= 4096).map(([n]) => n);
const vars = [...model.params.vars.values()];
async function fineTune(label: string, quantize: boolean): Promise<void> {
  console.error(`${label} (${qatSteps} steps)...`);
  model.params.load(dense, { source: "dense" });
  const opt = new AdamW({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  for (let s = 0; s < qatSteps; s++) {
    const latent = new Map<string, tf.Tensor>();
    if (quantize) {
      for (const name of quantized) {
        const v = model.params.get(name);
        latent.set(name, tf.clone(v));
        const host = { rows: v.shape[0], cols: v.shape[1]!, data: (await v.data()) as Float32Array };
        v.assign(tf.tensor(ternary.compress(host).decompress(), v.shape));
      }
    }
    const { value, grads } = tf.tidy(() => tf.variableGrads(() => lossOf(rowsOf(trainSet, (steps + s) * BATCH, BATCH)) as tf.Scalar, vars));
    for (const [name, t] of latent) model.params.get(name).assign(t);
    tf.dispose([...latent.values()]);
    const named: GradMap = new Map();
    for (const [name, v] of model.params.vars) named.set(name, grads[v.name]);
    opt.step(model.params.vars, named, 1e-3);
    if (s % 50 === 0) console.error(`  ${quantize ? "qat" : "control"} ${s}: loss ${(await value.data())[0].toFixed(4)}`);
    tf.dispose([value, ...Object.values(grads)]);
  }
  opt.dispose();
}
await fineTune("control: the dense model trained the QAT's extra steps, unquantized", false);
const controlAcc = await accuracy(model);
rows.push({
  variant: `dense f32 + ${qatSteps} steps (QAT's control)`,
  accuracy: controlAcc,
  retention: controlAcc / denseAcc,
  bytes: denseBytes,
  ratio: 1,
});
await fineTune("BitNet quantization-aware fine-tuning", true);
await evaluate("BitNet b1.58 after QAT", await model.params.toHost(), ternary);
const qat = rows.at(-1)!;
console.error(`  QAT against its control (the dense model trained as long): ${(qat.accuracy / controlAcc).toFixed(3)} of its accuracy`);

console.log(`\naccuracy retention on held-out sanity tasks (answer tokens), ${describeBackend(info)}`);
const mode = rows.find((r) => r.speed)?.speed?.mode ?? "-";
console.log(
  `forward pass: batch 8 x ${SEQ} tokens, median of ${speedReps}, compressed matmuls ${
    mode === "kernels" ? "in the WGSL kernels" : "on decompressed weights"
  } (${mode})`,
);
console.log(
  "variant".padEnd(40) + "accuracy".padStart(10) + "retention".padStart(11) + "bytes".padStart(10) + "x smaller".padStart(11) +
    "dense ms".padStart(10) + "compr. ms".padStart(11) + "speedup".padStart(9) + "prepare ms".padStart(12),
);
for (const r of rows) {
  const s = r.speed;
  console.log(
    r.variant.padEnd(40) + r.accuracy.toFixed(4).padStart(10) + `${(r.retention * 100).toFixed(1)}%`.padStart(11) +
      r.bytes.toLocaleString("en-US").padStart(10) + r.ratio.toFixed(2).padStart(11) +
      (s ? s.denseMs.toFixed(1) : "").padStart(10) + (s ? s.compressedMs.toFixed(1) : "").padStart(11) +
      (s ? `x${s.speedup.toFixed(2)}` : "").padStart(9) + (s ? s.prepareMs.toFixed(0) : "").padStart(12),
  );
}
console.log(
  `BitNet after QAT keeps ${(qat.accuracy / controlAcc * 100).toFixed(1)}% of its control's accuracy (the dense model trained the same ` +
    `${qatSteps} extra steps); the retention column compares every row with the dense model before those steps.`,
);
if (values["webgpu-speed"]) await webgpuSpeed();
if (values.json) await writeJsonAtomic(values.json, { backend: info, rows: rows.map(({ file: _, ...r }) => r) });

/** Times every compressed variant through the kernels on WebGPU in a child process (see the module doc) and prints the table. */
async function webgpuSpeed(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "compress-speed-" });
  try {
    const variants = rows.filter((r) => r.file).map((r, i) => ({ variant: r.variant, file: `${dir}/v${i}.afc`, bytes: r.file! }));
    for (const v of variants) await Deno.writeFile(v.file, v.bytes);
    await Deno.writeFile(`${dir}/dense.safetensors`, encodeSafetensors(dense));
    const manifest = { cfg, seqLen: SEQ, reps: speedReps, variants: variants.map(({ variant, file }) => ({ variant, file })) };
    await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(manifest));
    console.error("timing the kernels on WebGPU (child process)...");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, "--speed-child", dir],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`bench/compress_model: the WebGPU timing child failed (exit ${out.code})`);
    for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
      if (!line.startsWith("{")) continue;
      const r = JSON.parse(line) as { variant: string; speed: InferenceSpeed };
      rows.find((x) => x.variant === r.variant)!.webgpu = r.speed;
    }
    const first = rows.find((r) => r.webgpu)?.webgpu;
    console.log(`\nWebGPU (${first?.mode ?? "-"}), batch ${SPEED_BATCH} x ${SEQ} tokens, median of ${speedReps}: forward ms`);
    console.log(
      "variant".padEnd(40) + "dense ms".padStart(10) + "kernels ms".padStart(12) + "speedup".padStart(9) + "prepare ms".padStart(12),
    );
    for (const r of rows) {
      if (!r.webgpu) continue;
      const s = r.webgpu;
      console.log(
        r.variant.padEnd(40) + s.denseMs.toFixed(1).padStart(10) + s.compressedMs.toFixed(1).padStart(12) +
          `x${s.speedup.toFixed(2)}`.padStart(9) + s.prepareMs.toFixed(0).padStart(12),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
