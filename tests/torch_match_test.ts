/**
 * End-to-end numerical check against PyTorch: the reference GPT, loaded with the
 * weights the PyTorch peer exported, trained 8 AdamW steps on the same batches, must
 * give PyTorch's 8 losses within 1e-4 (forward, backward and AdamW all have to agree).
 */
import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/mod.ts";
import { train } from "../lib/train/trainer.ts";
import { loadFixture, REFERENCE_TRAIN, referenceTask } from "./torch_ref.ts";

const TOL = 1e-4;

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`PyTorch loss match on ${backend} (8 AdamW steps, tol ${TOL})`, async () => {
    await initBackend(backend, { quiet: true });
    const fx = await loadFixture();
    const { model, task } = referenceTask(fx);
    const res = await train(task, REFERENCE_TRAIN, { quiet: true });
    model.params.dispose();
    const diffs = res.losses.map((l, i) => Math.abs(l - fx.losses[i]));
    console.log(`${backend}: ours ${res.losses.map((l) => l.toFixed(6)).join(" ")}`);
    console.log(`${backend}: max |ours - torch| = ${Math.max(...diffs).toExponential(2)}`);
    assert.equal(res.losses.length, 8);
    diffs.forEach((d, i) => assert.ok(d <= TOL, `step ${i + 1}: ours ${res.losses[i]} vs torch ${fx.losses[i]} (|diff| ${d})`));
  });
}
