/** BitNet b1.58: quantizers against plain loops, packing layouts, serialization, STE gradients, and a QAT run. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { crossEntropy } from "../nn/layers.ts";
import { ParamSet } from "../nn/params.ts";
import { assertClose } from "../testing/gradcheck.ts";
import { DEFAULT_TRAIN, train } from "../train/trainer.ts";
import { Rng } from "../util/rng.ts";
import {
  absmaxQuantize,
  bitLinear,
  bitnetCompress,
  bitnetQat,
  type BitnetScale,
  decodeBitnet,
  fakeQuantActivations,
  fakeQuantWeights,
  pack2bit,
  packBase3,
  roundHalfEven,
  ternarizeParams,
  unpack2bit,
  unpackBase3,
} from "./bitnet.ts";
import { bitsPerWeight, type Matrix } from "./types.ts";

const randMatrix = (rows: number, cols: number, seed: number, std = 1): Matrix => ({
  rows,
  cols,
  data: new Rng(seed).normals(rows * cols, std),
});

/** The paper's definition, written out: gamma = mean|W| (per matrix or column), W~ = RoundClip(W / (gamma + eps), -1, 1), W~ * gamma. */
function referenceTernary(m: Matrix, scale: BitnetScale, eps: number): Float32Array {
  const gammas: number[] = [];
  for (let n = 0; n < (scale === "matrix" ? 1 : m.cols); n++) {
    let s = 0, count = 0;
    for (let k = 0; k < m.rows; k++) {
      for (let j = 0; j < m.cols; j++) {
        if (scale === "column" && j !== n) continue;
        s += Math.abs(m.data[k * m.cols + j]);
        count++;
      }
    }
    gammas.push(Math.fround(s / count)); // stored as f32
  }
  const out = new Float32Array(m.rows * m.cols);
  for (let k = 0; k < m.rows; k++) {
    for (let n = 0; n < m.cols; n++) {
      const g = gammas[scale === "matrix" ? 0 : n];
      const t = Math.max(-1, Math.min(1, roundHalfEven(m.data[k * m.cols + n] / (g + eps))));
      out[k * m.cols + n] = t * g;
    }
  }
  return out;
}

Deno.test("ternary reconstruction equals the definition, per matrix and per column", () => {
  // A hand-worked case: gamma = (0.5 + 1.5 + 2 + 0) / 4 = 1; round(0.5) = 0 (half to even), round(-1.5) = -2 -> clipped to -1.
  const hand = bitnetCompress({ rows: 2, cols: 2, data: Float32Array.of(0.5, -1.5, 2, 0) }, { eps: 0 });
  assert.deepEqual([...hand.decompress()], [0, -1, 1, 0]);
  assert.deepEqual([...hand.codes()], [1, 0, 2, 1]);

  const m = randMatrix(13, 37, 1);
  for (let k = 0; k < m.rows; k++) m.data[k * m.cols + 5] = 0; // an all-zero column: eps keeps it finite (all zeros)
  for (const scale of ["matrix", "column"] as const) {
    for (const packing of ["2bit", "base3"] as const) {
      const layer = bitnetCompress(m, { scale, packing });
      const got = layer.decompress();
      assert.deepEqual([...got], [...referenceTernary(m, scale, 1e-5)], `${scale}/${packing}`);
      // Every value is -gamma, 0 or +gamma of its matrix / column.
      for (let i = 0; i < got.length; i++) {
        const g = layer.scales[scale === "matrix" ? 0 : i % m.cols];
        assert.ok([-g, 0, g].includes(got[i]), `${scale}: value ${got[i]} at ${i} is not in {-${g}, 0, ${g}}`);
      }
    }
  }
  // For Gaussian weights about a third of the entries round to zero with gamma = mean|W| ~ 0.8 std.
  const zeros = bitnetCompress(randMatrix(64, 64, 2)).codes().filter((c) => c === 1).length / 4096;
  assert.ok(zeros > 0.25 && zeros < 0.45, `zero fraction ${zeros}`);
  assert.throws(() => bitnetCompress(m, { packing: "3bit" as "2bit" }), /bitnet\.packing/);
  assert.throws(() => bitnetCompress(m, { scale: "row" as "matrix" }), /bitnet\.scale/);
  assert.throws(() => bitnetCompress(m, { eps: -1 }), /bitnet\.eps/);
  assert.throws(() => bitnetCompress({ rows: 2, cols: 2, data: Float32Array.of(1, NaN, 0, 0) }), /data\[1\]/);
  assert.throws(() => bitnetCompress({ rows: 2, cols: 3, data: new Float32Array(5) }), /rows \* cols = 6/);
});

Deno.test("2-bit and base-3 packing: documented layout and round trips at odd sizes", () => {
  // Row of 3: word = 2 | 0 << 2 | 1 << 4 = 18; bytes: 2 + 0 * 3 + 1 * 9 = 11.
  assert.deepEqual([...pack2bit(Uint8Array.of(2, 0, 1), 1, 3)], [18]);
  assert.deepEqual([...packBase3(Uint8Array.of(2, 0, 1))], [11]);
  // Rows start on a fresh word: [2, 17] takes 2 words per row; column 16 is the low bits of word 1.
  const two = new Uint8Array(34).fill(1);
  two[16] = 2;
  two[17 + 16] = 0;
  const w = pack2bit(two, 2, 17);
  assert.equal(w.length, 4);
  assert.equal(w[0], 0x55555555);
  assert.equal(w[1], 2);
  assert.equal(w[3], 0);
  // 5 trits per byte along the flattened matrix, crossing row ends: all-2s gives 242 per full byte.
  assert.deepEqual([...packBase3(new Uint8Array(7).fill(2))], [242, 8]);

  const rng = new Rng(3);
  for (const [rows, cols] of [[1, 1], [1, 5], [2, 3], [3, 17], [5, 16], [7, 33], [4, 31]]) {
    const codes = Uint8Array.from({ length: rows * cols }, () => rng.int(3));
    assert.deepEqual(unpack2bit(pack2bit(codes, rows, cols), rows, cols), codes, `2bit [${rows}, ${cols}]`);
    assert.deepEqual(unpackBase3(packBase3(codes), rows * cols), codes, `base3 [${rows}, ${cols}]`);
    assert.equal(pack2bit(codes, rows, cols).length, rows * Math.ceil(cols / 16));
    assert.equal(packBase3(codes).length, Math.ceil((rows * cols) / 5));
  }
  assert.throws(() => unpack2bit(Uint32Array.of(3), 1, 1), /code 3 at row 0, column 0/);
  assert.throws(() => unpackBase3(Uint8Array.of(243), 5), /byte 0 = 243/);
  assert.throws(() => pack2bit(Uint8Array.of(3), 1, 1), /code 3/);
});

Deno.test("encode -> decode -> decompress equals decompress, deterministically; malformed bytes are named", () => {
  const m = randMatrix(9, 21, 4, 0.1);
  for (const packing of ["2bit", "base3"] as const) {
    for (const scale of ["matrix", "column"] as const) {
      const layer = bitnetCompress(m, { packing, scale });
      const bytes = layer.encode();
      assert.deepEqual(bitnetCompress(m, { packing, scale }).encode(), bytes, "compressing twice gives the same bytes");
      const back = decodeBitnet(bytes);
      assert.deepEqual(back.decompress(), layer.decompress(), `${packing}/${scale}`);
      assert.deepEqual(back.encode(), bytes, "re-encoding gives the same bytes");
      assert.deepEqual(back.settings, { packing, scale, eps: Math.fround(1e-5) });
      assert.equal(back.method, "bitnet");
    }
  }
  const good = bitnetCompress(m, { packing: "2bit" }).encode();
  const bad = (edit: (b: Uint8Array) => Uint8Array) => edit(good.slice());
  assert.throws(() => decodeBitnet(good.subarray(0, 10)), /shorter than the 20-byte header/);
  assert.throws(() => decodeBitnet(bad((b) => (b[0] = 0, b))), /bad magic/);
  assert.throws(() => decodeBitnet(bad((b) => (b[4] = 9, b))), /version 9/);
  assert.throws(() => decodeBitnet(bad((b) => (b[5] = 7, b))), /packing code 7/);
  assert.throws(() => decodeBitnet(bad((b) => (b[6] = 5, b))), /scale code 5/);
  assert.throws(() => decodeBitnet(good.subarray(0, good.length - 1)), /expected \d+ for \[9, 21\] 2bit matrix/);
  assert.throws(() => decodeBitnet(bad((b) => (b[20] = 0xff, b))), /invalid code 3 at row 0, column 0/);
});

Deno.test("bits per weight of a 256x256 matrix: 2.0 / 1.6 plus header and scales", () => {
  const m = randMatrix(256, 256, 5, 0.02);
  const [K, N] = [256, 256];
  for (const packing of ["2bit", "base3"] as const) {
    for (const scale of ["matrix", "column"] as const) {
      const layer = bitnetCompress(m, { packing, scale });
      const payload = packing === "2bit" ? K * Math.ceil(N / 16) * 4 : Math.ceil(Math.ceil((K * N) / 5) / 4) * 4;
      const scales = 4 * (scale === "matrix" ? 1 : N);
      assert.equal(layer.encode().byteLength, 20 + payload + scales, `${packing}/${scale} bytes`);
      const nominal = packing === "2bit" ? 2 : 1.6;
      const expected = nominal + ((20 + scales) * 8) / (K * N);
      const bpw = bitsPerWeight(layer);
      assert.ok(Math.abs(bpw - expected) / expected < 0.05, `${packing}/${scale}: ${bpw} bits/weight vs ${expected}`);
      console.log(`  ${packing}/${scale}: ${bpw.toFixed(4)} bits/weight (expected ${expected.toFixed(4)})`);
    }
  }
});

Deno.test("8-bit per-token activation quantization matches its formula; tensor weight quantizer matches the host's", async () => {
  await initBackend("cpu", { quiet: true });
  const [M, K] = [6, 9];
  const x = new Rng(6).normals(M * K, 2);
  x.fill(0, 2 * K, 3 * K); // an all-zero row: the eps floor keeps it zero
  for (let j = 0; j < K; j++) x[4 * K + j] *= 1000; // a large row
  const eps = 1e-5;
  const wantQ = new Float32Array(M * K), wantX = new Float32Array(M * K);
  for (let i = 0; i < M; i++) {
    let a = 0;
    for (let j = 0; j < K; j++) a = Math.max(a, Math.abs(x[i * K + j]));
    a = Math.max(Math.fround(a), eps);
    const s = Math.fround(127 / a);
    for (let j = 0; j < K; j++) {
      wantQ[i * K + j] = Math.max(-128, Math.min(127, roundHalfEven(Math.fround(x[i * K + j] * s))));
      wantX[i * K + j] = (wantQ[i * K + j] * a) / 127;
    }
  }
  const X = tf.tensor2d(x, [M, K]);
  const { q, step } = absmaxQuantize(X, eps);
  assert.deepEqual([...(await q.data())], [...wantQ]);
  assert.equal((await step.data()).length, M);
  assertClose(await fakeQuantActivations(X, eps).data(), wantX, 1e-6, 1e-6, "dequantized activations");
  for (let i = 0; i < M; i++) {
    const peak = Math.max(...wantQ.subarray(i * K, (i + 1) * K).map(Math.abs));
    assert.equal(peak, i === 2 ? 0 : 127, `row ${i} peak`);
  }
  // The in-graph weight quantizer agrees with bitnetCompress (f32 vs f64 means differ by ulps).
  const m = randMatrix(11, 7, 7);
  for (const scale of ["matrix", "column"] as const) {
    const got = await fakeQuantWeights(tf.tensor2d(m.data, [11, 7]), scale).data();
    assertClose(got, bitnetCompress(m, { scale }).decompress(), 1e-6, 1e-6, `fakeQuantWeights ${scale}`);
  }
});

Deno.test("bitLinear's forward is the quantized matmul and its backward the dense gradient (STE)", async () => {
  await initBackend("cpu", { quiet: true });
  const rng = new Rng(8);
  const x = tf.tensor3d(rng.normals(2 * 3 * 5), [2, 3, 5]);
  const w = tf.tensor2d(rng.normals(5 * 4, 0.5), [5, 4]);
  const b = tf.tensor1d(rng.normals(4));
  const probe = tf.tensor3d(rng.normals(2 * 3 * 4), [2, 3, 4]);
  const dense = (a: tf.Tensor, m: tf.Tensor, bb: tf.Tensor) =>
    tf.sum(tf.mul(tf.reshape(tf.add(tf.matMul(a as tf.Tensor2D, m as tf.Tensor2D), bb), [2, 3, 4]), probe)) as tf.Scalar;
  const cases = [
    { scale: "matrix", quantizeActivations: true, ste: "quantized" },
    { scale: "column", quantizeActivations: true, ste: "quantized" },
    { scale: "matrix", quantizeActivations: false, ste: "quantized" },
    { scale: "column", quantizeActivations: true, ste: "latent" },
  ] as const;
  for (const opts of cases) {
    const what = JSON.stringify(opts);
    const x2 = tf.reshape(x, [6, 5]) as tf.Tensor2D;
    const xq = opts.quantizeActivations ? fakeQuantActivations(x2) : x2;
    const wq = fakeQuantWeights(w, opts.scale);
    // Forward: Q8(x) @ T(w) + b.
    const y = bitLinear(x, w, b, opts);
    assert.deepEqual(y.shape, [2, 3, 4]);
    assertClose(await y.data(), await tf.add(tf.matMul(xq, wq), b).data(), 1e-5, 1e-5, `${what} forward`);
    // Backward: the dense op's gradient at the quantized (or latent) operands.
    const got = tf.grads((xv: tf.Tensor, wv: tf.Tensor, bv: tf.Tensor) => tf.sum(tf.mul(bitLinear(xv, wv, bv, opts), probe)))([x, w, b]);
    const at = opts.ste === "quantized" ? [xq, wq] : [x2, w];
    const want = tf.grads((a: tf.Tensor, m: tf.Tensor, bb: tf.Tensor) => dense(a, m, bb))([at[0], at[1], b]);
    assert.deepEqual(got[0].shape, [2, 3, 5]);
    assertClose(await got[0].data(), await want[0].data(), 1e-5, 1e-5, `${what} dx`);
    assertClose(await got[1].data(), await want[1].data(), 1e-5, 1e-5, `${what} dw`);
    assertClose(await got[2].data(), await want[2].data(), 1e-5, 1e-5, `${what} db`);
  }
  // Without a bias, two gradients.
  const g2 = tf.grads((xv: tf.Tensor, wv: tf.Tensor) => tf.sum(bitLinear(xv, wv)))([x, w]);
  assert.equal(g2.length, 2);
  assert.throws(() => bitLinear(x, tf.zeros([4, 4])), /input last axis 5 != weight rows 4/);
});

Deno.test("QAT: a BitLinear MLP trains with the trainer and stays accurate with ternary weights", async () => {
  await initBackend("cpu", { quiet: true });
  const [D, H, C] = [8, 32, 4];
  const teacher = new Rng(9).normals(D * C);
  /** Toy task: label = argmax(x T) for a fixed random T [D, C] (chance 25%). */
  const data = (seed: number, rows: number) => {
    const x = new Rng(seed).normals(rows * D);
    const y = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      let best = -Infinity;
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += x[r * D + d] * teacher[d * C + c];
        if (s > best) [best, y[r]] = [s, c];
      }
    }
    return { x: tf.tensor2d(x, [rows, D]), y: tf.tensor1d(y, "int32") };
  };
  const params = new ParamSet(10);
  params.add("w1", [D, H], { kind: "normal", std: 0.35 });
  params.add("b1", [H], { kind: "const", value: 0 });
  params.add("w2", [H, C], { kind: "normal", std: 0.2 });
  params.add("b2", [C], { kind: "const", value: 0 });
  const qat = bitnetQat(params);
  assert.deepEqual([...qat.names], ["w1", "w2"]);
  const logits = (x: tf.Tensor) => qat.linear(tf.relu(qat.linear(x, "w1", "b1")), "w2", "b2") as tf.Tensor2D;
  const cfg = { ...DEFAULT_TRAIN, steps: 150, lr: 2e-2, minLr: 2e-3, warmupSteps: 10, weightDecay: 0 };
  const res = await train(
    {
      params,
      batch: (step: number) => data(100 + step, 64),
      loss: (b: { x: tf.Tensor2D; y: tf.Tensor1D }) => crossEntropy(logits(b.x), b.y),
    },
    cfg,
    { quiet: true },
  );
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  const [first, last] = [mean(res.losses.slice(0, 10)), mean(res.losses.slice(-10))];
  assert.ok(last < 0.5 * first, `loss ${first} -> ${last}`);
  // And it keeps going down: each 30-step window's mean below the previous one's (15% slack: batches differ step to step).
  const windows = [0, 1, 2, 3, 4].map((i) => mean(res.losses.slice(30 * i, 30 * i + 30)));
  windows.slice(1).forEach((w, i) => assert.ok(w < windows[i] * 1.15, `window means ${windows.map((v) => v.toFixed(3))}`));

  const test = data(7, 512);
  const accuracy = async (lg: tf.Tensor) => {
    const pred = Array.from(await tf.argMax(lg, 1).data()), y = Array.from(await test.y.data());
    return pred.reduce((s, p, i) => s + (p === y[i] ? 1 : 0), 0) / y.length;
  };
  const qatAcc = await accuracy(logits(test.x));
  // Deploy: store the weights as packed ternary (1.6 bits), load the dequantized matrices, run the dense
  // layers on 8-bit activations.
  const layers = await ternarizeParams(params, qat.names, { packing: "base3" });
  for (const [name, layer] of layers) {
    const w = await params.get(name).data();
    const g = layer.scales[0];
    assert.ok(w.every((v) => v === 0 || v === g || v === -g), `${name} is not ternary at eval`);
    assert.deepEqual(decodeBitnet(layer.encode()).decompress(), w);
  }
  const dense = (x: tf.Tensor2D, wn: string, bn: string) =>
    tf.add(tf.matMul(fakeQuantActivations(x), params.get(wn) as tf.Tensor2D), params.get(bn));
  const evalAcc = await accuracy(dense(tf.relu(dense(test.x, "w1", "b1")) as tf.Tensor2D, "w2", "b2"));
  console.log(
    `  loss ${first.toFixed(3)} -> ${last.toFixed(3)} (30-step means ${
      windows.map((v) => v.toFixed(3))
    }); accuracy QAT ${qatAcc}, ternary eval ${evalAcc} (chance 0.25)`,
  );
  assert.ok(evalAcc > 0.8, `ternary eval accuracy ${evalAcc}`);
  assert.ok(Math.abs(evalAcc - qatAcc) <= 0.02, `QAT forward ${qatAcc} vs stored ternary ${evalAcc}`);
  params.dispose();
});
