/**
 * Serving an exported ONNX decoder through onnxruntime-node: a logits source for the Batcher that
 * runs the graph with past key values (onnx.ts, profile `kv`; an HF folder's onnx/model.onnx) and
 * keeps the running rows' keys and values between steps, so the server decodes through ONNX
 * Runtime with continuous batching, as it does through tfjs with nn/kv_cache.ts.
 *
 * The cache lives on the host as ONNX Runtime's output tensors: per layer [B, H, P, hd] and a
 * [B, P] attention mask. Rows join (zero slots, mask 0), leave (their batch rows dropped) and feed
 * a chunk of new tokens each step, padded at the front of the chunk, as in KvCache.
 */
import type * as OrtTypes from "onnxruntime-node";
import { TOKENIZER } from "../text/tokens.ts";
import type { LogitsSource, SourceRow } from "./batcher.ts";
import { onnxInfo } from "./onnx.ts";
import type { SavedModel } from "../models/io.ts";

type Ort = typeof OrtTypes;

/** An ONNX decoder with past key values, opened in onnxruntime-node, and the saved model it was exported from. */
export interface OnnxKvModel {
  session: OrtTypes.InferenceSession;
  ort: Ort;
  meta: SavedModel;
  layers: number;
  heads: number;
  headDim: number;
  vocab: number;
}

/** Opens `path` (an ONNX file exported with profile `kv`); errors name the file and what is missing. */
export async function openOnnxKv(path: string, threads = 2): Promise<OnnxKvModel> {
  const bytes = await Deno.readFile(path);
  const info = onnxInfo(bytes, path);
  if (info.metadata.profile !== "kv") {
    throw new Error(`${path}: ONNX profile '${info.metadata.profile ?? "unknown"}', expected 'kv' (the graph with past key values)`);
  }
  const key = info.metadata["agent_forge.registry_key"], config = info.metadata["agent_forge.config"];
  if (!key || !config) throw new Error(`${path}: no agent_forge.registry_key / agent_forge.config metadata (not exported by this project)`);
  const meta = { key, config: JSON.parse(config) } as SavedModel;
  const c = meta.config as { nLayers: number; nHeads: number; dModel: number; vocabSize: number };
  const ort = await import("onnxruntime-node");
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  return { session, ort, meta, layers: c.nLayers, heads: c.nHeads, headDim: c.dModel / c.nHeads, vocab: c.vocabSize };
}

/** Rows [rows] of a row-major [B, rest] array. */
function pickRows(data: Float32Array, rest: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * rest);
  rows.forEach((r, i) => out.set(data.subarray(r * rest, (r + 1) * rest), i * rest));
  return out;
}

/** The Batcher's logits source over an ONNX decoder (see the module comment). */
export class OnnxRows implements LogitsSource {
  readonly cached = true;
  #m: OnnxKvModel;
  /** The row of each cache row, in cache order. */
  #rows: SourceRow[] = [];
  /** Per row: 1 = a real token in that slot, 0 = padding. */
  #mask: number[][] = [];
  /** Per row: its next position. */
  #next: number[] = [];
  /** Per layer: keys and values [B, H, P, hd], flat. */
  #past: { k: Float32Array; v: Float32Array }[] = [];
  /** How many times padding-only slots were dropped (for tests and logs). */
  compactions = 0;

  constructor(model: OnnxKvModel) {
    this.#m = model;
  }

  get #slots(): number {
    return this.#mask[0]?.length ?? 0;
  }

  /** Drops the slots that are padding in every row (a left row's prompt, say); returns the new slot count. */
  #compact(): number {
    const { heads: H, headDim: hd } = this.#m;
    const P = this.#slots, B = this.#rows.length;
    const used: number[] = [];
    for (let j = 0; j < P; j++) if (this.#mask.some((m) => m[j] === 1)) used.push(j);
    const keep = (a: Float32Array) => {
      const out = new Float32Array(B * H * used.length * hd);
      for (let bh = 0; bh < B * H; bh++) {
        used.forEach((j, jj) => out.set(a.subarray((bh * P + j) * hd, (bh * P + j + 1) * hd), (bh * used.length + jj) * hd));
      }
      return out;
    };
    this.#past = this.#past.map(({ k, v }) => ({ k: keep(k), v: keep(v) }));
    this.#mask = this.#mask.map((m) => used.map((j) => m[j]));
    this.compactions++;
    return used.length;
  }

  async next(rows: readonly SourceRow[]): Promise<Float32Array> {
    const { heads: H, headDim: hd, layers: L, vocab: V, ort, session } = this.#m;
    const wanted = new Set(rows);
    const keep = this.#rows.flatMap((r, i) => wanted.has(r) ? [i] : []);
    let P = this.#slots;
    if (keep.length < this.#rows.length) {
      this.#rows = keep.map((i) => this.#rows[i]);
      this.#mask = keep.map((i) => this.#mask[i]);
      this.#next = keep.map((i) => this.#next[i]);
      this.#past = this.#past.map(({ k, v }) => ({ k: pickRows(k, H * P * hd, keep), v: pickRows(v, H * P * hd, keep) }));
      if (this.#rows.length === 0) [this.#mask, this.#past, P] = [[], [], 0];
      else if (P > 2 * Math.max(...this.#next) + 8) P = this.#compact();
    }
    const have = new Set(this.#rows);
    const fresh = rows.filter((r) => !have.has(r));
    if (fresh.length) {
      for (const r of fresh) {
        r.fed = 0;
        this.#rows.push(r);
        this.#mask.push(new Array(P).fill(0));
        this.#next.push(0);
      }
      const grown = (a: Float32Array | undefined) => {
        const out = new Float32Array(this.#rows.length * H * P * hd);
        if (a) out.set(a);
        return out;
      };
      this.#past = Array.from({ length: L }, (_, l) => ({ k: grown(this.#past[l]?.k), v: grown(this.#past[l]?.v) }));
    }
    const B = this.#rows.length;
    const chunks = this.#rows.map((r) => {
      const all = [...r.req.ids, ...r.out];
      const t = all.slice(r.fed);
      r.fed = all.length;
      return t;
    });
    const T = Math.max(...chunks.map((c) => c.length));
    const ids: number[] = [], pos: number[] = [];
    chunks.forEach((c, b) => {
      const lead = T - c.length;
      for (let i = 0; i < T; i++) {
        const real = i >= lead;
        ids.push(real ? c[i - lead] : TOKENIZER.pad);
        pos.push(real ? this.#next[b]++ : 0);
        this.#mask[b].push(real ? 1 : 0);
      }
    });
    const i64 = (v: number[], dims: number[]) => new ort.Tensor("int64", BigInt64Array.from(v, BigInt), dims);
    const feeds: Record<string, OrtTypes.Tensor> = {
      input_ids: i64(ids, [B, T]),
      attention_mask: i64(this.#mask.flat(), [B, P + T]),
      position_ids: i64(pos, [B, T]),
    };
    for (let l = 0; l < L; l++) {
      feeds[`past_key_values.${l}.key`] = new ort.Tensor("float32", this.#past[l].k, [B, H, P, hd]);
      feeds[`past_key_values.${l}.value`] = new ort.Tensor("float32", this.#past[l].v, [B, H, P, hd]);
    }
    const res = await session.run(feeds);
    this.#past = Array.from({ length: L }, (_, l) => ({
      k: res[`present.${l}.key`].data as Float32Array,
      v: res[`present.${l}.value`].data as Float32Array,
    }));
    const logits = res.logits.data as Float32Array; // [B, T, V]
    const cols = TOKENIZER.vocabSize;
    const at = new Map(this.#rows.map((r, i) => [r, i]));
    const out = new Float32Array(rows.length * cols);
    rows.forEach((r, k) => {
      const b = at.get(r)!;
      out.set(logits.subarray((b * T + T - 1) * V, (b * T + T - 1) * V + cols), k * cols);
    });
    return out;
  }
}
