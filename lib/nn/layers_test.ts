/** Layers against plain-TypeScript references, and custom gradients against finite differences. */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/mod.ts";
import { setWasmBlas } from "../backend/blas.ts";
import { assertClose, gradCheck } from "../testing/gradcheck.ts";
import { Rng } from "../util/rng.ts";
import { applyRope, causalSelfAttention, ropeTables } from "./attention.ts";
import { crossEntropy, embedding, gelu, layerNorm, linear, matMulFast, rmsNorm } from "./layers.ts";

const TOL = 1e-5; // f32 against f64 references
const rand = (n: number, seed: number, std = 1) => new Rng(seed).normals(n, std);

// "wasm" multiplies on native BLAS when one is installed; "wasm-xnnpack" on tfjs's own kernels.
for (const variant of ["cpu", "wasm", "wasm-xnnpack"] as const) {
  const t = (name: string, fn: () => Promise<void>) =>
    Deno.test(`${name} [${variant}]`, async () => {
      await initBackend(variant === "cpu" ? "cpu" : "wasm", { quiet: true });
      if (variant !== "cpu") setWasmBlas(variant === "wasm");
      try {
        await fn();
      } finally {
        if (variant === "wasm-xnnpack") setWasmBlas(true);
      }
    });

  t("layerNorm and rmsNorm match plain references", async () => {
    const [N, C] = [5, 7];
    const x = rand(N * C, 1), g = rand(C, 2), b = rand(C, 3);
    const ln = new Float32Array(N * C), rms = new Float32Array(N * C);
    for (let i = 0; i < N; i++) {
      const row = x.subarray(i * C, (i + 1) * C);
      const mean = row.reduce((a, v) => a + v, 0) / C;
      const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / C;
      const ms = row.reduce((a, v) => a + v * v, 0) / C;
      for (let j = 0; j < C; j++) {
        ln[i * C + j] = ((row[j] - mean) / Math.sqrt(variance + 1e-5)) * g[j] + b[j];
        rms[i * C + j] = (row[j] / Math.sqrt(ms + 1e-6)) * g[j];
      }
    }
    const X = tf.tensor2d(x, [N, C]);
    assertClose(await layerNorm(X, tf.tensor1d(g), tf.tensor1d(b)).data(), ln, 1e-5, 1e-5, "layerNorm");
    assertClose(await rmsNorm(X, tf.tensor1d(g)).data(), rms, 1e-5, 1e-5, "rmsNorm");
    // layerNorm's closed-form gradient, for each input.
    const G = tf.tensor1d(g), B = tf.tensor1d(b);
    const probe = tf.tensor2d(rand(N * C, 30), [N, C]);
    const loss = (xv: tf.Tensor, gv: tf.Tensor, bv: tf.Tensor) => tf.sum(tf.mul(layerNorm(xv, gv, bv), probe)) as tf.Scalar;
    await gradCheck((xv) => loss(xv, G, B), X, { what: "dLN/dx" });
    await gradCheck((gv) => loss(X, gv, B), G, { what: "dLN/dg" });
    await gradCheck((bv) => loss(X, G, bv), B, { what: "dLN/db" });
  });

  t("gelu matches the tanh formula", async () => {
    const x = rand(50, 4, 3);
    const ref = Array.from(x, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    assertClose(await gelu(tf.tensor1d(x)).data(), ref, TOL, TOL, "gelu");
    const probe = tf.tensor1d(rand(50, 31));
    await gradCheck((xv) => tf.sum(tf.mul(gelu(xv), probe)), tf.tensor1d(x), { what: "dgelu/dx", samples: 50 });
  });

  t("linear matches a plain matmul; its custom gradient matches finite differences", async () => {
    const [N, I, O] = [3, 4, 5];
    const x = rand(N * I, 5), w = rand(I * O, 6), b = rand(O, 7);
    const ref = new Float32Array(N * O);
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < O; o++) {
        let s = b[o];
        for (let i = 0; i < I; i++) s += x[n * I + i] * w[i * O + o];
        ref[n * O + o] = s;
      }
    }
    assertClose(await linear(tf.tensor2d(x, [N, I]), tf.tensor2d(w, [I, O]), tf.tensor1d(b)).data(), ref, TOL, TOL, "linear");
    const W = tf.tensor2d(w, [I, O]), X = tf.tensor2d(x, [N, I]);
    const probe = tf.tensor2d(rand(N * O, 8), [N, O]);
    await gradCheck((xv) => tf.sum(tf.mul(matMulFast(xv as tf.Tensor2D, W), probe)), X, { what: "d/dx" });
    await gradCheck((wv) => tf.sum(tf.mul(matMulFast(X, wv as tf.Tensor2D), probe)), W, { what: "d/dw" });
    const Bv = tf.tensor1d(b);
    await gradCheck((xv) => tf.sum(tf.mul(linear(xv, W, Bv), probe)), X, { what: "linear d/dx" });
    await gradCheck((wv) => tf.sum(tf.mul(linear(X, wv, Bv), probe)), W, { what: "linear d/dw" });
    await gradCheck((bv) => tf.sum(tf.mul(linear(X, W, bv), probe)), Bv, { what: "linear d/db" });
  });

  t("embedding gathers rows and its scatter gradient matches finite differences", async () => {
    const [V, C] = [6, 3];
    const table = tf.tensor2d(rand(V * C, 9), [V, C]);
    const ids = tf.tensor2d([[1, 4, 1], [0, 5, 4]], [2, 3], "int32");
    const out = await embedding(table, ids).data();
    const tab = await table.data();
    const ref = [1, 4, 1, 0, 5, 4].flatMap((id) => Array.from(tab.subarray(id * C, (id + 1) * C)));
    assertClose(out, ref, 0, 0, "embedding");
    const probe = tf.tensor3d(rand(2 * 3 * C, 10), [2, 3, C]);
    await gradCheck((tv) => tf.sum(tf.mul(embedding(tv as tf.Tensor2D, ids), probe)), table, { what: "d/dtable" });
  });

  t("crossEntropy equals -log softmax at the target (weighted mean) and its gradient matches", async () => {
    const [N, V] = [4, 5];
    const l = rand(N * V, 11, 2);
    const targets = [0, 3, 4, 1];
    const w = [1, 0, 1, 1];
    let num = 0, den = 0;
    for (let n = 0; n < N; n++) {
      const row = l.subarray(n * V, (n + 1) * V);
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
      num += w[n] * (lse - row[targets[n]]);
      den += w[n];
    }
    const L = tf.tensor2d(l, [N, V]);
    const T = tf.tensor1d(targets, "int32");
    const W = tf.tensor1d(w);
    assertClose(await crossEntropy(L, T, W).data(), [num / den], TOL, TOL, "weighted CE");
    await gradCheck((lv) => crossEntropy(lv as tf.Tensor2D, T, W), L, { what: "dCE/dlogits" });
    await gradCheck((lv) => crossEntropy(lv as tf.Tensor2D, T), L, { what: "dCE/dlogits (no mask)" });
  });

  t("rope rotates feature pairs by position angles, with positions divided by the scale", async () => {
    const [T, hd] = [4, 6];
    const x = rand(T * hd, 12);
    const { cos, sin } = ropeTables(T, hd, { base: 10000, scale: 2 });
    const out = await applyRope(tf.tensor4d(x, [1, 1, T, hd]), cos, sin).data();
    const ref = new Float32Array(T * hd);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < hd / 2; i++) {
        const a = (t / 2) * Math.pow(10000, (-2 * i) / hd);
        const [x1, x2] = [x[t * hd + i], x[t * hd + i + hd / 2]];
        ref[t * hd + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
        ref[t * hd + i + hd / 2] = x1 * Math.sin(a) + x2 * Math.cos(a);
      }
    }
    assertClose(out, ref, TOL, TOL, "rope");
  });

  t("causal attention matches a naive per-head loop and never looks ahead", async () => {
    const [B, T, C, H] = [2, 5, 8, 2];
    const hd = C / H;
    const x = rand(B * T * C, 13), wqkv = rand(C * 3 * C, 14, 0.3), bqkv = rand(3 * C, 15, 0.1), wp = rand(C * C, 16, 0.3);
    const qkv = new Float32Array(B * T * 3 * C);
    for (let r = 0; r < B * T; r++) {
      for (let o = 0; o < 3 * C; o++) {
        let s = bqkv[o];
        for (let i = 0; i < C; i++) s += x[r * C + i] * wqkv[i * 3 * C + o];
        qkv[r * 3 * C + o] = s;
      }
    }
    const y = new Float32Array(B * T * C);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < T; i++) {
          const scores: number[] = [];
          for (let j = 0; j <= i; j++) {
            let s = 0;
            for (let d = 0; d < hd; d++) s += qkv[(b * T + i) * 3 * C + h * hd + d] * qkv[(b * T + j) * 3 * C + C + h * hd + d];
            scores.push(s / Math.sqrt(hd));
          }
          const m = Math.max(...scores);
          const e = scores.map((s) => Math.exp(s - m));
          const z = e.reduce((a, v) => a + v, 0);
          for (let d = 0; d < hd; d++) {
            let s = 0;
            for (let j = 0; j <= i; j++) s += (e[j] / z) * qkv[(b * T + j) * 3 * C + 2 * C + h * hd + d];
            y[(b * T + i) * C + h * hd + d] = s;
          }
        }
      }
    }
    const ref = new Float32Array(B * T * C);
    for (let r = 0; r < B * T; r++) {
      for (let o = 0; o < C; o++) {
        let s = 0;
        for (let i = 0; i < C; i++) s += y[r * C + i] * wp[i * C + o];
        ref[r * C + o] = s;
      }
    }
    const out = causalSelfAttention(tf.tensor3d(x, [B, T, C]), {
      qkvW: tf.tensor2d(wqkv, [C, 3 * C]),
      qkvB: tf.tensor1d(bqkv),
      projW: tf.tensor2d(wp, [C, C]),
    }, H);
    assertClose(await out.data(), ref, 1e-4, 1e-4, "attention");
  });
}
