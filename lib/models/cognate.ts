/**
 * Cognate: three causal language models built from the decoder's pieces (lib/nn/decoder.ts),
 * sized to the same parameter budget so that they can be compared head to head.
 *
 * - `standard`: the plain transformer, embed -> blocks -> final norm -> head.
 * - `memory`: the transformer with a GatedLTM (gated_ltm.ts) after a middle block. The memory
 *   is written chunk by chunk along the sequence inside the forward pass and read causally
 *   (each chunk reads the memory before its own write), so the model stays a causal LM.
 * - `reasoning`: the transformer followed by the refinement core (refinement.ts) with ACT
 *   halting per position, applied to the final hidden states h0 before the head; every step
 *   also reads h0 through the core's memory gate (input injection). The loss adds tau * ponder
 *   cost. The refinement block is per position (no mixing), so it stays causal.
 *
 * Parameter parity: the extra module of `memory` / `reasoning` is paid for by a thinner
 * transformer. `sizeCognate` picks, for each variant, the layer count and MLP width whose total
 * comes closest to the budget while keeping the MLP ratio nearest the preset's. Counts come
 * from the configs alone (`cognateParamCount`), so a 25M-parameter preset is sized without
 * allocating it.
 */
import * as tf from "@tensorflow/tfjs";
import { type CachedInput, type CachedOutput, Decoder, type DecoderConfig, SMALL_DECODER, validateDecoderConfig } from "../nn/decoder.ts";
import { tokenCrossEntropy } from "../nn/layers.ts";
import type { ParamSet } from "../nn/params.ts";
import { actConfig, type ShouldContinue } from "./act.ts";
import { GatedLTM, type GatedLTMConfig, gatedLtmConfig, type GatedLTMOutput, gatedLtmParamCount, type GatedLTMStats } from "./gated_ltm.ts";
import { type ModelSection, modelSectionOf } from "./section.ts";
import { type RefinementConfig, refinementConfig, RefinementCore, refinementParamCount, type StopReason } from "./refinement.ts";

/** Which cognate: plain transformer, transformer + long-term memory, transformer + ACT refinement. */
export type CognateVariant = "standard" | "memory" | "reasoning";

/** Every variant, in table order. */
export const COGNATE_VARIANTS: readonly CognateVariant[] = ["standard", "memory", "reasoning"];

/** A cognate: the decoder's fields (the transformer part) plus the variant's own. */
export interface CognateConfig extends DecoderConfig {
  /** Which cognate. Default "standard". */
  variant: CognateVariant;
  /** memory: index of the block after which the GatedLTM sits; -1 = the middle block, floor((nLayers - 1) / 2). Default -1. */
  memoryAfter: number;
  /** memory: width D of the GatedLTM's keys, values and queries (the memory is [D, D]); 0 = dModel. Default 0. */
  memDim: number;
  /** memory: tokens per in-pass memory update. Default 8. */
  memChunkSize: number;
  /** reasoning: MLP hidden width of the refinement block as a multiple of dModel. Default 2. */
  refineMlpRatio: number;
  /** reasoning: most refinement steps per position (ACT's maxSteps). Default 8. */
  maxRefinementSteps: number;
  /** reasoning: weight tau of the ponder cost in the loss. Default 0.01. */
  ponderTau: number;
  /** reasoning: initial bias of the halting unit; -1 gives h ~ 0.27 per step, about 4 steps at the start. Default -1. */
  haltBiasInit: number;
  /** reasoning: stop refining once the mean surprise falls below this; 0 = off, ACT alone ends the loop. Default 0. */
  convergenceThreshold: number;
}

/** Small defaults (a ~0.12M-parameter standard model) that train in seconds on a CPU. */
export const DEFAULT_COGNATE: CognateConfig = {
  variant: "standard",
  ...SMALL_DECODER, // 128-token vocabulary (bytes fit), 64 wide, 2 layers
  memoryAfter: -1,
  memDim: 0,
  memChunkSize: 8,
  refineMlpRatio: 2,
  maxRefinementSteps: 8,
  ponderTau: 0.01,
  haltBiasInit: -1,
  convergenceThreshold: 0,
};

/** Checks a CognateConfig; the error names the field. */
export function validateCognateConfig(c: CognateConfig): void {
  validateDecoderConfig(c);
  if (!COGNATE_VARIANTS.includes(c.variant)) throw new Error(`cognate.variant = ${c.variant}: expected ${COGNATE_VARIANTS.join(", ")}`);
  if (!Number.isInteger(c.memoryAfter) || c.memoryAfter < -1 || c.memoryAfter >= c.nLayers) {
    throw new Error(`cognate.memoryAfter = ${c.memoryAfter}: expected -1 or a block index below nLayers = ${c.nLayers}`);
  }
  if (!Number.isInteger(c.memDim) || c.memDim < 0) throw new Error(`cognate.memDim = ${c.memDim}: expected an integer >= 0`);
  for (const k of ["memChunkSize", "maxRefinementSteps"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`cognate.${k} = ${c[k]}: expected an integer >= 1`);
  }
  if (!(c.refineMlpRatio > 0)) throw new Error(`cognate.refineMlpRatio = ${c.refineMlpRatio}: expected > 0`);
  if (!(c.ponderTau >= 0)) throw new Error(`cognate.ponderTau = ${c.ponderTau}: expected >= 0`);
  if (!Number.isFinite(c.haltBiasInit)) throw new Error(`cognate.haltBiasInit = ${c.haltBiasInit}: expected a number`);
  if (!(c.convergenceThreshold >= 0)) throw new Error(`cognate.convergenceThreshold = ${c.convergenceThreshold}: expected >= 0`);
}

/** DEFAULT_COGNATE with `overrides`, validated. */
export function cognateConfig(overrides: Partial<CognateConfig> = {}): CognateConfig {
  const c = { ...DEFAULT_COGNATE, ...overrides };
  validateCognateConfig(c);
  return c;
}

/** The decoder's own fields of a config that extends DecoderConfig (a cognate's transformer part). */
export function decoderPart(c: DecoderConfig): DecoderConfig {
  const { vocabSize, dModel, nHeads, nLayers, mlpRatio, maxSeqLen, norm, positions, ropeBase, ropeScale } = c;
  const { mlp, bias, tieEmbeddings, initStd, normEps, prevTokens } = c;
  return {
    vocabSize,
    dModel,
    nHeads,
    nLayers,
    mlpRatio,
    maxSeqLen,
    norm,
    positions,
    ropeBase,
    ropeScale,
    mlp,
    bias,
    tieEmbeddings,
    initStd,
    normEps,
    ...(prevTokens ? { prevTokens } : {}),
  };
}

/** The block after which the memory variant's GatedLTM sits. */
export function memoryLayer(c: CognateConfig): number {
  return c.memoryAfter < 0 ? Math.floor((c.nLayers - 1) / 2) : c.memoryAfter;
}

/** The memory variant's GatedLTM config. */
export function cognateLtmConfig(c: CognateConfig): GatedLTMConfig {
  return gatedLtmConfig(c.dModel, { memDim: c.memDim || c.dModel, chunkSize: c.memChunkSize });
}

/** The reasoning variant's refinement-core config (ACT halting; its ACT maxSteps is maxRefinementSteps). */
export function cognateRefinementConfig(c: CognateConfig): RefinementConfig {
  return refinementConfig({
    dim: c.dModel,
    mlpRatio: c.refineMlpRatio,
    maxRefinementSteps: c.maxRefinementSteps,
    convergenceThreshold: c.convergenceThreshold,
    halting: "act",
    act: actConfig({ maxSteps: c.maxRefinementSteps, tau: c.ponderTau, haltBiasInit: c.haltBiasInit, haltInitStd: c.initStd }),
    initStd: c.initStd,
    normEps: c.normEps,
  });
}

// ---------------------------------------------------------------------------------------------
// Parameter counts from configs alone

/** Scalars of one decoder block whose MLP is F wide (norms, qkv, proj, MLP; biases when `bias`). */
export function decoderBlockParamCount(c: Pick<DecoderConfig, "dModel" | "bias" | "norm" | "mlp">, F: number): number {
  const C = c.dModel, b = c.bias ? 1 : 0;
  const norm = c.norm === "layernorm" ? 2 * C : C;
  const fcIn = (C * F + b * F) * (c.mlp === "swiglu" ? 2 : 1); // fc1 (and fc3)
  return 2 * norm + (3 * C * C + b * 3 * C) + (C * C + b * C) + fcIn + (F * C + b * C);
}

/** Scalars of a Decoder built from `c` (what its ParamSet's count() returns). */
export function decoderParamCount(c: DecoderConfig): number {
  const C = c.dModel, V = c.vocabSize;
  const F = Math.round(c.mlpRatio * C);
  const pos = c.positions === "learned" ? c.maxSeqLen * C : 0;
  const lnf = c.norm === "layernorm" ? 2 * C : C;
  return V * C * (1 + (c.prevTokens ?? 0)) + pos + c.nLayers * decoderBlockParamCount(c, F) + lnf + (c.tieEmbeddings ? 0 : C * V);
}

/** Scalars of the variant's own module: the GatedLTM (memory), the refinement core (reasoning), none (standard). */
export function cognateExtraParamCount(c: CognateConfig): number {
  if (c.variant === "memory") return gatedLtmParamCount(cognateLtmConfig(c));
  if (c.variant === "reasoning") return refinementParamCount(cognateRefinementConfig(c));
  return 0;
}

/** Scalars of a Cognate built from `c`, without allocating it. */
export function cognateParamCount(c: CognateConfig): number {
  return decoderParamCount(c) + cognateExtraParamCount(c);
}

// ---------------------------------------------------------------------------------------------
// Sizing to a budget

/** How `sizeCognate` shaped one variant's transformer. */
export interface CognateSizing {
  variant: CognateVariant;
  nLayers: number;
  /** F / dModel, with F the integer MLP width. */
  mlpRatio: number;
  /** Parameters of the sized model. */
  params: number;
  /** The budget it was sized to. */
  target: number;
}

/**
 * Sizes the transformer of `variant` to `target` parameters (default: the count of the
 * standard model at `base`'s sizes). For each layer count L in 1..maxLayers it solves for the
 * integer MLP width F that brings the total closest to the target, and keeps the L whose
 * F / dModel is nearest (in log ratio) to base.mlpRatio; a tie goes to more layers. The
 * standard variant at its own budget gets base's layers and ratio back. Pure: no tensors.
 */
export function sizeCognate(
  base: CognateConfig,
  variant: CognateVariant,
  target: number = cognateParamCount({ ...base, variant: "standard" }),
  maxLayers: number = 2 * base.nLayers,
): CognateSizing {
  const C = base.dModel;
  const fixed = cognateParamCount({ ...base, variant, nLayers: 0 }); // embeddings, head, final norm, extra module
  const perLayer0 = decoderBlockParamCount(base, 0);
  const perUnit = decoderBlockParamCount(base, 1) - perLayer0; // scalars per unit of MLP width
  let best: { L: number; F: number; score: number } | undefined;
  for (let L = 1; L <= maxLayers; L++) {
    const F = Math.round(((target - fixed) / L - perLayer0) / perUnit);
    if (F < 1) break;
    const score = Math.abs(Math.log(F / C / base.mlpRatio));
    if (!best || score <= best.score + 1e-12) best = { L, F, score };
  }
  if (!best) throw new Error(`sizeCognate: a budget of ${target} parameters cannot hold the ${variant} cognate's fixed ${fixed}`);
  const sized = { ...base, variant, nLayers: best.L, mlpRatio: best.F / C };
  return { variant, nLayers: best.L, mlpRatio: sized.mlpRatio, params: cognateParamCount(sized), target };
}

/** Where a preset's sizes come from and the budget every variant is sized to. */
export interface CognatePreset {
  /** The standard variant's config; the other variants change only nLayers and mlpRatio. */
  base: CognateConfig;
  /** The budget; absent, the base standard model's own count. */
  targetParams?: number;
  /** Where the sizes come from, for reports. */
  source: string;
}

/** A standard cognate with the pipeline's model section (section.ts). */
export function cognateBaseFromModel(m: ModelSection): CognateConfig {
  return cognateConfig({
    vocabSize: m.vocab_size,
    dModel: m.hidden_size,
    nHeads: m.num_heads,
    nLayers: m.num_layers,
    mlpRatio: m.mlp_ratio,
    maxSeqLen: m.max_seq_len,
    norm: m.norm,
    positions: m.positions,
    ropeBase: m.rope_base,
    mlp: m.mlp,
    bias: m.bias,
    tieEmbeddings: m.tie_embeddings,
    initStd: m.init_std,
    ...(m.prev_tokens ? { prevTokens: m.prev_tokens } : {}),
  });
}

/** The cognate presets: the pipeline's `tiny` and `small` model sections, and a 25M-parameter cognate for a GPU. */
export type CognatePresetName = "tiny" | "small" | "25m";

/**
 * Cognate presets. `tiny` and `small` are the pipeline presets' model sections as they are
 * (budget: the standard model's own count). `25m` is cognate-specific: the pipeline's `seed`
 * model (1024 wide, 24 layers, untied 50257-token vocabulary) has ~405M parameters, far from
 * the cognates' documented 25M, so `25m` keeps only the GPT-2 vocabulary and sizes a narrow
 * model to 25M.
 */
export const COGNATE_PRESETS: Record<CognatePresetName, CognatePreset> = {
  tiny: { base: cognateBaseFromModel(modelSectionOf("tiny")), source: "pipeline preset tiny" },
  small: { base: cognateBaseFromModel(modelSectionOf("small")), source: "pipeline preset small" },
  "25m": {
    base: cognateConfig({
      vocabSize: 50257, // the GPT-2 tokenizer, as the pipeline's seed preset
      dModel: 256, // narrow: a tied 50257 x 256 table is already 12.9M of the 25M
      nHeads: 8, // head size 32
      nLayers: 16, // the starting point; sizing settles on 15
      mlpRatio: 4,
      maxSeqLen: 2048, // rope: no position table, so this costs nothing
      positions: "rope",
      tieEmbeddings: true, // untied, the head alone would be another 12.9M
    }),
    targetParams: 25_000_000,
    source: "cognate-specific (pipeline seed is ~405M)",
  },
};

/** The preset's config for `variant`, sized to the preset's budget, with `overrides` on top (not re-sized). */
export function cognatePresetConfig(
  preset: CognatePresetName,
  variant: CognateVariant,
  overrides: Partial<CognateConfig> = {},
): CognateConfig {
  const p = COGNATE_PRESETS[preset];
  const s = sizeCognate(p.base, variant, p.targetParams);
  return cognateConfig({ ...p.base, variant, nLayers: s.nLayers, mlpRatio: s.mlpRatio, ...overrides });
}

// ---------------------------------------------------------------------------------------------
// The model

/** What the variant adds to a forward pass; fields of the other variants are absent. */
export interface CognateExtras {
  /** memory: hard writes (chunks over the batch whose surprise passed the threshold). Scalar. */
  writes?: tf.Scalar;
  /** memory: relative associative error of every chunk before its write. [B, nChunks] */
  surprise?: tf.Tensor2D;
  /** memory: the whole GatedLTM output (gates, chunk summaries; `remember` takes it). */
  ltm?: GatedLTMOutput;
  /** reasoning: refinement steps N per position, as floats (1..maxRefinementSteps). [B, T] */
  steps?: tf.Tensor2D;
  /** reasoning: steps the loop ran, the largest N. */
  stepsRun?: number;
  /** reasoning: ponder cost mean(N + R), unscaled; the loss adds ponderTau times it. Scalar. */
  ponder?: tf.Scalar;
  /** reasoning: raw halting probabilities of every step. [S, B, T] */
  haltProbs?: tf.Tensor3D;
  /** reasoning: why the loop ended. */
  stopReason?: StopReason;
}

/** What `forward` returns. */
export interface CognateOutput {
  /** [B, T, V] */
  logits: tf.Tensor3D;
  /** Final hidden states after the final norm. [B, T, C] */
  hidden: tf.Tensor3D;
  extras: CognateExtras;
}

/** Options of one forward pass. */
export interface CognateForwardOptions {
  /** reasoning: ACT's continue test (default: a host read of the running mask). */
  shouldContinue?: ShouldContinue;
}

/** A cognate language model; see the module comment. Its parameters live in `params` (the decoder's set). */
export class Cognate {
  readonly cfg: CognateConfig;
  readonly decoder: Decoder;
  readonly params: ParamSet;
  /** memory only. */
  readonly ltm?: GatedLTM;
  /** reasoning only. */
  readonly core?: RefinementCore;

  /**
   * The forward pass with a KV cache (nn/kv_cache.ts), standard variant only. The memory variant
   * has none: its GatedLTM writes the memory once per chunk of the sequence from all of the chunk's
   * tokens, so a token's read depends on where chunk boundaries fall, and decoding would have to
   * carry the memory and momentum across calls. The reasoning variant has none: its refinement loop
   * stops for the whole batch on a surprise averaged over every position, so a new token's steps
   * depend on the tokens before it, and refining it alone would change the output.
   */
  readonly forwardCached?: (input: CachedInput) => CachedOutput;

  constructor(cfg: CognateConfig, seed: number) {
    validateCognateConfig(cfg);
    this.cfg = cfg;
    this.decoder = new Decoder(decoderPart(cfg), seed);
    this.params = this.decoder.params;
    if (cfg.variant === "memory") this.ltm = new GatedLTM(cognateLtmConfig(cfg), this.params, "ltm");
    if (cfg.variant === "reasoning") this.core = new RefinementCore(this.params, cognateRefinementConfig(cfg), "refine.");
    if (cfg.variant === "standard") this.forwardCached = (input) => this.decoder.forwardCached(input);
  }

  /** ids int32 [B, T] -> logits [B, T, V], hidden [B, T, C] and the variant's extras. Run inside tf.tidy. */
  forward(ids: tf.Tensor2D, opts: CognateForwardOptions = {}): CognateOutput {
    const d = this.decoder;
    const extras: CognateExtras = {};
    const at = this.ltm ? memoryLayer(this.cfg) : -1;
    let x = d.embed(ids); // [B, T, C]
    for (let l = 0; l < this.cfg.nLayers; l++) {
      x = d.block(x, l); // [B, T, C]
      if (l === at) {
        const m = this.ltm!.forward(x);
        x = m.y; // [B, T, C]: x + gated memory read
        Object.assign(extras, { writes: m.writes, surprise: m.surprise, ltm: m });
      }
    }
    if (this.core) {
      // Input injection: every step also reads the transformer's states through the core's memory gate.
      const r = this.core.refine(x, { ctx: x, shouldContinue: opts.shouldContinue });
      const act = r.act!;
      x = r.output; // [B, T, C]: ACT's mean field over the refinement steps
      Object.assign(extras, {
        steps: act.steps as tf.Tensor2D, // [B, T]
        stepsRun: r.steps,
        ponder: act.ponderCost,
        haltProbs: act.haltProbs as tf.Tensor3D, // [S, B, T]
        stopReason: r.stopReason,
      });
    }
    const { hidden, logits } = d.head(x);
    return { logits, hidden, extras };
  }

  /**
   * Mean next-token cross-entropy (plus ponderTau * ponder cost for reasoning), with its parts.
   * ids, targets int32 [B, T]; mask float [B, T] (1 = counts).
   */
  lossParts(ids: tf.Tensor2D, targets: tf.Tensor2D, mask?: tf.Tensor2D): { loss: tf.Scalar; ce: tf.Scalar; out: CognateOutput } {
    const out = this.forward(ids);
    const ce = tokenCrossEntropy(out.logits, targets, mask);
    const ponder = out.extras.ponder;
    const loss = ponder ? tf.add(ce, tf.mul(ponder, this.cfg.ponderTau)) : ce; // CE + tau * (N + R)
    return { loss: loss as tf.Scalar, ce, out };
  }

  /** The training loss (a TrainTask's `loss`). */
  loss(ids: tf.Tensor2D, targets: tf.Tensor2D, mask?: tf.Tensor2D): tf.Scalar {
    return this.lossParts(ids, targets, mask).loss;
  }

  /** memory: the GatedLTM's utilization (store slots, in-pass writes over remembered calls). */
  ltmStats(): GatedLTMStats | undefined {
    return this.ltm?.stats();
  }

  /** Frees the parameters. */
  dispose(): void {
    this.params.dispose();
  }
}

/** Factory: DEFAULT_COGNATE with `overrides` (validated), parameters drawn from `seed`. */
export function createCognate(overrides: Partial<CognateConfig> = {}, seed = 0): Cognate {
  return new Cognate(cognateConfig(overrides), seed);
}
