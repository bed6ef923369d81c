/**
 * Phase 7's exports, each checked by loading it back with a real runtime: the HF folder (our
 * loader, same logits; and, in a standard architecture, Transformers.js offline, same greedy
 * tokens), ONNX (onnxruntime-node, max |logits difference| on real inputs), tfjs's format (tfjs's
 * own loader, same logits).
 *
 * Deployment verdicts come from runtimes, not from our checklist alone: a target is "ok" only
 * when the artifact it would ship loaded and answered (logits within 1e-3 of ours) in a runtime
 * for that target and fits the target's size budget and operator set (validator.ts):
 * - local, cloud_api: the dynamic graph in onnxruntime-node's CPU provider (GPU providers are not
 *   checked here);
 * - edge: the portable graph in onnxruntime-web's wasm build, as browsers and small edge hosts run
 *   it, in f32: no ONNX quantization tool runs on this machine (onnxruntime's is Python);
 * - mobile: "not checked": no mobile runtime (ORT Mobile, NNAPI, Core ML) runs here; the static
 *   check of the portable graph is reported beside it.
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { basename, dirname } from "node:path";
import { exportHfFolder, loadHfFolder, standardArchOf } from "./hf.ts";
import { type CachedModel, hasKvCache } from "../nn/kv_cache.ts";
import { greedyCached } from "../text/generate.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { exportOnnx, type OnnxInfo } from "./onnx.ts";
import { exportTfjs, loadTfjs } from "./tfjs_export.ts";
import { type DeployTarget, sizeOnDisk, validateForTarget } from "./validator.ts";
import type { RegistryModel } from "../models/registry.ts";
import { logitsOf } from "../text/generate.ts";
import { round } from "../util/numbers.ts";
import type { SavedModel } from "../models/io.ts";
import { Rng } from "../util/rng.ts";

export const EXPORT_FORMATS = ["hf", "onnx", "tfjs"] as const;

/** Largest |logits difference| from ours at which a runtime's answer counts as the model's. */
const RUNTIME_TOLERANCE = 1e-3;

/** Each deployment target's verdict from the runtime that ran its artifact (see the module comment). */
export function targetVerdicts(
  onnx: OnnxInfo,
  portable: OnnxInfo,
  runtimes: { node: number; web: number | string },
): Record<string, string> {
  const verdict = (t: DeployTarget, info: OnnxInfo, file: string, runtime: string, diff: number | string) => {
    const v = validateForTarget({ sizeBytes: info.sizeBytes, opTypes: info.opTypes }, t);
    if (typeof diff === "string") return `failed: ${diff}`;
    if (!(diff <= RUNTIME_TOLERANCE)) {
      return `failed: ${runtime} ran ${file} but its logits differ from ours by ${diff} (> ${RUNTIME_TOLERANCE})`;
    }
    if (!v.ok) return `failed: ${runtime} ran ${file}, but ${v.problems.join("; ")}`;
    return `ok (${runtime} ran ${file}: max |logits diff| ${diff.toExponential(1)}; ${info.sizeBytes} bytes)`;
  };
  const node = "onnxruntime-node CPU";
  const staticCheck = validateForTarget({ sizeBytes: portable.sizeBytes, opTypes: portable.opTypes }, "mobile");
  return {
    local: verdict("local", onnx, "model.onnx", node, runtimes.node),
    cloud_api: verdict("cloud_api", onnx, "model.onnx", `${node} (GPU providers not checked)`, runtimes.node),
    edge: verdict("edge", portable, "model.portable.onnx", "onnxruntime-web wasm (f32, no quantization tool runs here)", runtimes.web),
    mobile: `not checked: no mobile runtime (ORT Mobile, NNAPI, Core ML) runs on this machine; static check of model.portable.onnx: ${
      staticCheck.ok ? `operators and size fit (${portable.sizeBytes} bytes)` : staticCheck.problems.join("; ")
    }`,
  };
}

/** Loads the HF folder with Transformers.js (offline) and compares its greedy tokens with ours on two prompts. */
async function transformersJsCheck(model: RegistryModel & CachedModel, dir: string): Promise<string> {
  const prompts = ["The answer is", "1 2 3"], newTokens = 8;
  try {
    const tjs = await import("@huggingface/transformers");
    tjs.env.allowRemoteModels = false;
    tjs.env.localModelPath = dirname(dir) + "/";
    const tok = await tjs.AutoTokenizer.from_pretrained(basename(dir));
    const theirs = await tjs.AutoModelForCausalLM.from_pretrained(basename(dir), { dtype: "fp32", device: "cpu" });
    const enc = tok(prompts, { padding: true });
    const T = enc.input_ids.dims[1] as number;
    const out = await theirs.generate({ ...enc, max_new_tokens: newTokens, do_sample: false }) as { tolist(): bigint[][] };
    await theirs.dispose();
    const got = out.tolist().map((r) => {
      const tail = r.slice(T).map(Number);
      return tail.includes(TOKENIZER.eos) ? tail.slice(0, tail.indexOf(TOKENIZER.eos)) : tail;
    });
    const mine = await greedyCached(model, prompts.map((p) => [TOKENIZER.bos, ...TOKENIZER.encode(p)]), newTokens);
    const same = JSON.stringify(got) === JSON.stringify(mine);
    return `${same ? "ok" : "failed"}: loaded offline; greedy tokens ${
      same ? "identical to" : "differ from"
    } ours on ${prompts.length} prompts x ${newTokens} tokens`;
  } catch (e) {
    return `failed: ${(e as Error).message}`;
  }
}

/** Max |a - b| of two models' logits on `ids` [B, T]. */
async function logitsDiff(
  a: RegistryModel,
  b: (ids: Int32Array, B: number, T: number) => Promise<Float32Array>,
  ids: Int32Array,
  B: number,
  T: number,
) {
  const x = tf.tensor2d(ids, [B, T], "int32");
  const la = await logitsOf(a, x);
  const ours = (await la.data()) as Float32Array;
  tf.dispose([x, la]);
  const theirs = await b(ids, B, T);
  if (theirs.length !== ours.length) throw new Error(`export check: ${theirs.length} logits vs ours ${ours.length}`);
  let d = 0;
  for (let i = 0; i < ours.length; i++) d = Math.max(d, Math.abs(ours[i] - theirs[i]));
  return d;
}

/** Logits of a registry model as a flat array. */
const viaModel = (m: RegistryModel) => async (ids: Int32Array, B: number, T: number) => {
  const x = tf.tensor2d(ids, [B, T], "int32");
  const l = await logitsOf(m, x);
  const out = (await l.data()) as Float32Array;
  tf.dispose([x, l]);
  return out;
};

/** Writes the requested formats under `dir`, checks each, and validates every deployment target. Files are returned relative to `runDir`. */
export async function exportAll(model: RegistryModel, meta: SavedModel, dir: string, formats: string[], runDir: string) {
  for (const f of formats) {
    if (!EXPORT_FORMATS.includes(f as typeof EXPORT_FORMATS[number])) {
      throw new Error(`phases.7.exports: '${f}' is not one of ${EXPORT_FORMATS.join(", ")}`);
    }
  }
  const rel = (p: string) => p.startsWith(runDir) ? p.slice(runDir.length + 1) : p;
  const B = 2, T = Math.min(32, Number(meta.config.maxSeqLen));
  const rng = new Rng(7);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(256));
  const out: Record<string, unknown> & { files: string[]; onnx_max_abs_diff?: number } = { files: [] };

  if (formats.includes("hf")) {
    const hfDir = join(dir, "hf");
    const files = await exportHfFolder(model, meta, hfDir);
    const back = await loadHfFolder(hfDir);
    out.hf_max_abs_diff = await logitsDiff(model, viaModel(back.model), ids, B, T);
    back.model.dispose();
    const std = standardArchOf(meta);
    out.hf_architecture = std.arch ?? `none (our own format: ${std.reason})`;
    if (std.arch && hasKvCache(model)) out.hf_transformers_js = await transformersJsCheck(model, hfDir);
    out.hf_bytes = await sizeOnDisk(hfDir);
    out.files.push(...files.map(rel));
  }
  let onnx: OnnxInfo | undefined, portable: OnnxInfo | undefined;
  let runtimes: { node: number; web: number | string } | undefined;
  if (formats.includes("onnx")) {
    // `dynamic`: any batch and length; `portable`: a fixed length with elementary ops only (what phones' accelerators run).
    const ort = await import("onnxruntime-node");
    const check = async (path: string, T: number) => {
      const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1, interOpNumThreads: 1 });
      const x = Int32Array.from({ length: B * T }, () => rng.int(256));
      const d = await logitsDiff(
        model,
        async (xs, b, t) => {
          const r = await session.run({ input_ids: new ort.Tensor("int64", BigInt64Array.from(xs, BigInt), [b, t]) });
          return r.logits.data as Float32Array;
        },
        x,
        B,
        T,
      );
      await session.release();
      return d;
    };
    const path = join(dir, "model.onnx"), portablePath = join(dir, "model.portable.onnx");
    onnx = await exportOnnx(model, meta, path);
    portable = await exportOnnx(model, meta, portablePath, { profile: "portable", maxLength: T });
    const nodeDiff = await check(path, T);
    out.onnx_max_abs_diff = Math.max(nodeDiff, await check(portablePath, T));
    // The portable graph in onnxruntime-web (wasm), the edge runtime.
    let webDiff: number | string;
    try {
      const web = await import("onnxruntime-web");
      web.env.wasm.numThreads = 1;
      const session = await web.InferenceSession.create(await Deno.readFile(portablePath), { executionProviders: ["wasm"] });
      const x = Int32Array.from({ length: B * T }, () => rng.int(256));
      webDiff = await logitsDiff(
        model,
        async (xs, b, t) => {
          const r = await session.run({ input_ids: new web.Tensor("int64", BigInt64Array.from(xs, BigInt), [b, t]) });
          return r.logits.data as Float32Array;
        },
        x,
        B,
        T,
      );
      await session.release();
    } catch (e) {
      webDiff = `onnxruntime-web could not run it: ${(e as Error).message}`;
    }
    runtimes = { node: nodeDiff, web: webDiff };
    out.onnx = { bytes: onnx.sizeBytes, opset: onnx.opset, ops: onnx.opTypes.length, runtime: "onnxruntime-node" };
    out.onnx_portable = { bytes: portable.sizeBytes, fixed_length: T, ops: portable.opTypes.length };
    out.files.push(rel(path), rel(portablePath));
  }
  if (formats.includes("tfjs")) {
    const tfjsDir = join(dir, "tfjs");
    const { paths, sizeBytes } = await exportTfjs(model, meta, tfjsDir);
    const back = await loadTfjs(tfjsDir);
    out.tfjs_max_abs_diff = await logitsDiff(model, viaModel(back.model), ids, B, T);
    back.model.dispose();
    out.tfjs_bytes = sizeBytes;
    out.files.push(...paths.map(rel));
  }
  if (onnx && portable && runtimes) out.targets = targetVerdicts(onnx, portable, runtimes);
  for (const k of ["hf_max_abs_diff", "onnx_max_abs_diff", "tfjs_max_abs_diff"]) {
    if (typeof out[k] === "number") out[k] = round(out[k] as number, 9);
  }
  return out;
}
