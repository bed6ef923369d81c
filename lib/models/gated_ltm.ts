/**
 * GatedLTM: a Titans-style neural long-term memory (Behrouz et al., 2024, "Titans: Learning
 * to Memorize at Test Time"), with a matrix memory written inside the forward pass.
 *
 * Keys, values and queries are linear projections of the hidden states. The memory M [D, D]
 * per batch row starts from a learned M0 and is trained, chunk by chunk along the sequence,
 * by one step of gradient descent with momentum and forgetting on the associative loss
 * l = (1/n) sum_t ||k_t M - v_t||^2 over the chunk's n tokens:
 *
 *   S_t = eta_t S_{t-1} - theta_t * w_t * grad_M l,   M_t = (1 - alpha_t) M_{t-1} + S_t,
 *
 * where grad_M l = (2/n) k^T (k M - v) in closed form, eta (momentum), theta (step size,
 * at most `thetaMax`) and alpha (forgetting) are sigmoid gates computed from the chunk's mean
 * hidden state, and w_t is the surprise gate: sigmoid((s - threshold) / temperature) of the
 * chunk's relative associative error s = ||k M - v||^2 / ||v||^2 (a hard write is s >
 * threshold, counted for reporting). Every op is a tfjs op, so autodiff trains the
 * projections, gates and M0 end to end through the updates.
 *
 * Each chunk reads y = q M with the memory before its own write (causal), and the read enters
 * the residual stream through a learned gate: out = x + sigmoid(x Wg + bg) * (y Wo).
 *
 * The memory is Titans' linear (matrix) form; the deeper MLP memory is not implemented. A matrix
 * memory holds about D random pairs: each later write of a random key disturbs an earlier read by
 * roughly (2 theta / n)^2 / D in squared error.
 *
 * Beside the in-pass memory there is a persistent host-side store (`LongTermStore`) that
 * outlives calls: bounded slots of (key, value, strength), written with the most surprising
 * chunk summaries, decayed every call, weakest evicted, retrieved by cosine similarity.
 */
import * as tf from "@tensorflow/tfjs";
import { linear } from "../nn/layers.ts";
import type { ParamSet } from "../nn/params.ts";

/** Configuration of a GatedLTM layer. `gatedLtmConfig` fills the defaults. */
export interface GatedLTMConfig {
  /** Width of the residual stream (C). */
  dModel: number;
  /** Width of keys, values and queries (D); the memory is [D, D]. Default: dModel. */
  memDim: number;
  /** Tokens per memory update; the last chunk may be shorter. Default 8. */
  chunkSize: number;
  /**
   * Largest step size theta. With unit keys, a chunk of n orthogonal keys moves each key's
   * read towards its value by a fraction 2 theta / n. Default 1.
   */
  thetaMax: number;
  /** Initial forgetting gate alpha (through the gate bias). Default 0.01. */
  forgetInit: number;
  /** Initial momentum gate eta. Default 0.5. */
  momentumInit: number;
  /** Initial step size as a fraction of thetaMax. Default 0.5. */
  stepInit: number;
  /** Relative associative error above which a chunk counts as surprising (a write). Default 0.3. */
  surpriseThreshold: number;
  /** Softness of the surprise gate sigmoid((s - threshold) / temperature). Default 0.05. */
  surpriseTemperature: number;
  /** L2-normalise keys and queries (as Titans does). Default true. */
  normalizeKeys: boolean;
  /** Initial bias of the residual read gate (sigmoid(0) = 0.5). Default 0. */
  readGateInit: number;
  /** Std of the normal init of projections and M0. Default 1 / sqrt(dModel). */
  initStd: number;
  /** Slots of the persistent store. Default 64. */
  storeCapacity: number;
  /** Factor applied to every slot's strength once per `remember` call. Default 0.9. */
  storeDecay: number;
  /** Slots whose strength falls below this are freed. Default 0.01. */
  storeMinStrength: number;
  /** A write whose key has cosine >= this with a stored key reinforces that slot. Default 0.95. */
  storeMergeCos: number;
  /** Most surprising chunk summaries written to the store per `remember` call. Default 4. */
  storeWritesPerCall: number;
  /** Patterns returned per query by store retrieval. Default 4. */
  storeTopK: number;
}

/** The defaults of every field but dModel (memDim and initStd derive from dModel when absent). */
export const DEFAULT_GATED_LTM: Omit<GatedLTMConfig, "dModel" | "memDim" | "initStd"> = {
  chunkSize: 8,
  thetaMax: 1,
  forgetInit: 0.01,
  momentumInit: 0.5,
  stepInit: 0.5,
  surpriseThreshold: 0.3,
  surpriseTemperature: 0.05,
  normalizeKeys: true,
  readGateInit: 0,
  storeCapacity: 64,
  storeDecay: 0.9,
  storeMinStrength: 0.01,
  storeMergeCos: 0.95,
  storeWritesPerCall: 4,
  storeTopK: 4,
};

/** A full GatedLTM config for width `dModel`, with `over` replacing defaults; validated. */
export function gatedLtmConfig(dModel: number, over: Partial<GatedLTMConfig> = {}): GatedLTMConfig {
  const cfg: GatedLTMConfig = {
    ...DEFAULT_GATED_LTM,
    dModel,
    memDim: dModel,
    initStd: 1 / Math.sqrt(dModel),
    ...over,
  };
  validateGatedLtmConfig(cfg);
  return cfg;
}

/** Checks a GatedLTM config; the error names the field and what it accepts. */
export function validateGatedLtmConfig(c: GatedLTMConfig): void {
  for (const k of ["dModel", "memDim", "chunkSize", "storeCapacity"] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) throw new Error(`gatedLtm.${k} = ${c[k]}: expected a positive integer`);
  }
  for (const k of ["storeWritesPerCall", "storeTopK"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0) throw new Error(`gatedLtm.${k} = ${c[k]}: expected an integer >= 0`);
  }
  for (const k of ["forgetInit", "momentumInit", "stepInit"] as const) {
    if (!(c[k] > 0 && c[k] < 1)) throw new Error(`gatedLtm.${k} = ${c[k]}: expected in (0, 1)`);
  }
  if (!(c.thetaMax >= 0)) throw new Error(`gatedLtm.thetaMax = ${c.thetaMax}: expected >= 0`);
  if (!(c.surpriseTemperature > 0)) throw new Error(`gatedLtm.surpriseTemperature = ${c.surpriseTemperature}: expected > 0`);
  if (!(c.initStd > 0)) throw new Error(`gatedLtm.initStd = ${c.initStd}: expected > 0`);
  if (!(c.storeDecay > 0 && c.storeDecay <= 1)) throw new Error(`gatedLtm.storeDecay = ${c.storeDecay}: expected in (0, 1]`);
  if (!(c.storeMinStrength >= 0)) throw new Error(`gatedLtm.storeMinStrength = ${c.storeMinStrength}: expected >= 0`);
  if (!Number.isFinite(c.surpriseThreshold)) throw new Error(`gatedLtm.surpriseThreshold = ${c.surpriseThreshold}: expected a number`);
  if (!(c.storeMergeCos > -1 && c.storeMergeCos <= 1)) throw new Error(`gatedLtm.storeMergeCos = ${c.storeMergeCos}: expected in (-1, 1]`);
  if (!Number.isFinite(c.readGateInit)) throw new Error(`gatedLtm.readGateInit = ${c.readGateInit}: expected a number`);
}

/**
 * Scalars a GatedLTM layer adds to its ParamSet, from the config alone (no tensors):
 * wk, wv, wq [C, D], wo [D, C], m0 [D, D], gate [C, 3] + [3], read gate [C, C] + [C].
 */
export function gatedLtmParamCount(c: GatedLTMConfig): number {
  const { dModel: C, memDim: D } = c;
  return 3 * C * D + D * C + D * D + (3 * C + 3) + (C * C + C);
}

/** The tensors a GatedLTM forward pass reads (C = dModel, D = memDim). */
export interface GatedLTMWeights {
  wk: tf.Tensor; // [C, D] key projection
  wv: tf.Tensor; // [C, D] value projection
  wq: tf.Tensor; // [C, D] query projection
  wo: tf.Tensor; // [D, C] read -> residual stream
  m0: tf.Tensor; // [D, D] initial memory
  gateW: tf.Tensor; // [C, 3] chunk mean -> (alpha, eta, theta) logits
  gateB: tf.Tensor; // [3]
  readW: tf.Tensor; // [C, C] residual read gate from x
  readB: tf.Tensor; // [C]
}

/** Memory state carried between calls (or chunks): the memory and its momentum. */
export interface MemoryState {
  memory: tf.Tensor3D; // [B, D, D]
  momentum: tf.Tensor3D; // [B, D, D]
}

/** What a GatedLTM forward pass returns. Counts are tensors: reading them is the caller's (async) choice. */
export interface GatedLTMOutput {
  /** x + sigmoid(g) * read. [B, T, C] */
  y: tf.Tensor3D;
  /** The raw memory reads q M (pre-write memory per chunk). [B, T, D] */
  read: tf.Tensor3D;
  /** Hard writes: chunks (over all rows) whose surprise passed the threshold. Scalar. */
  writes: tf.Scalar;
  /** Sum of the soft surprise gates (the differentiable write count). Scalar. */
  softWrites: tf.Scalar;
  /** Relative associative error s of every chunk before its write. [B, nChunks] */
  surprise: tf.Tensor2D;
  /** 1 where a chunk was written (s > threshold), else 0. [B, nChunks] */
  writeMask: tf.Tensor2D;
  /** Gates per chunk, each [B, nChunks]: forgetting alpha, momentum eta, step theta. */
  alpha: tf.Tensor2D;
  eta: tf.Tensor2D;
  theta: tf.Tensor2D;
  /** Chunk summaries for the persistent store: mean key and mean value per chunk. [B, nChunks, D] */
  chunkKeys: tf.Tensor3D;
  chunkValues: tf.Tensor3D;
  /** Mean query per chunk, for store retrieval. [B, nChunks, D] */
  chunkQueries: tf.Tensor3D;
  /** Memory after the last chunk's write. [B, D, D] */
  finalMemory: tf.Tensor3D;
  /** Surprise momentum after the last chunk. [B, D, D] */
  finalMomentum: tf.Tensor3D;
}

/**
 * The associative loss per batch row, l = (1/n) sum_t ||k_t M - v_t||^2.
 * k, v [B, n, D], m [B, D, D] -> [B].
 */
export function associativeLoss(k: tf.Tensor3D, v: tf.Tensor3D, m: tf.Tensor3D): tf.Tensor1D {
  const n = k.shape[1];
  const err = tf.sub(tf.matMul(k, m), v); // [B, n, D]
  return tf.div(tf.sum(tf.square(err), [1, 2]), n) as tf.Tensor1D;
}

/**
 * Closed-form gradient of `associativeLoss` w.r.t. the memory: (2/n) k^T (k M - v).
 * k, v [B, n, D], m [B, D, D] -> [B, D, D].
 */
export function associativeGrad(k: tf.Tensor3D, v: tf.Tensor3D, m: tf.Tensor3D): tf.Tensor3D {
  const err = tf.sub(tf.matMul(k, m), v) as tf.Tensor3D; // [B, n, D]
  return errGrad(k, err);
}

/** (2/n) k^T err. k, err [B, n, D] -> [B, D, D]. */
function errGrad(k: tf.Tensor3D, err: tf.Tensor3D): tf.Tensor3D {
  return tf.mul(tf.matMul(k, err, true, false), 2 / k.shape[1]) as tf.Tensor3D; // [B, D, n] @ [B, n, D]
}

/** Unit vectors along the last axis. [..., D] -> [..., D] */
function l2Normalize(x: tf.Tensor, eps = 1e-6): tf.Tensor {
  return tf.mul(x, tf.rsqrt(tf.add(tf.sum(tf.square(x), -1, true), eps)));
}

/** Inverse sigmoid, for gate biases that start at a chosen value. */
function logit(p: number): number {
  return Math.log(p / (1 - p));
}

/**
 * The GatedLTM forward pass as a pure function of its weights (what gradient checks need).
 * x [B, T, C]; `state` continues a previous call's memory (else M0 and zero momentum).
 */
export function gatedLtmForward(w: GatedLTMWeights, x: tf.Tensor3D, cfg: GatedLTMConfig, state?: MemoryState): GatedLTMOutput {
  const [B, T, C] = x.shape;
  const D = cfg.memDim;
  if (C !== cfg.dModel) throw new Error(`gatedLtm: input width ${C}, expected dModel ${cfg.dModel}`);
  let k = linear(x, w.wk) as tf.Tensor3D; // [B, T, D]
  let q = linear(x, w.wq) as tf.Tensor3D; // [B, T, D]
  const v = linear(x, w.wv) as tf.Tensor3D; // [B, T, D]
  if (cfg.normalizeKeys) {
    k = l2Normalize(k) as tf.Tensor3D;
    q = l2Normalize(q) as tf.Tensor3D;
  }
  let m: tf.Tensor3D = state?.memory ?? (tf.tile(tf.reshape(w.m0, [1, D, D]), [B, 1, 1]) as tf.Tensor3D); // [B, D, D]
  let s: tf.Tensor3D = state?.momentum ?? tf.zeros([B, D, D]); // [B, D, D]
  const reads: tf.Tensor[] = [], surprises: tf.Tensor[] = [], gates: tf.Tensor[] = [];
  const alphas: tf.Tensor[] = [], etas: tf.Tensor[] = [], thetas: tf.Tensor[] = [];
  const keyMeans: tf.Tensor[] = [], valueMeans: tf.Tensor[] = [], queryMeans: tf.Tensor[] = [];
  for (let start = 0; start < T; start += cfg.chunkSize) {
    const n = Math.min(cfg.chunkSize, T - start);
    const kc = tf.slice(k, [0, start, 0], [B, n, D]) as tf.Tensor3D; // [B, n, D]
    const vc = tf.slice(v, [0, start, 0], [B, n, D]) as tf.Tensor3D; // [B, n, D]
    const qc = tf.slice(q, [0, start, 0], [B, n, D]) as tf.Tensor3D; // [B, n, D]
    const xm = tf.mean(tf.slice(x, [0, start, 0], [B, n, C]), 1); // [B, C]
    reads.push(tf.matMul(qc, m)); // [B, n, D]: read before this chunk's write (causal)

    const err = tf.sub(tf.matMul(kc, m), vc) as tf.Tensor3D; // [B, n, D]
    const grad = errGrad(kc, err); // [B, D, D]
    const rel = tf.div(tf.sum(tf.square(err), [1, 2]), tf.add(tf.sum(tf.square(vc), [1, 2]), 1e-6)); // [B]
    const gate = tf.sigmoid(tf.div(tf.sub(rel, cfg.surpriseThreshold), cfg.surpriseTemperature)); // [B]

    const g = tf.sigmoid(linear(xm, w.gateW, w.gateB)); // [B, 3]
    const [alpha, eta, theta0] = tf.split(g, 3, 1); // each [B, 1]
    const theta = tf.mul(theta0, cfg.thetaMax); // [B, 1]
    const col = (t: tf.Tensor) => tf.reshape(t, [B, 1, 1]);
    const step = tf.mul(col(tf.mul(tf.reshape(theta, [B]), gate)), grad); // [B, D, D]
    s = tf.sub(tf.mul(col(eta), s), step) as tf.Tensor3D; // S_t = eta S_{t-1} - theta w grad
    m = tf.add(tf.mul(col(tf.sub(1, alpha)), m), s) as tf.Tensor3D; // M_t = (1 - alpha) M_{t-1} + S_t

    surprises.push(rel);
    gates.push(gate);
    alphas.push(tf.reshape(alpha, [B]));
    etas.push(tf.reshape(eta, [B]));
    thetas.push(tf.reshape(theta, [B]));
    keyMeans.push(tf.mean(kc, 1));
    valueMeans.push(tf.mean(vc, 1));
    queryMeans.push(tf.mean(qc, 1));
  }
  const read = tf.concat(reads, 1) as tf.Tensor3D; // [B, T, D]
  const readGate = tf.sigmoid(linear(x, w.readW, w.readB)); // [B, T, C]
  const y = tf.add(x, tf.mul(readGate, linear(read, w.wo))) as tf.Tensor3D; // [B, T, C]
  const surprise = tf.stack(surprises, 1) as tf.Tensor2D; // [B, nChunks]
  const writeMask = tf.cast(tf.greater(surprise, cfg.surpriseThreshold), "float32") as tf.Tensor2D; // [B, nChunks]
  return {
    y,
    read,
    writes: tf.sum(writeMask),
    softWrites: tf.sum(tf.stack(gates, 1)),
    surprise,
    writeMask,
    alpha: tf.stack(alphas, 1) as tf.Tensor2D,
    eta: tf.stack(etas, 1) as tf.Tensor2D,
    theta: tf.stack(thetas, 1) as tf.Tensor2D,
    chunkKeys: tf.stack(keyMeans, 1) as tf.Tensor3D,
    chunkValues: tf.stack(valueMeans, 1) as tf.Tensor3D,
    chunkQueries: tf.stack(queryMeans, 1) as tf.Tensor3D,
    finalMemory: m,
    finalMomentum: s,
  };
}

/** One slot of the persistent store. */
export interface StoreSlot {
  key: Float32Array; // [D]
  value: Float32Array; // [D]
  /** Decays by `decay` every call; the weakest slot is evicted first. */
  strength: number;
  /** Store write counter when the slot was last written. */
  writtenAt: number;
}

/** What a store write did. */
export type StoreWriteResult = "added" | "merged" | "evicted" | "rejected";

/** One retrieved pattern. */
export interface StoreHit {
  slot: number;
  similarity: number;
  strength: number;
  key: Float32Array;
  value: Float32Array;
}

/** Utilization of the persistent store (and, from GatedLTM, of the in-pass memory). */
export interface StoreStats {
  slotsUsed: number;
  capacity: number;
  /** slotsUsed / capacity. */
  utilization: number;
  /** Mean strength over used slots (0 when empty). */
  meanStrength: number;
  /** Store writes so far (added + merged + evicting). */
  writes: number;
  evictions: number;
}

/** Settings of a `LongTermStore`. */
export interface LongTermStoreConfig {
  /** Width of keys and values (D). */
  dim: number;
  /** Most slots kept. */
  capacity: number;
  /** Strength factor per `tick`. */
  decay: number;
  /** Slots below this strength are freed at `tick`. */
  minStrength: number;
  /** Cosine at or above which a write reinforces an existing slot instead of taking a new one. */
  mergeCos: number;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / (Math.sqrt(na * nb) + 1e-12);
}

/**
 * A persistent, host-side associative store outside autodiff: at most `capacity` (key, value,
 * strength) slots that outlive forward calls. Writes fill a free slot, reinforce a near-duplicate
 * key, or evict the weakest slot when it is weaker than the write; `tick` decays every strength.
 */
export class LongTermStore {
  readonly cfg: LongTermStoreConfig;
  readonly slots: StoreSlot[] = [];
  #writes = 0;
  #evictions = 0;

  constructor(cfg: LongTermStoreConfig) {
    if (!Number.isInteger(cfg.capacity) || cfg.capacity <= 0) {
      throw new Error(`store.capacity = ${cfg.capacity}: expected a positive integer`);
    }
    if (!Number.isInteger(cfg.dim) || cfg.dim <= 0) throw new Error(`store.dim = ${cfg.dim}: expected a positive integer`);
    if (!(cfg.decay > 0 && cfg.decay <= 1)) throw new Error(`store.decay = ${cfg.decay}: expected in (0, 1]`);
    if (!(cfg.mergeCos > -1 && cfg.mergeCos <= 1)) throw new Error(`store.mergeCos = ${cfg.mergeCos}: expected in (-1, 1]`);
    this.cfg = cfg;
  }

  /** Decays every slot's strength once and frees slots that fall below minStrength. */
  tick(): void {
    for (const s of this.slots) s.strength *= this.cfg.decay;
    for (let i = this.slots.length - 1; i >= 0; i--) {
      if (this.slots[i].strength < this.cfg.minStrength) this.slots.splice(i, 1);
    }
  }

  /** Writes (key, value) with `strength` (e.g. the chunk's surprise). */
  write(key: Float32Array, value: Float32Array, strength: number): StoreWriteResult {
    const { dim, capacity, mergeCos } = this.cfg;
    if (key.length !== dim || value.length !== dim) {
      throw new Error(`store write: key/value of ${key.length}/${value.length}, expected ${dim}`);
    }
    let best = -1, bestCos = -Infinity;
    for (let i = 0; i < this.slots.length; i++) {
      const c = cosine(key, this.slots[i].key);
      if (c > bestCos) [best, bestCos] = [i, c];
    }
    const slot: StoreSlot = { key: key.slice(), value: value.slice(), strength, writtenAt: this.#writes };
    if (best >= 0 && bestCos >= mergeCos) {
      // Reinforce: the newer value replaces the old one, strengths add.
      slot.strength += this.slots[best].strength;
      this.slots[best] = slot;
      this.#writes++;
      return "merged";
    }
    if (this.slots.length < capacity) {
      this.slots.push(slot);
      this.#writes++;
      return "added";
    }
    let weakest = 0;
    for (let i = 1; i < this.slots.length; i++) if (this.slots[i].strength < this.slots[weakest].strength) weakest = i;
    if (this.slots[weakest].strength >= strength) return "rejected";
    this.slots[weakest] = slot;
    this.#writes++;
    this.#evictions++;
    return "evicted";
  }

  /** The `topK` stored patterns most similar (cosine) to `query` [D], best first. */
  retrieve(query: Float32Array, topK: number): StoreHit[] {
    return this.slots
      .map((s, slot) => ({ slot, similarity: cosine(query, s.key), strength: s.strength, key: s.key, value: s.value }))
      .sort((a, b) => b.similarity - a.similarity)
      .slice(0, topK);
  }

  /**
   * Batched retrieval as tensors (constants for autodiff): queries [N, D] -> values [N, K, D]
   * and cosine similarities [N, K], best first, with K = min(topK, slots used).
   */
  retrieveTensor(queries: tf.Tensor2D, topK: number): { values: tf.Tensor3D; similarity: tf.Tensor2D } {
    const [n, d] = queries.shape;
    const used = this.slots.length;
    const kk = Math.min(topK, used);
    if (kk === 0) return { values: tf.zeros([n, 0, d]), similarity: tf.zeros([n, 0]) };
    return tf.tidy(() => {
      const keys = tf.tensor2d(this.#flat((s) => s.key), [used, d]); // [S, D]
      const values = tf.tensor2d(this.#flat((s) => s.value), [used, d]); // [S, D]
      const sims = tf.matMul(l2Normalize(queries, 1e-12), l2Normalize(keys, 1e-12), false, true); // [N, S]
      const top = tf.topk(sims, kk); // [N, K]
      return { values: tf.gather(values as tf.Tensor, top.indices) as tf.Tensor3D, similarity: top.values as tf.Tensor2D }; // [N, K, D], [N, K]
    });
  }

  #flat(pick: (s: StoreSlot) => Float32Array): Float32Array {
    const d = this.cfg.dim;
    const out = new Float32Array(this.slots.length * d);
    this.slots.forEach((s, i) => out.set(pick(s), i * d));
    return out;
  }

  /** Slots used / capacity, mean strength, writes and evictions so far. */
  stats(): StoreStats {
    const used = this.slots.length;
    return {
      slotsUsed: used,
      capacity: this.cfg.capacity,
      utilization: used / this.cfg.capacity,
      meanStrength: used ? this.slots.reduce((a, s) => a + s.strength, 0) / used : 0,
      writes: this.#writes,
      evictions: this.#evictions,
    };
  }

  /** Empties the store and its counters. */
  clear(): void {
    this.slots.length = 0;
    this.#writes = 0;
    this.#evictions = 0;
  }
}

/** GatedLTM utilization: the persistent store's stats plus the in-pass memory's write counts. */
export interface GatedLTMStats extends StoreStats {
  /** `remember` calls so far. */
  calls: number;
  /** Hard in-pass memory writes (surprising chunks) over all remembered calls. */
  memoryWrites: number;
  /** Chunks seen over all remembered calls. */
  memoryChunks: number;
}

/**
 * A GatedLTM layer: owns its parameters (named `${prefix}.*` in a shared ParamSet, so it can sit
 * inside a bigger model) and a persistent `LongTermStore`.
 */
export class GatedLTM {
  readonly cfg: GatedLTMConfig;
  readonly params: ParamSet;
  readonly prefix: string;
  readonly store: LongTermStore;
  #calls = 0;
  #memoryWrites = 0;
  #memoryChunks = 0;

  constructor(cfg: GatedLTMConfig, params: ParamSet, prefix = "ltm") {
    validateGatedLtmConfig(cfg);
    this.cfg = cfg;
    this.params = params;
    this.prefix = prefix;
    const { dModel: C, memDim: D, initStd: std } = cfg;
    const normal = { kind: "normal", std } as const;
    const p = (name: string) => `${prefix}.${name}`;
    params.add(p("wk"), [C, D], normal);
    params.add(p("wv"), [C, D], normal);
    params.add(p("wq"), [C, D], normal);
    params.add(p("wo"), [D, C], { kind: "normal", std: 1 / Math.sqrt(D) });
    params.add(p("m0"), [D, D], { kind: "normal", std: 0.1 / Math.sqrt(D) });
    params.add(p("gate_w"), [C, 3], { kind: "normal", std: 0.01 });
    const gateB = new Float32Array([logit(cfg.forgetInit), logit(cfg.momentumInit), logit(cfg.stepInit)]);
    params.add(p("gate_b"), [3], { kind: "values", data: gateB });
    params.add(p("read_w"), [C, C], { kind: "normal", std: 0.01 });
    params.add(p("read_b"), [C], { kind: "const", value: cfg.readGateInit });
    this.store = new LongTermStore({
      dim: D,
      capacity: cfg.storeCapacity,
      decay: cfg.storeDecay,
      minStrength: cfg.storeMinStrength,
      mergeCos: cfg.storeMergeCos,
    });
  }

  /** The layer's weights as the pure forward function takes them. */
  weights(): GatedLTMWeights {
    const g = (n: string) => this.params.get(`${this.prefix}.${n}`);
    return {
      wk: g("wk"),
      wv: g("wv"),
      wq: g("wq"),
      wo: g("wo"),
      m0: g("m0"),
      gateW: g("gate_w"),
      gateB: g("gate_b"),
      readW: g("read_w"),
      readB: g("read_b"),
    };
  }

  /** x [B, T, C] -> the read-augmented stream and the memory's write report (see GatedLTMOutput). */
  forward(x: tf.Tensor3D, state?: MemoryState): GatedLTMOutput {
    return gatedLtmForward(this.weights(), x, this.cfg, state);
  }

  /**
   * After a forward call, outside autodiff: decays the persistent store once, then writes the
   * (up to storeWritesPerCall) most surprising chunk summaries whose surprise passed the
   * threshold, with the surprise as strength. Returns how many store writes were made.
   */
  async remember(out: GatedLTMOutput): Promise<number> {
    const [B, nChunks] = out.surprise.shape;
    const D = this.cfg.memDim;
    const [surprise, keys, values] = await Promise.all([out.surprise.data(), out.chunkKeys.data(), out.chunkValues.data()]);
    this.#calls++;
    this.#memoryChunks += B * nChunks;
    this.store.tick();
    const order = [...surprise.keys()].filter((i) => surprise[i] > this.cfg.surpriseThreshold);
    this.#memoryWrites += order.length;
    order.sort((a, b) => surprise[b] - surprise[a]);
    let written = 0;
    for (const i of order.slice(0, this.cfg.storeWritesPerCall)) {
      const key = (keys as Float32Array).slice(i * D, (i + 1) * D);
      const value = (values as Float32Array).slice(i * D, (i + 1) * D);
      if (this.store.write(key, value, surprise[i]) !== "rejected") written++;
    }
    return written;
  }

  /**
   * Extra context from the persistent store: for each chunk's mean query, the values of the
   * storeTopK most similar stored keys. [B, nChunks, D] -> values [B, nChunks, K, D], similarity [B, nChunks, K].
   */
  recall(chunkQueries: tf.Tensor3D): { values: tf.Tensor4D; similarity: tf.Tensor3D } {
    const [B, nC, D] = chunkQueries.shape;
    return tf.tidy(() => {
      const r = this.store.retrieveTensor(tf.reshape(chunkQueries, [B * nC, D]) as tf.Tensor2D, this.cfg.storeTopK);
      const kk = r.similarity.shape[1];
      return {
        values: tf.reshape(r.values, [B, nC, kk, D]) as tf.Tensor4D,
        similarity: tf.reshape(r.similarity, [B, nC, kk]) as tf.Tensor3D,
      };
    });
  }

  /** Store utilization (slots used / capacity, mean strength, writes) and in-pass write counts. */
  stats(): GatedLTMStats {
    return { ...this.store.stats(), calls: this.#calls, memoryWrites: this.#memoryWrites, memoryChunks: this.#memoryChunks };
  }
}
