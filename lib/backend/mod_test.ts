/** Backend selection: explicit requests, the environment override, and bad names. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { BACKEND_ENV, describeBackend, initBackend, parseBackend } from "./mod.ts";

Deno.test("explicit requests select that backend; the env var overrides auto", async () => {
  for (const b of ["cpu", "wasm"] as const) {
    const info = await initBackend(b, { quiet: true });
    assert.equal(info.name, b);
    assert.equal(tf.getBackend(), b);
    assert.equal(info.reason, "flag");
  }
  Deno.env.set(BACKEND_ENV, "cpu");
  try {
    const info = await initBackend("auto", { quiet: true });
    assert.equal(info.name, "cpu");
    assert.equal(info.reason, "env");
  } finally {
    Deno.env.delete(BACKEND_ENV);
  }
  const noBlas = describeBackend({ name: "wasm", reason: "auto", adapter: "llvmpipe", fallbackAdapter: true });
  assert.match(noBlas, /wasm \(auto; adapter llvmpipe, software fallback; matmuls on XNNPACK/);
  assert.match(noBlas, /\nwarning: no OpenBLAS found: training will run about 5\.6x slower .*apt-get install libopenblas0-pthread/);
  const withBlas = describeBackend({ name: "wasm", reason: "auto", blas: "OpenBLAS 0.3.21, 2 threads" });
  assert.doesNotMatch(withBlas, /warning/);
});

Deno.test("auto never picks WebGPU on a software fallback adapter", async () => {
  const info = await initBackend("auto", { quiet: true });
  if (info.fallbackAdapter || !info.adapter) assert.notEqual(info.name, "webgpu");
  else assert.equal(info.name, "webgpu");
});

Deno.test("bad backend names are rejected with the accepted values", () => {
  assert.throws(() => parseBackend("tpu", "--backend"), /--backend: unknown backend 'tpu', expected one of auto, webgpu, wasm, cpu/);
});
