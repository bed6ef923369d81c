/** The size-targeting pipeline: fits the real file under the target with the least error, and loads back. */
import assert from "node:assert/strict";
import type { HostTensor } from "../nn/params.ts";
import { Rng } from "../util/rng.ts";
import {
  compressedLayers,
  compressToTarget,
  loadCompressed,
  loadCompressedLayers,
  planCompression,
  reconstruct,
  STANDARD_OPTIONS,
} from "./pipeline.ts";
import { mse } from "./types.ts";

function model(): Map<string, HostTensor> {
  const rng = new Rng(3);
  return new Map<string, HostTensor>([
    ["a_w", { shape: [64, 128], data: rng.normals(64 * 128) }],
    ["b_w", { shape: [128, 64], data: rng.normals(128 * 64, 0.1) }],
    ["a_b", { shape: [128], data: rng.normals(128) }],
  ]);
}
const options = [...STANDARD_OPTIONS.vptq, ...STANDARD_OPTIONS.bitnet];
const denseBytes = (64 * 128 * 2 + 128) * 4;

Deno.test("a generous target keeps everything dense; a tight one compresses, and the file on disk fits", () => {
  const t = model();
  const loose = planCompression(t, { targetBytes: denseBytes * 2, options });
  assert.ok(loose.entries.every((e) => e.chosen.label === "dense"));
  assert.deepEqual(loose.dense, ["a_b"]);
  for (const frac of [0.2, 0.1]) {
    const target = Math.round(denseBytes * frac);
    const { plan, file, fits } = compressToTarget(t, { targetBytes: target, options });
    assert.ok(fits, `${frac}: file ${file.byteLength} bytes over target ${target}`);
    assert.ok(file.byteLength <= target);
    assert.ok(plan.entries.every((e) => e.chosen.label !== "dense"), `${frac}: ${plan.entries.map((e) => e.chosen.label)}`);
    // The file loads back to exactly the plan's reconstruction.
    const back = loadCompressed(file);
    const rec = reconstruct(t, plan);
    for (const [name, x] of rec) assert.deepEqual(back.get(name)!.data, x.data, name);
    // Or still compressed (for the kernels): the plan's layers, byte for byte, and the dense rest.
    const { layers, dense } = loadCompressedLayers(file);
    const chosen = compressedLayers(plan);
    assert.deepEqual([...layers.keys()].sort(), [...chosen.keys()].sort());
    for (const [name, l] of layers) assert.deepEqual(l.encode(), chosen.get(name)!.encode(), name);
    assert.deepEqual([...dense.keys()], ["a_b"]);
  }
  const impossible = compressToTarget(t, { targetBytes: 100, options });
  assert.equal(impossible.fits, false);
  assert.throws(() => loadCompressed(new Uint8Array(4)), /too short for a header/);
});

Deno.test("the greedy choice spends bits where they buy the most: the large-variance matrix keeps more", () => {
  // a_w has 100x the variance of b_w, so equal-rate compression would cost it 100x the error.
  const t = model();
  const { plan } = compressToTarget(t, { targetBytes: Math.round(denseBytes * 0.15), options });
  const [a, b] = plan.entries;
  assert.ok(a.chosen.bytes >= b.chosen.bytes, `a ${a.chosen.label} ${a.chosen.bytes} B vs b ${b.chosen.label} ${b.chosen.bytes} B`);
  // And the plan's total error is no worse than the same-label choice for both.
  const total = plan.entries.reduce((s, e) => s + e.chosen.error, 0);
  for (const label of new Set(plan.entries.flatMap((e) => e.candidates.map((c) => c.label)))) {
    const both = plan.entries.map((e) => e.candidates.find((c) => c.label === label));
    if (both.some((c) => !c)) continue;
    const bytes = both.reduce((s, c) => s + c!.bytes, 0);
    if (bytes <= plan.plannedBytes - 128 * 4) assert.ok(total <= both.reduce((s, c) => s + c!.error, 0) + 1e-9, label);
  }
  const rec = reconstruct(t, plan);
  assert.ok(mse(rec.get("a_w")!.data, t.get("a_w")!.data) < 1, "a_w reconstruction is no better than zeros");
});
