/**
 * Compressed inference through the WGSL kernels on tfjs's webgpu backend (llvmpipe here):
 * a small decoder whose Linear weights are BitNet (2-bit and base-3), VPTQ (with outlier
 * columns and a residual stage, and entropy-coded) and SeedLM layers, read back from the
 * serialized file, gives the logits that the plain Decoder gives on the CPU with the file's
 * decompressed weights. The CPU reference runs in a child process (lib/compress/cpu_logits.ts) so
 * the cpu backend never shares this process with WebGPU.
 *
 * Tolerance: |gpu - cpu| <= 5e-5 + 5e-5 |cpu| per logit (f32 sums in other orders through
 * 2 blocks of width 64, with f32 SeedLM bases on the GPU against f64 on the CPU, per-kernel
 * error about 1e-5 as kernels_test.ts checks). Skipped, with the reason printed, without an adapter.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { bitnetCompress } from "./bitnet.ts";
import { CompressedDecoder, measureInference } from "./inference.ts";
import { type CompressionPlan, loadCompressedLayers, serializeCompressed } from "./pipeline.ts";
import { seedlmCompress } from "./seedlm.ts";
import type { CompressedLayer } from "./types.ts";
import { vptqCompress } from "./vptq.ts";
import { type DecoderConfig, REFERENCE_DECODER } from "../nn/decoder.ts";
import type { HostTensor } from "../nn/params.ts";
import { Rng } from "../util/rng.ts";

const gpu = (globalThis.navigator as { gpu?: GPU }).gpu;
const adapter = gpu ? await gpu.requestAdapter() : null;
if (!adapter) console.log("compressed forward test skipped: navigator.gpu gave no adapter");

const ATOL = 5e-5, RTOL = 5e-5;
const CFG: DecoderConfig = { ...REFERENCE_DECODER, vocabSize: 48, dModel: 64, nLayers: 2, maxSeqLen: 16 };
const [B, T] = [2, 8];

/** Host weights of CFG's parameters, drawn from a seeded N(0, 0.2) (gains around 1). */
function weights(): Map<string, HostTensor> {
  const rng = new Rng(11);
  const { vocabSize: V, dModel: C, maxSeqLen } = CFG;
  const F = 4 * C;
  const w = new Map<string, HostTensor>();
  const add = (name: string, shape: number[], base = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    w.set(name, { shape, data: Float32Array.from(rng.normals(n, 0.2), (x) => x + base) });
  };
  add("tok", [V, C]);
  add("pos", [maxSeqLen, C]);
  for (let l = 0; l < CFG.nLayers; l++) {
    for (const [n, i, o] of [["qkv", C, 3 * C], ["proj", C, C], ["fc1", C, F], ["fc2", F, C]] as const) {
      add(`l${l}.${n}_w`, [i, o]);
      add(`l${l}.${n}_b`, [o]);
    }
    for (const n of ["ln1", "ln2"]) {
      add(`l${l}.${n}_g`, [C], 1);
      add(`l${l}.${n}_b`, [C]);
    }
  }
  add("lnf_g", [C], 1);
  add("lnf_b", [C]);
  add("head_w", [C, V]);
  return w;
}

const COMPRESS: Record<string, (m: { rows: number; cols: number; data: Float32Array }) => CompressedLayer> = {
  "l0.qkv_w": (m) => bitnetCompress(m, { scale: "column" }),
  "l0.proj_w": (m) => vptqCompress(m, { v: 4, k: 64, residualK: 16, outlierColumns: 2, outlierK: 32, seed: 1 }),
  "l0.fc1_w": (m) => seedlmCompress(m, { C: 8, P: 3, seeds: 1024 }),
  "l0.fc2_w": (m) => vptqCompress(m, { v: 2, k: 64, entropyBits: 3, seed: 2 }),
  "l1.qkv_w": (m) => vptqCompress(m, { v: 4, k: 256, seed: 3 }),
  "l1.proj_w": (m) => seedlmCompress(m, { C: 12, P: 4, seeds: 1024 }),
  "l1.fc1_w": (m) => bitnetCompress(m, { packing: "base3", scale: "matrix" }),
  "l1.fc2_w": (m) => bitnetCompress(m, { scale: "column" }),
  "head_w": (m) => vptqCompress(m, { v: 2, k: 256, seed: 4 }),
};

/** A plan with COMPRESS's choices (the pipeline's own choice is tested in lib/compress). */
function plan(w: Map<string, HostTensor>): CompressionPlan {
  const entries = Object.entries(COMPRESS).map(([name, f]) => {
    const t = w.get(name)!;
    const layer = f({ rows: t.shape[0], cols: t.shape[1], data: t.data });
    const chosen = { label: layer.method, bytes: layer.encode().byteLength, error: 0, layer };
    return { name, shape: t.shape, chosen, candidates: [chosen] };
  });
  return { entries, dense: [...w.keys()].filter((n) => !(n in COMPRESS)), plannedBytes: 0, targetBytes: 1, fits: true };
}

Deno.test({
  name: `compressed forward on webgpu kernels equals the CPU Decoder on the decompressed file (tol ${ATOL} + ${RTOL}|y|)`,
  ignore: !adapter,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "compressed-forward-" });
    try {
      const w = weights();
      const file = join(dir, "model.afc");
      await Deno.writeFile(file, serializeCompressed(w, plan(w)));
      const ids = Array.from({ length: B * T }, (_, i) => (i * 5 + 1) % CFG.vocabSize);
      await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(CFG));
      await Deno.writeTextFile(join(dir, "ids.json"), JSON.stringify({ shape: [B, T], ids }));
      const child = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("./cpu_logits.ts", import.meta.url).pathname,
          file,
          join(dir, "config.json"),
          join(dir, "ids.json"),
          join(dir, "out.f32"),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(child.success, `cpu_logits.ts failed: ${new TextDecoder().decode(child.stderr)}`);
      const want = new Float32Array((await Deno.readFile(join(dir, "out.f32"))).buffer);
      assert.equal(want.length, B * T * CFG.vocabSize);

      const info = await initBackend("webgpu", { quiet: true });
      console.log(`adapter: ${info.adapter}${info.fallbackAdapter ? " (software fallback)" : ""}`);
      const { layers, dense } = loadCompressedLayers(await Deno.readFile(file), file);
      const model = await CompressedDecoder.create(CFG, dense, layers);
      assert.equal(model.mode, "kernels");
      const x = tf.tensor2d(ids, [B, T], "int32");
      const y = model.forward(x);
      const got = (await y.data()) as Float32Array;
      tf.dispose([x, y]);
      let worst = 0;
      for (let i = 0; i < want.length; i++) {
        const err = Math.abs(got[i] - want[i]);
        worst = Math.max(worst, err);
        assert.ok(err <= ATOL + RTOL * Math.abs(want[i]), `logit ${i}: webgpu ${got[i]}, cpu ${want[i]}`);
      }
      console.log(
        `max |webgpu - cpu| = ${worst.toExponential(2)} over ${want.length} logits; kernel calls ${JSON.stringify(model.kernelCalls)}`,
      );
      // Every compressed matmul went through its kernel: 3 ternary, 4 VQ (one with a residual stage), 2 SeedLM.
      assert.deepEqual(model.kernelCalls, { ternary: 3, vq: 4, seedlm: 2 });
      model.dispose();

      const s = await measureInference(CFG, weights(), layers, { batch: B, seqLen: T, reps: 2 });
      console.log(`webgpu: dense ${s.denseMs.toFixed(1)} ms, kernels ${s.compressedMs.toFixed(1)} ms (x${s.speedup.toFixed(2)})`);
      assert.equal(s.mode, "kernels");
      assert.ok(s.denseMs > 0 && s.compressedMs > 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
