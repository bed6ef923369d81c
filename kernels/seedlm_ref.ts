/**
 * The plain-TypeScript reference of SeedLM reconstruction that the WGSL kernel
 * (`kernels/seedlm.ts`) is tested against. The pseudo-random basis is the CPU compressor's
 * (`lib/compress/seedlm.ts`, reused here, not copied):
 *
 * LFSR: a 16-bit Fibonacci LFSR for x^16 + x^14 + x^13 + x^11 + 1, shifting right with the new
 * bit at the top: bit = (s ^ s >> 2 ^ s >> 3 ^ s >> 5) & 1, s = (s >> 1) | (bit << 15)
 * (`lfsrStep`). The seed (1..65535) is the start state; it is stepped BASIS_STRIDE = 16 times
 * per value, and state x_k (k = 1 .. C P) becomes v_k = (2 x_k - 65535) / 65535 (`stateToValue`).
 *
 * Basis (`seedBasis`): U(seed) [C, P] is filled COLUMN by column, U[c, j] = v_(j C + c + 1), then
 * every column is scaled to unit L2 norm.
 *
 * Reconstruction of block b (C consecutive weights of the flattened row-major W, the last block
 * zero padded): w[c] = 2^e_b sum_j U(seed_b)[c, j] q_b[j], with e_b = eMin + expCode_b and the
 * signed 4-bit integer coefficients q_b (as in `SeedLMLayer.decompress`).
 */
import { seedBasis } from "../lib/compress/seedlm.ts";

export { BASIS_STRIDE, lfsrStep, seedBasis, stateToValue } from "../lib/compress/seedlm.ts";

/** Throws unless `seed` is a 16-bit nonzero integer. */
export function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 1 || seed > 0xffff) throw new Error(`seedlm: seed ${seed} must be an integer in [1, 65535]`);
}

/**
 * Reference reconstruction: the flattened weights [blocks * C], block b = 2^e_b U(seed_b) q_b
 * (f64 basis and sums, rounded once to f32, as `SeedLMLayer.decompress`).
 */
export function seedlmReconstructRef(
  seeds: ArrayLike<number>,
  exps: ArrayLike<number>,
  coeffs: ArrayLike<number>,
  C: number,
  P: number,
): Float32Array {
  const blocks = seeds.length;
  if (exps.length !== blocks) throw new Error(`seedlmReconstructRef: ${exps.length} exponents for ${blocks} seeds`);
  if (coeffs.length !== blocks * P) throw new Error(`seedlmReconstructRef: ${coeffs.length} coefficients, need blocks * P = ${blocks * P}`);
  const w = new Float32Array(blocks * C);
  for (let b = 0; b < blocks; b++) {
    const u = seedBasis(seeds[b], C, P);
    const scale = 2 ** exps[b];
    for (let c = 0; c < C; c++) {
      let acc = 0;
      for (let j = 0; j < P; j++) acc += u[c * P + j] * coeffs[b * P + j];
      w[b * C + c] = acc * scale;
    }
  }
  return w;
}
