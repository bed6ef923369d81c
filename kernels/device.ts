/**
 * The WebGPU device the kernels in `kernels/` run on, and the few helpers every kernel uses:
 * storage/uniform buffers from typed arrays, compiled pipelines cached per (kernel,
 * specialization), dispatches recorded into one compute pass, and reading a buffer back.
 *
 * One device per process: `getGpu()` asks `navigator.gpu` once and answers the same
 * promise afterwards. Where no adapter exists it resolves to undefined and prints why
 * (once), so tests can `ignore` and benches can stop with a reason. On a machine without a
 * GPU, Deno's WebGPU gives Mesa's llvmpipe software adapter: slow but correct.
 */

/** The process's device with a description of its adapter. */
export interface GpuContext {
  device: GPUDevice;
  /** The adapter's description (e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`). */
  adapter: string;
  /** True on a software fallback adapter (llvmpipe). */
  fallback: boolean;
}

let pending: Promise<GpuContext | undefined> | undefined;

async function openGpu(quiet: boolean): Promise<GpuContext | undefined> {
  const say = (why: string) => {
    if (!quiet) console.log(`kernels: no WebGPU device (${why})`);
    return undefined;
  };
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) return say("navigator.gpu is missing");
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return say(`requestAdapter failed: ${(e as Error).message}`);
  }
  if (!adapter) return say("navigator.gpu.requestAdapter() gave no adapter");
  let device: GPUDevice;
  try {
    // Large buffers: ask for what the adapter allows rather than the 128/256 MiB defaults.
    device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
      },
    });
  } catch (e) {
    return say(`requestDevice failed: ${(e as Error).message}`);
  }
  device.lost.then((info) => {
    if (info.reason !== "destroyed") console.error(`kernels: WebGPU device lost (${info.message})`);
    pending = undefined;
  });
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacy = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return {
    device,
    adapter: info.description || info.vendor || "unknown adapter",
    fallback: Boolean(info.isFallbackAdapter ?? legacy),
  };
}

/** The process's device (created on the first call); undefined, with the reason printed, when none exists. */
export function getGpu(opts: { quiet?: boolean } = {}): Promise<GpuContext | undefined> {
  pending ??= openGpu(opts.quiet ?? false);
  return pending;
}

/** Shorthand for `(await getGpu()).device`. */
export async function getDevice(opts: { quiet?: boolean } = {}): Promise<GPUDevice | undefined> {
  return (await getGpu(opts))?.device;
}

/** The typed arrays a storage buffer can be made from (4-byte elements, as WGSL's f32/u32/i32). */
export type Words = Float32Array | Uint32Array | Int32Array;

/** Usage of a kernel input: read by shaders, and rewritable from the host. */
export const INPUT_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
/** Usage of a kernel output: written by shaders and copyable to a staging buffer for reading. */
export const OUTPUT_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/**
 * A storage buffer holding `data` (at least 4 bytes: WebGPU refuses empty bindings).
 * `usage` defaults to an input; pass `OUTPUT_USAGE` for a buffer that is updated in place and read back.
 */
export function storageBuffer(device: GPUDevice, data: Words, usage: number = INPUT_USAGE, label?: string): GPUBuffer {
  const buffer = device.createBuffer({ label, size: Math.max(4, data.byteLength), usage, mappedAtCreation: true });
  const view = new Uint8Array(buffer.getMappedRange());
  view.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  buffer.unmap();
  return buffer;
}

/** A zero-filled output buffer of `length` 4-byte words. */
export function outputBuffer(device: GPUDevice, length: number, label?: string): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(4, length * 4), usage: OUTPUT_USAGE });
}

/** A uniform buffer holding `words` (each a u32, or an f32 where `floats` marks its index). */
export function uniformBuffer(device: GPUDevice, words: number[], floats: readonly number[] = []): GPUBuffer {
  const size = Math.max(16, Math.ceil(words.length / 4) * 16);
  const bytes = new ArrayBuffer(size);
  const u = new Uint32Array(bytes), f = new Float32Array(bytes);
  words.forEach((w, i) => {
    if (floats.includes(i)) f[i] = w;
    else {
      if (!Number.isInteger(w) || w < 0 || w > 0xffffffff) throw new Error(`uniform word ${i} = ${w}: expected a u32`);
      u[i] = w;
    }
  });
  const buffer = device.createBuffer({ size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
  new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(bytes));
  buffer.unmap();
  return buffer;
}

const pipelines = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

async function compile(device: GPUDevice, label: string, code: string, entryPoint: string): Promise<GPUComputePipeline> {
  const module = device.createShaderModule({ label, code });
  try {
    return await device.createComputePipelineAsync({ label, layout: "auto", compute: { module, entryPoint } });
  } catch (e) {
    const info = await module.getCompilationInfo();
    const msgs = info.messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`).join("; ");
    throw new Error(`kernel ${label}: pipeline creation failed: ${(e as Error).message}${msgs ? ` (${msgs})` : ""}`);
  }
}

/**
 * The compiled pipeline of `kernel` under `specialization` (any JSON-able value that decides
 * the WGSL text, e.g. a tile size) and `entryPoint`; `source` is called only on a cache miss.
 */
export function getPipeline(
  device: GPUDevice,
  kernel: string,
  specialization: unknown,
  source: () => string,
  entryPoint = "main",
): Promise<GPUComputePipeline> {
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, cache = new Map());
  const key = `${kernel}|${JSON.stringify(specialization ?? null)}|${entryPoint}`;
  let p = cache.get(key);
  if (!p) {
    p = compile(device, key, source(), entryPoint);
    cache.set(key, p);
    p.catch(() => cache.delete(key)); // a failed compile is not cached
  }
  return p;
}

/** How many pipelines `device` has cached (tests check that specializations share or split them). */
export function cachedPipelines(device: GPUDevice): number {
  return pipelines.get(device)?.size ?? 0;
}

/** One recorded kernel launch: pipeline, bound buffers, grid; `owned` buffers (uniforms) are freed by `release`. */
export interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
  owned: GPUBuffer[];
}

/** A dispatch binding `buffers[i]` at @group(0) @binding(i). */
export function makeDispatch(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  buffers: GPUBuffer[],
  workgroups: [number, number, number],
  owned: GPUBuffer[] = [],
): Dispatch {
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups.some((w) => !Number.isInteger(w) || w < 1 || w > max)) {
    throw new Error(`dispatch grid ${workgroups.join("x")}: each dimension must be an integer in [1, ${max}]`);
  }
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  return { pipeline, bindGroup, workgroups, owned };
}

/** Frees the buffers a dispatch owns (its uniforms); the caller's buffers are untouched. */
export function release(d: Dispatch | Dispatch[]): void {
  for (const x of Array.isArray(d) ? d : [d]) for (const b of x.owned) b.destroy();
}

/** Records `dispatches` in order, `iterations` times, into one compute pass of `encoder`. */
export function encode(encoder: GPUCommandEncoder, dispatches: Dispatch[], iterations = 1): void {
  const pass = encoder.beginComputePass();
  for (let i = 0; i < iterations; i++) {
    for (const d of dispatches) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(...d.workgroups);
    }
  }
  pass.end();
}

/** Submits `dispatches` (`iterations` times over) and waits until the GPU has finished them. */
export async function run(device: GPUDevice, dispatches: Dispatch | Dispatch[], iterations = 1): Promise<void> {
  const encoder = device.createCommandEncoder();
  encode(encoder, Array.isArray(dispatches) ? dispatches : [dispatches], iterations);
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
}

/** Copies `bytes` of `buffer` (from 0) to a staging buffer and maps it: the host's copy. */
export async function readBuffer(device: GPUDevice, buffer: GPUBuffer, bytes = buffer.size): Promise<ArrayBuffer> {
  const size = Math.ceil(bytes / 4) * 4;
  const staging = device.createBuffer({ size: Math.max(4, size), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, 0, staging, 0, size);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const copy = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  staging.destroy();
  return copy;
}

/** The first `length` f32 values of `buffer`. */
export async function readF32(device: GPUDevice, buffer: GPUBuffer, length: number): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, buffer, length * 4));
}

/** Throws unless `buffer` holds at least `words` 4-byte words; `what` names it in the message. */
export function needWords(buffer: GPUBuffer, words: number, what: string): void {
  if (buffer.size < words * 4) throw new Error(`${what}: buffer has ${buffer.size} bytes, needs ${words * 4} (${words} words)`);
}

/** Throws unless `n` is a positive integer (`what` names it). */
export function positiveInt(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} = ${n}: expected a positive integer`);
}

/** Invocations per workgroup of the 1-D kernels (`grid1d`). */
export const WG_1D = 64;

/**
 * A grid of workgroups of `WG_1D` invocations covering `count` items, 2-D when one row of
 * workgroups would exceed the per-dimension limit. Kernels index items with `INDEX_1D`.
 */
export function grid1d(device: GPUDevice, count: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(count / WG_1D));
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  return groups <= max ? [groups, 1, 1] : [max, Math.ceil(groups / max), 1];
}

/** WGSL: the flat item index `i` of a `grid1d` grid, given builtins `gid` (global_invocation_id) and `nwg` (num_workgroups). */
export const INDEX_1D = `let i = gid.x + gid.y * nwg.x * ${WG_1D}u;`;
