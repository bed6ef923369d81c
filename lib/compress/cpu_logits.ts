/**
 * The CPU reference of lib/compress/webgpu_forward_test.ts, run as its own process so tfjs's cpu
 * backend never shares a process with WebGPU:
 *
 *   deno run -A lib/compress/cpu_logits.ts MODEL CONFIG.json IDS.json OUT.f32
 *
 * Loads a file written by `serializeCompressed` with every layer decompressed (`loadCompressed`),
 * runs the plain `Decoder` of lib/nn/decoder.ts (config from CONFIG.json) on the int ids
 * [B, T] of IDS.json ({ "shape": [B, T], "ids": [...] }) on tfjs's cpu backend, and writes the
 * logits [B, T, V] as little-endian f32 to OUT.f32.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/mod.ts";
import { loadCompressed } from "./pipeline.ts";
import { Decoder, type DecoderConfig } from "../nn/decoder.ts";

const [modelPath, configPath, idsPath, outPath] = Deno.args;
if (!outPath) {
  console.error("usage: deno run -A lib/compress/cpu_logits.ts MODEL CONFIG.json IDS.json OUT.f32");
  Deno.exit(2);
}
await initBackend("cpu", { quiet: true });
const cfg = JSON.parse(await Deno.readTextFile(configPath)) as DecoderConfig;
const { shape, ids } = JSON.parse(await Deno.readTextFile(idsPath)) as { shape: [number, number]; ids: number[] };
const decoder = new Decoder(cfg, 0);
decoder.params.load(loadCompressed(await Deno.readFile(modelPath), modelPath));
const x = tf.tensor2d(ids, shape, "int32");
const logits = (await decoder.forward(x).logits.data()) as Float32Array;
await Deno.writeFile(outPath, new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
