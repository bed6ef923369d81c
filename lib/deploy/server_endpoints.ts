/**
 * The inference server's generation endpoints: `POST /v1/completions` (OpenAI's subset, streamed as
 * server-sent events with `stream: true`),
 * `POST /v1/tasks/arc` (an ARC task -> a predicted grid per test input) and `POST /v1/tasks/math`
 * (a word problem -> rationale and extracted answer). Each validates its body (server_schema.ts),
 * checks the token limits against the model's context, and generates through the shared Batcher.
 * See server.ts for the request and response fields.
 */
import { extractAnswer } from "../../datasets/math.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { gridAllowed, parseGrid } from "../../datasets/arc/text.ts";
import { arcItem } from "../eval/arc_answers.ts";
import { deriveSeed } from "../util/rng.ts";
import type { Batcher, GenRequest, GenResult } from "./batcher.ts";
import type { ServerMetrics } from "./server_metrics.ts";
import { ArcSchema, checkArcGrids, CompletionSchema, HttpError, MathSchema, parseBody, readJson } from "./server_schema.ts";

/** completions' max_tokens when none is given (as OpenAI). */
export const DEFAULT_MAX_TOKENS = 16;
/** The most tokens a 30x30 grid takes in phase 2's rendering: `30x30:`, 900 digits and 29 `/`. */
export const MAX_GRID_TOKENS = 6 + 30 * 30 + 29;

/** A completion's finish_reason: "length" when the token budget ran out, else "stop" (EOS or a stop string). */
const finishOf = (r: GenResult): "stop" | "length" => r.finish === "length" ? "length" : "stop";

/**
 * How much of a choice's `text` (decoded so far) may be streamed: all of it, less the tail from the first position at or after
 * `from` where a stop string occurs or could still begin (the tail is a prefix of a stop string). Text before that position can
 * never be cut by a stop string, whatever comes next; `from` is what the previous call returned (positions before it were
 * cleared then). Never splits a surrogate pair.
 */
export function streamableLength(text: string, from: number, stop: readonly string[]): number {
  if (!stop.length) return text.length;
  for (let p = from; p < text.length; p++) {
    const rest = text.length - p;
    if (stop.some((s) => (rest >= s.length ? text.startsWith(s, p) : s.startsWith(text.slice(p))))) {
      const c = p > from ? text.charCodeAt(p - 1) : 0;
      return c >= 0xd800 && c <= 0xdbff ? p - 1 : p;
    }
  }
  return text.length;
}

/** What the endpoints share with the server. */
export interface EndpointEnv {
  /** The served model's id (requests naming another get a 404). */
  name: string;
  /** The model's context in tokens. */
  context: number;
  /** Largest request body in bytes. */
  maxBody: number;
  /** Most tokens one generation may write. */
  maxNew: number;
  /** Base seed of sampled completions without a seed. */
  baseSeed: number;
  batcher: Batcher;
  metrics: ServerMetrics;
  /** A fresh response id with this prefix. */
  nextId(prefix: string): string;
}

/** A request handler. */
export type Handler = (req: Request) => Promise<Response>;

/** The three generation endpoints over `env`. */
export function generationEndpoints(env: EndpointEnv): { completions: Handler; arc: Handler; math: Handler } {
  const { name, context, maxBody, maxNew, baseSeed, batcher, metrics, nextId } = env;
  const created = () => Math.floor(Date.now() / 1000);
  let unseeded = 0;
  const checkModel = (m: string | undefined) => {
    if (m !== undefined && m !== name) {
      throw new HttpError(404, `model '${m}' is not served here; this server serves '${name}'`, "model", "model_not_found");
    }
  };
  /** Prompt ids (BOS first) and the prompt's token count (BOS excluded). */
  const encode = (text: string) => {
    const ids = [TOKENIZER.bos, ...TOKENIZER.encode(text)];
    return { ids, tokens: ids.length - 1 };
  };
  const generate = async (reqs: GenRequest[], signal: AbortSignal): Promise<GenResult[]> => {
    try {
      const out = await Promise.all(reqs.map((r) => batcher.submit({ ...r, signal })));
      metrics.generatedTokens.inc(out.reduce((a, o) => a + o.tokens, 0));
      return out;
    } catch (e) {
      if (signal.aborted) throw new HttpError(499, "client closed the request", null, "client_closed");
      throw e;
    }
  };
  const usage = (prompt: number, completion: number) => ({
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
  });

  async function completions(req: Request): Promise<Response> {
    const body = parseBody(CompletionSchema, await readJson(req, maxBody));
    checkModel(body.model);
    const prompts = typeof body.prompt === "string" ? [body.prompt] : body.prompt;
    const maxTokens = body.max_tokens ?? Math.min(DEFAULT_MAX_TOKENS, maxNew);
    if (maxTokens > maxNew) {
      throw new HttpError(422, `max_tokens = ${maxTokens} exceeds this server's limit of ${maxNew}`, "max_tokens", "max_tokens_too_large");
    }
    const rows = prompts.map(encode);
    rows.forEach((r, i) => {
      if (r.tokens + maxTokens > context) {
        const where = typeof body.prompt === "string" ? "prompt" : `prompt[${i}]`;
        const total = r.tokens + maxTokens;
        const message =
          `${where} is ${r.tokens} tokens and max_tokens is ${maxTokens}: ${total} exceeds the model's context of ${context} tokens`;
        throw new HttpError(422, message, where, "context_length_exceeded");
      }
    });
    const id = nextId("cmpl");
    // Without a seed: the n-th completion request of this server draws from seed (base seed, n), so a restarted server repeats itself.
    const temperature = body.temperature ?? 0, seed = body.seed ?? deriveSeed(baseSeed, `completion-${++unseeded}`);
    const stop = body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
    if (body.stream_options != null && !body.stream) {
      throw new HttpError(400, "stream_options: only allowed when stream is true", "stream_options", "invalid_value");
    }
    const promptTokens = rows.reduce((a, r) => a + r.tokens, 0);
    metrics.promptTokens.inc(promptTokens);
    const gens = rows.map((r, i): GenRequest => ({
      ids: r.ids,
      maxNew: maxTokens,
      stop,
      temperature,
      seed: deriveSeed(seed, `choice-${i}`),
    }));
    if (body.stream) {
      return streamCompletions(gens, req.signal, { id, promptTokens, stop, includeUsage: body.stream_options?.include_usage === true });
    }
    const out = await generate(gens, req.signal);
    return Response.json({
      id,
      object: "text_completion",
      created: created(),
      model: name,
      choices: out.map((o, index) => ({ text: o.text, index, logprobs: null, finish_reason: finishOf(o) })),
      usage: usage(promptTokens, out.reduce((a, o) => a + o.tokens, 0)),
    });
  }

  /**
   * A completion as server-sent events: a chunk per text delta of each choice (interleaved, each naming its index), a chunk
   * with its finish_reason as each choice ends, the usage chunk when asked, then `[DONE]`. Each row streams through the
   * batcher's onToken hook; its bytes are decoded incrementally (no half characters) and text that could still become a stop
   * string is held back (streamableLength), so a choice's deltas add up to exactly the non-streamed text. A client that goes
   * away (the body cancelled or the request aborted) aborts the rows, which the batcher then drops.
   */
  function streamCompletions(
    gens: GenRequest[],
    reqSignal: AbortSignal,
    o: { id: string; promptTokens: number; stop: readonly string[]; includeUsage: boolean },
  ): Response {
    const ac = new AbortController();
    const abort = () => ac.abort(new HttpError(499, "client closed the request", null, "client_closed"));
    // (Outside --unstable-no-legacy-abort, Deno also aborts the request's signal once the response is sent: the rows are done by then.)
    reqSignal.addEventListener("abort", abort, { once: true });
    if (reqSignal.aborted) abort(); // (gone while the body was read)
    const enc = new TextEncoder(), stamp = created();
    let sink!: ReadableStreamDefaultController<Uint8Array>, open = true;
    const send = (data: unknown) => {
      if (!open) return;
      try {
        sink.enqueue(enc.encode(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`));
      } catch {
        open = false; // (cancelled meanwhile)
      }
    };
    const chunk = (index: number, text: string, finish: "stop" | "length" | null) =>
      send({
        id: o.id,
        object: "text_completion",
        created: stamp,
        model: name,
        choices: [{ text, index, logprobs: null, finish_reason: finish }],
      });
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        sink = c;
      },
      cancel() {
        open = false;
        abort();
      },
    });
    const rows = gens.map((g, index) => {
      const decoder = new TextDecoder();
      let text = "", sent = 0;
      const onToken = (tok: number) => {
        text += decoder.decode(Uint8Array.of(tok), { stream: true });
        const upTo = streamableLength(text, sent, o.stop);
        if (upTo > sent) chunk(index, text.slice(sent, upTo), null);
        sent = upTo;
      };
      let row: Promise<GenResult>;
      try {
        row = batcher.submit({ ...g, signal: ac.signal, onToken });
      } catch (e) {
        row = Promise.reject(e); // (reported on the stream like any other failure)
      }
      return row.then((r) => {
        metrics.generatedTokens.inc(r.tokens);
        // What was held back (or is still undecoded) and survives the stop strings; r.text starts with what was sent.
        if (r.text.length > sent) chunk(index, r.text.slice(sent), null);
        chunk(index, "", finishOf(r));
        return r.tokens;
      });
    });
    (async () => {
      try {
        const tokens = await Promise.all(rows);
        if (o.includeUsage) {
          const u = usage(o.promptTokens, tokens.reduce((a, t) => a + t, 0));
          send({ id: o.id, object: "text_completion", created: stamp, model: name, choices: [], usage: u });
        }
        send("[DONE]");
      } catch (e) {
        abort(); // the other rows of this request are dropped too
        if (!reqSignal.aborted && open) {
          const message = `internal error: ${(e as Error).message ?? e}`;
          send({ error: { message, type: "server_error", param: null, code: "internal_error" } });
        }
        await Promise.allSettled(rows); // (no unhandled rejection from the other rows)
      } finally {
        reqSignal.removeEventListener("abort", abort);
        if (open) {
          open = false;
          try {
            sink.close();
          } catch { /* cancelled meanwhile */ }
        }
      }
    })();
    return new Response(body, { headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" } });
  }

  async function arc(req: Request): Promise<Response> {
    const body = parseBody(ArcSchema, await readJson(req, maxBody));
    checkModel(body.model);
    checkArcGrids(body);
    const rows = body.test.map((t, i) => {
      const { prompt } = arcItem({ train: body.train, test: [{ input: t.input, output: t.input }] }); // (the answer part is unused)
      const r = encode(prompt);
      const budget = Math.min(MAX_GRID_TOKENS, maxNew, context - r.tokens);
      if (budget < 1) {
        throw new HttpError(
          422,
          `test[${i}]: the task renders to ${r.tokens} tokens, which leaves no room for an answer in the model's context of ${context}`,
          `test[${i}]`,
          "context_length_exceeded",
        );
      }
      return { ...r, budget };
    });
    const promptTokens = rows.reduce((a, r) => a + r.tokens, 0);
    metrics.promptTokens.inc(promptTokens);
    // Phase 2's decoding: the grid grammar either chooses (constrained, the default, as phase 2 evaluates) or only checks.
    const constrained = body.constrained ?? true;
    const out = await generate(
      rows.map((r) => ({
        ids: r.ids,
        maxNew: r.budget,
        grammar: (ids: readonly number[]) => gridAllowed(ids, TOKENIZER.eos),
        constrained,
      })),
      req.signal,
    );
    const predictions = out.map((o, i) => {
      const grid = parseGrid(o.text);
      const well = o.finish === "stop" && grid !== null;
      const why = well
        ? undefined
        : o.finish === "length"
        ? `the output reached its limit of ${rows[i].budget} tokens before the grid ended`
        : `the output is not a grid (expected \`HxW:\` then H rows of W digits 0-9 joined by '/', sides 1 to 30)`;
      const want = body.test[i].output;
      return {
        index: i,
        output: well ? grid : null,
        well_formed: well,
        ...(why ? { error: why } : {}),
        text: o.text,
        finish_reason: o.finish === "constraint" ? "malformed" : o.finish,
        ...(want ? { matches_expected: well && JSON.stringify(grid) === JSON.stringify(want) } : {}),
      };
    });
    return Response.json({
      id: nextId("arc"),
      object: "arc.prediction",
      created: created(),
      model: name,
      predictions,
      usage: usage(promptTokens, out.reduce((a, o) => a + o.tokens, 0)),
    });
  }

  async function math(req: Request): Promise<Response> {
    const body = parseBody(MathSchema, await readJson(req, maxBody));
    checkModel(body.model);
    const r = encode(`${body.question}\n`); // phase 4's item: the question and a newline, then the rationale
    const budget = body.max_tokens ?? Math.min(maxNew, context - r.tokens);
    if (budget > maxNew) {
      throw new HttpError(422, `max_tokens = ${budget} exceeds this server's limit of ${maxNew}`, "max_tokens", "max_tokens_too_large");
    }
    if (budget < 1 || r.tokens + budget > context) {
      const asked = body.max_tokens === undefined ? "" : ` and max_tokens is ${budget}`;
      throw new HttpError(
        422,
        `question is ${r.tokens} tokens with its newline${asked}: that does not fit the model's context of ${context} tokens`,
        "question",
        "context_length_exceeded",
      );
    }
    metrics.promptTokens.inc(r.tokens);
    const [o] = await generate([{ ids: r.ids, maxNew: budget }], req.signal);
    return Response.json({
      id: nextId("math"),
      object: "math.solution",
      created: created(),
      model: name,
      rationale: o.text,
      answer: extractAnswer(o.text),
      finish_reason: o.finish === "length" ? "length" : "stop",
      usage: usage(r.tokens, o.tokens),
    });
  }

  return { completions, arc, math };
}
