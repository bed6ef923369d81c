/**
 * Phase 7's exports, each checked by loading it back with a real runtime: the HF-style folder
 * (our loader, same logits), ONNX (onnxruntime-node, max |logits difference| on real inputs),
 * tfjs's format (tfjs's own loader, same logits); then every deployment target's verdict from
 * the compatibility validator on what was written.
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { exportHfFolder, loadHfFolder } from "./hf.ts";
import { exportOnnx, type OnnxInfo } from "./onnx.ts";
import { exportTfjs, loadTfjs } from "./tfjs_export.ts";
import { DEPLOY_TARGETS, sizeOnDisk, validateForTarget } from "./validator.ts";
import type { RegistryModel } from "../models/registry.ts";
import { logitsOf } from "../text/generate.ts";
import { round } from "../util/numbers.ts";
import type { SavedModel } from "../models/io.ts";
import { Rng } from "../util/rng.ts";

export const EXPORT_FORMATS = ["hf", "onnx", "tfjs"] as const;

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
    out.hf_bytes = await sizeOnDisk(hfDir);
    out.files.push(...files.map(rel));
  }
  let onnx: OnnxInfo | undefined, portable: OnnxInfo | undefined;
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
    out.onnx_max_abs_diff = Math.max(await check(path, T), await check(portablePath, T));
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
  if (onnx && portable) {
    // Each target judged on the export it would ship: phones get the portable graph.
    out.targets = Object.fromEntries(DEPLOY_TARGETS.map((t) => {
      const info = t === "mobile" ? portable! : onnx!;
      const v = validateForTarget({ sizeBytes: info.sizeBytes, opTypes: info.opTypes }, t);
      return [t, v.ok ? `ok (${t === "mobile" ? "portable" : "dynamic"} ONNX, ${info.sizeBytes} bytes)` : v.problems.join("; ")];
    }));
  }
  for (const k of ["hf_max_abs_diff", "onnx_max_abs_diff", "tfjs_max_abs_diff"]) {
    if (typeof out[k] === "number") out[k] = round(out[k] as number, 9);
  }
  return out;
}
