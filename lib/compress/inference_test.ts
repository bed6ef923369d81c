/**
 * Compressed inference on the CPU backend: the forward pass equals `Decoder.forward` on the same
 * (dense or reconstructed) weights, and `measureInference` times both models on one batch.
 * Tolerance on logits: |got - want| <= 1e-5 + 1e-5 |want| (the q/k/v product is one [C, 3C]
 * matmul here, three [C, C] ones in the Decoder: same dot products, possibly another order).
 * The WebGPU kernel path is tested in lib/compress/webgpu_forward_test.ts (its own process).
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { Decoder, type DecoderConfig, SMALL_DECODER } from "../nn/decoder.ts";
import type { HostTensor } from "../nn/params.ts";
import { bitnetCompress } from "./bitnet.ts";
import { CompressedDecoder, measureInference } from "./inference.ts";
import { seedlmCompress } from "./seedlm.ts";
import type { CompressedLayer, Matrix } from "./types.ts";
import { vptqCompress } from "./vptq.ts";

await initBackend("cpu", { quiet: true });

const GPT: DecoderConfig = { ...SMALL_DECODER, vocabSize: 40, dModel: 32, nHeads: 4, maxSeqLen: 12 };
const LLAMA: DecoderConfig = {
  ...GPT,
  norm: "rmsnorm",
  positions: "rope",
  mlp: "swiglu",
  bias: false,
  tieEmbeddings: true,
  mlpRatio: 3,
};

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const tol = 1e-5 + 1e-5 * Math.abs(want[i]);
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `${what}: logit ${i} got ${got[i]}, want ${want[i]} (tol ${tol})`);
  }
}

const ids = () => tf.tensor2d(Int32Array.from({ length: 2 * 9 }, (_, i) => (i * 7 + 3) % GPT.vocabSize), [2, 9], "int32");

async function decoderLogits(cfg: DecoderConfig, weights: Map<string, HostTensor>): Promise<Float32Array> {
  const d = new Decoder(cfg, 0);
  d.params.load(weights);
  const x = ids();
  const y = tf.tidy(() => d.forward(x).logits);
  const out = (await y.data()) as Float32Array;
  tf.dispose([x, y]);
  d.params.dispose();
  return out;
}

async function logits(m: CompressedDecoder): Promise<Float32Array> {
  const x = ids();
  const y = m.forward(x);
  const out = (await y.data()) as Float32Array;
  tf.dispose([x, y]);
  return out;
}

const asMatrix = (t: HostTensor): Matrix => ({ rows: t.shape[0], cols: t.shape[1], data: t.data });

Deno.test("with dense weights the forward pass equals Decoder.forward (GPT-2 and LLaMA-style configs, a previous-token embedding)", async () => {
  for (const cfg of [GPT, LLAMA, { ...LLAMA, prevTokens: 2 }]) {
    const d = new Decoder(cfg, 5);
    const w = await d.params.toHost();
    d.params.dispose();
    const m = await CompressedDecoder.create(cfg, w);
    assert.equal(m.mode, "reconstructed");
    assertClose(await logits(m), await decoderLogits(cfg, w), `${cfg.norm}/${cfg.positions}/${cfg.mlp}/prevTokens ${cfg.prevTokens}`);
    m.dispose();
  }
  const prev = new Decoder({ ...LLAMA, prevTokens: 2 }, 5), w = await prev.params.toHost();
  prev.params.dispose();
  w.delete("prev2_tok");
  await assert.rejects(CompressedDecoder.create({ ...LLAMA, prevTokens: 2 }, w), /prev2_tok/);
});

Deno.test("compressed layers (VPTQ, BitNet, SeedLM, an entropy-coded VPTQ table) give Decoder's logits on the reconstruction", async () => {
  const d = new Decoder(GPT, 6);
  const w = await d.params.toHost();
  d.params.dispose();
  const layers = new Map<string, CompressedLayer>([
    ["l0.qkv_w", vptqCompress(asMatrix(w.get("l0.qkv_w")!), { v: 4, k: 32, residualK: 8, outlierColumns: 3, seed: 1 })],
    ["l0.fc1_w", bitnetCompress(asMatrix(w.get("l0.fc1_w")!), { scale: "column" })],
    ["l1.fc2_w", seedlmCompress(asMatrix(w.get("l1.fc2_w")!), { C: 8, P: 3, seeds: 512 })],
    ["head_w", bitnetCompress(asMatrix(w.get("head_w")!), { packing: "base3" })],
    ["tok", vptqCompress(asMatrix(w.get("tok")!), { v: 2, k: 64, entropyBits: 3, seed: 2 })],
  ]);
  const rest = new Map([...w].filter(([n]) => !layers.has(n)));
  const rec = new Map(w);
  for (const [n, l] of layers) rec.set(n, { shape: [l.rows, l.cols], data: l.decompress() });
  const m = await CompressedDecoder.create(GPT, rest, layers);
  const got = await logits(m);
  assertClose(got, await decoderLogits(GPT, rec), "compressed");
  assert.deepEqual(m.kernelCalls, { ternary: 0, vq: 0, seedlm: 0 }, "no kernels on the cpu backend");
  // The reconstruction moved the logits: the test would not pass with the dense weights.
  const dense = await decoderLogits(GPT, w);
  assert.ok(got.some((x, i) => Math.abs(x - dense[i]) > 1e-3));
  m.dispose();
  await assert.rejects(() => CompressedDecoder.create(GPT, rest, layers, { mode: "kernels" }), /needs tfjs on webgpu, backend is cpu/);
  await assert.rejects(
    () => CompressedDecoder.create(GPT, new Map([...rest].filter(([n]) => n !== "l1.proj_w")), layers),
    /'l1.proj_w' is missing/,
  );
  await assert.rejects(() => CompressedDecoder.create(GPT, w, layers), /'tok' is given both dense and compressed/);
});

Deno.test("measureInference times dense and compressed forward passes on one batch", async () => {
  const d = new Decoder(GPT, 7);
  const w = await d.params.toHost();
  d.params.dispose();
  const layers = new Map<string, CompressedLayer>([["l0.fc1_w", bitnetCompress(asMatrix(w.get("l0.fc1_w")!))]]);
  const s = await measureInference(GPT, w, layers, { batch: 2, seqLen: 8, reps: 3 });
  console.log(
    `cpu: dense ${s.denseMs.toFixed(2)} ms, compressed ${s.compressedMs.toFixed(2)} ms (x${s.speedup.toFixed(2)}), prepare ${
      s.prepareMs.toFixed(1)
    } ms, max logit shift ${s.maxLogitShift.toExponential(2)}`,
  );
  assert.equal(s.backend, "cpu");
  assert.equal(s.mode, "reconstructed");
  assert.deepEqual([s.batch, s.seqLen, s.reps], [2, 8, 3]);
  assert.ok(s.denseMs > 0 && s.compressedMs > 0 && s.prepareMs > 0);
  assert.equal(s.speedup, s.denseMs / s.compressedMs);
  assert.ok(s.maxLogitShift > 1e-4, "the ternary fc1 changes the logits");
  await assert.rejects(() => measureInference(GPT, w, layers, { reps: 0 }), /reps = 0, expected a positive integer/);
});
