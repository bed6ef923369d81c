/**
 * `deno task bench:compress`: rate-distortion of every compressor on Gaussian N(0, 1)
 * weight matrices. For each method and setting: serialized bits per weight (every header,
 * codebook and scale counted), MSE, the Gaussian distortion-rate bound D(R) = 2^(-2R) at
 * that rate, MSE / D(R), and the Lloyd-Max scalar quantizer at the nearest integer rate.
 * Writes the table as an HTML plot (log MSE against bits per weight).
 *
 * Two matrix sizes: every method on the small matrix (default 512 x 512), and the 2-bit VPTQ
 * settings again on a realistic layer shape (default 2048 x 2048), where a codebook of a few
 * KB costs a few thousandths of a bit per weight instead of a few hundredths.
 * VPTQ-EC is VPTQ with entropy-coded indices (ECVQ codebook training, rANS-coded indices, the
 * codebook and frequency table counted); its target is the serialized bits per weight.
 *
 * Options: --rows N --cols N (small matrix, default 512 x 512)  --large RxC (default 2048x2048;
 *          0 skips)  --seed N  --out FILE.html  --json FILE
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import { bitnetCompress } from "../lib/compress/bitnet.ts";
import { seedlmCompress } from "../lib/compress/seedlm.ts";
import { vptqCompress } from "../lib/compress/vptq.ts";
import { bitsPerWeight, type CompressedLayer, type Matrix, mse } from "../lib/compress/types.ts";
import { Rng } from "../lib/util/rng.ts";
import { writeAtomic, writeJsonAtomic } from "../lib/util/fs.ts";
import { figurePage } from "../lib/viz/report.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rows: { type: "string", default: "512" },
    cols: { type: "string", default: "512" },
    seed: { type: "string", default: "0" },
    large: { type: "string", default: "2048x2048" },
    out: { type: "string", default: "runs/bench-compress/rate_distortion.html" },
    json: { type: "string" },
  },
});
const rows = Number(values.rows), cols = Number(values.cols), seed = Number(values.seed);
const largeShape = values.large === "0" ? undefined : /^(\d+)x(\d+)$/.exec(values.large!);
if (values.large !== "0" && !largeShape) throw new Error(`--large: '${values.large}' is not ROWSxCOLS (or 0 to skip)`);
for (const [name, v] of [["rows", rows], ["cols", cols], ["seed", seed]] as const) {
  if (!Number.isInteger(v) || v < (name === "seed" ? 0 : 1)) {
    throw new Error(`--${name} = ${v}: expected a ${name === "seed" ? "non-negative" : "positive"} integer`);
  }
}

/** Lloyd-Max scalar quantizer MSE on N(0, 1) at 1-4 bits (Max, 1960). */
const LLOYD_MAX: Record<number, number> = { 1: 0.3634, 2: 0.1175, 3: 0.03455, 4: 0.009501 };

const m: Matrix = { rows, cols, data: new Rng(seed).normals(rows * cols) };
const big: Matrix | undefined = largeShape
  ? {
    rows: Number(largeShape[1]),
    cols: Number(largeShape[2]),
    data: new Rng(seed + 1).normals(Number(largeShape[1]) * Number(largeShape[2])),
  }
  : undefined;
const methods: { method: string; setting: string; matrix?: Matrix; run: () => CompressedLayer }[] = [
  {
    method: "BitNet b1.58",
    setting: "2-bit packing, per-matrix scale",
    run: () => bitnetCompress(m, { packing: "2bit", scale: "matrix" }),
  },
  {
    method: "BitNet b1.58",
    setting: "base-3 packing, per-column scale",
    run: () => bitnetCompress(m, { packing: "base3", scale: "column" }),
  },
  { method: "SeedLM", setting: "C 12, P 4 (3 bits)", run: () => seedlmCompress(m, { C: 12, P: 4 }) },
  { method: "SeedLM", setting: "C 8, P 3 (4 bits)", run: () => seedlmCompress(m, { C: 8, P: 3 }) },
  { method: "VPTQ", setting: "v 8, k 256 (1 bit)", run: () => vptqCompress(m, { v: 8, k: 256, seed }) },
  { method: "VPTQ", setting: "v 4, k 256 (2 bits)", run: () => vptqCompress(m, { v: 4, k: 256, seed }) },
  { method: "VPTQ", setting: "v 4, k 256 + residual 256 (4 bits)", run: () => vptqCompress(m, { v: 4, k: 256, residualK: 256, seed }) },
  { method: "VPTQ", setting: "v 2, k 64 (3 bits)", run: () => vptqCompress(m, { v: 2, k: 64, seed }) },
  { method: "VPTQ-EC", setting: "v 2, target 2.0 bits", run: () => vptqCompress(m, { v: 2, k: 48, entropyBits: 2, seed }) },
];
if (big) {
  const shape = `${big.rows}x${big.cols}`;
  methods.push(
    {
      method: "VPTQ",
      setting: `v 4, k 256, ${shape}, 131k-vector sample`,
      matrix: big,
      run: () => vptqCompress(big, { v: 4, k: 256, seed, trainingVectors: 131072 }),
    },
    {
      method: "VPTQ-EC",
      setting: `v 2, target 2.0 bits, ${shape}`,
      matrix: big,
      run: () => vptqCompress(big, { v: 2, k: 48, entropyBits: 2, seed, trainingVectors: 262144 }),
    },
    {
      method: "VPTQ-EC",
      setting: `v 3, target 2.0 bits, ${shape}`,
      matrix: big,
      run: () => vptqCompress(big, { v: 3, k: 512, entropyBits: 2, seed, trainingVectors: 262144 }),
    },
  );
}

interface Row {
  method: string;
  setting: string;
  shape: string;
  bits: number;
  mse: number;
  bound: number;
  ratio: number;
  lloydMax?: number;
  seconds: number;
}
const rowsOut: Row[] = [];
console.log(
  `rate-distortion on N(0, 1), ${rows} x ${cols}${big ? ` (and ${big.rows} x ${big.cols} where the setting says so)` : ""}, seed ${seed}`,
);
console.log(
  "method".padEnd(14) + "setting".padEnd(46) + "bits/w".padStart(8) + "MSE".padStart(10) + "D(R)".padStart(10) + "MSE/D(R)".padStart(10) +
    "Lloyd-Max".padStart(11) + "s".padStart(7),
);
for (const x of methods) {
  const t0 = performance.now();
  const layer = x.run();
  const seconds = (performance.now() - t0) / 1000;
  const bits = bitsPerWeight(layer);
  const target = x.matrix ?? m;
  const err = mse(layer.decompress(), target.data);
  const bound = 2 ** (-2 * bits);
  const lm = LLOYD_MAX[Math.round(bits)];
  const r: Row = {
    method: x.method,
    setting: x.setting,
    shape: `${target.rows}x${target.cols}`,
    bits,
    mse: err,
    bound,
    ratio: err / bound,
    lloydMax: lm,
    seconds,
  };
  rowsOut.push(r);
  console.log(
    r.method.padEnd(14) + r.setting.padEnd(46) + bits.toFixed(3).padStart(8) + err.toFixed(5).padStart(10) + bound.toFixed(5).padStart(10) +
      r.ratio.toFixed(3).padStart(10) + (lm === undefined ? "" : lm.toFixed(5)).padStart(11) + seconds.toFixed(1).padStart(7),
  );
}

const rates = Array.from({ length: 41 }, (_, i) => 0.25 + i * 0.1);
const byMethod = [...new Set(rowsOut.map((r) => r.method))];
const html = await figurePage("Rate-distortion", `<h1>Rate-distortion on N(0, 1) weights (${rows} x ${cols})</h1>`, [{
  title: "MSE against serialized bits per weight",
  figure: {
    data: [
      {
        type: "scatter",
        mode: "lines",
        name: "Gaussian bound D(R) = 2^(-2R)",
        x: rates,
        y: rates.map((r) => 2 ** (-2 * r)),
        line: { dash: "dash", color: "#999" },
      },
      {
        type: "scatter",
        mode: "markers",
        name: "Lloyd-Max scalar",
        x: [1, 2, 3, 4],
        y: [1, 2, 3, 4].map((b) => LLOYD_MAX[b]),
        marker: { symbol: "x", size: 10 },
      },
      ...byMethod.map((method) => {
        const rs = rowsOut.filter((r) => r.method === method);
        return {
          type: "scatter",
          mode: "markers",
          name: method,
          x: rs.map((r) => r.bits),
          y: rs.map((r) => r.mse),
          text: rs.map((r) => r.setting),
          marker: { size: 10 },
        };
      }),
    ],
    layout: { xaxis: { title: { text: "bits per weight (serialized)" } }, yaxis: { title: { text: "MSE" }, type: "log" }, height: 480 },
  },
}]);
await Deno.mkdir(dirname(values.out!), { recursive: true });
await writeAtomic(values.out!, html);
console.log(`plot: ${values.out}`);
if (values.json) await writeJsonAtomic(values.json, { rows, cols, seed, results: rowsOut });
