/**
 * ONNX export of the decoder's forward pass: input_ids int64 [B, T] -> logits float [B, T, V],
 * opset 17, written with `onnx-proto` (ONNX's protobuf definitions, compiled for protobufjs).
 *
 * The graph follows lib/nn/decoder.ts op for op: token Gather (+ learned positions), per block
 * norm -> q/k/v MatMuls (the qkv weight split into three on export) -> RoPE (rotate-half, cos/sin
 * tables computed by `ropeTables` and stored as initializers) -> causal attention (scores scaled,
 * plus an additive -1e9 mask above the diagonal, Softmax) -> projection, residual, norm -> MLP
 * (GELU as x * sigmoid(2c (x + a x^3)), the tanh approximation written exactly as ours, or SwiGLU)
 * -> residual; final norm; head (tied: MatMul with the transposed token table).
 *
 * Three profiles:
 * - `dynamic` (default): any batch and any length up to `maxLength`; the length is read with Shape,
 *   the mask built with Range/Greater/Where, LayerNorm is ONNX's LayerNormalization.
 * - `kv`: the decoder with past keys and values, in the names Transformers.js (and Optimum's exports)
 *   use: inputs `input_ids` [B, T], `attention_mask` [B, P + T] (0 = padding), `position_ids` [B, T]
 *   and `past_key_values.{l}.key` / `.value` [B, H, P, hd]; outputs `logits` [B, T, V] and
 *   `present.{l}.key` / `.value` [B, H, P + T, hd]. Positions come from position_ids (a Gather from
 *   the learned table or the RoPE tables of `maxLength` rows), so left-padded rows decode as alone.
 * - `portable`: a fixed length L (shorter inputs are right-padded: positions < t never see t), the
 *   mask and position tables stored as [L, ...] initializers, norms written with elementary ops:
 *   only Gather, MatMul, Add, Sub, Mul, Div, Sqrt, ReduceMean, Reshape, Transpose, Slice, Concat,
 *   Softmax and Sigmoid, the set small accelerators (edge, mobile) tend to have.
 *
 * Checked against onnxruntime-node (npm:onnxruntime-node@1.30.0) under Deno: a plain
 * `deno install` / `deno install --frozen` is enough. Deno skips the package's postinstall
 * script, which only downloads the CUDA providers; the CPU build (libonnxruntime.so and the N-API
 * binding) ships inside the npm package, and loading it needs --allow-ffi (deno test -A).
 */
import * as tf from "@tensorflow/tfjs";
import onnxProto from "onnx-proto";
import type { RegistryModel } from "../models/registry.ts";
import { ropeTables } from "../nn/attention.ts";
import type { DecoderConfig } from "../nn/decoder.ts";
import type { HostTensor } from "../nn/params.ts";
import type { SavedModel } from "../models/io.ts";
import { writeAtomic } from "../util/fs.ts";
import { decoderPart } from "../models/cognate.ts";

const { onnx } = onnxProto;
type Node = onnxProto.onnx.INodeProto;
type Tensor = onnxProto.onnx.ITensorProto;
type Attr = onnxProto.onnx.IAttributeProto;

/** The opset the graphs are written for. */
export const ONNX_OPSET = 17;
/** The IR version of the files (ONNX 1.10-1.12; opset 17 needs IR >= 8). */
export const ONNX_IR_VERSION = 8;

/** How the graph is shaped; see the module comment. */
export type OnnxProfile = "dynamic" | "portable" | "kv";

export interface OnnxExportOptions {
  /** `dynamic` (default) or `portable`. */
  profile?: OnnxProfile;
  /** dynamic: longest sequence the RoPE tables cover; portable: the fixed length L. Default: the config's maxSeqLen. */
  maxLength?: number;
}

/** What an exported (or read) ONNX file holds. */
export interface OnnxInfo {
  /** Bytes of the serialised model. */
  sizeBytes: number;
  /** Distinct operator types of the graph, sorted (domain-prefixed when not the default domain). */
  opTypes: string[];
  /** Opset of the default domain. */
  opset: number;
  irVersion: number;
  /** metadata_props of the model. */
  metadata: Record<string, string>;
}

const attr = {
  int: (name: string, i: number): Attr => ({ name, type: onnx.AttributeProto.AttributeType.INT, i }),
  ints: (name: string, ints: number[]): Attr => ({ name, type: onnx.AttributeProto.AttributeType.INTS, ints }),
  float: (name: string, f: number): Attr => ({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f }),
};

/** Little-endian bytes of f32 values (ONNX raw_data). */
function f32Bytes(data: Float32Array): Uint8Array {
  const out = new Uint8Array(data.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i], true);
  return out;
}

/** Nodes and initializers of a graph under construction; every helper returns its output's name. */
class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly inits: Tensor[] = [];
  #count = 0;

  /** Adds a node with one output, named `output` or after the node. */
  op(opType: string, input: string[], attribute: Attr[] = [], output?: string): string {
    const id = `${opType}_${this.#count++}`;
    this.nodes.push({ opType, input, output: [output ?? id], name: id, attribute });
    return output ?? id;
  }

  /** Whether an initializer `name` exists already (constants are named once and shared). */
  #has(name: string): boolean {
    return this.inits.some((t) => t.name === name);
  }

  f32(name: string, data: Float32Array, dims: number[]): string {
    if (this.#has(name)) return name;
    this.inits.push({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims, rawData: f32Bytes(data) });
    return name;
  }

  scalar(name: string, value: number): string {
    return this.f32(name, new Float32Array([value]), []);
  }

  i64(name: string, values: number[], dims: number[] = [values.length]): string {
    if (this.#has(name)) return name;
    this.inits.push({ name, dataType: onnx.TensorProto.DataType.INT64, dims, int64Data: values });
    return name;
  }

  /** The initializers some node reads (constants made for a branch the config does not take are dropped). */
  usedInits(): Tensor[] {
    const read = new Set(this.nodes.flatMap((n) => n.input ?? []));
    return this.inits.filter((t) => read.has(String(t.name)));
  }
}

/** Columns [c0, c0 + n) of a row-major [rows, cols] matrix. */
function columns(t: HostTensor, c0: number, n: number): Float32Array {
  const [rows, cols] = t.shape;
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) out.set(t.data.subarray(r * cols + c0, r * cols + c0 + n), r * n);
  return out;
}

/** The decoder graph as a serialised ONNX model. `tensors` are the model's parameters by our names. */
export function decoderToOnnx(
  cfg: DecoderConfig,
  tensors: Map<string, HostTensor>,
  opts: OnnxExportOptions = {},
  metadata: Record<string, string> = {},
): Uint8Array {
  const profile = opts.profile ?? "dynamic";
  const kv = profile === "kv";
  const L = opts.maxLength ?? cfg.maxSeqLen;
  if (!Number.isInteger(L) || L <= 0) throw new Error(`onnx export: maxLength = ${L}: expected a positive integer`);
  if (cfg.positions === "learned" && L > cfg.maxSeqLen) {
    throw new Error(`onnx export: maxLength = ${L} exceeds maxSeqLen ${cfg.maxSeqLen} (the learned position table)`);
  }
  if (kv && cfg.prevTokens) {
    throw new Error(
      `onnx export: profile kv cannot run a model that embeds preceding tokens (prevTokens = ${cfg.prevTokens}): the first new ` +
        "tokens' predecessors lie in the past, which the cache's inputs do not hold; use profile dynamic or portable",
    );
  }
  const { dModel: C, nHeads: H, nLayers, vocabSize: V } = cfg;
  const hd = C / H;
  const g = new GraphBuilder();
  const param = (name: string): HostTensor => {
    const t = tensors.get(name);
    if (!t) throw new Error(`onnx export: missing parameter '${name}'`);
    return t;
  };
  const init = (name: string) => g.f32(name, param(name).data, param(name).shape);
  const linear = (x: string, prefix: string, w = init(`${prefix}_w`)) => {
    const y = g.op("MatMul", [x, w]);
    return cfg.bias ? g.op("Add", [y, init(`${prefix}_b`)]) : y;
  };
  const eps = g.scalar("norm_eps", cfg.normEps);
  const norm = (x: string, name: string) => {
    const gain = init(`${name}_g`);
    if (cfg.norm === "layernorm" && profile !== "portable") {
      return g.op("LayerNormalization", [x, gain, init(`${name}_b`)], [attr.int("axis", -1), attr.float("epsilon", cfg.normEps)]);
    }
    const mean = (v: string) => g.op("ReduceMean", [v], [attr.ints("axes", [-1]), attr.int("keepdims", 1)]);
    const centred = cfg.norm === "layernorm" ? g.op("Sub", [x, mean(x)]) : x; // [B, T, C]
    const ms = mean(g.op("Mul", [centred, centred])); // [B, T, 1]
    const normed = g.op("Mul", [g.op("Div", [centred, g.op("Sqrt", [g.op("Add", [ms, eps])])]), gain]);
    return cfg.norm === "layernorm" ? g.op("Add", [normed, init(`${name}_b`)]) : normed;
  };

  // Sequence length, mask and position tables.
  const ids = "input_ids"; // [B, T] int64
  let lenVec = ""; // [1] int64: T (dynamic only)
  const sliceToT = (table: string) => g.op("Slice", [table, g.i64(`${table}_start`, [0]), lenVec, g.i64(`${table}_axis`, [0])]);
  let mask: string; // [T, T]: 0 on and below the diagonal, -1e9 above; kv: [B, 1, T, P + T], also -1e9 on padding
  const squeeze0 = (v: string) => g.op("Squeeze", [v, g.i64("axis0", [0])]);
  if (kv) {
    const S = g.op("Shape", ["attention_mask"], [attr.int("start", 1), attr.int("end", 2)]); // [1]: P + T
    const T = g.op("Shape", [ids], [attr.int("start", 1), attr.int("end", 2)]); // [1]
    const zero = g.i64("zero_i64", [0], []), one = g.i64("one_i64", [1], []);
    const keys = g.op("Range", [zero, squeeze0(S), one]); // [S]: slot of every key
    const queries = g.op("Add", [g.op("Range", [zero, squeeze0(T), one]), squeeze0(g.op("Sub", [S, T]))]); // [T]: slot P + i
    const future = g.op("Greater", [g.op("Unsqueeze", [keys, "axis0"]), g.op("Unsqueeze", [queries, g.i64("axis1", [1])])]); // [T, S]
    const pad = g.op("Unsqueeze", [g.op("Equal", ["attention_mask", zero]), g.i64("axes12", [1, 2])]); // [B, 1, 1, S]
    mask = g.op("Where", [g.op("Or", [future, pad]), g.scalar("mask_value", -1e9), g.scalar("zero_f32", 0)]); // [B, 1, T, S]
  } else if (profile === "dynamic") {
    lenVec = g.op("Shape", [ids], [attr.int("start", 1), attr.int("end", 2)]);
    const len = squeeze0(lenVec);
    const r = g.op("Range", [g.i64("zero_i64", [0], []), len, g.i64("one_i64", [1], [])]); // [T]
    const future = g.op("Greater", [g.op("Unsqueeze", [r, "axis0"]), g.op("Unsqueeze", [r, g.i64("axis1", [1])])]); // [T, T]: col > row
    mask = g.op("Where", [future, g.scalar("mask_value", -1e9), g.scalar("zero_f32", 0)]);
  } else {
    const m = new Float32Array(L * L);
    for (let i = 0; i < L; i++) for (let j = i + 1; j < L; j++) m[i * L + j] = -1e9;
    mask = g.f32("causal_mask", m, [L, L]);
  }
  let cos = "", sin = ""; // [T, 1, hd/2]; kv: [B, T, 1, hd/2], each token's own position
  if (cfg.positions === "rope") {
    const tables = ropeTables(L, hd, { base: cfg.ropeBase, scale: cfg.ropeScale });
    const [cosData, sinData] = [tables.cos.dataSync() as Float32Array, tables.sin.dataSync() as Float32Array];
    tf.dispose([tables.cos, tables.sin]);
    const half = hd / 2;
    if (kv) {
      const rows = (name: string, data: Float32Array) =>
        g.op("Unsqueeze", [g.op("Gather", [g.f32(name, data, [L, half]), "position_ids"], [attr.int("axis", 0)]), g.i64("axis2", [2])]);
      [cos, sin] = [rows("rope_cos", cosData), rows("rope_sin", sinData)];
    } else {
      cos = g.f32("rope_cos", cosData, [L, 1, half]);
      sin = g.f32("rope_sin", sinData, [L, 1, half]);
      if (profile === "dynamic") [cos, sin] = [sliceToT(cos), sliceToT(sin)];
    }
  }

  // Embeddings. [B, T, C]
  const tok = init("tok");
  let x = g.op("Gather", [tok, ids], [attr.int("axis", 0)]);
  if (cfg.positions === "learned") {
    const pos = param("pos");
    const table = g.f32("pos", pos.data.subarray(0, L * C), [L, C]);
    const rows = kv ? g.op("Gather", [table, "position_ids"], [attr.int("axis", 0)]) : profile === "dynamic" ? sliceToT(table) : table;
    x = g.op("Add", [x, rows]);
  }
  for (let k = 1; k <= (cfg.prevTokens ?? 0); k++) { // + prev<k>_tok[ids[t - k]], zero for t < k: the rows gathered, shifted k steps along T
    const e = g.op("Gather", [init(`prev${k}_tok`), ids], [attr.int("axis", 0)]); // [B, T, C]
    const padded = g.op("Pad", [e, g.i64(`prev${k}_pads`, [0, k, 0, 0, 0, 0])]); // [B, T + k, C], k zero rows first
    const ends = g.i64(`prev${k}_end`, [-k]), starts = g.i64(`prev${k}_start`, [0]), axes = g.i64(`prev${k}_axis`, [1]);
    x = g.op("Add", [x, g.op("Slice", [padded, starts, ends, axes])]);
  }

  const headShape = g.i64("shape_heads", [0, 0, H, hd]); // [B, T, C] -> [B, T, H, hd]
  const mergeShape = g.i64("shape_merge", [0, 0, C]); // [B, T, H, hd] -> [B, T, C]
  const scale = g.scalar("attn_scale", 1 / Math.sqrt(hd));
  const halfStarts = [g.i64("half_lo", [0]), g.i64("half_mid", [hd / 2]), g.i64("half_hi", [hd])];
  const axis3 = g.i64("axis3", [3]);
  const rope = (v: string) => { // [B, T, H, hd], rotate-half
    const x1 = g.op("Slice", [v, halfStarts[0], halfStarts[1], axis3]);
    const x2 = g.op("Slice", [v, halfStarts[1], halfStarts[2], axis3]);
    const a = g.op("Sub", [g.op("Mul", [x1, cos]), g.op("Mul", [x2, sin])]);
    const b = g.op("Add", [g.op("Mul", [x1, sin]), g.op("Mul", [x2, cos])]);
    return g.op("Concat", [a, b], [attr.int("axis", 3)]);
  };
  const geluA = g.scalar("gelu_k1", 2 * Math.sqrt(2 / Math.PI) * 0.044715);
  const geluB = g.scalar("gelu_k2", 2 * Math.sqrt(2 / Math.PI));

  for (let l = 0; l < nLayers; l++) {
    const p = `l${l}`;
    const h = norm(x, `${p}.ln1`);
    const qkvW = param(`${p}.qkv_w`);
    const qkvB = cfg.bias ? param(`${p}.qkv_b`) : undefined;
    const proj = (i: number, name: string) => { // [B, T, H, hd]
      let y = g.op("MatMul", [h, g.f32(`${p}.${name}_w`, columns(qkvW, i * C, C), [C, C])]);
      if (qkvB) y = g.op("Add", [y, g.f32(`${p}.${name}_b`, qkvB.data.slice(i * C, (i + 1) * C), [C])]);
      y = g.op("Reshape", [y, headShape]);
      return cos ? (name === "v" ? y : rope(y)) : y;
    };
    const q = g.op("Transpose", [proj(0, "q")], [attr.ints("perm", [0, 2, 1, 3])]); // [B, H, T, hd]
    let kT: string, v: string;
    if (kv) {
      // Past and new keys/values along the sequence axis: [B, H, P + T, hd], returned as present.
      const k = g.op("Transpose", [proj(1, "k")], [attr.ints("perm", [0, 2, 1, 3])]);
      const vNew = g.op("Transpose", [proj(2, "v")], [attr.ints("perm", [0, 2, 1, 3])]);
      const keys = g.op("Concat", [`past_key_values.${l}.key`, k], [attr.int("axis", 2)], `present.${l}.key`);
      v = g.op("Concat", [`past_key_values.${l}.value`, vNew], [attr.int("axis", 2)], `present.${l}.value`);
      kT = g.op("Transpose", [keys], [attr.ints("perm", [0, 1, 3, 2])]); // [B, H, hd, P + T]
    } else {
      kT = g.op("Transpose", [proj(1, "k")], [attr.ints("perm", [0, 2, 3, 1])]); // [B, H, hd, T]
      v = g.op("Transpose", [proj(2, "v")], [attr.ints("perm", [0, 2, 1, 3])]); // [B, H, T, hd]
    }
    const scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, kT]), scale]), mask]); // [B, H, T, T]
    const att = g.op("Softmax", [scores], [attr.int("axis", -1)]);
    const y = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [att, v])], [attr.ints("perm", [0, 2, 1, 3])]), mergeShape]); // [B, T, C]
    x = g.op("Add", [x, linear(y, `${p}.proj`)]);
    const m = norm(x, `${p}.ln2`);
    const a = linear(m, `${p}.fc1`); // [B, T, F]
    let act: string;
    if (cfg.mlp === "swiglu") {
      act = g.op("Mul", [g.op("Mul", [a, g.op("Sigmoid", [a])]), linear(m, `${p}.fc3`)]);
    } else {
      const inner = g.op("Add", [g.op("Mul", [g.op("Mul", [a, a]), geluA]), geluB]); // 2c (1 + a x^2)
      act = g.op("Mul", [a, g.op("Sigmoid", [g.op("Mul", [a, inner])])]);
    }
    x = g.op("Add", [x, linear(act, `${p}.fc2`)]);
  }
  const hidden = norm(x, "lnf");
  const headW = cfg.tieEmbeddings ? g.op("Transpose", [tok], [attr.ints("perm", [1, 0])]) : init("head_w"); // [C, V]
  g.op("MatMul", [hidden, headW], [], "logits"); // [B, T, V]

  const T = profile === "portable" ? { dimValue: L } : { dimParam: "sequence" };
  const f32 = onnx.TensorProto.DataType.FLOAT, i64 = onnx.TensorProto.DataType.INT64;
  const io = (name: string, elemType: number, dims: ({ dimParam: string } | { dimValue: number })[]) => ({
    name,
    type: { tensorType: { elemType, shape: { dim: dims } } },
  });
  const batch = { dimParam: "batch" };
  const cacheDims = (len: string) => [batch, { dimValue: H }, { dimParam: len }, { dimValue: hd }];
  const layers = Array.from({ length: kv ? nLayers : 0 }, (_, l) => l);
  const inputs = [
    io(ids, i64, [batch, T]),
    ...(kv ? [io("attention_mask", i64, [batch, { dimParam: "total_sequence" }]), io("position_ids", i64, [batch, T])] : []),
    ...layers.flatMap((l) => ["key", "value"].map((n) => io(`past_key_values.${l}.${n}`, f32, cacheDims("past_sequence")))),
  ];
  const outputs = [
    io("logits", f32, [batch, T, { dimValue: V }]),
    ...layers.flatMap((l) => ["key", "value"].map((n) => io(`present.${l}.${n}`, f32, cacheDims("total_sequence")))),
  ];
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: "", version: ONNX_OPSET }],
    producerName: "agent-forge",
    producerVersion: "1",
    docString: `decoder forward, profile ${profile}, positions ${cfg.positions}, max length ${L}`,
    metadataProps: Object.entries({ profile, max_length: String(L), ...metadata }).map(([key, value]) => ({ key, value })),
    graph: {
      name: "agent_forge_decoder",
      node: g.nodes,
      initializer: g.usedInits(),
      input: inputs,
      output: outputs,
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * Exports a saved decoder-family model's forward pass to `path` (atomically). Only models whose
 * forward is the plain decoder (cognate-standard, decoder) can be exported; others throw, naming the key.
 */
export async function exportOnnx(model: RegistryModel, meta: SavedModel, path: string, opts: OnnxExportOptions = {}): Promise<OnnxInfo> {
  if (meta.key !== "decoder" && meta.key !== "cognate-standard") {
    throw new Error(`onnx export: model '${meta.key}' adds modules the ONNX graph does not cover; exportable: cognate-standard, decoder`);
  }
  const cfg = decoderPart(meta.config as unknown as DecoderConfig);
  const bytes = decoderToOnnx(cfg, await model.params.toHost(), opts, {
    "agent_forge.registry_key": meta.key,
    "agent_forge.config": JSON.stringify(meta.config),
  });
  await writeAtomic(path, bytes);
  return onnxInfo(bytes, path);
}

/** Reads what an ONNX model holds (size, operator types, opset, metadata); `source` names it in errors. */
export function onnxInfo(bytes: Uint8Array, source = "onnx model"): OnnxInfo {
  let m: onnxProto.onnx.ModelProto;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${source}: not an ONNX model (${(e as Error).message})`);
  }
  if (!m.graph) throw new Error(`${source}: the ONNX model has no graph`);
  const ops = new Set<string>();
  for (const n of m.graph.node ?? []) ops.add(n.domain ? `${n.domain}:${n.opType}` : String(n.opType));
  const opset = (m.opsetImport ?? []).find((o) => !o.domain)?.version;
  return {
    sizeBytes: bytes.length,
    opTypes: [...ops].sort(),
    opset: Number(opset ?? 0),
    irVersion: Number(m.irVersion ?? 0),
    metadata: Object.fromEntries((m.metadataProps ?? []).map((p) => [String(p.key), String(p.value)])),
  };
}

/** `onnxInfo` of a file. */
export async function readOnnxInfo(path: string): Promise<OnnxInfo> {
  return onnxInfo(await Deno.readFile(path), path);
}
