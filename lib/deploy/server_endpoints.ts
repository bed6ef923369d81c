/**
 * The inference server's generation endpoints: `POST /v1/completions` (OpenAI's subset),
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
    const promptTokens = rows.reduce((a, r) => a + r.tokens, 0);
    metrics.promptTokens.inc(promptTokens);
    const out = await generate(
      rows.map((r, i) => ({ ids: r.ids, maxNew: maxTokens, stop, temperature, seed: deriveSeed(seed, `choice-${i}`) })),
      req.signal,
    );
    return Response.json({
      id,
      object: "text_completion",
      created: created(),
      model: name,
      choices: out.map((o, index) => ({ text: o.text, index, logprobs: null, finish_reason: o.finish === "length" ? "length" : "stop" })),
      usage: usage(promptTokens, out.reduce((a, o) => a + o.tokens, 0)),
    });
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
