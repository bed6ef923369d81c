/**
 * HRRM: a hierarchical recurrent reasoning model in the style of HRM (Wang et al. 2025,
 * "Hierarchical Reasoning Model") for sequence-to-sequence puzzles: ids [B, T] -> logits [B, T, V].
 *
 * Two recurrent modules share the input embedding. The fast low-level module L (non-causal
 * post-norm transformer blocks) reads z_L + z_H + x and is updated `tLow` times per high-level
 * step; the slow high-level module H reads z_H + z_L and is updated once per `tLow` L-steps,
 * `nHigh` times per segment. The latent carry (z_H, z_L) [B, T, C] persists across segments.
 *
 * Training is deep supervision: several segments on the same input, each with its own loss,
 * the carry detached between them. Within a segment only the last L and H updates are
 * differentiated (the one-step gradient approximation); the earlier ones run off the tape.
 * A Q head on mean-pooled z_H gives (Q_halt, Q_continue): inference halts a sequence when
 * Q_halt > Q_continue (or, by TRM's rule, Q_halt > 0; HaltRule) or at maxSegments, and
 * training adds a Q-learning loss (halt target: the segment's prediction is exactly right;
 * continue target: the next segment's max Q).
 *
 * Options: a third, strategic level above H (`levels: 3`), token mixing by an MLP across the
 * cells instead of attention (`mixer: "mlp"`, TRM's Sudoku model), and an external memory of
 * solved puzzles read by every high-level update (`episodes`, filled by `setEpisodes`).
 *
 * Variants: `reasoner` (the plain model), `planner` (a controller head on z_H picks one of K
 * plan actions per token each high-level cycle; the action's embedding joins the L input) and
 * `memory` (H also reads a learned slot memory by attention, added through a learned gate).
 */
import * as tf from "@tensorflow/tfjs";
import { bceWithLogits, crossEntropy, embedding, gelu, linear, rmsNorm } from "../nn/layers.ts";
import { noGrad, stopGradient } from "../nn/grad.ts";
import { ParamSet } from "../nn/params.ts";
import { deriveSeed, Rng } from "../util/rng.ts";

/** Which HRRM: the plain reasoner, the planner (plan-action controller) or the slot-memory model. */
export type HrrmVariant = "reasoner" | "planner" | "memory";

/** HRRM hyper-parameters; defaults in DEFAULT_HRRM. */
export interface HrrmConfig {
  /** Model variant (default "reasoner"). */
  variant: HrrmVariant;
  /** Tokens in the vocabulary, input and output alike (default 12). */
  vocabSize: number;
  /** Longest sequence; sizes the learned position table (default 16). */
  maxSeqLen: number;
  /** Width of both latent states (default 32). */
  dModel: number;
  /** Attention heads in every block; dModel must divide by it (default 4). */
  nHeads: number;
  /** MLP hidden width as a multiple of dModel (default 2). */
  mlpRatio: number;
  /** Transformer blocks in the low-level module (default 1). */
  lowLayers: number;
  /** Transformer blocks in the high-level module (default 1). */
  highLayers: number;
  /** Low-level updates per high-level update (default 2). */
  tLow: number;
  /** High-level cycles per segment (default 2). */
  nHigh: number;
  /**
   * Levels on their own time scales (default 2, HRM's). 3 adds a strategic module S above the
   * high (tactical) and low (operational) ones: once per segment, before its high-level cycles,
   * z_S <- S(z_S + z_H), and every high-level update then reads z_H + z_L + z_S. S has
   * highLayers blocks; its state is carried across segments like the others.
   */
  levels: 2 | 3;
  /** Most segments inference runs before it must halt (default 4). */
  maxSegments: number;
  /** Deep-supervision segments per training batch, at most maxSegments (default 2). */
  trainSegments: number;
  /** Differentiate only the last L and H update of each segment (default true); false: full BPTT within a segment. */
  oneStepGrad: boolean;
  /** Weight of the Q-learning loss next to the cross-entropy (default 0.5). */
  qLossWeight: number;
  /** Plan actions K of the planner's controller (default 4). */
  planActions: number;
  /** Planner: `soft` adds the probability-weighted action embedding; `straight-through` the chosen one, softmax gradient (default "soft"). */
  planMode: "soft" | "straight-through";
  /** Learned memory slots of the memory variant (default 8). */
  memorySlots: number;
  /** Epsilon of the RMSNorms (default 1e-6). */
  normEps: number;
  /**
   * Positions: `learned` (a table of maxSeqLen rows, default) or `grid2d`: the sequence is a
   * gridSide x gridSide grid, row-major, and a position is a learned row embedding plus a learned
   * column embedding, so attention can see rows and columns from the start. `cells`: each token is
   * a packed cell (`packCell`: two ids, so ids are [B, T, 2]) of one of several grids (an ARC task's demonstrations and
   * query); its embedding adds the colour's, the row's and column's counted from both edges
   * (so a mirror is as easy to see as a copy), the grid's kind and its pair's index.
   */
  positions: "learned" | "grid2d" | "cells";
  /**
   * How a block mixes tokens: `attention` (self-attention, default) or `mlp`: an MLP across the
   * token axis (MLP-Mixer's token mixing, TRM's choice for small fixed grids such as Sudoku), a
   * learned T x (mlpRatio T) x T map per block, so which cells inform which is learned directly
   * instead of through query-key products. Needs every sequence to be maxSeqLen tokens long.
   */
  mixer: "attention" | "mlp";
  /** grid2d: side of the square grid; gridSide^2 must equal the sequence length. cells: the largest grid side, at most 32 (default 0: unused). */
  gridSide: number;
  /**
   * External memory of solved puzzles: how many (input, solution) pairs it holds (default 0: none).
   * Every high-level update of a new puzzle reads it (`episodeRead`): attention from the puzzle's
   * pooled input to each stored puzzle's, which weighs the stored solutions cell by cell. The pairs
   * come from `setEpisodes` (the caller's solved puzzles, e.g. training puzzles); needs a fixed
   * sequence length (learned or grid2d positions).
   */
  episodes: number;
}

/** Small defaults that train in seconds on a CPU. */
export const DEFAULT_HRRM: HrrmConfig = {
  variant: "reasoner",
  vocabSize: 12,
  maxSeqLen: 16,
  dModel: 32,
  nHeads: 4,
  mlpRatio: 2,
  lowLayers: 1,
  highLayers: 1,
  tLow: 2,
  nHigh: 2,
  levels: 2,
  maxSegments: 4,
  trainSegments: 2,
  oneStepGrad: true,
  qLossWeight: 0.5,
  planActions: 4,
  planMode: "soft",
  memorySlots: 8,
  normEps: 1e-6,
  positions: "learned",
  mixer: "attention",
  gridSide: 0,
  episodes: 0,
};

// ---------------------------------------------------------------------------------------------
// Packed cell tokens (positions = "cells")

/** Values (colours and markers), largest grid side, grid kinds and pairs a packed cell token can hold. */
export const CELL_VALUES = 16, CELL_MAX_SIDE = 32, CELL_KINDS = 4, CELL_PAIRS = 8;

/** One cell of one grid of a task. */
export interface CellToken {
  /** Colour or marker, 0..CELL_VALUES-1. */
  value: number;
  /** Row and column in its grid, and the grid's height and width. */
  row: number;
  col: number;
  height: number;
  width: number;
  /** Which grid: 0 demonstration input, 1 demonstration output, 2 query input, 3 query output (to answer). */
  kind: number;
  /** Index of the grid's input/output pair, 0..CELL_PAIRS-1. */
  pair: number;
}

/**
 * Sizes of a cell token's fields. A token is two int32s, each small enough to stay exact through
 * the float arithmetic some backends do integer division in (< 2^24): [value, kind, pair] and
 * [row, column, row from the bottom, column from the right].
 */
const CELL_FIELDS: readonly (readonly number[])[] = [[CELL_VALUES, CELL_KINDS, CELL_PAIRS], [
  CELL_MAX_SIDE,
  CELL_MAX_SIDE,
  CELL_MAX_SIDE,
  CELL_MAX_SIDE,
]];

const packFields = (values: readonly number[], sizes: readonly number[]) =>
  values.reduceRight((acc, v, i) => {
    if (!Number.isInteger(v) || v < 0 || v >= sizes[i]) throw new Error(`packCell: field value ${v} outside 0..${sizes[i] - 1}`);
    return acc * sizes[i] + v;
  }, 0);

/** Packs a cell into its two ids (see CELL_FIELDS). */
export function packCell(t: CellToken): [number, number] {
  return [
    packFields([t.value, t.kind, t.pair], CELL_FIELDS[0]),
    packFields([t.row, t.col, t.height - 1 - t.row, t.width - 1 - t.col], CELL_FIELDS[1]),
  ];
}

/** Splits packed ids int32 [B, T, 2] into the seven fields, each int32 [B, T]: value, kind, pair, row, col, row and col from the far edge. */
function unpackCells(ids: tf.Tensor3D): tf.Tensor2D[] {
  const [b, t] = ids.shape;
  return CELL_FIELDS.flatMap((sizes, half) => {
    let rest = tf.reshape(tf.slice(ids, [0, 0, half], [b, t, 1]), [b, t]) as tf.Tensor2D;
    return sizes.map((n) => {
      const high = tf.floorDiv(rest, tf.scalar(n, "int32")) as tf.Tensor2D;
      const field = tf.sub(rest, tf.mul(high, tf.scalar(n, "int32"))) as tf.Tensor2D;
      rest = high;
      return field;
    });
  });
}

/**
 * When inference halts a sequence, from its segment's Q logits:
 * - `compare` (HRM): Q_halt > Q_continue. Where the model is unsure both are low, and their
 *   order alone decides, so it can stop after one segment.
 * - `confident` (TRM): Q_halt > 0, i.e. the Q head gives the answer better than even odds of
 *   being exactly right; Q_continue is not read.
 */
export type HaltRule = "compare" | "confident";
export const HALT_RULES: readonly HaltRule[] = ["compare", "confident"];

/** The halting test of a rule: (Q_halt, Q_continue) -> halt now. */
export function haltTest(rule: HaltRule): (qHalt: number, qContinue: number) => boolean {
  if (rule === "compare") return (h, c) => h > c;
  if (rule === "confident") return (h) => h > 0;
  throw new Error(`hrrm: halt rule '${rule}': expected one of ${HALT_RULES.join(", ")}`);
}

/** Token ids: int32 [B, T], or [B, T, 2] packed cells for positions = "cells". */
export type HrrmIds = tf.Tensor2D | tf.Tensor3D;

/** Checks an HRRM config; the error names the field and what it accepts. */
export function validateHrrmConfig(c: HrrmConfig): void {
  if (!["reasoner", "planner", "memory"].includes(c.variant)) {
    throw new Error(`hrrm.variant = ${c.variant}: expected reasoner, planner or memory`);
  }
  const posInt = [
    "vocabSize",
    "maxSeqLen",
    "dModel",
    "nHeads",
    "lowLayers",
    "highLayers",
    "tLow",
    "nHigh",
    "maxSegments",
    "trainSegments",
    "planActions",
    "memorySlots",
  ] as const;
  for (const k of posInt) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) throw new Error(`hrrm.${k} = ${c[k]}: expected a positive integer`);
  }
  if (c.dModel % c.nHeads !== 0) throw new Error(`hrrm.dModel = ${c.dModel} must divide by nHeads = ${c.nHeads}`);
  if (c.trainSegments > c.maxSegments) {
    throw new Error(`hrrm.trainSegments = ${c.trainSegments} exceeds maxSegments = ${c.maxSegments}`);
  }
  if (!(c.mlpRatio > 0)) throw new Error(`hrrm.mlpRatio = ${c.mlpRatio}: expected > 0`);
  if (!(c.qLossWeight >= 0)) throw new Error(`hrrm.qLossWeight = ${c.qLossWeight}: expected >= 0`);
  if (!(c.normEps > 0)) throw new Error(`hrrm.normEps = ${c.normEps}: expected > 0`);
  if (!["learned", "grid2d", "cells"].includes(c.positions)) {
    throw new Error(`hrrm.positions = ${c.positions}: expected learned, grid2d or cells`);
  }
  if (
    c.positions === "cells" && (!Number.isInteger(c.gridSide) || c.gridSide < 1 || c.gridSide > CELL_MAX_SIDE || c.vocabSize > CELL_VALUES)
  ) {
    throw new Error(
      `hrrm.gridSide = ${c.gridSide}, vocabSize = ${c.vocabSize}: cells positions need a side of 1-${CELL_MAX_SIDE} and at most ${CELL_VALUES} values`,
    );
  }
  if (c.positions === "grid2d" && (!Number.isInteger(c.gridSide) || c.gridSide < 1 || c.gridSide * c.gridSide > c.maxSeqLen)) {
    throw new Error(`hrrm.gridSide = ${c.gridSide}: grid2d positions need a positive side whose square fits maxSeqLen = ${c.maxSeqLen}`);
  }
  if (c.levels !== 2 && c.levels !== 3) throw new Error(`hrrm.levels = ${c.levels}: expected 2 or 3`);
  if (c.mixer !== "attention" && c.mixer !== "mlp") throw new Error(`hrrm.mixer = ${c.mixer}: expected attention or mlp`);
  if (c.mixer === "mlp" && c.positions === "cells") {
    throw new Error("hrrm.mixer = mlp needs sequences of a fixed length (learned or grid2d positions), not cells");
  }
  if (!Number.isInteger(c.episodes) || c.episodes < 0) throw new Error(`hrrm.episodes = ${c.episodes}: expected an integer >= 0`);
  if (c.episodes > 0 && c.positions === "cells") {
    throw new Error("hrrm.episodes needs sequences of a fixed length (learned or grid2d positions), not cells");
  }
  if (c.planMode !== "soft" && c.planMode !== "straight-through") {
    throw new Error(`hrrm.planMode = ${c.planMode}: expected soft or straight-through`);
  }
}

/**
 * The grid phases' HRRM shape: `layers` blocks in each level, 4 heads, MLP ratio 2, 2 L-steps per
 * H-step and 2 H-steps per segment; `trainSegments` capped at `maxSegments`.
 */
export function gridLevels(o: { dModel: number; layers: number; maxSegments: number; trainSegments: number }): Partial<HrrmConfig> {
  return {
    dModel: o.dModel,
    nHeads: 4,
    mlpRatio: 2,
    lowLayers: o.layers,
    highLayers: o.layers,
    tLow: 2,
    nHigh: 2,
    maxSegments: o.maxSegments,
    trainSegments: Math.min(o.trainSegments, o.maxSegments),
  };
}

/** DEFAULT_HRRM with `overrides` applied, validated. */
export function hrrmConfig(overrides: Partial<HrrmConfig> = {}): HrrmConfig {
  const c = { ...DEFAULT_HRRM, ...overrides };
  validateHrrmConfig(c);
  return c;
}

/**
 * Token mixing by an MLP across the sequence axis, without biases (MLP-Mixer; TRM's Sudoku model):
 * x [B, T, C], w1 [T, F], w2 [F, T] -> [B, T, C], out[b, :, c] = w2^T gelu(w1^T x[b, :, c]).
 */
export function tokenMlp(x: tf.Tensor3D, w1: tf.Tensor, w2: tf.Tensor): tf.Tensor3D {
  const [, t] = x.shape;
  if (t !== w1.shape[0]) throw new Error(`hrrm: the mlp mixer needs sequences of exactly ${w1.shape[0]} tokens, got ${t}`);
  const xt = tf.transpose(x, [0, 2, 1]) as tf.Tensor3D; // [B, C, T]
  const m = linear(gelu(linear(xt, w1)), w2); // [B, C, T]
  return tf.transpose(m, [0, 2, 1]) as tf.Tensor3D; // [B, T, C]
}

/**
 * Non-causal multi-head self-attention without biases (every position sees every other).
 * x [B, T, C], qkvW [C, 3C], projW [C, C] -> [B, T, C].
 */
export function bidirectionalAttention(x: tf.Tensor3D, qkvW: tf.Tensor, projW: tf.Tensor, nHeads: number): tf.Tensor3D {
  const [b, t, c] = x.shape;
  const hd = c / nHeads;
  const heads = (i: number) => {
    const wi = tf.slice(qkvW, [0, i * c], [c, c]); // [C, C]
    return tf.transpose(tf.reshape(linear(x, wi), [b, t, nHeads, hd]), [0, 2, 1, 3]) as tf.Tensor4D; // [B, H, T, hd]
  };
  const [q, k, v] = [heads(0), heads(1), heads(2)];
  const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd))); // [B, H, T, T]
  const y = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [b, t, c]); // [B, T, C]
  return linear(y, projW) as tf.Tensor3D;
}

/** The recurrent latent state carried across segments. */
export interface HrrmCarry {
  /** High-level state [B, T, C]. */
  zH: tf.Tensor3D;
  /** Low-level state [B, T, C]. */
  zL: tf.Tensor3D;
  /** Strategic state [B, T, C] (levels = 3 only). */
  zS?: tf.Tensor3D;
}

/** A carry as a list (zH, zL[, zS]), for tf.tidy, and back. */
export function carryList(c: HrrmCarry): tf.Tensor[] {
  return c.zS ? [c.zH, c.zL, c.zS] : [c.zH, c.zL];
}
export function carryOf(list: tf.Tensor[]): HrrmCarry {
  const [zH, zL, zS] = list as tf.Tensor3D[];
  return zS ? { zH, zL, zS } : { zH, zL };
}

/** The planner's choice for one high-level cycle. */
export interface HrrmPlan {
  /** Controller logits [B, T, K]. */
  logits: tf.Tensor3D;
  /** Chosen actions (argmax) int32 [B, T]. */
  actions: tf.Tensor2D;
  /** What joins the low-level input [B, T, C]. */
  emb: tf.Tensor3D;
}

/** One segment's outputs. */
export interface HrrmSegment {
  /** The carry after the segment (still on the tape; detach it before the next segment when training). */
  carry: HrrmCarry;
  /** Output logits from z_H [B, T, V]. */
  logits: tf.Tensor3D;
  /** Q-halt logit [B]. */
  qHalt: tf.Tensor1D;
  /** Q-continue logit [B]. */
  qContinue: tf.Tensor1D;
  /** Planner only: the action chosen in each high-level cycle, int32 [nHigh, B, T]. */
  actions?: tf.Tensor3D;
}

/** The deep-supervision loss and its parts. */
export interface HrrmLoss {
  /** Mean over segments of cross-entropy + qLossWeight * (halt + continue BCE). */
  loss: tf.Scalar;
  /** Cross-entropy of each segment. */
  ce: tf.Scalar[];
  /** Q-learning loss summed over segments (before qLossWeight and the mean). */
  qLoss: tf.Scalar;
  /** Per segment, 1 where the sequence is exactly right, float [B]. */
  exact: tf.Tensor1D[];
}

/** What inference returns. */
export interface HrrmInference {
  /** Each sequence's logits at the segment where it halted [B, T, V]. */
  logits: tf.Tensor3D;
  /** Segments each sequence executed before halting (1..maxSegments). */
  segments: number[];
  /** Segments the batch ran (the largest of `segments`). */
  segmentsRun: number;
  /** Q_halt and Q_continue logits of every segment run, [segmentsRun][B]. */
  qHalt: number[][];
  qContinue: number[][];
}

/** An HRM-style hierarchical recurrent model; see the module comment. */
export class Hrrm {
  readonly cfg: HrrmConfig;
  readonly params: ParamSet;
  /**
   * Fixed initial states z_H^0, z_L^0 [C] (not trained, as in HRM). They are not parameters, so a
   * model file does not hold them: they come from a constant seed, the same for every HRRM of a
   * width, and a loaded model starts from the states it was trained from.
   */
  readonly #hInit: tf.Tensor1D;
  readonly #lInit: tf.Tensor1D;
  readonly #sInit: tf.Tensor1D;
  /** The external memory's puzzles: inputs and solutions int32 [N, T] (episodes > 0, after setEpisodes). */
  #episodes?: { inputs: tf.Tensor2D; solutions: tf.Tensor2D };

  constructor(cfg: HrrmConfig, seed: number) {
    validateHrrmConfig(cfg);
    this.cfg = cfg;
    this.params = new ParamSet(seed);
    this.#build();
    const rng = new Rng(deriveSeed(0, "hrrm.carry"));
    this.#hInit = tf.keep(tf.tensor1d(rng.normals(cfg.dModel, 1)));
    this.#lInit = tf.keep(tf.tensor1d(rng.normals(cfg.dModel, 1)));
    this.#sInit = tf.keep(tf.tensor1d(rng.normals(cfg.dModel, 1)));
  }

  #build(): void {
    const { vocabSize: V, dModel: C, maxSeqLen, planActions: K, memorySlots: S } = this.cfg;
    const F = Math.round(this.cfg.mlpRatio * C);
    const p = this.params;
    const lecun = (fanIn: number) => ({ kind: "normal", std: 1 / Math.sqrt(fanIn) }) as const;
    const ones = { kind: "const", value: 1 } as const;
    // Token and position tables each std 1/sqrt(2): their sum x has RMS ~1 like the normed states.
    p.add("tok", [V, C], { kind: "normal", std: Math.SQRT1_2 });
    if (this.cfg.positions === "grid2d") {
      // Row and column tables each std 1/2: their sum has the learned table's std 1/sqrt(2).
      p.add("pos_row", [this.cfg.gridSide, C], { kind: "normal", std: 0.5 });
      p.add("pos_col", [this.cfg.gridSide, C], { kind: "normal", std: 0.5 });
    } else if (this.cfg.positions === "cells") {
      // Six tables each std 1/sqrt(12): their sum has the learned table's std 1/sqrt(2).
      const std = 1 / Math.sqrt(12), S = this.cfg.gridSide;
      for (const name of ["pos_row", "pos_col", "pos_row_end", "pos_col_end"]) p.add(name, [S, C], { kind: "normal", std });
      p.add("pos_kind", [CELL_KINDS, C], { kind: "normal", std });
      p.add("pos_pair", [CELL_PAIRS, C], { kind: "normal", std });
    } else p.add("pos", [maxSeqLen, C], { kind: "normal", std: Math.SQRT1_2 });
    const Ft = Math.round(this.cfg.mlpRatio * maxSeqLen);
    const block = (name: string) => {
      if (this.cfg.mixer === "mlp") {
        p.add(`${name}.mix1_w`, [maxSeqLen, Ft], lecun(maxSeqLen));
        p.add(`${name}.mix2_w`, [Ft, maxSeqLen], lecun(Ft));
      } else {
        p.add(`${name}.qkv_w`, [C, 3 * C], lecun(C));
        p.add(`${name}.proj_w`, [C, C], lecun(C));
      }
      p.add(`${name}.n1_g`, [C], ones);
      p.add(`${name}.fc1_w`, [C, F], lecun(C));
      p.add(`${name}.fc2_w`, [F, C], lecun(F));
      p.add(`${name}.n2_g`, [C], ones);
    };
    for (let l = 0; l < this.cfg.lowLayers; l++) block(`L${l}`);
    for (let l = 0; l < this.cfg.highLayers; l++) block(`H${l}`);
    p.add("head_w", [C, V], lecun(C));
    // Q head starts at 0 weight and bias -5 (HRM): both Q near 0, so early inference runs to maxSegments.
    p.add("q_w", [C, 2], { kind: "const", value: 0 });
    p.add("q_b", [2], { kind: "const", value: -5 });
    if (this.cfg.variant === "planner") {
      p.add("plan_w", [C, K], lecun(C));
      p.add("plan_emb", [K, C], { kind: "normal", std: 0.5 });
    }
    if (this.cfg.variant === "memory") {
      p.add("mem", [S, C], { kind: "normal", std: 1 });
      p.add("gate_w", [C, C], lecun(C));
      p.add("gate_b", [C], { kind: "const", value: 0 });
    }
    // Last, so a two-level model draws the same initial values as before the option existed.
    if (this.cfg.levels === 3) { for (let l = 0; l < this.cfg.highLayers; l++) block(`S${l}`); }
    if (this.cfg.episodes > 0) {
      p.add("epi_k_w", [C, C], lecun(C)); // pooled input embedding -> key (stored puzzles and the new one alike)
      p.add("epi_o_w", [C, C], { kind: "const", value: 0 }); // the read into the high level: 0, so the memory starts unread
    }
  }

  /** Post-norm non-causal block `name` (HRM's layout): token mixing, then the channel MLP. x [B, T, C] -> [B, T, C]. */
  #block(x: tf.Tensor3D, name: string): tf.Tensor3D {
    const p = this.params;
    const eps = this.cfg.normEps;
    const a = this.cfg.mixer === "mlp"
      ? tokenMlp(x, p.get(`${name}.mix1_w`), p.get(`${name}.mix2_w`)) // [B, T, C]
      : bidirectionalAttention(x, p.get(`${name}.qkv_w`), p.get(`${name}.proj_w`), this.cfg.nHeads); // [B, T, C]
    const h = rmsNorm(tf.add(x, a), p.get(`${name}.n1_g`), eps); // [B, T, C]
    const m = linear(gelu(linear(h, p.get(`${name}.fc1_w`))), p.get(`${name}.fc2_w`)); // [B, T, C]
    return rmsNorm(tf.add(h, m), p.get(`${name}.n2_g`), eps) as tf.Tensor3D;
  }

  /** Input embedding: token + learned position. ids int32 [B, T] -> [B, T, C]. */
  embed(ids: HrrmIds): tf.Tensor3D {
    const [, t] = ids.shape;
    if (t > this.cfg.maxSeqLen) throw new Error(`sequence of ${t} tokens exceeds hrrm.maxSeqLen ${this.cfg.maxSeqLen}`);
    if (this.cfg.positions === "cells") return this.#embedCells(ids);
    if (ids.rank !== 2) throw new Error(`hrrm: ids must be [B, T] for ${this.cfg.positions} positions, got rank ${ids.rank}`);
    const x = embedding(this.params.get("tok") as tf.Variable<tf.Rank.R2>, ids); // [B, T, C]
    return tf.add(x, this.positionTable(t)) as tf.Tensor3D;
  }

  /** Packed cell tokens int32 [B, T, 2] -> the sum of their seven field embeddings [B, T, C]. */
  #embedCells(ids: HrrmIds): tf.Tensor3D {
    if (ids.rank !== 3) throw new Error(`hrrm: cells positions need ids [B, T, 2] (packCell), got rank ${ids.rank}`);
    const p = this.params, S = this.cfg.gridSide;
    const fields = unpackCells(ids as tf.Tensor3D); // 7 x [B, T]
    const tables = ["tok", "pos_kind", "pos_pair", "pos_row", "pos_col", "pos_row_end", "pos_col_end"];
    // Rows and columns past the model's side would index outside their tables: clip (the phase keeps grids within it).
    return tables.map((name, i) =>
      embedding(p.get(name) as tf.Variable<tf.Rank.R2>, i >= 3 ? tf.minimum(fields[i], tf.scalar(S - 1, "int32")) : fields[i])
    )
      .reduce((a, b) => tf.add(a, b)) as tf.Tensor3D;
  }

  /** The position embeddings of the first t positions [t, C]. */
  positionTable(t: number): tf.Tensor2D {
    const C = this.cfg.dModel, S = this.cfg.gridSide;
    if (this.cfg.positions === "cells") throw new Error("hrrm: cells positions come with each token (packCell), not from a table");
    if (this.cfg.positions === "learned") return tf.slice(this.params.get("pos"), [0, 0], [t, C]) as tf.Tensor2D;
    if (t !== S * S) throw new Error(`hrrm: grid2d positions need ${S * S} tokens (a ${S}x${S} grid), got ${t}`);
    const rows = tf.reshape(this.params.get("pos_row"), [S, 1, C]), cols = tf.reshape(this.params.get("pos_col"), [1, S, C]);
    return tf.reshape(tf.add(rows, cols), [t, C]) as tf.Tensor2D; // [S*S, C], row-major
  }

  /** The fixed starting carry for a batch of b sequences of t tokens. */
  initialCarry(b: number, t: number): HrrmCarry {
    const C = this.cfg.dModel;
    return {
      zH: tf.broadcastTo(tf.reshape(this.#hInit, [1, 1, C]), [b, t, C]) as tf.Tensor3D, // [B, T, C]
      zL: tf.broadcastTo(tf.reshape(this.#lInit, [1, 1, C]), [b, t, C]) as tf.Tensor3D, // [B, T, C]
      ...(this.cfg.levels === 3 ? { zS: tf.broadcastTo(tf.reshape(this.#sInit, [1, 1, C]), [b, t, C]) as tf.Tensor3D } : {}),
    };
  }

  /** Planner controller on z_H [B, T, C]: logits [B, T, K], argmax actions, and the embedding for L. */
  plan(zH: tf.Tensor3D): HrrmPlan {
    if (this.cfg.variant !== "planner") throw new Error(`hrrm: plan() needs the planner variant, not ${this.cfg.variant}`);
    const [b, t] = zH.shape;
    const K = this.cfg.planActions;
    const logits = linear(zH, this.params.get("plan_w")) as tf.Tensor3D; // [B, T, K]
    const actions = tf.argMax(logits, -1) as tf.Tensor2D; // [B, T] int32
    const probs = tf.softmax(logits); // [B, T, K]
    // straight-through: the forward value is the one-hot choice, the gradient that of the softmax.
    const weights = this.cfg.planMode === "soft" ? probs : tf.add(tf.oneHot(actions, K), tf.sub(probs, stopGradient(probs))); // [B, T, K]
    const emb = tf.reshape(linear(weights, this.params.get("plan_emb")), [b, t, this.cfg.dModel]) as tf.Tensor3D; // [B, T, C]
    return { logits, actions, emb };
  }

  /** What the low-level module reads: z_L + z_H + x (+ the plan embedding). All [B, T, C]. */
  lowInput(zL: tf.Tensor3D, zH: tf.Tensor3D, x: tf.Tensor3D, planEmb?: tf.Tensor3D): tf.Tensor3D {
    const s = tf.add(tf.add(zL, zH), x); // [B, T, C]
    return (planEmb ? tf.add(s, planEmb) : s) as tf.Tensor3D;
  }

  /** Memory variant: the gated slot-memory read for z_H, sigmoid(z_H Wg + bg) * softmax(z_H M^T / sqrt(C)) M. [B, T, C]. */
  memoryRead(zH: tf.Tensor3D): tf.Tensor3D {
    if (this.cfg.variant !== "memory") throw new Error(`hrrm: memoryRead() needs the memory variant, not ${this.cfg.variant}`);
    const [b, t, c] = zH.shape;
    const mem = this.params.get("mem"); // [S, C]
    const z2 = tf.reshape(zH, [-1, c]); // [B*T, C]
    const att = tf.softmax(tf.mul(tf.matMul(z2, mem, false, true), 1 / Math.sqrt(c))); // [B*T, S]
    const read = tf.matMul(att, mem); // [B*T, C]
    const gate = tf.sigmoid(linear(z2, this.params.get("gate_w"), this.params.get("gate_b"))); // [B*T, C]
    return tf.reshape(tf.mul(gate, read), [b, t, c]) as tf.Tensor3D;
  }

  /**
   * Fills the external memory (episodes > 0) with `n` solved puzzles: inputs and solutions int32,
   * row-major [n, T]. Replaces what it held; a model loaded from a file starts with none.
   */
  setEpisodes(inputs: Int32Array, solutions: Int32Array, n: number): void {
    const N = this.cfg.episodes;
    if (N === 0) throw new Error("hrrm: setEpisodes() needs hrrm.episodes > 0");
    if (n !== N) throw new Error(`hrrm.episodes = ${N}: setEpisodes got ${n} puzzles`);
    const t = inputs.length / n;
    if (!Number.isInteger(t) || t < 1 || t > this.cfg.maxSeqLen || solutions.length !== inputs.length) {
      throw new Error(
        `hrrm: setEpisodes needs inputs and solutions of n x T ids (T <= ${this.cfg.maxSeqLen}), got ${inputs.length} and ${solutions.length} for n = ${n}`,
      );
    }
    this.#disposeEpisodes();
    this.#episodes = {
      inputs: tf.keep(tf.tensor2d(inputs, [n, t], "int32")),
      solutions: tf.keep(tf.tensor2d(solutions, [n, t], "int32")),
    };
  }

  #disposeEpisodes(): void {
    if (this.#episodes) tf.dispose([this.#episodes.inputs, this.#episodes.solutions]);
    this.#episodes = undefined;
  }

  /**
   * The external memory's read for a batch whose input embedding is x [B, T, C]:
   * keys k = mean_T(embed(input) * pos) Wk for the stored puzzles [N, C] and the new ones [B, C],
   * a = softmax(q k^T / sqrt(C)) [B, N], and the read sum_n a[b, n] tok(solution_n)[t] Wo [B, T, C].
   * Wo starts at 0. Gradients reach Wk, Wo and the token embedding.
   */
  episodeRead(x: tf.Tensor3D): tf.Tensor3D {
    const ep = this.#episodes;
    if (!ep) throw new Error(`hrrm.episodes = ${this.cfg.episodes}: fill the memory with setEpisodes() before running the model`);
    const [b, t, c] = x.shape;
    const [n, te] = ep.inputs.shape;
    if (te !== t) throw new Error(`hrrm: the memory holds puzzles of ${te} tokens, the batch has ${t}`);
    const p = this.params, pos = this.positionTable(t); // [T, C]
    // Pooled with each cell's embedding times its position's, so the key sees where each value sits, not only how many there are.
    const key = (e: tf.Tensor3D) => linear(tf.mean(tf.mul(e, pos), 1), p.get("epi_k_w")); // [*, C]
    const keys = key(this.embed(ep.inputs)); // [N, C]
    const query = key(x); // [B, C]
    const att = tf.softmax(tf.mul(tf.matMul(query, keys, false, true), 1 / Math.sqrt(c))); // [B, N]
    const values = tf.reshape(embedding(p.get("tok") as tf.Variable<tf.Rank.R2>, ep.solutions), [n, t * c]); // [N, T*C]
    const read = tf.reshape(tf.matMul(att, values), [b, t, c]) as tf.Tensor3D; // [B, T, C]
    return linear(read, p.get("epi_o_w")) as tf.Tensor3D;
  }

  /**
   * What the high-level module reads: z_H + z_L (+ ctx: the strategic state and/or the external
   * memory's read) (+ the memory variant's gated slot read). All [B, T, C].
   */
  highInput(zH: tf.Tensor3D, zL: tf.Tensor3D, ctx?: tf.Tensor3D): tf.Tensor3D {
    let s = tf.add(zH, zL); // [B, T, C]
    if (ctx) s = tf.add(s, ctx);
    return (this.cfg.variant === "memory" ? tf.add(s, this.memoryRead(zH)) : s) as tf.Tensor3D;
  }

  /** One low-level update: z_L <- L(z_L + z_H + x [+ plan]). [B, T, C]. */
  lowStep(zL: tf.Tensor3D, zH: tf.Tensor3D, x: tf.Tensor3D, planEmb?: tf.Tensor3D): tf.Tensor3D {
    let h = this.lowInput(zL, zH, x, planEmb);
    for (let l = 0; l < this.cfg.lowLayers; l++) h = this.#block(h, `L${l}`);
    return h;
  }

  /** One high-level update: z_H <- H(z_H + z_L [+ ctx: z_S, the external memory's read] [+ slot memory]). [B, T, C]. */
  highStep(zH: tf.Tensor3D, zL: tf.Tensor3D, ctx?: tf.Tensor3D): tf.Tensor3D {
    let h = this.highInput(zH, zL, ctx);
    for (let l = 0; l < this.cfg.highLayers; l++) h = this.#block(h, `H${l}`);
    return h;
  }

  /** One strategic update (levels = 3): z_S <- S(z_S + z_H). [B, T, C]. */
  strategicStep(zS: tf.Tensor3D, zH: tf.Tensor3D): tf.Tensor3D {
    if (this.cfg.levels !== 3) throw new Error(`hrrm: strategicStep() needs levels = 3, not ${this.cfg.levels}`);
    let h = tf.add(zS, zH) as tf.Tensor3D;
    for (let l = 0; l < this.cfg.highLayers; l++) h = this.#block(h, `S${l}`);
    return h;
  }

  /** `lowSteps` L updates (the planner picks its action first), then one H update when `updateHigh`. */
  #cycle(zH: tf.Tensor3D, zL: tf.Tensor3D, x: tf.Tensor3D, lowSteps: number, updateHigh: boolean, ctx?: tf.Tensor3D) {
    let action: tf.Tensor2D | undefined;
    let planEmb: tf.Tensor3D | undefined;
    if (this.cfg.variant === "planner" && lowSteps > 0) {
      const p = this.plan(zH);
      action = p.actions;
      planEmb = p.emb;
    }
    for (let i = 0; i < lowSteps; i++) zL = this.lowStep(zL, zH, x, planEmb);
    if (updateHigh) zH = this.highStep(zH, zL, ctx);
    return { zH, zL, action };
  }

  /**
   * One segment: (with three levels, one S update first, then) nHigh cycles of (tLow L updates,
   * one H update) from `carry`, then the output and Q heads. ids int32 [B, T]. With oneStepGrad,
   * all but the last L and H update (and the S update) run off the tape (`noGrad`), so gradients
   * do not reach the incoming carry's z_H and z_L.
   */
  segment(ids: HrrmIds, carry: HrrmCarry): HrrmSegment {
    const [b, t] = ids.shape;
    const { nHigh, tLow, vocabSize: V } = this.cfg;
    const x = this.embed(ids); // [B, T, C]
    let { zH, zL } = carry;
    // Three levels: the strategic state moves once, at the segment's start, on the tape (its blocks
    // learn through the last high-level update, which reads it).
    const zS = this.cfg.levels === 3 ? this.strategicStep(this.#carriedS(carry), zH) : undefined;
    // What every high-level update reads besides z_H + z_L: the strategic state and the memory's read.
    const epi = this.cfg.episodes > 0 ? this.episodeRead(x) : undefined; // [B, T, C]
    const hCtx = zS && epi ? tf.add(zS, epi) as tf.Tensor3D : zS ?? epi;
    const actions: tf.Tensor2D[] = [];
    if (this.cfg.oneStepGrad) {
      if (nHigh * tLow > 1) {
        const [h, l, ...acts] = noGrad(() => {
          let [h, l] = [zH, zL];
          const acts: tf.Tensor[] = [];
          for (let c = 0; c < nHigh; c++) {
            const last = c === nHigh - 1;
            // The last cycle stops one L update and its H update short: those two run on the tape below.
            const r = this.#cycle(h, l, x, last ? tLow - 1 : tLow, !last, hCtx);
            [h, l] = [r.zH, r.zL];
            if (!last && r.action) acts.push(r.action);
          }
          return [h, l, ...acts];
        }, [zH, zL]);
        [zH, zL] = [h as tf.Tensor3D, l as tf.Tensor3D];
        actions.push(...(acts as tf.Tensor2D[]));
      }
      // z_H is unchanged within a cycle, so the planner's last action is recomputed here on the tape.
      const r = this.#cycle(zH, zL, x, 1, true, hCtx);
      [zH, zL] = [r.zH, r.zL];
      if (r.action) actions.push(r.action);
    } else {
      for (let c = 0; c < nHigh; c++) {
        const r = this.#cycle(zH, zL, x, tLow, true, hCtx);
        [zH, zL] = [r.zH, r.zL];
        if (r.action) actions.push(r.action);
      }
    }
    const logits = tf.reshape(linear(zH, this.params.get("head_w")), [b, t, V]) as tf.Tensor3D; // [B, T, V]
    const q = linear(tf.mean(zH, 1), this.params.get("q_w"), this.params.get("q_b")); // [B, 2]
    return {
      carry: { zH, zL, ...(zS ? { zS } : {}) },
      logits,
      qHalt: tf.reshape(tf.slice(q, [0, 0], [b, 1]), [b]) as tf.Tensor1D,
      qContinue: tf.reshape(tf.slice(q, [0, 1], [b, 1]), [b]) as tf.Tensor1D,
      actions: actions.length ? tf.stack(actions) as tf.Tensor3D : undefined,
    };
  }

  /**
   * Deep supervision on one batch: `segments` (default trainSegments) segments from the
   * initial carry, the carry detached between them. Each segment adds cross-entropy plus
   * qLossWeight * (BCE(Q_halt, exactly right) + BCE(Q_continue, sigmoid of the next segment's
   * max Q, detached; Q_halt alone when the next segment is the last allowed)). The last
   * segment has no continue term. The result is the mean over segments.
   *
   * Unlike HRM, which takes an optimizer step per segment and carries halted/unhalted states
   * across batches, all segments run here on one batch, their (independent, since the carry is
   * detached) gradients summed into one step, and training never halts early.
   * ids, targets int32 [B, T]; mask float [B, T] (1 = scored).
   */
  deepSupervision(ids: HrrmIds, targets: tf.Tensor2D, opts: { mask?: tf.Tensor2D; segments?: number } = {}): HrrmLoss {
    const [b, t] = ids.shape;
    const S = opts.segments ?? this.cfg.trainSegments;
    const V = this.cfg.vocabSize;
    const flatT = tf.reshape(targets, [-1]) as tf.Tensor1D; // [B*T]
    const flatM = opts.mask ? tf.reshape(opts.mask, [-1]) as tf.Tensor1D : undefined; // [B*T]
    let carry = this.initialCarry(b, t);
    const outs: HrrmSegment[] = [];
    for (let s = 0; s < S; s++) {
      const o = this.segment(ids, carry);
      outs.push(o);
      carry = carryOf(carryList(o.carry).map((z) => stopGradient(z)));
    }
    const ce: tf.Scalar[] = [];
    const exact: tf.Tensor1D[] = [];
    let qLoss: tf.Scalar = tf.scalar(0);
    let total: tf.Scalar = tf.scalar(0);
    for (let s = 0; s < S; s++) {
      const o = outs[s];
      const c = crossEntropy(tf.reshape(o.logits, [-1, V]) as tf.Tensor2D, flatT, flatM);
      // Exactness has no gradient (tfjs's Equal has none registered): computed off the tape.
      const [ex] = noGrad(() => {
        const right = tf.cast(tf.equal(tf.argMax(o.logits, -1), targets), "float32"); // [B, T]
        const ok = opts.mask ? tf.sub(1, tf.mul(opts.mask, tf.sub(1, right))) : right; // unscored tokens count as right
        return [tf.min(ok, 1)]; // [B]
      }, [o.logits]) as tf.Tensor1D[];
      let q = tf.mean(bceWithLogits(o.qHalt, ex)) as tf.Scalar;
      if (s < S - 1) {
        const next = outs[s + 1];
        const nextLast = s + 1 === this.cfg.maxSegments - 1;
        const target = tf.sigmoid(stopGradient(nextLast ? next.qHalt : tf.maximum(next.qHalt, next.qContinue))); // [B]
        q = tf.add(q, tf.mean(bceWithLogits(o.qContinue, target))) as tf.Scalar;
      }
      ce.push(c);
      exact.push(ex);
      qLoss = tf.add(qLoss, q) as tf.Scalar;
      total = tf.add(total, tf.add(c, tf.mul(q, this.cfg.qLossWeight))) as tf.Scalar;
    }
    return { loss: tf.div(total, S) as tf.Scalar, ce, qLoss, exact };
  }

  /** The deep-supervision loss alone (a TrainTask's `loss`). */
  loss(ids: HrrmIds, targets: tf.Tensor2D, mask?: tf.Tensor2D): tf.Scalar {
    return this.deepSupervision(ids, targets, { mask }).loss;
  }

  /**
   * Adaptive inference: runs segments until every sequence has halted. A sequence halts
   * after the first segment that `rule` accepts (see HaltRule), or at maxSegments; its logits
   * are those of that segment. The halting decision reads Q values to the host (`await data()`,
   * any backend). With `halt: false` every sequence runs all maxSegments (the Q values are
   * still reported). ids int32 [B, T].
   */
  async infer(ids: HrrmIds, opts: { maxSegments?: number; halt?: boolean; rule?: HaltRule } = {}): Promise<HrrmInference> {
    const [b, t] = ids.shape;
    const maxSeg = opts.maxSegments ?? this.cfg.maxSegments;
    const halt = opts.halt ?? true;
    const stops = haltTest(opts.rule ?? "compare");
    let carry = tf.tidy(() => carryList(this.initialCarry(b, t)));
    let logits = tf.zeros([b, t, this.cfg.vocabSize]) as tf.Tensor3D;
    const segments = new Array<number>(b).fill(0);
    const qHalt: number[][] = [];
    const qContinue: number[][] = [];
    let s = 0;
    while (s < maxSeg && segments.some((n) => n === 0)) {
      const prev = carry;
      const [segLogits, qh, qc, ...nextCarry] = tf.tidy(() => {
        const o = this.segment(ids, carryOf(prev));
        return [o.logits, o.qHalt, o.qContinue, ...carryList(o.carry)];
      });
      s += 1;
      const [h, c] = [Array.from(await qh.data()), Array.from(await qc.data())];
      qHalt.push(h);
      qContinue.push(c);
      const stop = new Float32Array(b);
      for (let i = 0; i < b; i++) {
        if (segments[i] === 0 && ((halt && stops(h[i], c[i])) || s === maxSeg)) {
          segments[i] = s;
          stop[i] = 1;
        }
      }
      const next = tf.tidy(() => {
        const m = tf.tensor3d(stop, [b, 1, 1]); // [B, 1, 1]
        return tf.add(tf.mul(logits, tf.sub(1, m)), tf.mul(segLogits, m)) as tf.Tensor3D; // [B, T, V]
      });
      tf.dispose([logits, segLogits, qh, qc, ...prev]);
      logits = next;
      carry = nextCarry;
    }
    tf.dispose(carry);
    return { logits, segments, segmentsRun: s, qHalt, qContinue };
  }

  /** The carried strategic state; a three-level model's carry must have one. */
  #carriedS(carry: HrrmCarry): tf.Tensor3D {
    if (!carry.zS) throw new Error("hrrm: a three-level model's carry needs zS (start from initialCarry)");
    return carry.zS;
  }

  /** Frees the parameters and the initial states. */
  dispose(): void {
    this.params.dispose();
    this.#hInit.dispose();
    this.#lInit.dispose();
    this.#sInit.dispose();
    this.#disposeEpisodes();
  }
}
