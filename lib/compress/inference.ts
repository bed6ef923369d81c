/**
 * Compressed inference: the decoder's forward pass (lib/nn/decoder.ts, also the
 * `cognate-standard` model) over weights some of which stay compressed, and a measured
 * comparison of its speed against the dense model.
 *
 * Each Linear weight ([in, out], names `l{i}.qkv_w`, `proj_w`, `fc1_w`, `fc2_w`, `fc3_w`,
 * `head_w`) that the plan compressed runs in one of two modes:
 * - "kernels" (tfjs on the webgpu backend): W stays compressed on the GPU and its matmul runs
 *   in the WGSL kernels of kernels/ (ternary, VQ codebook-gather, SeedLM reconstruction + tiled
 *   matmul; see lib/compress/gpu_linear.ts);
 * - "reconstructed" (cpu, wasm, or on request): W is decompressed once when the model is
 *   prepared and multiplied by tfjs.
 * Embedding tables (`tok`, `pos`) are gathered from, not multiplied, so they are always used
 * reconstructed (a tied head multiplies by the reconstructed `tok`).
 *
 * The pass mirrors `Decoder.forward` except that q, k and v come from one [C, 3C] product sliced
 * afterwards (a compressed weight cannot be sliced by columns); tests check the logits match
 * `Decoder.forward` on the same weights.
 */
import * as tf from "@tensorflow/tfjs";
import { applyRope, causalMask, ropeTables } from "../nn/attention.ts";
import { type DecoderConfig, prevTokenEmbedding, tokensBefore } from "../nn/decoder.ts";
import { embedding, gelu, layerNorm, linear, rmsNorm, silu } from "../nn/layers.ts";
import type { HostTensor } from "../nn/params.ts";
import { Rng } from "../util/rng.ts";
import { type GpuLinear, gpuLinear, type GpuLinearKind, tfjsWebgpuDevice } from "../../lib/compress/gpu_linear.ts";
import type { CompressedLayer } from "./types.ts";

/** How compressed weights are multiplied: in the WGSL kernels, or decompressed once; `auto` = kernels on webgpu. */
export type InferenceMode = "kernels" | "reconstructed";

/** Options of `CompressedDecoder.create`. */
export interface CompressedDecoderOptions {
  /** Default "auto": "kernels" when tfjs runs on webgpu, else "reconstructed". */
  mode?: InferenceMode | "auto";
}

/** A weight's matmul: x [M, in] -> [M, out]. */
interface LinearOp {
  apply(x: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

const LINEAR = /^l\d+\.(qkv|proj|fc1|fc2|fc3)_w$|^head_w$/;

/** The decoder forward over dense and compressed weights (see the module doc). */
export class CompressedDecoder {
  /** Matmuls run per kernel since creation (all zero in "reconstructed" mode). */
  readonly kernelCalls: Record<GpuLinearKind, number> = { ternary: 0, vq: 0, seedlm: 0 };
  readonly #dense = new Map<string, tf.Tensor>();
  readonly #ops = new Map<string, LinearOp>();

  #prepareMs = 0;

  private constructor(readonly cfg: DecoderConfig, readonly mode: InferenceMode) {}

  /** ms that `create` took (uploads, and decompression where weights are reconstructed). */
  get prepareMs(): number {
    return this.#prepareMs;
  }

  /**
   * Prepares the model: dense tensors uploaded, compressed Linear weights uploaded to the GPU
   * (kernels) or decompressed (reconstructed), compressed embeddings decompressed. `dense` holds
   * every parameter that `layers` does not; errors name a missing or misshapen parameter.
   */
  static async create(
    cfg: DecoderConfig,
    dense: Map<string, HostTensor>,
    layers: Map<string, CompressedLayer> = new Map(),
    opts: CompressedDecoderOptions = {},
  ): Promise<CompressedDecoder> {
    const t0 = performance.now();
    const device = tfjsWebgpuDevice();
    const want = opts.mode ?? "auto";
    if (want === "kernels" && !device) {
      throw new Error(`CompressedDecoder: mode 'kernels' needs tfjs on webgpu, backend is ${tf.getBackend()}`);
    }
    const mode: InferenceMode = want === "auto" ? (device ? "kernels" : "reconstructed") : want;
    const model = new CompressedDecoder(cfg, mode);
    try {
      for (const [name, t] of dense) {
        if (layers.has(name)) throw new Error(`CompressedDecoder: '${name}' is given both dense and compressed`);
        model.#dense.set(name, tf.tensor(t.data, t.shape, "float32"));
      }
      for (const [name, layer] of layers) {
        if (mode === "kernels" && LINEAR.test(name)) {
          const g: GpuLinear = await gpuLinear(layer, device!);
          model.#ops.set(name, {
            apply: (x) => {
              model.kernelCalls[g.kind]++;
              return g.apply(x);
            },
            dispose: () => g.dispose(),
          });
        } else model.#dense.set(name, tf.tensor(layer.decompress(), [layer.rows, layer.cols], "float32"));
      }
      for (const [name, w] of model.#dense) {
        if (LINEAR.test(name)) model.#ops.set(name, { apply: (x) => linear(x, w) as tf.Tensor2D, dispose: () => {} });
      }
      model.#check();
    } catch (e) {
      model.dispose();
      throw e;
    }
    model.#prepareMs = performance.now() - t0;
    return model;
  }

  /** Throws naming the first parameter the config needs that is missing or has the wrong shape. */
  #check(): void {
    const { vocabSize: V, dModel: C, nLayers, maxSeqLen, bias, mlp, norm, positions, tieEmbeddings } = this.cfg;
    const F = Math.round(this.cfg.mlpRatio * C);
    const shapes: [string, number[]][] = [["tok", [V, C]], ["lnf_g", [C]]];
    if (positions === "learned") shapes.push(["pos", [maxSeqLen, C]]);
    for (let k = 1; k <= (this.cfg.prevTokens ?? 0); k++) shapes.push([`prev${k}_tok`, [V, C]]);
    if (norm === "layernorm") shapes.push(["lnf_b", [C]]);
    if (!tieEmbeddings) shapes.push(["head_w", [C, V]]);
    for (let l = 0; l < nLayers; l++) {
      const lin: [string, number, number][] = [["qkv", C, 3 * C], ["proj", C, C], ["fc1", C, F], ["fc2", F, C]];
      if (mlp === "swiglu") lin.push(["fc3", C, F]);
      for (const [n, i, o] of lin) {
        shapes.push([`l${l}.${n}_w`, [i, o]]);
        if (bias) shapes.push([`l${l}.${n}_b`, [o]]);
      }
      for (const n of ["ln1", "ln2"]) {
        shapes.push([`l${l}.${n}_g`, [C]]);
        if (norm === "layernorm") shapes.push([`l${l}.${n}_b`, [C]]);
      }
    }
    for (const [name, shape] of shapes) {
      const t = this.#dense.get(name);
      if (!t && !this.#ops.has(name)) throw new Error(`CompressedDecoder: parameter '${name}' is missing`);
      if (t && t.shape.join() !== shape.join()) throw new Error(`CompressedDecoder: '${name}' has shape [${t.shape}], expected [${shape}]`);
    }
  }

  #t(name: string): tf.Tensor {
    const t = this.#dense.get(name);
    if (!t) throw new Error(`CompressedDecoder: no parameter '${name}'`);
    return t;
  }

  /** y = x W (+ b) over the last axis with the named weight's op. x [..., in] -> [..., out]. */
  #linear(x: tf.Tensor, name: string): tf.Tensor {
    const op = this.#ops.get(`${name}_w`)!;
    const lead = x.shape.slice(0, -1);
    const y = op.apply(tf.reshape(x, [-1, x.shape[x.shape.length - 1]])); // [M, out]
    const b = this.#dense.get(`${name}_b`);
    const yb = b ? tf.add(y, b) : y;
    return tf.reshape(yb, [...lead, y.shape[1]]);
  }

  #norm(x: tf.Tensor, name: string): tf.Tensor {
    const g = this.#t(`${name}_g`);
    return this.cfg.norm === "layernorm" ? layerNorm(x, g, this.#t(`${name}_b`), this.cfg.normEps) : rmsNorm(x, g, this.cfg.normEps);
  }

  /** Causal self-attention of block l. x [B, T, C] -> [B, T, C]. */
  #attention(x: tf.Tensor3D, l: number): tf.Tensor {
    const [b, t, c] = x.shape;
    const h = this.cfg.nHeads, hd = c / h;
    const qkv = this.#linear(x, `l${l}.qkv`); // [B, T, 3C]
    const heads = (i: number) =>
      tf.transpose(tf.reshape(tf.slice(qkv, [0, 0, i * c], [b, t, c]), [b, t, h, hd]), [0, 2, 1, 3]) as tf.Tensor4D; // [B, H, T, hd]
    let q = heads(0), k = heads(1);
    const v = heads(2);
    if (this.cfg.positions === "rope") {
      const { cos, sin } = ropeTables(t, hd, { base: this.cfg.ropeBase, scale: this.cfg.ropeScale });
      q = applyRope(q, cos, sin);
      k = applyRope(k, cos, sin);
    }
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd)), causalMask(t)); // [B, H, T, T]
    const y = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), v), [0, 2, 1, 3]), [b, t, c]); // [B, T, C]
    return this.#linear(y, `l${l}.proj`);
  }

  #mlp(x: tf.Tensor, l: number): tf.Tensor {
    const h = this.cfg.mlp === "swiglu"
      ? tf.mul(silu(this.#linear(x, `l${l}.fc1`)), this.#linear(x, `l${l}.fc3`))
      : gelu(this.#linear(x, `l${l}.fc1`));
    return this.#linear(h, `l${l}.fc2`);
  }

  /** Logits [B, T, V] of ids int32 [B, T]. Synchronous; call inside tf.tidy or dispose the result. */
  forward(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, t] = ids.shape;
      const { dModel: C, vocabSize: V } = this.cfg;
      if (this.cfg.positions === "learned" && t > this.cfg.maxSeqLen) {
        throw new Error(`sequence of ${t} tokens exceeds maxSeqLen ${this.cfg.maxSeqLen}`);
      }
      let x = embedding(this.#t("tok") as tf.Tensor2D, ids) as tf.Tensor3D; // [B, T, C]
      if (this.cfg.positions === "learned") x = tf.add(x, tf.slice(this.#t("pos"), [0, 0], [t, C]));
      for (let k = 1; k <= (this.cfg.prevTokens ?? 0); k++) {
        x = tf.add(x, prevTokenEmbedding(this.#t(`prev${k}_tok`) as tf.Tensor2D, tokensBefore(ids, k)));
      }
      for (let l = 0; l < this.cfg.nLayers; l++) {
        const hA = tf.add(x, this.#attention(this.#norm(x, `l${l}.ln1`) as tf.Tensor3D, l));
        x = tf.add(hA, this.#mlp(this.#norm(hA, `l${l}.ln2`), l)) as tf.Tensor3D;
      }
      const hidden = this.#norm(x, "lnf");
      const logits = this.cfg.tieEmbeddings
        ? tf.matMul(tf.reshape(hidden, [-1, C]) as tf.Tensor2D, this.#t("tok") as tf.Tensor2D, false, true)
        : this.#linear(hidden, "head");
      return tf.reshape(logits, [b, t, V]) as tf.Tensor3D;
    });
  }

  /** Frees every tensor and GPU buffer the model holds. */
  dispose(): void {
    for (const t of this.#dense.values()) t.dispose();
    for (const op of this.#ops.values()) op.dispose();
    this.#dense.clear();
    this.#ops.clear();
  }
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Settings of `measureInference`. */
export interface InferenceSpeedOptions {
  /** Batch shape of the timed forward pass (default 8 sequences of min(64, maxSeqLen) tokens). */
  batch?: number;
  seqLen?: number;
  /** Timed repetitions per model after one warm-up pass (default 5). */
  reps?: number;
  /** Seed of the token ids (default 0). */
  seed?: number;
  mode?: CompressedDecoderOptions["mode"];
}

/** Compressed against dense forward speed on one batch. */
export interface InferenceSpeed {
  backend: string;
  mode: InferenceMode;
  batch: number;
  seqLen: number;
  reps: number;
  /** Median ms of one forward pass (logits read back) with every weight dense. */
  denseMs: number;
  /** The same with the compressed weights. */
  compressedMs: number;
  /** denseMs / compressedMs: above 1 the compressed model is faster. */
  speedup: number;
  /** ms to prepare the compressed model (upload, or decompress + upload). */
  prepareMs: number;
  /** Largest |compressed logit - dense logit| on the timed batch (how much compression moved the output). */
  maxLogitShift: number;
}

/**
 * Times the forward pass of the dense model and of its compressed form on the same batch, on the
 * current tfjs backend, alternating the two per repetition: median ms with the logits read back.
 * `dense` is every parameter; `layers` the compressed ones (they replace their dense tensors).
 */
export async function measureInference(
  cfg: DecoderConfig,
  dense: Map<string, HostTensor>,
  layers: Map<string, CompressedLayer>,
  opts: InferenceSpeedOptions = {},
): Promise<InferenceSpeed> {
  const batch = opts.batch ?? 8, seqLen = opts.seqLen ?? Math.min(64, cfg.maxSeqLen), reps = opts.reps ?? 5;
  for (const [k, v] of [["batch", batch], ["seqLen", seqLen], ["reps", reps]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`measureInference: ${k} = ${v}, expected a positive integer`);
  }
  const rest = new Map([...dense].filter(([name]) => !layers.has(name)));
  const base = await CompressedDecoder.create(cfg, dense, new Map(), { mode: "reconstructed" });
  let comp: CompressedDecoder | undefined;
  const ids = tf.tensor2d(idsFor(batch * seqLen, cfg.vocabSize, opts.seed ?? 0), [batch, seqLen], "int32");
  try {
    comp = await CompressedDecoder.create(cfg, rest, layers, { mode: opts.mode });
    const time = async (m: CompressedDecoder) => {
      const t0 = performance.now();
      const y = m.forward(ids);
      const data = (await y.data()) as Float32Array;
      y.dispose();
      return { ms: performance.now() - t0, data };
    };
    const a = await time(base), b = await time(comp); // warm-up: compiles pipelines, sizes buffers
    let shift = 0;
    for (let i = 0; i < a.data.length; i++) shift = Math.max(shift, Math.abs(a.data[i] - b.data[i]));
    const dMs: number[] = [], cMs: number[] = [];
    for (let r = 0; r < reps; r++) {
      dMs.push((await time(base)).ms);
      cMs.push((await time(comp)).ms);
    }
    const denseMs = median(dMs), compressedMs = median(cMs);
    return {
      backend: tf.getBackend(),
      mode: comp.mode,
      batch,
      seqLen,
      reps,
      denseMs,
      compressedMs,
      speedup: denseMs / compressedMs,
      prepareMs: comp.prepareMs,
      maxLogitShift: shift,
    };
  } finally {
    ids.dispose();
    base.dispose();
    comp?.dispose();
  }
}

/** Seeded token ids in [0, vocab). */
function idsFor(n: number, vocab: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => rng.int(vocab));
}
