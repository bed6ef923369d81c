/**
 * Deployment compatibility: does an exported model fit a target? Each target has a size budget
 * (bytes on disk) and the set of ONNX operators its runtime is taken to run. The sets are this
 * project's policy, not a vendor's list:
 *
 * - `local`, `cloud_api`: onnxruntime's CPU/GPU providers run every operator of the default ONNX
 *   domain; only vendor-domain operators (e.g. com.microsoft) are refused.
 * - `mobile`: elementary operators only (arithmetic, MatMul/Gemm, Gather, reshapes, slices,
 *   Softmax, Sigmoid, mean/sum reductions), the kind of set static-graph mobile accelerators
 *   (NNAPI / Core ML class) offer: no shape arithmetic (Shape, Range), no Where, no fused norms.
 *   The ONNX exporter's `portable` profile keeps to it.
 * - `edge`: mobile's set plus the dynamic-shape and fused operators small web/edge runtimes
 *   (onnxruntime-web's wasm build) run, so the `dynamic` profile fits.
 *
 * Budgets and operator sets can be overridden per call.
 */

/** The deployment targets. */
export const DEPLOY_TARGETS = ["local", "cloud_api", "edge", "mobile"] as const;
export type DeployTarget = typeof DEPLOY_TARGETS[number];

/** What a target accepts. */
export interface TargetSpec {
  /** Largest model, in bytes on disk. */
  budgetBytes: number;
  /** ONNX operator types (default domain) the target runs, or `any` for the whole default domain. */
  ops: readonly string[] | "any";
  /** What the target stands for. */
  description: string;
}

/** Elementary operators (see the module comment): the mobile set. */
export const PORTABLE_OPS: readonly string[] = [
  "Abs",
  "Add",
  "Cast",
  "Concat",
  "Div",
  "Exp",
  "Gather",
  "Gemm",
  "Identity",
  "Log",
  "LogSoftmax",
  "MatMul",
  "Max",
  "Min",
  "Mul",
  "Neg",
  "Pow",
  "ReduceMax",
  "ReduceMean",
  "ReduceSum",
  "Relu",
  "Reshape",
  "Sigmoid",
  "Slice",
  "Softmax",
  "Sqrt",
  "Squeeze",
  "Sub",
  "Tanh",
  "Transpose",
  "Unsqueeze",
];

/** The edge set: PORTABLE_OPS plus dynamic-shape and fused operators. */
export const EDGE_OPS: readonly string[] = [
  ...PORTABLE_OPS,
  "ConstantOfShape",
  "Cos",
  "Equal",
  "Erf",
  "Expand",
  "Greater",
  "LayerNormalization",
  "Less",
  "Range",
  "Shape",
  "Sin",
  "Split",
  "Where",
];

const MB = 1_000_000;

/** Default budgets and operator sets. */
export const DEFAULT_TARGETS: Readonly<Record<DeployTarget, TargetSpec>> = {
  // A workstation or laptop running onnxruntime-node or tfjs: 8 GB holds ~2B f32 parameters.
  local: { budgetBytes: 8_000 * MB, ops: "any", description: "a workstation (onnxruntime-node, tfjs)" },
  // A hosted API on one accelerator: 40 GB of weights leaves room for activations on an 80 GB card.
  cloud_api: { budgetBytes: 40_000 * MB, ops: "any", description: "a hosted inference API on one accelerator" },
  // Browsers and small devices: 50 MB downloads in seconds and fits a wasm heap comfortably.
  edge: { budgetBytes: 50 * MB, ops: EDGE_OPS, description: "a browser or edge device (onnxruntime-web wasm)" },
  // Phones: 20 MB keeps an app download small and leaves memory for the app.
  mobile: { budgetBytes: 20 * MB, ops: PORTABLE_OPS, description: "a phone's static-graph accelerator" },
};

/** What the validator needs to know about an exported model. */
export interface ExportedModelInfo {
  /** Size on disk in bytes (the file or folder that would ship). */
  sizeBytes: number;
  /** Operator types of its ONNX graph (`domain:Op` outside the default domain), e.g. from `onnxInfo`. */
  opTypes: readonly string[];
}

/** The verdict for one target. */
export interface ValidationResult {
  ok: boolean;
  target: DeployTarget;
  spec: TargetSpec;
  /** One line per problem, each naming the target. */
  problems: string[];
}

/** Checks a target name; the error lists the accepted ones. */
export function parseTarget(name: string): DeployTarget {
  if (!(DEPLOY_TARGETS as readonly string[]).includes(name)) {
    throw new Error(`unknown deployment target '${name}'; expected one of ${DEPLOY_TARGETS.join(", ")}`);
  }
  return name as DeployTarget;
}

/** The spec of `target`, with `overrides` on top (checked). */
export function targetSpec(target: string, overrides: Partial<TargetSpec> = {}): TargetSpec {
  const spec = { ...DEFAULT_TARGETS[parseTarget(target)], ...overrides };
  if (!(spec.budgetBytes > 0)) throw new Error(`target ${target}: budgetBytes = ${spec.budgetBytes}: expected a positive number of bytes`);
  return spec;
}

/** Bytes as "12.3 MB (12345678 bytes)". */
export function formatBytes(n: number): string {
  return `${(n / MB).toFixed(n < 10 * MB ? 2 : 1)} MB (${n} bytes)`;
}

/** Whether `op` runs on a target with operator set `ops`. */
function supported(op: string, ops: TargetSpec["ops"]): boolean {
  if (op.includes(":")) return ops !== "any" && ops.includes(op); // vendor domains only when listed by name
  return ops === "any" || ops.includes(op);
}

/** Checks `info` against `target`'s budget and operator set; never throws for a model that does not fit. */
export function validateForTarget(info: ExportedModelInfo, target: string, overrides: Partial<TargetSpec> = {}): ValidationResult {
  const t = parseTarget(target);
  const spec = targetSpec(t, overrides);
  if (!Number.isFinite(info.sizeBytes) || info.sizeBytes < 0) {
    throw new Error(`validateForTarget: sizeBytes = ${info.sizeBytes}: expected bytes >= 0`);
  }
  const problems: string[] = [];
  if (info.sizeBytes > spec.budgetBytes) {
    problems.push(`${t}: model is ${formatBytes(info.sizeBytes)}, over the ${t} budget of ${formatBytes(spec.budgetBytes)}`);
  }
  for (const op of info.opTypes) {
    if (!supported(op, spec.ops)) {
      const which = spec.ops === "any" ? "operators of the default ONNX domain" : "its listed operators";
      problems.push(`${t}: unsupported operator ${op} (${t} runs ${which})`);
    }
  }
  return { ok: problems.length === 0, target: t, spec, problems };
}

/** Throws when `info` does not fit `target`: the message names the target and the budget and size, or the unsupported operators. */
export function assertDeployable(info: ExportedModelInfo, target: string, overrides: Partial<TargetSpec> = {}): void {
  const r = validateForTarget(info, target, overrides);
  if (!r.ok) throw new Error(`model rejected for ${r.target}: ${r.problems.join("; ")}`);
}

/** Bytes on disk of a file, or of every file under a folder (an HF or tfjs export). */
export async function sizeOnDisk(path: string): Promise<number> {
  const st = await Deno.stat(path);
  if (st.isFile) return st.size;
  let total = 0;
  for await (const e of Deno.readDir(path)) total += await sizeOnDisk(`${path}/${e.name}`);
  return total;
}
