/**
 * The one place that picks tfjs's backend.
 *
 * Order when nothing is asked for: WebGPU when a real (non-fallback) adapter exists,
 * else wasm with SIMD, else the pure-JS cpu backend. `--backend` (passed here as
 * `requested`) or the `AGENT_FORGE_BACKEND` environment variable override it.
 * The choice and the adapter are printed once per process.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-webgpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { fileURLToPath } from "node:url";
import { BLAS_ENV } from "./blas.ts";
import { installWasmKernels } from "./wasm_kernels.ts";

export const BACKENDS = ["webgpu", "wasm", "cpu"] as const;
export type BackendName = typeof BACKENDS[number];
/** What the caller may ask for: a backend or `auto`. */
export type BackendRequest = BackendName | "auto";

/** The environment variable that overrides the automatic choice. */
export const BACKEND_ENV = "AGENT_FORGE_BACKEND";

export interface BackendInfo {
  /** The backend tfjs now runs on. */
  name: BackendName;
  /** Why it was chosen: `flag`, `env` or `auto`. */
  reason: "flag" | "env" | "auto";
  /** The WebGPU adapter's description, when one was found. */
  adapter?: string;
  /** True when the adapter is a software fallback (llvmpipe). */
  fallbackAdapter?: boolean;
  /** On wasm: the native BLAS its matmuls run on (see blas.ts), when one was found. */
  blas?: string;
}

let current: BackendInfo | undefined;
let wasmConfigured = false;

/** Parses a backend name from a flag or environment value; throws naming the accepted values. */
export function parseBackend(value: string, source: string): BackendRequest {
  if (value === "auto" || (BACKENDS as readonly string[]).includes(value)) {
    return value as BackendRequest;
  }
  throw new Error(`${source}: unknown backend '${value}', expected one of auto, ${BACKENDS.join(", ")}`);
}

interface AdapterProbe {
  description?: string;
  fallback: boolean;
}

async function probeAdapter(): Promise<AdapterProbe | undefined> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) return undefined;
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return undefined;
    const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
    const legacy = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
    return {
      description: info.description || info.vendor || undefined,
      fallback: Boolean(info.isFallbackAdapter ?? legacy),
    };
  } catch {
    return undefined;
  }
}

function configureWasm(): void {
  if (wasmConfigured) return;
  // The single-threaded SIMD build: the threaded one needs workarounds under Deno and gains little.
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  const dist = new URL("../../node_modules/@tensorflow/tfjs-backend-wasm/dist/", import.meta.url);
  setWasmPaths(fileURLToPath(dist));
  wasmConfigured = true;
}

async function trySet(name: BackendName): Promise<boolean> {
  if (name === "wasm") configureWasm();
  try {
    const ok = await tf.setBackend(name);
    if (!ok) return false;
    await tf.ready();
  } catch {
    return false;
  }
  if (name === "cpu") {
    // The cpu backend prints an "install tfjs-node" banner on first use; tfjs-node cannot be installed here.
    (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
  }
  return tf.getBackend() === name;
}

/**
 * Selects and initialises the backend. Calling it again with the same request is free;
 * a different explicit request switches backends (tests use this).
 */
export async function initBackend(
  requested: BackendRequest = "auto",
  opts: { quiet?: boolean } = {},
): Promise<BackendInfo> {
  let reason: BackendInfo["reason"] = "flag";
  let want = requested;
  if (want === "auto") {
    const env = Deno.env.get(BACKEND_ENV);
    if (env) {
      want = parseBackend(env, BACKEND_ENV);
      reason = "env";
    }
  }
  if (want === "auto") reason = "auto";
  if (current && (want === "auto" || want === current.name) && tf.getBackend() === current.name) {
    return current;
  }

  const probe = await probeAdapter();
  let order: BackendName[];
  if (want !== "auto") order = [want];
  else order = probe && !probe.fallback ? ["webgpu", "wasm", "cpu"] : ["wasm", "cpu"];

  for (const name of order) {
    if (await trySet(name)) {
      current = { name, reason, adapter: probe?.description, fallbackAdapter: probe?.fallback };
      if (name === "wasm") {
        const blas = installWasmKernels();
        if (blas) current.blas = `${blas.config ?? blas.path}${blas.threads ? `, ${blas.threads} threads` : ""}`;
      }
      if (!opts.quiet) console.error(describeBackend(current));
      return current;
    }
  }
  throw new Error(`backend '${want}' could not be initialised (tried ${order.join(", ")})`);
}

/**
 * How much slower a training step of the reference model is on wasm without OpenBLAS (XNNPACK
 * and tfjs's scalar loops) than with it, measured by bench/train_worker.ts on a 2-core machine:
 * 1017 / 180 ms and 1021 / 184 ms, medians of one run each.
 */
export const NO_BLAS_SLOWDOWN = 5.6;

/** One line for logs: `backend: wasm (auto; adapter llvmpipe ..., fallback)`, plus a warning on wasm without OpenBLAS. */
export function describeBackend(info: BackendInfo): string {
  const adapter = info.adapter ? `adapter ${info.adapter}${info.fallbackAdapter ? ", software fallback" : ""}` : "no WebGPU adapter";
  const blas = info.name === "wasm" ? `; matmuls on ${info.blas ?? "XNNPACK (no native BLAS found)"}` : "";
  const line = `backend: ${info.name} (${info.reason}; ${adapter}${blas})`;
  if (info.name !== "wasm" || info.blas || Deno.env.get(BLAS_ENV) === "off") return line;
  return `${line}\nwarning: no OpenBLAS found: training will run about ${NO_BLAS_SLOWDOWN}x slower than with it ` +
    `(the reference model's step); on Debian/Ubuntu: apt-get install libopenblas0-pthread`;
}

/** The backend chosen by `initBackend`, or undefined before it ran. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}

/** True when the running backend has a kernel registered under `kernelName`. */
export function hasKernel(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}
