/** The training loop: determinism, accumulation, resume, NaN stop, checkpoints, safetensors. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { join } from "node:path";
import { cpSync } from "node:fs";
import { initBackend } from "../backend/mod.ts";
import { Decoder, type DecoderConfig } from "../nn/decoder.ts";
import type { HostTensor } from "../nn/params.ts";
import { Rng } from "../util/rng.ts";
import { loadLatestCheckpoint } from "./checkpoint.ts";
import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
import { DEFAULT_TRAIN, NonFiniteLossError, train, type TrainConfig } from "./trainer.ts";
import { makeGradFilter } from "./grokfast.ts";
import { emaDecayAt } from "./ema.ts";
import { clearStop, requestStop, StopRequested } from "../util/stop.ts";

/** An interruption after step `n`, the way a SIGTERM arrives: the trainer checkpoints and throws StopRequested. */
function interruptAt(n: number) {
  return (s: number) => {
    if (s === n) requestStop("SIGTERM");
    return false;
  };
}

/** Runs `fn` expecting it to be interrupted (StopRequested), then forgets the stop request. */
async function interrupted(fn: () => Promise<unknown>): Promise<void> {
  try {
    await assert.rejects(fn(), (e: unknown) => e instanceof StopRequested && e.signal === "SIGTERM");
  } finally {
    clearStop();
  }
}

const TINY: DecoderConfig = {
  vocabSize: 12,
  dModel: 16,
  nHeads: 2,
  nLayers: 2,
  mlpRatio: 2,
  maxSeqLen: 8,
  norm: "rmsnorm",
  positions: "rope",
  ropeBase: 10000,
  ropeScale: 1,
  mlp: "swiglu",
  bias: false,
  tieEmbeddings: true,
  initStd: 0.05,
  normEps: 1e-6,
};
const CFG: TrainConfig = { ...DEFAULT_TRAIN, steps: 12, lr: 1e-2, minLr: 1e-3, warmupSteps: 2, logEvery: 1 };

/** Sequences counting up mod V from a random start; batch rows are split by micro-batch. */
function batchFor(step: number, micro: number, rows: number) {
  const rng = new Rng(1000 * step + micro);
  const x: number[] = [], y: number[] = [];
  for (let r = 0; r < rows; r++) {
    let v = rng.int(12);
    for (let t = 0; t < 8; t++) {
      x.push(v);
      v = (v + 1) % 12;
      y.push(v);
    }
  }
  return { x: tf.tensor2d(x, [rows, 8], "int32"), y: tf.tensor2d(y, [rows, 8], "int32") };
}

function task(model: Decoder, rows = 8) {
  return {
    params: model.params,
    batch: (s: number, m: number) => batchFor(s, m, rows),
    loss: (b: { x: tf.Tensor2D; y: tf.Tensor2D }) => model.loss(b.x, b.y),
  };
}

Deno.test("same seed, same backend: identical losses; and the loss goes down", async () => {
  await initBackend("wasm", { quiet: true });
  const a = new Decoder(TINY, 7), b = new Decoder(TINY, 7);
  const ra = await train(task(a), CFG, { quiet: true });
  const rb = await train(task(b), CFG, { quiet: true });
  assert.deepEqual(ra.losses, rb.losses);
  assert.ok(ra.losses.at(-1)! < ra.losses[0] * 0.7, `loss ${ra.losses[0]} -> ${ra.losses.at(-1)}`);
  const c = new Decoder(TINY, 8);
  assert.notDeepEqual((await train(task(c), { ...CFG, steps: 2 }, { quiet: true })).losses, ra.losses.slice(0, 2));
  [a, b, c].forEach((m) => m.params.dispose());
});

Deno.test("gradient accumulation over micro-batches equals the mean over the same rows", async () => {
  await initBackend("cpu", { quiet: true });
  // 2 micro-batches of 4 rows vs 1 batch holding the same 8 rows.
  const a = new Decoder(TINY, 3), b = new Decoder(TINY, 3);
  const both = (s: number) => {
    const p = batchFor(s, 0, 4), q = batchFor(s, 1, 4);
    return { x: tf.concat([p.x, q.x]) as tf.Tensor2D, y: tf.concat([p.y, q.y]) as tf.Tensor2D };
  };
  const cfg = { ...CFG, steps: 3, gradClip: 0 };
  const ra = await train({ ...task(a, 4) }, { ...cfg, gradAccum: 2 }, { quiet: true });
  const rb = await train({ params: b.params, batch: both, loss: (x) => b.loss(x.x, x.y) }, cfg, { quiet: true });
  ra.losses.forEach((l, i) => assert.ok(Math.abs(l - rb.losses[i]) < 1e-5, `step ${i}: ${l} vs ${rb.losses[i]}`));
  const pa = await a.params.toHost(), pb = await b.params.toHost();
  for (const [k, t] of pa) assert.ok(t.data.every((v, i) => Math.abs(v - pb.get(k)!.data[i]) < 1e-5), k);
  [a, b].forEach((m) => m.params.dispose());
});

Deno.test("resume from a checkpoint continues exactly as an uninterrupted run", async () => {
  await initBackend("wasm", { quiet: true });
  const dir = await Deno.makeTempDir();
  const full = new Decoder(TINY, 5);
  const ref = await train(task(full), CFG, { quiet: true });
  // Interrupted after 5 steps (it checkpoints there), then a fresh model resumes.
  const first = new Decoder(TINY, 5);
  await interrupted(() => train(task(first), { ...CFG, saveEvery: 100 }, { quiet: true, checkpointDir: dir, shouldStop: interruptAt(5) }));
  const ck = await loadLatestCheckpoint(dir);
  assert.equal(ck?.meta.step, 5);
  assert.equal(ck?.meta.dataPosition.step, 5);
  assert.equal(ck?.meta.optimizer.t, 5);
  const second = new Decoder(TINY, 99); // different init: everything must come from the checkpoint
  const res = await train(task(second), { ...CFG, saveEvery: 5 }, { quiet: true, checkpointDir: dir, resume: true });
  assert.equal(res.resumedFrom, 5);
  assert.deepEqual(res.losses, ref.losses.slice(5));
  [full, first, second].forEach((m) => m.params.dispose());
  await Deno.remove(dir, { recursive: true });
});

Deno.test("weight EMA: the trained model is the average of the steps' weights, and a resume restores it from the checkpoint", async () => {
  await initBackend("wasm", { quiet: true });
  const cfg = { ...CFG, emaDecay: 0.9 };
  // The reference average, computed on the host from the weights after every step (shouldStop sees them).
  const ref = new Decoder(TINY, 5), snaps: Map<string, HostTensor>[] = [];
  const keep = () => {
    snaps.push(new Map([...ref.params.vars].map(([k, v]) => [k, { shape: v.shape, data: v.dataSync() as Float32Array }])));
    return false;
  };
  await train(task(ref), CFG, { quiet: true, shouldStop: keep });
  const avg = new Map<string, Float32Array>();
  const init = new Decoder(TINY, 5);
  for (const [k, v] of init.params.vars) avg.set(k, Float32Array.from(v.dataSync()));
  snaps.forEach((snap, i) => {
    const d = emaDecayAt(0.9, i + 1);
    for (const [k, a] of avg) a.forEach((x, j) => (a[j] = d * x + (1 - d) * snap.get(k)!.data[j]));
  });
  const withEma = new Decoder(TINY, 5);
  await train(task(withEma), cfg, { quiet: true });
  for (const [k, v] of withEma.params.vars) {
    const got = v.dataSync(), want = avg.get(k)!;
    assert.ok(got.every((x, j) => Math.abs(x - want[j]) < 1e-5), `${k}: the model is not the weight average`);
  }
  // The average is not the last step's weights.
  const emb = withEma.params.vars.keys().next().value!;
  assert.ok(withEma.params.get(emb).dataSync().some((x, j) => Math.abs(x - snaps.at(-1)!.get(emb)!.data[j]) > 1e-5));
  // Interrupted after 5 steps and resumed on a fresh model: the same average.
  const dir = await Deno.makeTempDir();
  const first = new Decoder(TINY, 5);
  await interrupted(() => train(task(first), { ...cfg, saveEvery: 100 }, { quiet: true, checkpointDir: dir, shouldStop: interruptAt(5) }));
  const second = new Decoder(TINY, 99);
  await train(task(second), cfg, { quiet: true, checkpointDir: dir, resume: true });
  for (const [k, v] of second.params.vars) {
    const got = v.dataSync(), want = withEma.params.get(k).dataSync();
    assert.ok(got.every((x, j) => Math.abs(x - want[j]) < 1e-6), `${k}: resumed average differs`);
  }
  [ref, init, withEma, first, second].forEach((m) => m.params.dispose());
  await Deno.remove(dir, { recursive: true });
});

for (const kind of ["ema", "ma"] as const) {
  Deno.test(`resume with a Grokfast-${kind} filter: its state comes back from the checkpoint`, async () => {
    await initBackend("wasm", { quiet: true });
    const dir = await Deno.makeTempDir();
    const gf = { kind, alpha: 0.8, lambda: 2, window: 3, warmup: 0 };
    const full = new Decoder(TINY, 5);
    const ref = await train(task(full), CFG, { quiet: true, gradFilter: makeGradFilter(gf) });
    const first = new Decoder(TINY, 5);
    await interrupted(() =>
      train(task(first), { ...CFG, saveEvery: 5 }, {
        quiet: true,
        checkpointDir: dir,
        shouldStop: interruptAt(5),
        gradFilter: makeGradFilter(gf),
      })
    );
    const ck = await loadLatestCheckpoint(dir);
    assert.ok(ck?.gradFilter && ck.gradFilter.size > 1, "no filter state in the checkpoint");
    const copy = await Deno.makeTempDir();
    cpSync(dir, copy, { recursive: true });
    const second = new Decoder(TINY, 99);
    const res = await train(task(second), { ...CFG, saveEvery: 5 }, {
      quiet: true,
      checkpointDir: dir,
      resume: true,
      gradFilter: makeGradFilter(gf),
    });
    // EMA state round-trips exactly; MA's running sum is rebuilt from its window (float rounding only).
    res.losses.forEach((l, i) =>
      assert.ok(Math.abs(l - ref.losses[5 + i]) <= (kind === "ema" ? 0 : 1e-5), `step ${5 + i}: ${l} vs ${ref.losses[5 + i]}`)
    );
    // Without the filter state the run differs: the check above can fail.
    const third = new Decoder(TINY, 99);
    const fresh = makeGradFilter(gf);
    const plain = await train(task(third), { ...CFG, saveEvery: 5 }, {
      quiet: true,
      checkpointDir: dir,
      resume: true,
      gradFilter: fresh.filter,
    });
    assert.notDeepEqual(plain.losses.slice(0, 3), ref.losses.slice(5, 8));
    [full, first, second, third].forEach((m) => m.params.dispose());
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(copy, { recursive: true });
  });
}

Deno.test("a run stopped early (shouldStop) stays stopped when resumed; its detector is rebuilt through onResume", async () => {
  await initBackend("wasm", { quiet: true });
  const dir = await Deno.makeTempDir();
  const m = new Decoder(TINY, 5);
  const first = await train(task(m), { ...CFG, saveEvery: 4 }, { quiet: true, checkpointDir: dir, shouldStop: (s) => s === 6 });
  assert.deepEqual([first.steps, first.stoppedEarly], [6, true]);
  const resumedAt: number[] = [];
  const again = await train(task(m), { ...CFG, saveEvery: 4 }, {
    quiet: true,
    checkpointDir: dir,
    resume: true,
    onResume: (s) => void resumedAt.push(s),
  });
  assert.deepEqual([again.steps, again.stoppedEarly, again.losses.length, resumedAt], [6, true, 0, [6]]);
  m.params.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a NaN loss stops training with the last good state saved", async () => {
  await initBackend("wasm", { quiet: true });
  const dir = await Deno.makeTempDir();
  const m = new Decoder(TINY, 1);
  const t = task(m);
  // From step 3 on, the loss is NaN.
  const poisoned = {
    ...t,
    batch: (s: number, mi: number) => ({ ...t.batch(s, mi), poison: s >= 3 }),
    loss: (b: { x: tf.Tensor2D; y: tf.Tensor2D; poison: boolean }) => (b.poison ? tf.mul(t.loss(b), NaN) : t.loss(b)) as tf.Scalar,
  };
  await assert.rejects(train(poisoned, CFG, { quiet: true, checkpointDir: dir }), (e: unknown) => {
    assert.ok(e instanceof NonFiniteLossError);
    assert.equal(e.step, 3);
    return true;
  });
  const ck = await loadLatestCheckpoint(dir);
  assert.equal(ck?.meta.step, 3);
  const saved = ck!.model.get("tok")!.data;
  assert.ok(saved.every(Number.isFinite));
  m.params.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("safetensors: round trip, 8-byte aligned header, and errors that name the tensor", () => {
  const tensors = new Map<string, HostTensor>([
    ["a.w", { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, -6.5]) }],
    ["b", { shape: [1], data: new Float32Array([Math.PI]) }],
  ]);
  const bytes = encodeSafetensors(tensors, { step: "4" });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  assert.deepEqual(header["a.w"], { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] });
  assert.deepEqual(header["b"].data_offsets, [24, 28]);
  const back = decodeSafetensors(bytes);
  assert.deepEqual(back.metadata, { step: "4" });
  assert.deepEqual([...back.tensors.get("a.w")!.data], [1, 2, 3, 4, 5, -6.5]);
  assert.equal(back.tensors.get("b")!.data[0], Math.fround(Math.PI));
  assert.throws(() => decodeSafetensors(bytes.subarray(0, bytes.length - 4), "x.safetensors"), /x\.safetensors: b\.data_offsets/);
});

Deno.test("checkpoints are folders renamed into place; old ones are pruned", async () => {
  await initBackend("wasm", { quiet: true });
  const dir = await Deno.makeTempDir();
  const m = new Decoder(TINY, 2);
  await train(task(m), { ...CFG, steps: 9, saveEvery: 2 }, { quiet: true, checkpointDir: dir, config: { hello: 1 } });
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  assert.deepEqual(names.sort(), ["latest.json", "step-000008", "step-000009"]);
  const ck = await loadLatestCheckpoint(dir);
  assert.deepEqual(ck?.meta.config, { hello: 1 });
  assert.ok(ck!.optimizer.has("m.tok") && ck!.optimizer.has("v.tok"));
  assert.ok(await Deno.stat(join(dir, "step-000009", "model.safetensors")));
  m.params.dispose();
  await Deno.remove(dir, { recursive: true });
});
