/**
 * Fused GrokFast-EMA update over a flat f32 gradient, the formula of `lib/train/grokfast.ts`:
 *
 *   mu <- alpha * mu + (1 - alpha) * g      (mu starts at the first gradient: pass `first`)
 *   g' =  g + lambda * mu
 *
 * One pass reads g and mu and writes both mu (in place) and g' (a separate buffer: WebGPU
 * forbids binding one buffer as two writable storages in a dispatch). `lambda = 0` gives
 * the filter's warm-up behaviour (state updated, gradient passed through).
 *
 * Bindings: 0 = g f32 [n], 1 = mu f32 [n] (read-write), 2 = uniform {n, first, alpha,
 * lambda}, 3 = g' f32 [n].
 */
import {
  type Dispatch,
  getPipeline,
  grid1d,
  INDEX_1D,
  makeDispatch,
  needWords,
  OUTPUT_USAGE,
  outputBuffer,
  positiveInt,
  readF32,
  release,
  run,
  storageBuffer,
  uniformBuffer,
  WG_1D,
} from "./device.ts";

/** The filter's constants and whether this is the first step (mu taken as g). */
export interface EmaParams {
  alpha: number;
  lambda: number;
  first: boolean;
}

/** The kernel's WGSL. */
export function grokfastEmaSource(): string {
  return /* wgsl */ `
struct Params { n: u32, first: u32, alpha: f32, lambda: f32 }

@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> mu: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read_write> g_out: array<f32>;

@compute @workgroup_size(${WG_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  ${INDEX_1D}
  if (i >= params.n) { return; }
  let gi = g[i];
  let prev = select(mu[i], gi, params.first == 1u);
  let m = params.alpha * prev + (1.0 - params.alpha) * gi;
  mu[i] = m;
  g_out[i] = gi + params.lambda * m;
}
`;
}

/** Buffers of one update: g in, mu updated in place, gOut out (all f32 [n]). */
export interface EmaBuffers {
  g: GPUBuffer;
  mu: GPUBuffer;
  gOut: GPUBuffer;
}

function checkParams(p: EmaParams): void {
  if (!(p.alpha >= 0 && p.alpha < 1)) throw new Error(`grokfastEma: alpha = ${p.alpha}: expected in [0, 1)`);
  if (!(p.lambda >= 0)) throw new Error(`grokfastEma: lambda = ${p.lambda}: expected >= 0`);
}

/** Records one update of `n` values. */
export async function grokfastEmaDispatch(device: GPUDevice, bufs: EmaBuffers, n: number, p: EmaParams): Promise<Dispatch> {
  positiveInt(n, "grokfastEma: n");
  checkParams(p);
  needWords(bufs.g, n, "grokfastEma g");
  needWords(bufs.mu, n, "grokfastEma mu");
  needWords(bufs.gOut, n, "grokfastEma gOut");
  const pipeline = await getPipeline(device, "grokfast_ema", null, grokfastEmaSource);
  const u = uniformBuffer(device, [n, p.first ? 1 : 0, p.alpha, p.lambda], [2, 3]);
  return makeDispatch(device, pipeline, [bufs.g, bufs.mu, u, bufs.gOut], grid1d(device, n), [u]);
}

/** One update from host arrays; `mu` undefined means the first step. Returns the new mu and g'. */
export async function grokfastEma(
  device: GPUDevice,
  g: Float32Array,
  mu: Float32Array | undefined,
  p: { alpha: number; lambda: number },
): Promise<{ mu: Float32Array; g: Float32Array }> {
  const n = g.length;
  if (mu && mu.length !== n) throw new Error(`grokfastEma: mu has ${mu.length} values, g has ${n}`);
  const bufs = {
    g: storageBuffer(device, g),
    mu: mu ? storageBuffer(device, mu, OUTPUT_USAGE) : outputBuffer(device, n),
    gOut: outputBuffer(device, n),
  };
  try {
    const d = await grokfastEmaDispatch(device, bufs, n, { ...p, first: !mu });
    await run(device, d);
    release(d);
    return { mu: await readF32(device, bufs.mu, n), g: await readF32(device, bufs.gOut, n) };
  } finally {
    for (const b of Object.values(bufs)) b.destroy();
  }
}

/** Reference update (f64, rounded to f32), the same maths as `emaStep` in lib/train/grokfast.ts. */
export function grokfastEmaRef(
  g: ArrayLike<number>,
  mu: ArrayLike<number> | undefined,
  p: { alpha: number; lambda: number },
): { mu: Float32Array; g: Float32Array } {
  const m = new Float32Array(g.length), out = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const prev = mu ? mu[i] : g[i];
    m[i] = p.alpha * prev + (1 - p.alpha) * g[i];
    out[i] = g[i] + p.lambda * m[i];
  }
  return { mu: m, g: out };
}
