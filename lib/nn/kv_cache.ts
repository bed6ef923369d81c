/**
 * A KV cache for decoding: every attention layer's keys and values of the tokens seen so far, kept
 * on the backend, so each new token costs one position's forward pass instead of the whole prefix.
 *
 * The cache is a batch of rows that need not agree in length. Each row owns slots [0, P) of the
 * layer tensors [B, H, P, hd]; a slot is either one of the row's tokens or padding, which no query
 * reads. `feed` appends a chunk of new tokens to every row: rows given fewer tokens than the longest
 * are padded at the front of the chunk, so the last slot of the chunk is always each row's newest
 * token. That one call serves prefill (ragged prompts), single-token decoding, and continuous batching
 * (rows added with `addRows` are prefilled while the others decode one token; `keepRows` drops
 * finished rows; `compact` removes slots that are padding in every row).
 *
 * Positions are per row (a row's n-th real token has position n), so padding never shifts RoPE or
 * learned positions: a row decodes exactly as it would alone.
 */
import * as tf from "@tensorflow/tfjs";
import type { LayerKv } from "./attention.ts";
import { type CachedInput, type CachedOutput, MAX_PREV_TOKENS } from "./decoder.ts";

/** A model that decodes with a KV cache (the decoder, the standard cognate). */
export interface CachedModel {
  forwardCached(input: CachedInput): CachedOutput;
}

/** Whether `model` can decode with a KV cache. */
export function hasKvCache(model: object): model is CachedModel {
  return typeof (model as Partial<CachedModel>).forwardCached === "function";
}

/** Additive mask value for a key a query may not read (finite, so a row of padding cannot give NaN). */
const BLOCKED = -1e9;

export class KvCache {
  /** Per layer [B, H, P, hd]; undefined until the first `feed`. */
  #layers?: LayerKv[];
  /** Per row and slot: 1 = a real token, 0 = padding. */
  #valid: number[][] = [];
  /** Per row: the position of its next token (its count of real tokens). */
  #next: number[] = [];
  /** Per row: its newest real tokens, up to MAX_PREV_TOKENS, oldest first (a previous-token model reads them). */
  #recent: number[][] = [];

  /** Rows in the batch. */
  get rows(): number {
    return this.#valid.length;
  }

  /** Slots per row (P), padding included. */
  get slots(): number {
    return this.#valid[0]?.length ?? 0;
  }

  /** Real tokens of row `r`. */
  length(r: number): number {
    return this.#next[r];
  }

  /** Appends `n` empty rows (padding in every existing slot) and returns the index of the first. */
  addRows(n: number): number {
    const first = this.rows;
    const P = this.slots;
    for (let i = 0; i < n; i++) {
      this.#valid.push(new Array(P).fill(0));
      this.#next.push(0);
      this.#recent.push([]);
    }
    if (this.#layers && n > 0) {
      this.#layers = this.#replace((kv) => {
        const [, h, p, hd] = kv.k.shape;
        const z = tf.zeros([n, h, p, hd]);
        return { k: tf.concat([kv.k, z], 0) as tf.Tensor4D, v: tf.concat([kv.v, z], 0) as tf.Tensor4D };
      });
    }
    return first;
  }

  /** Keeps only rows `keep` (in that order): finished requests leave the batch. */
  keepRows(keep: readonly number[]): void {
    for (const r of keep) if (!(r >= 0 && r < this.rows)) throw new Error(`KvCache.keepRows: no row ${r} in ${this.rows}`);
    this.#valid = keep.map((r) => this.#valid[r]);
    this.#next = keep.map((r) => this.#next[r]);
    this.#recent = keep.map((r) => this.#recent[r]);
    if (!this.#layers) return;
    if (keep.length === 0) return this.#clear();
    const idx = tf.tensor1d(Array.from(keep), "int32");
    this.#layers = this.#replace((kv) => ({ k: tf.gather(kv.k, idx) as tf.Tensor4D, v: tf.gather(kv.v, idx) as tf.Tensor4D }));
    idx.dispose();
  }

  /** Drops the slots that are padding in every row (they are never read); returns how many. */
  compact(): number {
    const P = this.slots;
    const used: number[] = [];
    for (let j = 0; j < P; j++) if (this.#valid.some((v) => v[j] === 1)) used.push(j);
    if (used.length === P || !this.#layers) return 0;
    this.#valid = this.#valid.map((v) => used.map((j) => v[j]));
    if (used.length === 0) {
      this.#clear();
      this.#valid = this.#valid.map(() => []);
      return P;
    }
    const idx = tf.tensor1d(used, "int32");
    this.#layers = this.#replace((kv) => ({ k: tf.gather(kv.k, idx, 2) as tf.Tensor4D, v: tf.gather(kv.v, idx, 2) as tf.Tensor4D }));
    idx.dispose();
    return P - used.length;
  }

  /**
   * Appends `tokens[r]` (at least one) to each row r and runs them through `model`; returns the
   * logits of each row's newest token, [B, V] (the caller disposes them).
   */
  feed(model: CachedModel, tokens: readonly (readonly number[])[], pad = 0): tf.Tensor2D {
    const B = this.rows;
    if (tokens.length !== B) throw new Error(`KvCache.feed: ${tokens.length} token lists for ${B} rows`);
    if (tokens.some((t) => t.length === 0)) throw new Error("KvCache.feed: every row needs at least one new token");
    const T = Math.max(...tokens.map((t) => t.length));
    const P = this.slots;
    const S = P + T;
    const ids = new Int32Array(B * T).fill(pad);
    const positions = new Int32Array(B * T);
    const prevIds = new Int32Array(B * T * MAX_PREV_TOKENS).fill(-1); // [B, T, MAX_PREV_TOKENS]
    const recentBefore = this.#recent.map((r) => r.slice());
    tokens.forEach((t, r) => {
      const lead = T - t.length; // padding at the front of the chunk
      const valid = this.#valid[r];
      for (let i = 0; i < T; i++) {
        const real = i >= lead;
        valid.push(real ? 1 : 0);
        if (real) {
          ids[r * T + i] = t[i - lead];
          positions[r * T + i] = this.#next[r]++;
          const recent = this.#recent[r];
          for (let k = 1; k <= recent.length; k++) prevIds[(r * T + i) * MAX_PREV_TOKENS + k - 1] = recent[recent.length - k];
          recent.push(t[i - lead]);
          if (recent.length > MAX_PREV_TOKENS) recent.shift();
        }
      }
    });
    // Query i (slot P + i) of row r reads slot j when j <= P + i and slot j holds a real token.
    const mask = new Float32Array(B * T * S);
    for (let r = 0; r < B; r++) {
      const valid = this.#valid[r];
      for (let i = 0; i < T; i++) {
        const rowOff = (r * T + i) * S;
        for (let j = 0; j < S; j++) mask[rowOff + j] = j <= P + i && valid[j] === 1 ? 0 : BLOCKED;
      }
    }
    const past = this.#layers;
    const rollback = () => {
      this.#valid.forEach((v) => v.length = P);
      tokens.forEach((t, r) => this.#next[r] -= t.length);
      this.#recent = recentBefore;
    };
    let result: tf.Tensor[];
    try {
      result = tf.tidy(() => {
        const out = model.forwardCached({
          ids: tf.tensor2d(ids, [B, T], "int32"),
          positions,
          mask: tf.tensor4d(mask, [B, 1, T, S]),
          past,
          prevIds,
        });
        const V = out.logits.shape[2];
        return [tf.reshape(tf.slice(out.logits, [0, T - 1, 0], [B, 1, V]), [B, V]), ...flatKv(out.present)];
      });
    } catch (e) {
      rollback(); // the cache stays as it was: a failed call (e.g. past the context) loses nothing
      throw e;
    }
    const [last, ...flat] = result;
    if (past) { for (const kv of past) tf.dispose([kv.k, kv.v]); }
    this.#layers = pairKv(flat);
    return last as tf.Tensor2D;
  }

  /** Frees the cached tensors; the cache is empty afterwards. */
  dispose(): void {
    this.#clear();
    this.#valid = [];
    this.#next = [];
    this.#recent = [];
  }

  #clear(): void {
    if (this.#layers) { for (const kv of this.#layers) tf.dispose([kv.k, kv.v]); }
    this.#layers = undefined;
  }

  /** Maps every layer's tensors to new ones and frees the old. */
  #replace(f: (kv: LayerKv) => LayerKv): LayerKv[] {
    const old = this.#layers!;
    const next = tf.tidy(() => flatKv(old.map(f)));
    for (const kv of old) tf.dispose([kv.k, kv.v]);
    return pairKv(next);
  }
}

/** [k0, v0, k1, v1, ...]: layers as a flat list, which tf.tidy can return. */
function flatKv(layers: LayerKv[]): tf.Tensor[] {
  return layers.flatMap((kv) => [kv.k, kv.v]);
}

/** The inverse of flatKv. */
function pairKv(flat: tf.Tensor[]): LayerKv[] {
  const out: LayerKv[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push({ k: flat[i] as tf.Tensor4D, v: flat[i + 1] as tf.Tensor4D });
  return out;
}
