/**
 * SeedLM (Shafipour et al. 2024): each block of C consecutive weights is stored as the 16-bit
 * seed of a pseudo-random basis U(seed) [C, P] plus P 4-bit coefficients that share one 4-bit
 * exponent, w ~= U(seed) q_int 2^e. The decoder regenerates U(seed) from the seed alone.
 *
 * Pseudo-random generator: a 16-bit Fibonacci LFSR with the primitive feedback polynomial
 * x^16 + x^14 + x^13 + x^11 + 1 (taps 16, 14, 13, 11), shifting right; its period is
 * 2^16 - 1 = 65535, so every nonzero 16-bit value is a seed.
 *
 * Basis mapping (`seedBasis`): starting from the seed, the LFSR is stepped BASIS_STRIDE = 16
 * times per value, so consecutive values use disjoint 16-bit windows of the m-sequence. The
 * k-th state x_k (k = 1 .. C P) becomes v_k = (2 x_k - 65535) / 65535 in (-1, 1) (never 0).
 * Values fill U column by column: U[c, j] = v_{j C + c + 1}. Each column is then scaled to
 * unit L2 norm, so a coefficient is the weight of a unit direction.
 *
 * Search: for every seed the tables hold U, the Gram matrix G = U^T U and G^-1 (so the
 * pseudo-inverse is G^-1 U^T). Per block w and seed: b = U^T w, q = G^-1 b (least squares),
 * e = the smallest exponent for which every round(q_i / 2^e) lies in [-8, 7] (clamped to the
 * 4-bit range [eMin, eMin + 15]), q_int = clamp(round(q / 2^e), -8, 7), and the squared error
 * ||w - U q^||^2 = ||w||^2 - 2 q^.b + q^^T G q^ with q^ = q_int 2^e. The seed with the smallest
 * error wins (the lowest seed on ties). Seeds whose Gram matrix is singular are skipped, and a
 * block skips quantizing a seed whose unquantized residual ||w||^2 - q.b (a lower bound) already
 * exceeds its best error. The loop is seed-major (each seed's tables read once for all blocks),
 * unrolled for P = 3 and P = 4. Blocks are C consecutive weights of the flattened row-major W,
 * the last zero padded (the padding counts in the search error, is dropped on decompress).
 * Basis values from stride 1 (overlapping states) gave MSE 0.0193 vs 0.0129 at 4 bits on N(0,1).
 *
 * Serialized format (little endian):
 *   header 16 bytes: magic "SDLM", version u8 = 1, C u8, P u8, eMin i8, rows u32, cols u32;
 *   payload: ceil(rows cols / C) blocks of (5 + P) nibbles packed low nibble first, two per
 *   byte, the last byte zero padded: seed (4 nibbles, least significant first), e - eMin,
 *   then q_int + 8 for each of the P coefficients.
 * Bits per weight = (16 + 4 + 4 P) / C plus the header: C = 8, P = 3 -> 4; C = 12, P = 4 -> 3.
 */
import { BASIS_STRIDE, lfsrStep, normalizeColumns, SEED_COUNT, seedBasis, stateToValue } from "../../kernels/seedlm_ref.ts";
import type { CompressedLayer, Matrix } from "./types.ts";

// The LFSR and its basis are the kernel's reference maths (kernels/seedlm_ref.ts); the compressor reuses them.
export { BASIS_STRIDE, lfsrPeriod, lfsrStep, SEED_COUNT, seedBasis, stateToValue } from "../../kernels/seedlm_ref.ts";

/** Serialized format magic ("SDLM") and version. */
export const SEEDLM_MAGIC = "SDLM";
export const SEEDLM_VERSION = 1;
/** Header length in bytes. */
export const SEEDLM_HEADER_BYTES = 16;
/** Coefficient range of the signed 4-bit integers. */
const Q_MIN = -8;
const Q_MAX = 7;
/** Pivot below which a Gram matrix (unit diagonal) counts as singular. */
const SINGULAR_PIVOT = 1e-9;

/** SeedLM settings. */
export interface SeedLMSettings {
  /** Block length, weights per seed (default 8; 1..255). */
  C: number;
  /** Basis size, coefficients per block (default 3; 1..min(C, 16)). */
  P: number;
  /** Seeds searched: 1..seeds (default 65535 = exhaustive; fewer only for quick tests). */
  seeds: number;
}

/** Defaults: C = 8, P = 3 is 4 bits per weight; exhaustive search. */
export const DEFAULT_SEEDLM_SETTINGS: Readonly<SeedLMSettings> = { C: 8, P: 3, seeds: SEED_COUNT };

/** Throughput of one seed search. */
export interface SeedSearchStats {
  /** Blocks searched. */
  blocks: number;
  /** Seeds tried per block. */
  seedsPerBlock: number;
  /** Seconds spent building (or 0 when cached) the per-seed basis tables. */
  precomputeSeconds: number;
  /** Seconds spent in the search itself. */
  searchSeconds: number;
  /** Blocks per second of search. */
  blocksPerSecond: number;
  /** (seed, block) evaluations per second of search. */
  seedsPerSecond: number;
}

// ---------------------------------------------------------------------------------------------
// LFSR and basis

/**
 * Inverts the symmetric P x P matrix at a[ao..] into out[oo..] by Gauss-Jordan with partial
 * pivoting. Returns false (out untouched beyond scratch) when a pivot falls below SINGULAR_PIVOT.
 */
function invertSmall(a: Float64Array, ao: number, out: Float64Array, oo: number, P: number, work: Float64Array): boolean {
  const w = 2 * P;
  for (let i = 0; i < P; i++) {
    for (let j = 0; j < P; j++) {
      work[i * w + j] = a[ao + i * P + j];
      work[i * w + P + j] = i === j ? 1 : 0;
    }
  }
  for (let col = 0; col < P; col++) {
    let piv = col;
    for (let r = col + 1; r < P; r++) if (Math.abs(work[r * w + col]) > Math.abs(work[piv * w + col])) piv = r;
    const pv = work[piv * w + col];
    if (!(Math.abs(pv) >= SINGULAR_PIVOT)) return false;
    if (piv !== col) {
      for (let j = 0; j < w; j++) {
        const t = work[col * w + j];
        work[col * w + j] = work[piv * w + j];
        work[piv * w + j] = t;
      }
    }
    const inv = 1 / pv;
    for (let j = 0; j < w; j++) work[col * w + j] *= inv;
    for (let r = 0; r < P; r++) {
      if (r === col) continue;
      const f = work[r * w + col];
      if (f === 0) continue;
      for (let j = 0; j < w; j++) work[r * w + j] -= f * work[col * w + j];
    }
  }
  for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) out[oo + i * P + j] = work[i * w + P + j];
  return true;
}

/** Per-seed tables for one (C, P): U, G = U^T U and G^-1, indexed by seed (row 0 unused). */
export interface SeedBasisTable {
  C: number;
  P: number;
  /** U(seed) [C, P] row-major at offset seed C P. */
  u: Float64Array;
  /** G(seed) = U^T U [P, P] at offset seed P P. */
  gram: Float64Array;
  /** G(seed)^-1 [P, P] at offset seed P P (zeros when singular). */
  gramInv: Float64Array;
  /** 1 when the seed's Gram matrix is invertible (the seed is searched), else 0. */
  valid: Uint8Array;
}

const tableCache = new Map<string, SeedBasisTable>();

/**
 * Builds the per-seed tables for (C, P) from one pass over the LFSR's m-sequence; identical,
 * value for value, to `seedBasis` for every seed. Cached per (C, P).
 */
export function seedBasisTable(C: number, P: number): SeedBasisTable {
  checkShape(C, P);
  const key = `${C}x${P}`;
  const hit = tableCache.get(key);
  if (hit) return hit;
  // m-sequence: seq[t] = state after t steps from state 1; pos[state] = t.
  const seq = new Uint16Array(SEED_COUNT);
  const pos = new Uint32Array(SEED_COUNT + 1);
  let s = 1;
  for (let t = 0; t < SEED_COUNT; t++) {
    seq[t] = s;
    pos[s] = t;
    s = lfsrStep(s);
  }
  const vals = new Float64Array(SEED_COUNT);
  for (let t = 0; t < SEED_COUNT; t++) vals[t] = stateToValue(seq[t]);
  const CP = C * P, PP = P * P;
  const u = new Float64Array((SEED_COUNT + 1) * CP);
  const gram = new Float64Array((SEED_COUNT + 1) * PP);
  const gramInv = new Float64Array((SEED_COUNT + 1) * PP);
  const valid = new Uint8Array(SEED_COUNT + 1);
  const work = new Float64Array(2 * PP);
  for (let seed = 1; seed <= SEED_COUNT; seed++) {
    const uo = seed * CP, go = seed * PP;
    let t = pos[seed];
    for (let j = 0; j < P; j++) {
      for (let c = 0; c < C; c++) {
        t = (t + BASIS_STRIDE) % SEED_COUNT;
        u[uo + c * P + j] = vals[t];
      }
    }
    normalizeColumns(u, uo, C, P);
    for (let i = 0; i < P; i++) {
      for (let j = i; j < P; j++) {
        let acc = 0;
        for (let c = 0; c < C; c++) acc += u[uo + c * P + i] * u[uo + c * P + j];
        gram[go + i * P + j] = acc;
        gram[go + j * P + i] = acc;
      }
    }
    valid[seed] = invertSmall(gram, go, gramInv, go, P, work) ? 1 : 0;
  }
  const table: SeedBasisTable = { C, P, u, gram, gramInv, valid };
  tableCache.set(key, table);
  return table;
}

// ---------------------------------------------------------------------------------------------
// Quantization rule and search

/**
 * The exponent range for a matrix: eMax = ceil(log2(max block norm / 7.5)) + 2 (headroom for
 * ill-conditioned bases), eMin = eMax - 15, clamped to the int8 header field; 0 for an all-zero matrix.
 */
export function exponentBase(blocks: Float64Array, C: number): number {
  let maxN2 = 0;
  for (let b = 0; b * C < blocks.length; b++) {
    let n2 = 0;
    for (let c = 0; c < C; c++) n2 += blocks[b * C + c] ** 2;
    if (n2 > maxN2) maxN2 = n2;
  }
  if (maxN2 === 0) return 0;
  const eMax = Math.ceil(Math.log2(Math.sqrt(maxN2) / 7.5)) + 2;
  return Math.max(-128, Math.min(127, eMax - 15));
}

/** Best seed per block. */
export interface SeedSearchResult {
  /** Chosen seed per block (1..65535). */
  seeds: Uint16Array;
  /** Chosen exponent code e - eMin per block (0..15). */
  expCodes: Uint8Array;
  /** Chosen coefficients q_int per block, [blocks, P]. */
  coeffs: Int8Array;
  /** Squared error ||w - U q^||^2 per block (including padding). */
  errors: Float64Array;
}

/** Everything `scoreSeed` reads and updates (one monomorphic object, no per-seed allocation). */
interface SearchContext {
  C: number;
  P: number;
  nB: number;
  eMin: number;
  blocks: Float64Array;
  wn2: Float64Array;
  u: Float64Array;
  gram: Float64Array;
  gramInv: Float64Array;
  pow2: Float64Array;
  ipow2: Float64Array;
  bv: Float64Array;
  qh: Float64Array;
  qi: Int8Array;
  seeds: Uint16Array;
  expCodes: Uint8Array;
  coeffs: Int8Array;
  errors: Float64Array;
}

/** Relative slack on the least-squares lower bound so rounding never prunes a seed that would win. */
const PRUNE_SLACK = 1e-12;

/** The clamped block exponent for max_i max(q_i / 7.5, -q_i / 8.5) = m (the smallest e with every round(q_i / 2^e) in [-8, 7], clamped to [eMin, eMin + 15]; eMin when q is all zero). */
function exponentOf(m: number, eMin: number): number {
  if (m === 0) return eMin;
  const e = Math.ceil(Math.log2(m));
  return e < eMin ? eMin : e > eMin + 15 ? eMin + 15 : e;
}

/** round(x) clamped to the 4-bit range [-8, 7]. */
function q4(x: number): number {
  const r = Math.round(x);
  return r < Q_MIN ? Q_MIN : r > Q_MAX ? Q_MAX : r;
}

/**
 * Scores one seed against every block and keeps it where it beats the best so far (general P).
 * Blocks whose unquantized least-squares residual ||w||^2 - q.b (a lower bound on the quantized
 * error) already exceeds their best error skip the quantization. A separate function per seed
 * so V8 optimizes it whole instead of on-stack-replacing a nested loop.
 */
function scoreSeed(ctx: SearchContext, seed: number): void {
  const { C, P, nB, eMin, blocks, wn2, u, gram, gramInv, pow2, ipow2, bv, qh, qi, seeds, expCodes, coeffs, errors } = ctx;
  const uo = seed * C * P, go = seed * P * P;
  for (let b = 0; b < nB; b++) {
    const wo = b * C;
    for (let j = 0; j < P; j++) bv[j] = 0;
    for (let c = 0; c < C; c++) {
      const wc = blocks[wo + c];
      const ur = uo + c * P;
      for (let j = 0; j < P; j++) bv[j] += u[ur + j] * wc;
    }
    let m = 0, ls = wn2[b];
    for (let i = 0; i < P; i++) {
      let acc = 0;
      const gr = go + i * P;
      for (let j = 0; j < P; j++) acc += gramInv[gr + j] * bv[j];
      qh[i] = acc;
      ls -= acc * bv[i];
      const a = acc / 7.5, n = -acc / 8.5;
      if (a > m) m = a;
      if (n > m) m = n;
    }
    if (ls - PRUNE_SLACK * wn2[b] >= errors[b]) continue;
    const k = exponentOf(m, eMin) - eMin;
    const sc = pow2[k], isc = ipow2[k];
    let err = wn2[b];
    for (let i = 0; i < P; i++) {
      const r = q4(qh[i] * isc);
      qi[i] = r;
      qh[i] = r * sc;
      err -= 2 * qh[i] * bv[i];
    }
    for (let i = 0; i < P; i++) {
      const gr = go + i * P;
      let acc = 0;
      for (let j = 0; j < P; j++) acc += gram[gr + j] * qh[j];
      err += qh[i] * acc;
    }
    if (err < errors[b]) {
      errors[b] = err;
      seeds[b] = seed;
      expCodes[b] = k;
      for (let i = 0; i < P; i++) coeffs[b * P + i] = qi[i];
    }
  }
}

/** `scoreSeed` unrolled for P = 3 (the 4-bit setting C = 8, P = 3); same arithmetic, locals instead of scratch arrays. */
function scoreSeed3(ctx: SearchContext, seed: number): void {
  const { C, nB, eMin, blocks, wn2, u, gram: g, gramInv: h, pow2, ipow2, seeds, expCodes, coeffs, errors } = ctx;
  const uo = seed * C * 3, go = seed * 9;
  const h00 = h[go], h01 = h[go + 1], h02 = h[go + 2], h10 = h[go + 3], h11 = h[go + 4], h12 = h[go + 5];
  const h20 = h[go + 6], h21 = h[go + 7], h22 = h[go + 8];
  const g00 = g[go], g01 = g[go + 1], g02 = g[go + 2], g11 = g[go + 4], g12 = g[go + 5], g22 = g[go + 8];
  for (let b = 0; b < nB; b++) {
    const wo = b * C;
    let b0 = 0, b1 = 0, b2 = 0;
    for (let c = 0, ur = uo; c < C; c++, ur += 3) {
      const wc = blocks[wo + c];
      b0 += u[ur] * wc;
      b1 += u[ur + 1] * wc;
      b2 += u[ur + 2] * wc;
    }
    const q0 = h00 * b0 + h01 * b1 + h02 * b2;
    const q1 = h10 * b0 + h11 * b1 + h12 * b2;
    const q2 = h20 * b0 + h21 * b1 + h22 * b2;
    const w2 = wn2[b], best = errors[b];
    if (w2 - q0 * b0 - q1 * b1 - q2 * b2 - PRUNE_SLACK * w2 >= best) continue;
    const m = Math.max(q0 / 7.5, -q0 / 8.5, q1 / 7.5, -q1 / 8.5, q2 / 7.5, -q2 / 8.5, 0);
    const k = exponentOf(m, eMin) - eMin;
    const sc = pow2[k], isc = ipow2[k];
    const i0 = q4(q0 * isc), i1 = q4(q1 * isc), i2 = q4(q2 * isc);
    const r0 = i0 * sc, r1 = i1 * sc, r2 = i2 * sc;
    const err = w2 - 2 * (r0 * b0 + r1 * b1 + r2 * b2) +
      (r0 * (g00 * r0 + g01 * r1 + g02 * r2) + r1 * (g01 * r0 + g11 * r1 + g12 * r2) + r2 * (g02 * r0 + g12 * r1 + g22 * r2));
    if (err < best) {
      errors[b] = err;
      seeds[b] = seed;
      expCodes[b] = k;
      coeffs[b * 3] = i0;
      coeffs[b * 3 + 1] = i1;
      coeffs[b * 3 + 2] = i2;
    }
  }
}

/** `scoreSeed` unrolled for P = 4 (the 3-bit setting C = 12, P = 4). */
function scoreSeed4(ctx: SearchContext, seed: number): void {
  const { C, nB, eMin, blocks, wn2, u, gram: g, gramInv: h, pow2, ipow2, seeds, expCodes, coeffs, errors } = ctx;
  const uo = seed * C * 4, go = seed * 16;
  const h00 = h[go], h01 = h[go + 1], h02 = h[go + 2], h03 = h[go + 3];
  const h10 = h[go + 4], h11 = h[go + 5], h12 = h[go + 6], h13 = h[go + 7];
  const h20 = h[go + 8], h21 = h[go + 9], h22 = h[go + 10], h23 = h[go + 11];
  const h30 = h[go + 12], h31 = h[go + 13], h32 = h[go + 14], h33 = h[go + 15];
  const g00 = g[go], g01 = g[go + 1], g02 = g[go + 2], g03 = g[go + 3];
  const g11 = g[go + 5], g12 = g[go + 6], g13 = g[go + 7], g22 = g[go + 10], g23 = g[go + 11], g33 = g[go + 15];
  for (let b = 0; b < nB; b++) {
    const wo = b * C;
    let b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    for (let c = 0, ur = uo; c < C; c++, ur += 4) {
      const wc = blocks[wo + c];
      b0 += u[ur] * wc;
      b1 += u[ur + 1] * wc;
      b2 += u[ur + 2] * wc;
      b3 += u[ur + 3] * wc;
    }
    const q0 = h00 * b0 + h01 * b1 + h02 * b2 + h03 * b3;
    const q1 = h10 * b0 + h11 * b1 + h12 * b2 + h13 * b3;
    const q2 = h20 * b0 + h21 * b1 + h22 * b2 + h23 * b3;
    const q3 = h30 * b0 + h31 * b1 + h32 * b2 + h33 * b3;
    const w2 = wn2[b], best = errors[b];
    if (w2 - q0 * b0 - q1 * b1 - q2 * b2 - q3 * b3 - PRUNE_SLACK * w2 >= best) continue;
    const m = Math.max(q0 / 7.5, -q0 / 8.5, q1 / 7.5, -q1 / 8.5, q2 / 7.5, -q2 / 8.5, q3 / 7.5, -q3 / 8.5, 0);
    const k = exponentOf(m, eMin) - eMin;
    const sc = pow2[k], isc = ipow2[k];
    const i0 = q4(q0 * isc), i1 = q4(q1 * isc), i2 = q4(q2 * isc), i3 = q4(q3 * isc);
    const r0 = i0 * sc, r1 = i1 * sc, r2 = i2 * sc, r3 = i3 * sc;
    const err = w2 - 2 * (r0 * b0 + r1 * b1 + r2 * b2 + r3 * b3) +
      (r0 * (g00 * r0 + g01 * r1 + g02 * r2 + g03 * r3) + r1 * (g01 * r0 + g11 * r1 + g12 * r2 + g13 * r3) +
        r2 * (g02 * r0 + g12 * r1 + g22 * r2 + g23 * r3) + r3 * (g03 * r0 + g13 * r1 + g23 * r2 + g33 * r3));
    if (err < best) {
      errors[b] = err;
      seeds[b] = seed;
      expCodes[b] = k;
      coeffs[b * 4] = i0;
      coeffs[b * 4 + 1] = i1;
      coeffs[b * 4 + 2] = i2;
      coeffs[b * 4 + 3] = i3;
    }
  }
}

/**
 * Exhaustive search over seeds 1..seedLimit for every block of `blocks` ([nBlocks, C]).
 * Seed-major: each seed's tables are read once and stay in cache while all blocks are scored.
 */
export function searchSeeds(table: SeedBasisTable, blocks: Float64Array, eMin: number, seedLimit = SEED_COUNT): SeedSearchResult {
  const { C, P, u, gram, gramInv, valid } = table;
  if (blocks.length % C !== 0) throw new Error(`searchSeeds: blocks length ${blocks.length} is not a multiple of C = ${C}`);
  if (!Number.isInteger(seedLimit) || seedLimit < 1 || seedLimit > SEED_COUNT) {
    throw new Error(`seeds must be an integer in 1..${SEED_COUNT}, got ${seedLimit}`);
  }
  const nB = blocks.length / C;
  const seeds = new Uint16Array(nB);
  const expCodes = new Uint8Array(nB);
  const coeffs = new Int8Array(nB * P);
  const errors = new Float64Array(nB).fill(Infinity);
  const wn2 = new Float64Array(nB);
  for (let b = 0; b < nB; b++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += blocks[b * C + c] ** 2;
    wn2[b] = s;
  }
  const pow2 = new Float64Array(16), ipow2 = new Float64Array(16);
  for (let k = 0; k < 16; k++) {
    pow2[k] = 2 ** (eMin + k);
    ipow2[k] = 2 ** -(eMin + k);
  }
  const ctx: SearchContext = {
    C,
    P,
    nB,
    eMin,
    blocks,
    wn2,
    u,
    gram,
    gramInv,
    pow2,
    ipow2,
    bv: new Float64Array(P),
    qh: new Float64Array(P),
    qi: new Int8Array(P),
    seeds,
    expCodes,
    coeffs,
    errors,
  };
  const score = P === 3 ? scoreSeed3 : P === 4 ? scoreSeed4 : scoreSeed;
  for (let seed = 1; seed <= seedLimit; seed++) if (valid[seed] !== 0) score(ctx, seed);
  for (let b = 0; b < nB; b++) {
    if (seeds[b] === 0) throw new Error(`searchSeeds: no invertible basis among seeds 1..${seedLimit} for C = ${C}, P = ${P}`);
  }
  return { seeds, expCodes, coeffs, errors };
}

// ---------------------------------------------------------------------------------------------
// Layer, compression, serialization

function checkShape(C: number, P: number): void {
  if (!Number.isInteger(C) || C < 1 || C > 255) throw new Error(`C must be an integer in 1..255, got ${C}`);
  if (!Number.isInteger(P) || P < 1 || P > Math.min(C, 16)) {
    throw new Error(`P must be an integer in 1..min(C, 16) = ${Math.min(C, 16)}, got ${P}`);
  }
}

function checkDims(rows: number, cols: number): void {
  if (!Number.isInteger(rows) || rows < 1 || rows > 0xffffffff) throw new Error(`rows must be a positive u32 integer, got ${rows}`);
  if (!Number.isInteger(cols) || cols < 1 || cols > 0xffffffff) throw new Error(`cols must be a positive u32 integer, got ${cols}`);
}

/** Fields of a SeedLM layer (what the serialized bytes hold). */
export interface SeedLMParts {
  rows: number;
  cols: number;
  C: number;
  P: number;
  /** Lowest exponent; block exponents are eMin + expCodes[b]. */
  eMin: number;
  seeds: Uint16Array;
  expCodes: Uint8Array;
  coeffs: Int8Array;
}

/** A SeedLM-compressed matrix. */
export class SeedLMLayer implements CompressedLayer {
  readonly method = "seedlm" as const;
  readonly rows: number;
  readonly cols: number;
  readonly C: number;
  readonly P: number;
  readonly eMin: number;
  readonly seeds: Uint16Array;
  readonly expCodes: Uint8Array;
  readonly coeffs: Int8Array;
  readonly settings: Record<string, number | string | boolean>;
  /** Search throughput (only on a freshly compressed layer). */
  readonly stats?: SeedSearchStats;

  constructor(parts: SeedLMParts, stats?: SeedSearchStats, searched = SEED_COUNT) {
    checkDims(parts.rows, parts.cols);
    checkShape(parts.C, parts.P);
    const nB = Math.ceil((parts.rows * parts.cols) / parts.C);
    if (parts.seeds.length !== nB) throw new Error(`seeds has length ${parts.seeds.length}, expected ${nB} blocks`);
    if (parts.expCodes.length !== nB) throw new Error(`expCodes has length ${parts.expCodes.length}, expected ${nB}`);
    if (parts.coeffs.length !== nB * parts.P) throw new Error(`coeffs has length ${parts.coeffs.length}, expected ${nB * parts.P}`);
    if (!Number.isInteger(parts.eMin) || parts.eMin < -128 || parts.eMin > 127) throw new Error(`eMin must be an int8, got ${parts.eMin}`);
    this.rows = parts.rows;
    this.cols = parts.cols;
    this.C = parts.C;
    this.P = parts.P;
    this.eMin = parts.eMin;
    this.seeds = parts.seeds;
    this.expCodes = parts.expCodes;
    this.coeffs = parts.coeffs;
    this.stats = stats;
    this.settings = { C: parts.C, P: parts.P, seeds: searched, bitsPerWeightNominal: (16 + 4 + 4 * parts.P) / parts.C };
  }

  /** Number of blocks, ceil(rows cols / C). */
  get blocks(): number {
    return this.seeds.length;
  }

  /** Header + bit-packed blocks (see the module comment). */
  encode(): Uint8Array {
    const { C, P } = this;
    const nB = this.blocks;
    const nibbles = nB * (5 + P);
    const out = new Uint8Array(SEEDLM_HEADER_BYTES + Math.ceil(nibbles / 2));
    const dv = new DataView(out.buffer);
    for (let i = 0; i < 4; i++) out[i] = SEEDLM_MAGIC.charCodeAt(i);
    out[4] = SEEDLM_VERSION;
    out[5] = C;
    out[6] = P;
    dv.setInt8(7, this.eMin);
    dv.setUint32(8, this.rows, true);
    dv.setUint32(12, this.cols, true);
    let n = 0;
    const put = (v: number) => {
      out[SEEDLM_HEADER_BYTES + (n >> 1)] |= (v & 15) << ((n & 1) * 4);
      n++;
    };
    for (let b = 0; b < nB; b++) {
      const s = this.seeds[b];
      put(s);
      put(s >> 4);
      put(s >> 8);
      put(s >> 12);
      put(this.expCodes[b]);
      for (let i = 0; i < P; i++) put(this.coeffs[b * P + i] + 8);
    }
    return out;
  }

  /** W^ [rows, cols]: block b is U(seed_b) q_int 2^(eMin + expCode_b), the padding dropped. */
  decompress(): Float32Array {
    const { C, P } = this;
    const total = this.rows * this.cols;
    const out = new Float32Array(total);
    const basisCache = new Map<number, Float64Array>();
    for (let b = 0; b < this.blocks; b++) {
      const seed = this.seeds[b];
      let u = basisCache.get(seed);
      if (!u) {
        u = seedBasis(seed, C, P);
        basisCache.set(seed, u);
      }
      const sc = 2 ** (this.eMin + this.expCodes[b]);
      for (let c = 0; c < C; c++) {
        const idx = b * C + c;
        if (idx >= total) break;
        let acc = 0;
        for (let j = 0; j < P; j++) acc += u[c * P + j] * this.coeffs[b * P + j];
        out[idx] = acc * sc;
      }
    }
    return out;
  }
}

/** Splits the flattened row-major matrix into [ceil(n / C), C] blocks (zero padded) as float64. */
export function toBlocks(data: Float32Array, C: number): Float64Array {
  const nB = Math.ceil(data.length / C);
  const out = new Float64Array(nB * C);
  for (let i = 0; i < data.length; i++) out[i] = data[i];
  return out;
}

/** Compresses a matrix with SeedLM (settings default to C = 8, P = 3, exhaustive search). */
export function seedlmCompress(m: Matrix, settings: Partial<SeedLMSettings> = {}): SeedLMLayer {
  const cfg: SeedLMSettings = { ...DEFAULT_SEEDLM_SETTINGS, ...settings };
  checkDims(m.rows, m.cols);
  checkShape(cfg.C, cfg.P);
  if (m.data.length !== m.rows * m.cols) throw new Error(`data has length ${m.data.length}, expected rows * cols = ${m.rows * m.cols}`);
  for (let i = 0; i < m.data.length; i++) {
    if (!Number.isFinite(m.data[i])) throw new Error(`data[${i}] is not finite (${m.data[i]})`);
  }
  const t0 = performance.now();
  const table = seedBasisTable(cfg.C, cfg.P);
  const t1 = performance.now();
  const blocks = toBlocks(m.data, cfg.C);
  const eMin = exponentBase(blocks, cfg.C);
  const found = searchSeeds(table, blocks, eMin, cfg.seeds);
  const t2 = performance.now();
  const nB = found.seeds.length;
  const sec = Math.max((t2 - t1) / 1000, 1e-9);
  const stats: SeedSearchStats = {
    blocks: nB,
    seedsPerBlock: cfg.seeds,
    precomputeSeconds: (t1 - t0) / 1000,
    searchSeconds: (t2 - t1) / 1000,
    blocksPerSecond: nB / sec,
    seedsPerSecond: (nB * cfg.seeds) / sec,
  };
  const parts = {
    rows: m.rows,
    cols: m.cols,
    C: cfg.C,
    P: cfg.P,
    eMin,
    seeds: found.seeds,
    expCodes: found.expCodes,
    coeffs: found.coeffs,
  };
  return new SeedLMLayer(parts, stats, cfg.seeds);
}

/** Parses `SeedLMLayer.encode()` bytes; throws an error naming the problem on malformed input. */
export function decodeSeedLM(bytes: Uint8Array): SeedLMLayer {
  if (bytes.byteLength < SEEDLM_HEADER_BYTES) {
    throw new Error(`decodeSeedLM: ${bytes.byteLength} bytes is shorter than the ${SEEDLM_HEADER_BYTES}-byte header`);
  }
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== SEEDLM_MAGIC) throw new Error(`decodeSeedLM: bad magic ${JSON.stringify(magic)}, expected "${SEEDLM_MAGIC}"`);
  if (bytes[4] !== SEEDLM_VERSION) throw new Error(`decodeSeedLM: unsupported version ${bytes[4]}, expected ${SEEDLM_VERSION}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const C = bytes[5], P = bytes[6], eMin = dv.getInt8(7);
  const rows = dv.getUint32(8, true), cols = dv.getUint32(12, true);
  try {
    checkShape(C, P);
    checkDims(rows, cols);
  } catch (e) {
    throw new Error(`decodeSeedLM: header ${(e as Error).message}`);
  }
  const nB = Math.ceil((rows * cols) / C);
  const expected = SEEDLM_HEADER_BYTES + Math.ceil((nB * (5 + P)) / 2);
  if (bytes.byteLength !== expected) {
    throw new Error(`decodeSeedLM: payload length ${bytes.byteLength} bytes, expected ${expected} for ${rows}x${cols}, C = ${C}, P = ${P}`);
  }
  let n = 0;
  const get = () => {
    const v = (bytes[SEEDLM_HEADER_BYTES + (n >> 1)] >> ((n & 1) * 4)) & 15;
    n++;
    return v;
  };
  const seeds = new Uint16Array(nB);
  const expCodes = new Uint8Array(nB);
  const coeffs = new Int8Array(nB * P);
  for (let b = 0; b < nB; b++) {
    const s = get() | (get() << 4) | (get() << 8) | (get() << 12);
    if (s === 0) throw new Error(`decodeSeedLM: block ${b} has seed 0 (the LFSR's stuck state)`);
    seeds[b] = s;
    expCodes[b] = get();
    for (let i = 0; i < P; i++) coeffs[b * P + i] = get() - 8;
  }
  return new SeedLMLayer({ rows, cols, C, P, eMin, seeds, expCodes, coeffs });
}
