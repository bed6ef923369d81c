/**
 * `deno run -A bench/kernels.ts`: the compressed-weight matmul kernels (`kernels/`) against
 * dense f32 at transformer-layer shapes, in one run: median ms of
 * - dense: the tiled f32 WGSL matmul (`kernels/matmul.ts`), the baseline of every ratio;
 * - ternary: 2-bit packed BitNet codes with a per-column scale (`kernels/ternary_matmul.ts`);
 * - VQ: u32 indices into a [k, v] codebook (`kernels/vq_matmul.ts`);
 * - tfjs: tfjs-webgpu's `tf.matMul` on the same x and W (its own device).
 *
 * Both sides are timed the same way: `--iters` matmuls queued (ours: dispatches in one command
 * buffer; tfjs: calls, which it batches), then one read-back of y; ms = elapsed / iters, median
 * over `--reps`, after one warm-up (which also compiles the pipelines). Before timing, the
 * ternary and VQ outputs are checked against the dense kernel on their decoded weights
 * (tolerance (1e-4 + 1e-4 |y|) * max(1, K / 32), as the kernel tests).
 *
 * Options: --shapes MxKxN,... (default 64x256x256,64x512x512,128x512x1024: about 1 to 2 minutes
 *          on llvmpipe; real GPUs: add 256x512x2048 and larger)  --iters N (10)  --reps N (5)
 *          --r 1|2|4 (tile specialization, 4)  --vq-v N (4)  --vq-k N (256: 2 bits per weight
 *          at v = 4, as ternary)  --no-tfjs  --json FILE
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "node:util";
import { initBackend } from "../lib/backend/mod.ts";
import { Rng } from "../lib/util/rng.ts";
import { writeJsonAtomic } from "../lib/util/fs.ts";
import { type Dispatch, getGpu, outputBuffer, readF32, release, run, storageBuffer } from "../kernels/device.ts";
import { type MatmulDims, matmulDispatch, type TileR } from "../kernels/matmul.ts";
import { packTernary, ternaryMatmulDispatch } from "../kernels/ternary_matmul.ts";
import { vqDecodeRef, vqIndexRows, vqMatmulDispatch } from "../kernels/vq_matmul.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    shapes: { type: "string", default: "64x256x256,64x512x512,128x512x1024" },
    iters: { type: "string", default: "10" },
    reps: { type: "string", default: "5" },
    r: { type: "string", default: "4" },
    "vq-v": { type: "string", default: "4" },
    "vq-k": { type: "string", default: "256" },
    "no-tfjs": { type: "boolean", default: false },
    json: { type: "string" },
  },
});
const int = (name: "iters" | "reps" | "r" | "vq-v" | "vq-k") => {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} = ${values[name]}: expected a positive integer`);
  return v;
};
const iters = int("iters"), reps = int("reps"), vqV = int("vq-v"), vqK = int("vq-k");
const r = int("r");
if (r !== 1 && r !== 2 && r !== 4) throw new Error(`--r = ${r}: expected 1, 2 or 4`);
const shapes: MatmulDims[] = values.shapes.split(",").map((s) => {
  const m = /^(\d+)x(\d+)x(\d+)$/.exec(s.trim());
  if (!m) throw new Error(`--shapes: '${s}' is not MxKxN`);
  return { M: Number(m[1]), K: Number(m[2]), N: Number(m[3]) };
});

const gpu = await getGpu();
if (!gpu) {
  console.error("bench/kernels: no WebGPU device, nothing to measure");
  Deno.exit(1);
}
const { device } = gpu;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Median ms per dispatch of `d` writing `y` (`words` floats): `reps` times, `iters` dispatches
 * in one submission and then one read-back of y (as the tfjs side ends with `await data()`),
 * after one warm-up (which also compiles the pipeline).
 */
async function timeDispatch(d: Dispatch, y: GPUBuffer, words: number): Promise<number> {
  await run(device, d);
  await readF32(device, y, words);
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await run(device, d, iters);
    await readF32(device, y, words);
    ms.push((performance.now() - t0) / iters);
  }
  return median(ms);
}

/** Largest |got - want| over the tolerance (1e-4 + 1e-4 |want|) * max(1, K / 32); <= 1 passes. */
function worstRatio(got: Float32Array, want: Float32Array, K: number): number {
  const f = Math.max(1, K / 32);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / ((1e-4 + 1e-4 * Math.abs(want[i])) * f));
  return worst;
}

interface Row {
  shape: string;
  dense_ms: number;
  ternary_ms: number;
  vq_ms: number;
  tfjs_ms?: number;
  dense_gflops: number;
}

async function benchShape(dims: MatmulDims, rng: Rng): Promise<Row> {
  const { M, K, N } = dims;
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
  const x = rand(M * K), w = rand(K * N);
  const t = Int8Array.from({ length: K * N }, () => rng.int(3) - 1);
  const scale = Float32Array.from({ length: N }, () => 0.5 + rng.next());
  const idx = Uint32Array.from({ length: vqIndexRows(K, vqV) * N }, () => rng.int(vqK));
  const codebook = rand(vqK * vqV);

  const xb = storageBuffer(device, x), y = outputBuffer(device, M * N), yRef = outputBuffer(device, M * N);
  const bufs = {
    w: storageBuffer(device, w),
    codes: storageBuffer(device, packTernary(t, K, N)),
    scale: storageBuffer(device, scale),
    idx: storageBuffer(device, idx),
    codebook: storageBuffer(device, codebook),
    wTernary: storageBuffer(device, Float32Array.from(t, (v, i) => v * scale[i % N])),
    wVq: storageBuffer(device, vqDecodeRef(idx, codebook, K, N, vqV)),
  };
  const opts = { r: r as TileR };
  const dense = await matmulDispatch(device, { a: xb, b: bufs.w, c: y }, dims, opts);
  const ternary = await ternaryMatmulDispatch(
    device,
    { x: xb, codes: bufs.codes, scale: bufs.scale, y },
    { ...dims, perColumn: true },
    opts,
  );
  const vq = await vqMatmulDispatch(device, { x: xb, idx: bufs.idx, codebook: bufs.codebook, y }, { ...dims, v: vqV }, opts);

  // Correctness first: each compressed kernel against the dense kernel on its decoded weights.
  for (const [name, d, wDecoded] of [["ternary", ternary, bufs.wTernary], ["vq", vq, bufs.wVq]] as const) {
    const ref = await matmulDispatch(device, { a: xb, b: wDecoded, c: yRef }, dims, opts);
    await run(device, [d, ref]);
    release(ref);
    const worst = worstRatio(await readF32(device, y, M * N), await readF32(device, yRef, M * N), K);
    if (!(worst <= 1)) throw new Error(`${name} ${M}x${K}x${N}: differs from dense on decoded weights (${worst.toFixed(2)}x tolerance)`);
  }

  const row: Row = {
    shape: `${M}x${K}x${N}`,
    dense_ms: await timeDispatch(dense, y, M * N),
    ternary_ms: await timeDispatch(ternary, y, M * N),
    vq_ms: await timeDispatch(vq, y, M * N),
    dense_gflops: 0,
  };
  row.dense_gflops = (2 * M * K * N) / (row.dense_ms * 1e6);
  release([dense, ternary, vq]);
  for (const b of [xb, y, yRef, ...Object.values(bufs)]) b.destroy();

  if (!values["no-tfjs"]) {
    const a = tf.tensor2d(x, [M, K]), b = tf.tensor2d(w, [K, N]);
    // The same pattern as ours: `iters` matmuls queued, then one read-back of the last result.
    const submission = async (n: number) => {
      const cs = Array.from({ length: n }, () => tf.matMul(a, b));
      await cs[n - 1].data();
      tf.dispose(cs);
    };
    await submission(1);
    const ms: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await submission(iters);
      ms.push((performance.now() - t0) / iters);
    }
    row.tfjs_ms = median(ms);
    tf.dispose([a, b]);
  }
  return row;
}

let tfjsNote = "";
if (!values["no-tfjs"]) {
  const info = await initBackend("webgpu", { quiet: true });
  tfjsNote = `tfjs-webgpu on ${info.adapter ?? "?"}`;
}
console.log(
  `adapter: ${gpu.adapter}${gpu.fallback ? " (software fallback)" : ""}; tile r=${r}; ${iters} dispatches per submission, ` +
    `median of ${reps}; VQ v=${vqV} k=${vqK}; ternary per-column scale${tfjsNote ? `; ${tfjsNote}` : ""}`,
);
const rng = new Rng(0);
const rows: Row[] = [];
for (const dims of shapes) rows.push(await benchShape(dims, rng));

const f = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const cell = (ms: number | undefined, base: number) => (ms === undefined ? "-" : `${f(ms)} (${(ms / base).toFixed(2)}x)`);
const header = ["M x K x N", "dense WGSL ms", "GFLOP/s", "ternary ms (x dense)", "VQ ms (x dense)", "tfjs matMul ms (x dense)"];
const table = rows.map((
  row,
) => [
  row.shape,
  f(row.dense_ms),
  f(row.dense_gflops),
  cell(row.ternary_ms, row.dense_ms),
  cell(row.vq_ms, row.dense_ms),
  cell(row.tfjs_ms, row.dense_ms),
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
const line = (cells: string[]) => "| " + cells.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(" | ") + " |";
console.log(line(header));
console.log("|" + widths.map((w, i) => (i ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2))).join("|") + "|");
for (const t of table) console.log(line(t));
console.log(
  `ternary and VQ outputs checked against the dense kernel on their decoded weights; every column: ${iters} matmuls, then one read-back of y.`,
);

if (values.json) {
  await writeJsonAtomic(values.json, {
    adapter: gpu.adapter,
    fallback: gpu.fallback,
    r,
    iters,
    reps,
    vq: { v: vqV, k: vqK },
    rows,
  });
  console.log(`wrote ${values.json}`);
}
