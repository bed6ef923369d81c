/**
 * Cogment: a causal language model that combines the adaptive pieces of this folder.
 *
 *   x   = embed(ids)                                           [B, T, C]
 *   x   = blocks 0 .. nLayers-2 (applied once each)
 *   h   = ACT over depth: the last block, shared, applied again and again with a halting
 *         unit per position (act.ts); h is ACT's mean field over the steps (Universal
 *         Transformer style: halted positions keep their output, but still serve as keys)
 *   s   = short-term memory: h reads `memorySlots` learned slot vectors by attention,
 *         s = sigmoid(h Wg + bg) * (softmax(LN(h) K^T / sqrt(C)) K) Wo;  h = h + s
 *   h   = GatedLTM(h): the Titans-style memory written chunk by chunk along the sequence and
 *         read causally (gated_ltm.ts)
 *   h   = refinement core (refinement.ts) from h, reading s through its memory gate at every
 *         step, halted per position by its own ACT unit (or run to convergence / maxSteps)
 *   out = final norm -> head
 *
 * The loss is cross-entropy + depthTau * depth ponder + refineTau * refinement ponder. Every
 * stage is causal (attention is masked, the LTM reads before it writes, the slot read, the
 * refinement block and both halting units are per position), so Cogment is a causal LM.
 */
import * as tf from "@tensorflow/tfjs";
import { Decoder, type DecoderConfig, SMALL_DECODER, validateDecoderConfig } from "../nn/decoder.ts";
import { layerNorm, linear, tokenCrossEntropy } from "../nn/layers.ts";
import type { ParamSet } from "../nn/params.ts";
import { actConfig, actLoop, addHaltingUnit, type HaltingWeights, type ShouldContinue } from "./act.ts";
import { GatedLTM, gatedLtmConfig, type GatedLTMStats } from "./gated_ltm.ts";
import { refinementConfig, RefinementCore, type StopReason } from "./refinement.ts";
import { decoderPart } from "./cognate.ts";

/** Cogment hyper-parameters: the decoder's (nLayers counts the shared block) plus the adaptive parts'. */
export interface CogmentConfig extends DecoderConfig {
  /** Most applications of the shared block per position (ACT over depth). Default 4. */
  depthMaxSteps: number;
  /** Ponder weight of the depth ACT. Default 0.01. */
  depthTau: number;
  /** Initial halting bias of the depth ACT; 0 gives h = 0.5, two steps at the start. Default 0. */
  depthHaltBiasInit: number;
  /** Learned short-term memory slots S. Default 8. */
  memorySlots: number;
  /** Initial bias of the slot read's gate (0: half open). Default 0. */
  slotGateBiasInit: number;
  /** Width D of the GatedLTM memory ([D, D]); 0 = dModel. Default 0. */
  memDim: number;
  /** Tokens per GatedLTM update. Default 8. */
  memChunkSize: number;
  /** MLP ratio of the refinement block. Default 2. */
  refineMlpRatio: number;
  /** Most refinement steps. Default 4. */
  maxRefinementSteps: number;
  /** `act`: the refinement core halts per position with its own unit; `none`: convergence or maxRefinementSteps. Default `act`. */
  refineHalting: "none" | "act";
  /** Ponder weight of the refinement ACT. Default 0.01. */
  refineTau: number;
  /** Initial halting bias of the refinement ACT. Default 0. */
  refineHaltBiasInit: number;
  /** Refinement stops once the mean surprise falls below this; 0 = off. Default 0. */
  convergenceThreshold: number;
}

/** Small defaults (~0.18M parameters) that train in seconds on a CPU. */
export const DEFAULT_COGMENT: CogmentConfig = {
  ...SMALL_DECODER,
  nLayers: 2, // one plain block, then the shared ACT block
  depthMaxSteps: 4,
  depthTau: 0.01,
  depthHaltBiasInit: 0,
  memorySlots: 8,
  slotGateBiasInit: 0,
  memDim: 0,
  memChunkSize: 8,
  refineMlpRatio: 2,
  maxRefinementSteps: 4,
  refineHalting: "act",
  refineTau: 0.01,
  refineHaltBiasInit: 0,
  convergenceThreshold: 0,
};

/** Checks a CogmentConfig; the error names the field. */
export function validateCogmentConfig(c: CogmentConfig): void {
  validateDecoderConfig(c);
  for (const k of ["depthMaxSteps", "memorySlots", "memChunkSize", "maxRefinementSteps"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`cogment.${k} = ${c[k]}: expected an integer >= 1`);
  }
  if (!Number.isInteger(c.memDim) || c.memDim < 0) throw new Error(`cogment.memDim = ${c.memDim}: expected an integer >= 0`);
  for (const k of ["depthTau", "refineTau", "convergenceThreshold"] as const) {
    if (!(c[k] >= 0)) throw new Error(`cogment.${k} = ${c[k]}: expected >= 0`);
  }
  for (const k of ["depthHaltBiasInit", "refineHaltBiasInit", "slotGateBiasInit"] as const) {
    if (!Number.isFinite(c[k])) throw new Error(`cogment.${k} = ${c[k]}: expected a number`);
  }
  if (!(c.refineMlpRatio > 0)) throw new Error(`cogment.refineMlpRatio = ${c.refineMlpRatio}: expected > 0`);
  if (c.refineHalting !== "none" && c.refineHalting !== "act") {
    throw new Error(`cogment.refineHalting = ${c.refineHalting}: expected none or act`);
  }
}

/** DEFAULT_COGMENT with `overrides`, validated. */
export function cogmentConfig(overrides: Partial<CogmentConfig> = {}): CogmentConfig {
  const c = { ...DEFAULT_COGMENT, ...overrides };
  validateCogmentConfig(c);
  return c;
}

/** ACT over depth. L = [B, T]; S = stepsRun (<= depthMaxSteps). */
export interface CogmentHalting {
  /** Raw halting probabilities h_n of every step. [S, B, T] */
  probs: tf.Tensor3D;
  /** Halting distribution p_n (sums to 1 over steps). [S, B, T] */
  weights: tf.Tensor3D;
  /** Applications of the shared block per position, as floats. [B, T] */
  steps: tf.Tensor2D;
  /** Steps the loop ran: the largest of `steps`. */
  stepsRun: number;
  /** mean(N + R), unscaled. Scalar. */
  ponder: tf.Scalar;
}

/** The refinement core's run. */
export interface CogmentRefinement {
  /** Block applications run. */
  steps: number;
  stopReason: StopReason;
  /** Surprise of every step. [steps] */
  surprise: tf.Tensor1D;
  /** refineHalting `act`: steps per position [B, T], halting probabilities [steps, B, T], ponder cost (scalar). */
  positionSteps?: tf.Tensor2D;
  haltProbs?: tf.Tensor3D;
  ponder?: tf.Scalar;
}

/** How the memories were used in this pass. */
export interface CogmentMemory {
  /** Attention of every position over the slots. [B, T, S] */
  slotAttention: tf.Tensor3D;
  /** Mean attention per slot over the batch and positions (sums to 1). [S] */
  slotUsage: tf.Tensor1D;
  /** exp(entropy of slotUsage) / S in (0, 1]: 1 when every slot is read equally. Scalar. */
  slotUtilization: tf.Scalar;
  /** GatedLTM hard writes (surprising chunks over the batch). Scalar. */
  ltmWrites: tf.Scalar;
  /** ltmWrites / chunks in the batch. Scalar. */
  ltmWriteRate: tf.Scalar;
  /** Relative associative error per chunk before its write. [B, nChunks] */
  ltmSurprise: tf.Tensor2D;
}

/** What a Cogment forward pass returns. */
export interface CogmentOutput {
  /** [B, T, V] */
  logits: tf.Tensor3D;
  /** Final hidden states after the final norm. [B, T, C] */
  hidden: tf.Tensor3D;
  halting: CogmentHalting;
  refinement: CogmentRefinement;
  memory: CogmentMemory;
}

/** Options of one forward pass. */
export interface CogmentForwardOptions {
  /** Continue test of both ACT loops (default: a host read of the running mask). */
  shouldContinue?: ShouldContinue;
}

/** Cogment; see the module comment. Parameters: the decoder's, `depth.halt_*`, `stm.*`, `ltm.*`, `refine.*`. */
export class Cogment {
  readonly cfg: CogmentConfig;
  readonly decoder: Decoder;
  readonly params: ParamSet;
  readonly depthHalt: HaltingWeights;
  readonly ltm: GatedLTM;
  readonly core: RefinementCore;

  constructor(cfg: CogmentConfig, seed: number) {
    validateCogmentConfig(cfg);
    this.cfg = cfg;
    this.decoder = new Decoder(decoderPart(cfg), seed);
    const p = this.params = this.decoder.params;
    const { dModel: C, memorySlots: S, initStd: std } = cfg;
    this.depthHalt = addHaltingUnit(p, "depth.", C, this.#depthAct());
    p.add("stm.ln_g", [C], { kind: "const", value: 1 });
    p.add("stm.ln_b", [C], { kind: "const", value: 0 });
    p.add("stm.slots", [S, C], { kind: "normal", std: 1 }); // keys and values; LN(h) has unit scale too
    p.add("stm.out_w", [C, C], { kind: "normal", std }); // read -> stream, small at the start
    p.add("stm.gate_w", [C, C], { kind: "normal", std });
    p.add("stm.gate_b", [C], { kind: "const", value: cfg.slotGateBiasInit });
    this.ltm = new GatedLTM(gatedLtmConfig(C, { memDim: cfg.memDim || C, chunkSize: cfg.memChunkSize }), p, "ltm");
    this.core = new RefinementCore(
      p,
      refinementConfig({
        dim: C,
        mlpRatio: cfg.refineMlpRatio,
        maxRefinementSteps: cfg.maxRefinementSteps,
        convergenceThreshold: cfg.convergenceThreshold,
        halting: cfg.refineHalting,
        act: actConfig({ maxSteps: cfg.maxRefinementSteps, tau: cfg.refineTau, haltBiasInit: cfg.refineHaltBiasInit, haltInitStd: std }),
        initStd: std,
        normEps: cfg.normEps,
      }),
      "refine.",
    );
  }

  #depthAct() {
    const c = this.cfg;
    return actConfig({ maxSteps: c.depthMaxSteps, tau: c.depthTau, haltBiasInit: c.depthHaltBiasInit, haltInitStd: c.initStd });
  }

  /** The short-term slot read. h [B, T, C] -> gated read s [B, T, C] and attention [B, T, S]. */
  slotRead(h: tf.Tensor3D): { read: tf.Tensor3D; attention: tf.Tensor3D } {
    const [b, t, c] = h.shape;
    const g = (n: string) => this.params.get(`stm.${n}`);
    const slots = g("slots"); // [S, C]
    const q = tf.reshape(layerNorm(h, g("ln_g"), g("ln_b"), this.cfg.normEps), [-1, c]); // [B*T, C]
    const att = tf.softmax(tf.mul(tf.matMul(q, slots, false, true), 1 / Math.sqrt(c))); // [B*T, S]
    const read = linear(tf.matMul(att, slots), g("out_w")); // [B*T, C]
    const gate = tf.sigmoid(linear(tf.reshape(h, [-1, c]), g("gate_w"), g("gate_b"))); // [B*T, C]
    return {
      read: tf.reshape(tf.mul(gate, read), [b, t, c]) as tf.Tensor3D,
      attention: tf.reshape(att, [b, t, this.cfg.memorySlots]) as tf.Tensor3D,
    };
  }

  /** ids int32 [B, T] -> logits, hidden states, depth halting, refinement and memory use. Run inside tf.tidy. */
  forward(ids: tf.Tensor2D, opts: CogmentForwardOptions = {}): CogmentOutput {
    const d = this.decoder;
    const L = this.cfg.nLayers;
    let x = d.embed(ids); // [B, T, C]
    for (let l = 0; l < L - 1; l++) x = d.block(x, l); // [B, T, C]
    const act = actLoop(x, (s) => d.block(s as tf.Tensor3D, L - 1), this.depthHalt, this.#depthAct(), {
      shouldContinue: opts.shouldContinue,
    });
    let h = act.output as tf.Tensor3D; // [B, T, C]
    const stm = this.slotRead(h);
    h = tf.add(h, stm.read) as tf.Tensor3D; // [B, T, C]
    const lt = this.ltm.forward(h);
    h = lt.y; // [B, T, C]
    const r = this.core.refine(h, { ctx: stm.read, shouldContinue: opts.shouldContinue });
    const { hidden, logits } = d.head(r.output);
    const usage = tf.mean(tf.reshape(stm.attention, [-1, this.cfg.memorySlots]), 0) as tf.Tensor1D; // [S]
    const entropy = tf.neg(tf.sum(tf.mul(usage, tf.log(tf.add(usage, 1e-12))))); // scalar
    return {
      logits,
      hidden,
      halting: {
        probs: act.haltProbs as tf.Tensor3D,
        weights: act.weights as tf.Tensor3D,
        steps: act.steps as tf.Tensor2D,
        stepsRun: act.stepsRun,
        ponder: act.ponderCost,
      },
      refinement: {
        steps: r.steps,
        stopReason: r.stopReason,
        surprise: r.history.surprise,
        ...(r.act
          ? { positionSteps: r.act.steps as tf.Tensor2D, haltProbs: r.act.haltProbs as tf.Tensor3D, ponder: r.act.ponderCost }
          : {}),
      },
      memory: {
        slotAttention: stm.attention,
        slotUsage: usage,
        slotUtilization: tf.div(tf.exp(entropy), this.cfg.memorySlots) as tf.Scalar,
        ltmWrites: lt.writes,
        ltmWriteRate: tf.div(lt.writes, lt.surprise.size) as tf.Scalar,
        ltmSurprise: lt.surprise,
      },
    };
  }

  /**
   * Cross-entropy + depthTau * depth ponder + refineTau * refinement ponder, with the parts.
   * ids, targets int32 [B, T]; mask float [B, T] (1 = counts).
   */
  lossParts(ids: tf.Tensor2D, targets: tf.Tensor2D, mask?: tf.Tensor2D): { loss: tf.Scalar; ce: tf.Scalar; out: CogmentOutput } {
    const out = this.forward(ids);
    const ce = tokenCrossEntropy(out.logits, targets, mask);
    let loss: tf.Tensor = tf.add(ce, tf.mul(out.halting.ponder, this.cfg.depthTau));
    if (out.refinement.ponder) loss = tf.add(loss, tf.mul(out.refinement.ponder, this.cfg.refineTau));
    return { loss: loss as tf.Scalar, ce, out };
  }

  /** The training loss (a TrainTask's `loss`). */
  loss(ids: tf.Tensor2D, targets: tf.Tensor2D, mask?: tf.Tensor2D): tf.Scalar {
    return this.lossParts(ids, targets, mask).loss;
  }

  /** The GatedLTM's utilization over remembered calls (store slots, in-pass writes). */
  ltmStats(): GatedLTMStats {
    return this.ltm.stats();
  }

  /** Frees the parameters. */
  dispose(): void {
    this.params.dispose();
  }
}

/** Parameters of a Cogment of config `c` (counted on an instance, freed at once). */
export function cogmentParamCount(c: CogmentConfig): number {
  const m = new Cogment(c, 0);
  const n = m.params.count();
  m.dispose();
  return n;
}

/**
 * `base` with the decoder's mlpRatio chosen so the model has about `target` parameters (the
 * count is linear in mlpRatio: two instances give the line). Throws when even a tiny MLP is over.
 */
export function sizeCogment(base: CogmentConfig, target: number): CogmentConfig {
  const at = (r: number) => cogmentParamCount({ ...base, mlpRatio: r });
  const n1 = at(1), n2 = at(2);
  const ratio = 1 + (target - n1) / (n2 - n1);
  const minRatio = 1 / base.dModel;
  if (ratio < minRatio) {
    throw new Error(`sizeCogment: a budget of ${target} parameters is below the Cogment's ${at(minRatio)} at the smallest MLP`);
  }
  return cogmentConfig({ ...base, mlpRatio: ratio });
}

/** Factory: DEFAULT_COGMENT with `overrides` (validated), parameters drawn from `seed`. */
export function createCogment(overrides: Partial<CogmentConfig> = {}, seed = 0): Cogment {
  return new Cogment(cogmentConfig(overrides), seed);
}
