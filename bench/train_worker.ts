/**
 * One backend's side of `deno task bench:train`: trains the PyTorch reference model
 * (tests/data/torch_ref weights and batches) with our stack and prints one JSON line.
 * Usage: deno run -A bench/train_worker.ts <backend> <timed steps> [--profile]
 */
import * as tf from "@tensorflow/tfjs";
import { type BackendName, initBackend } from "../lib/backend/mod.ts";
import { train } from "../lib/train/trainer.ts";
import { loadFixture, REFERENCE_TRAIN, referenceTask } from "../tests/torch_ref.ts";

const backend = Deno.args[0] as BackendName;
const steps = Number(Deno.args[1] ?? 10);
const WARMUP = 2;
const info = await initBackend(backend, { quiet: true });
const fx = await loadFixture();
const { model, task } = referenceTask(fx);

let peak = Deno.memoryUsage().rss;
const stamps: number[] = [];
const t0 = performance.now();
const res = await train(task, { ...REFERENCE_TRAIN, steps: WARMUP + steps }, {
  quiet: true,
  onLog: () => {
    stamps.push(performance.now());
    peak = Math.max(peak, Deno.memoryUsage().rss);
  },
});
const times = stamps.slice(WARMUP).map((t, i) => t - stamps[WARMUP - 1 + i]);
const sorted = [...times].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)];

let profile: { kernel: string; ms: number; calls: number }[] | undefined;
if (Deno.args.includes("--profile")) {
  const vars = [...model.params.vars.values()];
  const p = await tf.profile(() => tf.tidy(() => tf.variableGrads(() => task.loss(task.batch(0, 0)), vars).value));
  const agg = new Map<string, { ms: number; calls: number }>();
  for (const k of p.kernels) {
    const key = `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join("")}`;
    const a = agg.get(key) ?? { ms: 0, calls: 0 };
    a.ms += (await k.kernelTimeMs) as number;
    a.calls += 1;
    agg.set(key, a);
  }
  profile = [...agg].map(([kernel, a]) => ({ kernel, ...a })).sort((a, b) => b.ms - a.ms).slice(0, 15);
}

console.log(JSON.stringify({
  impl: "agent-forge",
  // Our threads: tfjs-wasm runs on one JS thread; its matmuls on OpenBLAS's threads when found.
  backend: info.name === "wasm"
    ? `wasm 1t, ${info.blas ? `OpenBLAS ${/(\d+) threads/.exec(info.blas)?.[1] ?? "?"}t` : "XNNPACK (no BLAS)"}`
    : info.name,
  adapter: info.adapter,
  step_ms: median,
  step_ms_min: sorted[0],
  step_ms_max: sorted.at(-1),
  steps_timed: times.length,
  tokens_per_s: (32 * 64) / (median / 1000),
  loss_first: res.losses[0],
  loss_last: res.losses.at(-1),
  peak_rss_mb: peak / 2 ** 20,
  total_s: (performance.now() - t0) / 1000,
  profile,
}));
