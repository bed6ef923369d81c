/**
 * Static range asymmetric numeral system (rANS) coding of symbol streams, for entropy-coded
 * VQ indices (`vptq.ts`). The model is a frequency table of `RANS_PROB_BITS` bits (the
 * frequencies sum to 2^RANS_PROB_BITS, every used symbol at least 1), stored beside the
 * stream, so the coded length is within a fraction of a percent of the empirical entropy.
 *
 * The coder keeps a 32-bit state x in [L, 256 L) with L = 2^23 and moves whole bytes
 * (Duda 2013; the byte-wise variant as usually described). Encoding runs over the symbols
 * backwards and emits bytes backwards; the stream is stored reversed, so decoding reads it
 * forwards: 4 bytes of initial state, then the renormalization bytes.
 */

/** Bits of the frequency table's total (frequencies sum to 2^14). */
export const RANS_PROB_BITS = 14;
const M = 1 << RANS_PROB_BITS;
const L = 1 << 23;

/**
 * Frequencies [alphabet] summing to 2^RANS_PROB_BITS from symbol counts: proportional to the
 * counts, every symbol with a nonzero count kept at >= 1, the rounding remainder settled on the
 * largest entries. Throws when more than 2^RANS_PROB_BITS symbols are used or none is.
 */
export function quantizeFrequencies(counts: ArrayLike<number>): Uint16Array {
  const n = counts.length;
  let total = 0, used = 0;
  for (let s = 0; s < n; s++) {
    if (!(counts[s] >= 0)) throw new Error(`rans: count ${counts[s]} of symbol ${s} is not >= 0`);
    total += counts[s];
    if (counts[s] > 0) used++;
  }
  if (used === 0) throw new Error("rans: no symbol has a nonzero count");
  if (used > M) throw new Error(`rans: ${used} symbols in use, at most ${M} fit a ${RANS_PROB_BITS}-bit table`);
  const f = new Uint16Array(n);
  let sum = 0;
  for (let s = 0; s < n; s++) {
    if (counts[s] === 0) continue;
    f[s] = Math.max(1, Math.round((counts[s] / total) * M));
    sum += f[s];
  }
  // Settle the difference on the symbols that can absorb it with the least relative change.
  const order = Array.from({ length: n }, (_, s) => s).filter((s) => f[s] > 0).sort((a, b) => f[b] - f[a] || a - b);
  for (let i = 0; sum !== M; i = (i + 1) % order.length) {
    const s = order[i];
    if (sum > M && f[s] > 1) {
      f[s]--;
      sum--;
    } else if (sum < M) {
      f[s]++;
      sum++;
    }
  }
  return f;
}

/** Cumulative frequencies [alphabet + 1] of a table; throws unless it sums to 2^RANS_PROB_BITS. */
function cumulative(freqs: Uint16Array): Uint32Array {
  const cum = new Uint32Array(freqs.length + 1);
  for (let s = 0; s < freqs.length; s++) cum[s + 1] = cum[s] + freqs[s];
  if (cum[freqs.length] !== M) throw new Error(`rans: frequencies sum to ${cum[freqs.length]}, expected ${M}`);
  return cum;
}

/** Encodes `symbols` (each with a nonzero frequency) under `freqs`; returns the stream's bytes. */
export function ransEncode(symbols: ArrayLike<number>, freqs: Uint16Array): Uint8Array {
  const cum = cumulative(freqs);
  let out = new Uint8Array(Math.max(16, symbols.length + 8));
  let n = 0;
  const put = (b: number) => {
    if (n === out.length) {
      const bigger = new Uint8Array(out.length * 2);
      bigger.set(out);
      out = bigger;
    }
    out[n++] = b;
  };
  let x = L;
  for (let i = symbols.length - 1; i >= 0; i--) {
    const s = symbols[i];
    const f = freqs[s];
    if (!f) throw new Error(`rans: symbol ${s} at ${i} has frequency 0`);
    const xMax = ((L >>> RANS_PROB_BITS) << 8) * f;
    while (x >= xMax) {
      put(x & 0xff);
      x = x >>> 8;
    }
    x = Math.floor(x / f) * M + (x % f) + cum[s];
  }
  for (let k = 0; k < 4; k++) {
    put(x & 0xff);
    x = x >>> 8;
  }
  return out.subarray(0, n).reverse();
}

/** Decodes `count` symbols from `bytes` (as written by `ransEncode` with the same table); errors name the problem. */
export function ransDecode(bytes: Uint8Array, count: number, freqs: Uint16Array): Uint32Array {
  const cum = cumulative(freqs);
  const slotSymbol = new Uint32Array(M);
  for (let s = 0; s < freqs.length; s++) slotSymbol.fill(s, cum[s], cum[s + 1]);
  if (bytes.length < 4) throw new Error(`rans: stream of ${bytes.length} bytes is shorter than its 4-byte state`);
  let p = 0;
  let x = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
  p = 4;
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const slot = x & (M - 1);
    const s = slotSymbol[slot];
    out[i] = s;
    x = freqs[s] * (x >>> RANS_PROB_BITS) + slot - cum[s];
    while (x < L) {
      if (p >= bytes.length) throw new Error(`rans: stream ends after ${i + 1} of ${count} symbols (truncated or corrupt)`);
      x = ((x << 8) | bytes[p++]) >>> 0;
    }
  }
  if (p !== bytes.length || x !== L) throw new Error("rans: stream does not end where the symbols do (corrupt)");
  return out;
}

/** Empirical entropy in bits of a stream with these symbol counts (sum of -log2 p over the symbols). */
export function entropyBits(counts: ArrayLike<number>): number {
  let total = 0;
  for (let s = 0; s < counts.length; s++) total += counts[s];
  let bits = 0;
  for (let s = 0; s < counts.length; s++) if (counts[s] > 0) bits -= counts[s] * Math.log2(counts[s] / total);
  return bits;
}
