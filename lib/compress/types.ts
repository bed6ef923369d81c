/**
 * What every compressor shares: a weight matrix in, a compressed layer out that knows its
 * own serialized bytes (every overhead counted) and how to decompress.
 *
 * Layout conventions shared with the WGSL kernels (`kernels/`):
 * - A matrix is W [K, N] row-major, K = inputs, N = outputs (this project's Linear layout,
 *   y = x W). "Per output channel" means per column n.
 * - Ternary (BitNet) codes: c = t + 1 in {0, 1, 2} for t in {-1, 0, 1}; 2-bit packing puts 16
 *   codes in a u32, little end first, along a row of W (row k holds ceil(N / 16) words);
 *   base-3 packing puts 5 trits in a byte (sum c_i 3^i), along the flattened row-major W.
 * - Vector quantization (VPTQ): sub-vectors of v consecutive weights along K within one
 *   column n, so indices are [K / v, N] (K padded to a multiple of v) and the codebook is [k, v].
 */

/** A dense weight matrix W [rows = K, cols = N], row-major. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

/** One compressed matrix. */
export interface CompressedLayer {
  method: "bitnet" | "seedlm" | "vptq" | "dense";
  rows: number;
  cols: number;
  /** The settings it was made with (for reports). */
  settings: Record<string, number | string | boolean>;
  /** The serialized bytes: header, payload, codebooks, scales, outliers. */
  encode(): Uint8Array;
  /** The reconstructed dense matrix [rows, cols]. */
  decompress(): Float32Array;
}

/** Serialized bits per weight of a compressed layer (all overheads included). */
export function bitsPerWeight(layer: CompressedLayer): number {
  return (layer.encode().byteLength * 8) / (layer.rows * layer.cols);
}

/** Mean squared error between two equally long arrays. */
export function mse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`mse: lengths ${a.length} and ${b.length} differ`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s / a.length;
}
