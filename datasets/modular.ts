/**
 * Modular arithmetic, the grokking task (Power et al., 2022): every equation `x o y = z
 * (mod p)` over the operand ranges, as the token sequence [x, op, y, =] with target z,
 * split at random into train and validation by `trainFraction`.
 *
 * Tokens: 0..p-1 are the numbers, p is `=`, p+1 is the operation (one op per dataset).
 */
import { deriveSeed, Rng } from "../lib/util/rng.ts";

/** The binary operations of the grokking literature. */
export const MODULAR_OPS = {
  /** x + y */
  add: { y0: 0, f: (x: number, y: number, p: number) => (x + y) % p },
  /** x - y */
  sub: { y0: 0, f: (x: number, y: number, p: number) => (((x - y) % p) + p) % p },
  /** x * y, y in 1..p-1 (as the Grokfast paper's modular multiplication) */
  mul: { y0: 1, f: (x: number, y: number, p: number) => (x * y) % p },
  /** x / y = x * y^(p-2), y in 1..p-1 (p prime) */
  div: { y0: 1, f: (x: number, y: number, p: number) => (x * powMod(y, p - 2, p)) % p },
  /** x^2 + y^2 */
  sq_sum: { y0: 0, f: (x: number, y: number, p: number) => (x * x + y * y) % p },
  /** x^2 + xy + y^2 */
  quad: { y0: 0, f: (x: number, y: number, p: number) => (x * x + x * y + y * y) % p },
  /** x^3 + xy */
  cubic: { y0: 0, f: (x: number, y: number, p: number) => (powMod(x, 3, p) + x * y) % p },
} as const;
export type ModularOp = keyof typeof MODULAR_OPS;

export interface ModularConfig {
  /** The modulus (prime for `div`). */
  p: number;
  op: ModularOp;
  /** Share of all equations used for training (the rest is validation). */
  trainFraction: number;
  seed: number;
}

/** Equations as parallel arrays: inputs [n, 4] row-major, targets [n]. */
export interface ModularSplit {
  inputs: Int32Array;
  targets: Int32Array;
  size: number;
}

export interface ModularDataset {
  config: ModularConfig;
  /** Tokens in the vocabulary: p numbers, `=`, the operation. */
  vocabSize: number;
  eqToken: number;
  opToken: number;
  /** Sequence length of an input (x, op, y, =). */
  seqLen: 4;
  train: ModularSplit;
  val: ModularSplit;
}

/** b^e mod m for small non-negative integers. */
export function powMod(b: number, e: number, m: number): number {
  let r = 1 % m, x = b % m;
  while (e > 0) {
    if (e & 1) r = (r * x) % m;
    x = (x * x) % m;
    e >>= 1;
  }
  return r;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** Builds and splits every equation; deterministic in the seed. */
export function modularDataset(cfg: ModularConfig): ModularDataset {
  const { p, op, trainFraction } = cfg;
  if (!Number.isInteger(p) || p < 2) throw new Error(`modular.p = ${p}: expected an integer >= 2`);
  if (!(op in MODULAR_OPS)) throw new Error(`modular.op = ${op}: expected one of ${Object.keys(MODULAR_OPS).join(", ")}`);
  if (op === "div" && !isPrime(p)) throw new Error(`modular.p = ${p}: division needs a prime modulus`);
  if (!(trainFraction > 0 && trainFraction < 1)) throw new Error(`modular.trainFraction = ${trainFraction}: expected in (0, 1)`);
  const { y0, f } = MODULAR_OPS[op];
  const eq = p, opTok = p + 1;
  const all: [number, number, number][] = [];
  for (let x = 0; x < p; x++) for (let y = y0; y < p; y++) all.push([x, y, f(x, y, p)]);
  const perm = new Rng(deriveSeed(cfg.seed, `modular-${op}-${p}`)).permutation(all.length);
  const nTrain = Math.floor(all.length * trainFraction);
  const pack = (idx: ArrayLike<number>): ModularSplit => {
    const inputs = new Int32Array(idx.length * 4), targets = new Int32Array(idx.length);
    for (let i = 0; i < idx.length; i++) {
      const [x, y, z] = all[idx[i]];
      inputs.set([x, opTok, y, eq], i * 4);
      targets[i] = z;
    }
    return { inputs, targets, size: idx.length };
  };
  return {
    config: cfg,
    vocabSize: p + 2,
    eqToken: eq,
    opToken: opTok,
    seqLen: 4,
    train: pack(perm.subarray(0, nTrain)),
    val: pack(perm.subarray(nTrain)),
  };
}

/**
 * The rows of `split` in training batch `step`: each epoch is a fresh seeded shuffle cut
 * into batches of `batchSize` (the last one of an epoch may be smaller), so the batch is
 * a pure function of the step and a resumed run sees the same data.
 */
export function epochBatch(
  split: ModularSplit,
  batchSize: number,
  step: number,
  seed: number,
): { inputs: Int32Array; targets: Int32Array; size: number } {
  const perEpoch = Math.ceil(split.size / batchSize);
  const epoch = Math.floor(step / perEpoch), k = step % perEpoch;
  const perm = new Rng(deriveSeed(seed, `epoch-${epoch}`)).permutation(split.size);
  const rows = perm.subarray(k * batchSize, Math.min(split.size, (k + 1) * batchSize));
  const inputs = new Int32Array(rows.length * 4), targets = new Int32Array(rows.length);
  rows.forEach((r, i) => {
    inputs.set(split.inputs.subarray(r * 4, r * 4 + 4), i * 4);
    targets[i] = split.targets[r];
  });
  return { inputs, targets, size: rows.length };
}

/** A key per equation (its input tokens), for leakage checks. */
export function equationKeys(split: ModularSplit): Set<string> {
  const keys = new Set<string>();
  for (let i = 0; i < split.size; i++) keys.add(split.inputs.subarray(i * 4, i * 4 + 4).join(","));
  return keys;
}
