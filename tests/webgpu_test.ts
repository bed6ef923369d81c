/**
 * WebGPU: the reference model's first 2 AdamW steps match PyTorch's losses within 1e-4.
 * Runs in its own process (`deno task test` does that): mixing WebGPU with other
 * backends in one process occasionally aborted at exit. On a machine without a GPU,
 * Deno gives the llvmpipe software adapter, slow (~35 s a step here) but exact.
 */
import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/mod.ts";
import { train } from "../lib/train/trainer.ts";
import { loadFixture, REFERENCE_TRAIN, referenceTask } from "./torch_ref.ts";

const STEPS = 2;
const TOL = 1e-4;
const gpu = (globalThis.navigator as { gpu?: GPU }).gpu;
const adapter = gpu ? await gpu.requestAdapter() : null;

Deno.test({
  name: `PyTorch loss match on webgpu (${STEPS} AdamW steps, tol ${TOL})`,
  ignore: !adapter,
  fn: async () => {
    const info = await initBackend("webgpu", { quiet: true });
    console.log(`adapter: ${info.adapter}${info.fallbackAdapter ? " (software fallback)" : ""}`);
    const fx = await loadFixture();
    const { model, task } = referenceTask(fx);
    const res = await train(task, { ...REFERENCE_TRAIN, steps: STEPS }, { quiet: true });
    model.params.dispose();
    console.log(
      `webgpu: ours ${res.losses.map((l) => l.toFixed(6)).join(" ")}; torch ${
        fx.losses.slice(0, STEPS).map((l) => l.toFixed(6)).join(" ")
      }`,
    );
    res.losses.forEach((l, i) => assert.ok(Math.abs(l - fx.losses[i]) <= TOL, `step ${i + 1}: ours ${l} vs torch ${fx.losses[i]}`));
  },
});
if (!adapter) console.log("webgpu test skipped: navigator.gpu gave no adapter");
