/**
 * Batched generation for the inference server: a queue of generation requests (one row each)
 * and a step loop that runs one forward pass per generated token over every active row.
 *
 * Continuous batching: the loop admits queued rows up to `maxBatch` before every step, and a
 * finished row leaves at once. With a model that has a KV cache (nn/kv_cache.ts: the decoder and
 * the standard cognate), the batch lives in one cache: a joining row is prefilled in the same
 * forward pass in which the others decode their next token, a leaving row's cache rows are
 * dropped, and slots that only padding uses are compacted away; a row attends only to its own
 * tokens at its own positions, so its tokens do not depend on which rows share its batch. Models
 * without a cache recompute every row's whole prefix each step, rows right-padded (a causal
 * model's position t never sees later positions: batched results equal unbatched ones). When
 * the loop is idle, the first request waits up to `batchWaitMs` (or until `maxBatch` rows are
 * queued) so that concurrent requests start together. Between steps the loop yields to the event
 * loop, so the server keeps answering health checks and accepting requests while it generates.
 *
 * Per row: its own token budget, stop strings, temperature (0 = greedy argmax; > 0 samples from
 * softmax(logits / temperature) with the row's own seeded generator) and an optional grammar of
 * allowed next tokens, either enforced (the choice is the best allowed token) or checked (a token
 * outside it ends the row): the ARC endpoint uses phase 2's grid grammar both ways.
 * Only the tokenizer's byte ids and EOS can be generated: the model's vocabulary may be larger
 * (512 in the presets) and PAD/BOS/SEP/MASK would mean nothing in a completion.
 */
import * as tf from "@tensorflow/tfjs";
import { logitsOf } from "../text/generate.ts";
import { type CachedModel, hasKvCache, KvCache } from "../nn/kv_cache.ts";
import { TOKENIZER } from "../text/tokens.ts";
import type { RegistryModel } from "../models/registry.ts";
import { Rng } from "../util/rng.ts";

/** One row to generate. */
export interface GenRequest {
  /** The prompt's token ids, BOS first. */
  ids: number[];
  /** Most tokens to write (EOS not counted, as it is not part of the text). */
  maxNew: number;
  /** Generation stops at the first of these strings, which is cut from the text. Default none. */
  stop?: readonly string[];
  /** 0 = greedy; > 0 samples at this temperature. Default 0. */
  temperature?: number;
  /** Seed of the sampling generator (temperature > 0). Default 0. */
  seed?: number;
  /**
   * A grammar over the generated ids: the tokens allowed next. A token outside it ends the row
   * (finish "constraint", the token kept in the text so the caller can show it).
   */
  grammar?: (ids: readonly number[]) => readonly number[];
  /** With a grammar: choose only among the tokens it allows (so the text always follows it). Default false. */
  constrained?: boolean;
  /** An aborted signal drops the row (its promise rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Called with each token as it is appended to the row's text (streaming); not for EOS or a token its grammar refuses. */
  onToken?: (id: number) => void;
}

/** Why a row stopped: EOS or a stop string, its token budget, or a token its grammar does not allow. */
export type FinishReason = "stop" | "length" | "constraint";

/** One generated row. */
export interface GenResult {
  /** Generated ids (without EOS; with a stop string, cut before it). */
  ids: number[];
  /** Their text. */
  text: string;
  finish: FinishReason;
  /** Tokens the model wrote for this row, EOS excluded (the forward steps it took, less a final EOS). */
  tokens: number;
}

/** The batcher's settings. */
export interface BatcherOptions {
  /** Most rows in one forward pass. Default 8. */
  maxBatch?: number;
  /** How long an idle batcher waits for more requests before its first step, in ms. Default 5. */
  batchWaitMs?: number;
  /** The model's context: a row may never exceed this many tokens. */
  context: number;
  /** Called after every forward step with the rows it ran and its seconds. */
  onStep?: (rows: number, seconds: number) => void;
  /** Called when the queue depth changes. */
  onQueue?: (waiting: number) => void;
  /** Decode with the model's KV cache where it has one (default true); false recomputes every prefix each step. */
  kvCache?: boolean;
}

interface Job {
  req: GenRequest;
  out: number[];
  /** Tokens of this row already in the KV cache. */
  fed: number;
  rng?: Rng;
  resolve: (r: GenResult) => void;
  reject: (e: unknown) => void;
}

/** Token ids a completion may contain: the 256 bytes and EOS. */
const ALLOWED = [...Array.from({ length: 256 }, (_, i) => i), TOKENIZER.eos];
/** Logit columns read back per row (the tokenizer's ids; the model's extra ids are never chosen). */
const V_TOK = TOKENIZER.vocabSize;

/** Lets timers and I/O run between steps. */
const yieldToEventLoop = () => new Promise<void>((r) => setTimeout(r, 0));

/** The greedy choice among `ids` (default: bytes and EOS) of one row of logits at `off` (first maximum wins, like tf.argMax). */
export function argmaxAllowed(logits: ArrayLike<number>, off = 0, ids: readonly number[] = ALLOWED): number {
  let best = ids[0], bestV = logits[off + best];
  for (const id of ids) {
    if (logits[off + id] > bestV) [best, bestV] = [id, logits[off + id]];
  }
  return best;
}

/** A draw from softmax(logits / temperature) over `ids` (default: bytes and EOS) of one row of logits at `off`. */
export function sampleAllowed(
  logits: ArrayLike<number>,
  off: number,
  temperature: number,
  rng: Rng,
  ids: readonly number[] = ALLOWED,
): number {
  let max = -Infinity;
  for (const id of ids) max = Math.max(max, logits[off + id]);
  const w = ids.map((id) => Math.exp((logits[off + id] - max) / temperature));
  let u = rng.next() * w.reduce((a, b) => a + b, 0);
  for (let k = 0; k < ids.length; k++) {
    u -= w[k];
    if (u < 0) return ids[k];
  }
  return ids[ids.length - 1];
}

/** The earliest occurrence of any stop string in `text`, or -1. */
export function firstStop(text: string, stop: readonly string[]): number {
  let at = -1;
  for (const s of stop) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/** A running row as a logits source sees it: its prompt (BOS first) and the tokens written so far. */
export interface SourceRow {
  readonly req: { readonly ids: readonly number[] };
  readonly out: readonly number[];
  /** The source's bookkeeping: tokens of this row it has already consumed (0 for a new row). */
  fed: number;
}

/**
 * Where a step's logits come from: each given row's next-token logits over the tokenizer's ids,
 * [n * TOKENIZER.vocabSize], in the given order. A row missing from a call has left the batch.
 */
export interface LogitsSource {
  /** Whether rows share a KV cache. */
  readonly cached: boolean;
  next(rows: readonly SourceRow[]): Promise<Float32Array>;
}

/** The whole prefix of every row, right-padded, each step (models without a KV cache). */
class FullPrefix implements LogitsSource {
  readonly cached = false;
  constructor(readonly model: RegistryModel) {}

  async next(jobs: readonly SourceRow[]): Promise<Float32Array> {
    const rows = jobs.map((j) => [...j.req.ids, ...j.out]);
    const n = rows.length, T = Math.max(...rows.map((r) => r.length));
    const flat = new Int32Array(n * T).fill(TOKENIZER.pad);
    rows.forEach((r, i) => flat.set(r, i * T));
    const ids = tf.tensor2d(flat, [n, T], "int32"); // [n, T]
    const logits = await logitsOf(this.model, ids); // [n, T, V]
    const last = tf.tidy(() => {
      const V = logits.shape[2];
      const at = tf.tensor1d(rows.map((r, i) => i * T + r.length - 1), "int32"); // [n]
      const picked = tf.gather(tf.reshape(logits, [n * T, V]), at); // [n, V]
      return tf.slice(picked, [0, 0], [n, V_TOK]); // [n, V_TOK]
    });
    const data = (await last.data()) as Float32Array;
    tf.dispose([ids, logits, last]);
    return data;
  }
}

/** One KV cache over the running rows: each step feeds only the tokens a row has not fed yet. */
class CachedRows implements LogitsSource {
  readonly cached = true;
  #cache = new KvCache();
  /** The job of each cache row, in cache order. */
  #rows: SourceRow[] = [];
  constructor(readonly model: CachedModel) {}

  async next(jobs: readonly SourceRow[]): Promise<Float32Array> {
    const wanted = new Set(jobs);
    const keep = this.#rows.flatMap((j, i) => wanted.has(j) ? [i] : []);
    if (keep.length < this.#rows.length) {
      this.#cache.keepRows(keep);
      this.#rows = keep.map((i) => this.#rows[i]);
      // Slots only padding uses (a left row's prompt, say) cost every later step: drop them once they pile up.
      const longest = Math.max(0, ...this.#rows.map((_, r) => this.#cache.length(r)));
      if (this.#cache.slots > 2 * longest + 8) this.#cache.compact();
    }
    const have = new Set(this.#rows);
    const fresh = jobs.filter((j) => !have.has(j));
    if (fresh.length) {
      this.#cache.addRows(fresh.length);
      for (const j of fresh) j.fed = 0;
      this.#rows.push(...fresh);
    }
    const tokens = this.#rows.map((j) => {
      const row = [...j.req.ids, ...j.out];
      const t = row.slice(j.fed);
      j.fed = row.length;
      return t;
    });
    const logits = this.#cache.feed(this.model, tokens, TOKENIZER.pad); // [n, V]
    const n = this.#rows.length;
    const last = tf.tidy(() => tf.slice(logits, [0, 0], [n, V_TOK])); // [n, V_TOK]
    const data = (await last.data()) as Float32Array;
    tf.dispose([logits, last]);
    const at = new Map(this.#rows.map((j, i) => [j, i]));
    const out = new Float32Array(jobs.length * V_TOK);
    jobs.forEach((j, k) => out.set(data.subarray(at.get(j)! * V_TOK, (at.get(j)! + 1) * V_TOK), k * V_TOK));
    return out;
  }

  /** Slots per row in the cache (padding included), for tests. */
  get slots(): number {
    return this.#cache.slots;
  }
}

/** Chooses a job's next token from its row of logits at `off`, applies it, and returns the row's result once it is finished. */
function advance(job: Job, logits: Float32Array, off: number): GenResult | undefined {
  const { req, out } = job;
  const allowed = req.grammar?.(out);
  const ids = req.constrained && allowed?.length ? allowed : ALLOWED;
  const tok = job.rng ? sampleAllowed(logits, off, req.temperature!, job.rng, ids) : argmaxAllowed(logits, off, ids);
  if (allowed && !allowed.includes(tok)) {
    if (tok !== TOKENIZER.eos) out.push(tok);
    return { ids: out, text: TOKENIZER.decode(out), finish: "constraint", tokens: out.length };
  }
  if (tok === TOKENIZER.eos) return { ids: out, text: TOKENIZER.decode(out), finish: "stop", tokens: out.length };
  out.push(tok);
  req.onToken?.(tok);
  const tokens = out.length;
  if (req.stop?.length) {
    const text = TOKENIZER.decode(out), at = firstStop(text, req.stop);
    if (at >= 0) {
      const cut = TOKENIZER.encode(text.slice(0, at));
      return { ids: cut, text: text.slice(0, at), finish: "stop", tokens };
    }
  }
  if (tokens >= req.maxNew) return { ids: out, text: TOKENIZER.decode(out), finish: "length", tokens };
  return undefined;
}

/**
 * The queue and step loop over one model. `submit` resolves with the row's result; `drain`
 * waits until nothing is queued or running. Only one loop runs at a time.
 */
export class Batcher {
  readonly maxBatch: number;
  readonly batchWaitMs: number;
  readonly context: number;
  #source: LogitsSource;
  #opts: BatcherOptions;
  #queue: Job[] = [];
  #active: Job[] = [];
  #loop?: Promise<void>;
  #wake?: () => void;

  /** `model`: a registry model (its KV cache used where it has one), or any other source of logits (e.g. onnxruntime). */
  constructor(model: RegistryModel | LogitsSource, opts: BatcherOptions) {
    this.#source = "next" in model ? model : opts.kvCache !== false && hasKvCache(model) ? new CachedRows(model) : new FullPrefix(model);
    this.#opts = opts;
    this.maxBatch = opts.maxBatch ?? 8;
    this.batchWaitMs = opts.batchWaitMs ?? 5;
    this.context = opts.context;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) {
      throw new Error(`batcher: maxBatch = ${this.maxBatch}, expected an integer >= 1`);
    }
    if (!(this.batchWaitMs >= 0)) throw new Error(`batcher: batchWaitMs = ${this.batchWaitMs}, expected >= 0`);
  }

  /** Whether the running rows share a KV cache. */
  get kvCache(): boolean {
    return this.#source.cached;
  }

  /** Rows waiting for a place in the batch. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Rows being generated. */
  get running(): number {
    return this.#active.length;
  }

  /** Queues one row. Throws at once when the row cannot fit the context or asks for nothing. */
  submit(req: GenRequest): Promise<GenResult> {
    if (req.ids.length < 1) throw new Error("batcher: a row needs at least one token (BOS)");
    if (!Number.isInteger(req.maxNew) || req.maxNew < 1) throw new Error(`batcher: maxNew = ${req.maxNew}, expected an integer >= 1`);
    if (req.ids.length + req.maxNew - 1 > this.context) {
      throw new Error(`batcher: ${req.ids.length} prompt tokens + ${req.maxNew} new exceed the context of ${this.context}`);
    }
    const temperature = req.temperature ?? 0;
    return new Promise<GenResult>((resolve, reject) => {
      const job: Job = { req, out: [], fed: 0, resolve, reject, rng: temperature > 0 ? new Rng(req.seed ?? 0) : undefined };
      this.#queue.push(job);
      this.#opts.onQueue?.(this.#queue.length);
      if (this.#queue.length >= this.maxBatch) this.#wake?.();
      this.#loop ??= this.#run().finally(() => (this.#loop = undefined));
    });
  }

  /** Resolves once no row is queued or running. */
  async drain(): Promise<void> {
    while (this.#loop) await this.#loop;
  }

  async #run(): Promise<void> {
    // Idle start: give concurrent requests batchWaitMs to arrive (or until the batch is full).
    if (this.#queue.length < this.maxBatch && this.batchWaitMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.batchWaitMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    while (this.#queue.length || this.#active.length) {
      this.#admit();
      if (this.#active.length) await this.#step();
      await yieldToEventLoop();
    }
  }

  /** Moves queued rows into the batch up to maxBatch; drops aborted ones. */
  #admit(): void {
    const aborted = (j: Job) => {
      if (!j.req.signal?.aborted) return false;
      j.reject(j.req.signal.reason ?? new Error("aborted"));
      return true;
    };
    this.#active = this.#active.filter((j) => !aborted(j));
    this.#queue = this.#queue.filter((j) => !aborted(j));
    while (this.#active.length < this.maxBatch && this.#queue.length) this.#active.push(this.#queue.shift()!);
    this.#opts.onQueue?.(this.#queue.length);
  }

  /** One forward pass over the active rows: each gets its next token. */
  async #step(): Promise<void> {
    const jobs = this.#active, t0 = performance.now();
    let logits: Float32Array;
    try {
      logits = await this.#source.next(jobs);
    } catch (e) {
      for (const j of jobs) j.reject(e);
      this.#active = [];
      return;
    }
    this.#opts.onStep?.(jobs.length, (performance.now() - t0) / 1000);
    const still: Job[] = [];
    jobs.forEach((j, i) => {
      const done = advance(j, logits, i * V_TOK);
      if (done) j.resolve(done);
      else still.push(j);
    });
    this.#active = still;
  }
}
