/**
 * The inference server: `deno task serve --model PATH [--port N] [--host H] [--max-batch N]
 * [--batch-wait-ms N] [--max-body-bytes N] [--max-new-tokens N] [--name ID] [--backend B] [--seed N]
 * [--no-kv-cache]`.
 *
 * PATH is a model file written by saveModel, phase 7's `model.compressed` (weights decompressed
 * once, the config from its run directory's model), an ONNX file with past key values (an HF
 * folder's onnx/model.onnx, run by onnxruntime-node), a run directory (phase 6's integrated model,
 * else phase 1's base) or an HF folder (config.json with a model_type + model.safetensors).
 * Generation decodes with a KV cache where the model has one (the decoder, the standard cognate,
 * ONNX): rows join and leave one cache between steps (continuous batching, batcher.ts).
 *
 * Endpoints (JSON in and out; errors as `{ error: { message, type, param, code } }`, see
 * server_schema.ts for the status codes):
 * - `POST /v1/completions`: OpenAI's completions subset: model, prompt (a string or an array of
 *   strings), max_tokens (default 16), temperature (0 = greedy, the default; > 0 samples, seeded
 *   by `seed`), stop, stream, stream_options; answers id, object "text_completion", created, model,
 *   choices [{ text, index, logprobs: null, finish_reason "stop" | "length" }], usage. With
 *   `stream: true` it answers `text/event-stream` instead (validation errors are still JSON): one
 *   `data: {json}` event per text delta, each chunk `{ id, object, created, model, choices: [{ text
 *   (the delta), index, logprobs: null, finish_reason: null }] }` (several prompts interleave, each
 *   chunk naming its choice's index), a chunk with text "" and its finish_reason as each choice ends,
 *   then (with `stream_options: { include_usage: true }`) a chunk with `choices: []` and usage, then
 *   `data: [DONE]`. A choice's deltas add up to exactly its non-streamed text (text that could begin
 *   a stop string is held back until it cannot; no delta splits a character); a client that
 *   disconnects drops its rows from the batch.
 * - `POST /v1/tasks/arc`: an ARC task `{ train: [{input, output}], test: [{input}] }` (+ optional
 *   `constrained`, default true) -> one predicted grid per test input, rendered, decoded and parsed
 *   as phase 2 does. It reads model, train[].input/output, test[].input/output (optional) and
 *   constrained, and ignores any other field, at the top (a task file's `name` or `id`) or in a
 *   pair, as the ARC loader does. Answers `predictions: [{ index, output (grid | null),
 *   well_formed, error?, text, finish_reason "stop" | "length" | "malformed", matches_expected?
 *   (when test outputs are given) }]`.
 * - `POST /v1/tasks/math`: `{ question, max_tokens? }` -> `{ rationale, answer (extractAnswer's,
 *   or null), finish_reason }`: phase 4's item format (the question and a newline, then the rationale).
 * - `GET /v1/models`, `GET /healthz`, `GET /metrics` (Prometheus text).
 *
 * Every generation goes through one Batcher (batcher.ts): concurrent requests share forward
 * passes. SIGTERM or SIGINT stops accepting connections, lets in-flight requests finish, and
 * exits 0 (a second signal exits 1 at once).
 */
import { parseArgs } from "node:util";
import { dirname, join, resolve } from "node:path";
import { loadModel, type SavedModel } from "../models/io.ts";
import { phase1ModelPath, readResult, stageModelPath } from "../util/run_dir.ts";
import { watchShim } from "../util/stop.ts";
import { TOKENIZER } from "../text/tokens.ts";
import type { RegistryModel } from "../models/registry.ts";
import { type BackendRequest, describeBackend, initBackend, parseBackend } from "../backend/mod.ts";
import { exists, readJson as readJsonFile } from "../util/fs.ts";
import { loadHfFolder } from "./hf.ts";
import { Batcher, type LogitsSource } from "./batcher.ts";
import { OnnxRows, openOnnxKv } from "./onnx_rows.ts";
import { loadCompressed } from "../compress/pipeline.ts";
import { generationEndpoints } from "./server_endpoints.ts";
import { ServerMetrics } from "./server_metrics.ts";
import { errorResponse, HttpError } from "./server_schema.ts";

/** A model to serve: the registry model (or an onnxruntime logits source), its saved key + config, and the id clients name it by. */
export interface ServedModel {
  model: RegistryModel | LogitsSource;
  meta: SavedModel;
  /** The id in responses and `model` fields. Default: the registry key. */
  name?: string;
  /** Parameters, for /healthz (default: the registry model's count; null when unknown). */
  parameters?: number | null;
  /** What runs the model, for /healthz and the log. Default "tfjs". */
  runtime?: string;
}

/** The server's settings. */
export interface ServerOptions {
  /** TCP port; 0 picks a free one. Default 8000. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Most rows per forward pass. Default 16. */
  maxBatch?: number;
  /** How long an idle batcher waits for more requests, ms. Default 5. */
  batchWaitMs?: number;
  /** Largest request body in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Most tokens one generation may write (max_tokens above it is a 422). Default 256. */
  maxNewTokens?: number;
  /** Base seed of sampled completions that bring no `seed`. Default 0. */
  seed?: number;
  /** Decode with the model's KV cache where it has one. Default true. */
  kvCache?: boolean;
  /** Called once listening, with the bound address. */
  onListen?: (addr: { hostname: string; port: number }) => void;
}

/** A running server. */
export interface InferenceServer {
  /** The bound address (the real port when 0 was asked for). */
  readonly hostname: string;
  readonly port: number;
  /** `http://host:port`. */
  readonly url: string;
  readonly metrics: ServerMetrics;
  /** Stops accepting, waits for in-flight requests and the batcher, then resolves. */
  close(): Promise<void>;
  /** Resolves once the server has stopped. */
  readonly finished: Promise<void>;
}

/** The context (most tokens in a row) of a saved model's config. */
export function contextOf(meta: SavedModel): number {
  const n = meta.config.maxSeqLen;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 2) {
    throw new Error(`model '${meta.key}': config.maxSeqLen = ${n}, expected an integer >= 2`);
  }
  return n;
}

/** Starts serving `served` (see ServerOptions for the defaults). */
export function createServer(served: ServedModel, opts: ServerOptions = {}): InferenceServer {
  const name = served.name ?? served.meta.key;
  const context = contextOf(served.meta);
  const maxBody = opts.maxBodyBytes ?? 1 << 20, maxNew = opts.maxNewTokens ?? 256, baseSeed = opts.seed ?? 0;
  const positive = { maxBodyBytes: maxBody, maxNewTokens: maxNew };
  for (const [k, v] of Object.entries(positive)) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`server: ${k} = ${v}, expected an integer >= 1`);
  }
  const vocab = served.meta.config.vocabSize;
  if (typeof vocab === "number" && vocab < TOKENIZER.vocabSize) {
    throw new Error(`model '${served.meta.key}': vocabSize ${vocab} is smaller than the byte tokenizer's ${TOKENIZER.vocabSize}`);
  }
  const metrics = new ServerMetrics();
  const batcher = new Batcher(served.model, {
    maxBatch: opts.maxBatch ?? 16,
    batchWaitMs: opts.batchWaitMs ?? 5,
    kvCache: opts.kvCache,
    context,
    onStep: (rows, s) => {
      metrics.batchRows.observe(rows);
      metrics.stepSeconds.observe(s);
    },
    onQueue: (n) => metrics.queue.set(n),
  });
  const started = Date.now();
  const params = served.parameters !== undefined ? served.parameters : "params" in served.model ? served.model.params.count() : null;
  let counter = 0, draining = false;
  const nextId = (prefix: string) => `${prefix}-${started.toString(36)}-${(++counter).toString(36)}`;

  const { completions, arc, math } = generationEndpoints({ name, context, maxBody, maxNew, baseSeed, batcher, metrics, nextId });

  const health = () =>
    Response.json({
      status: draining ? "draining" : "ok",
      model: name,
      key: served.meta.key,
      parameters: params,
      runtime: served.runtime ?? "tfjs",
      kv_cache: batcher.kvCache,
      context,
      max_batch: batcher.maxBatch,
      queue: batcher.waiting,
      running: batcher.running,
      uptime_s: (Date.now() - started) / 1000,
    }, { status: draining ? 503 : 200 });
  const models = () =>
    Response.json({ object: "list", data: [{ id: name, object: "model", created: Math.floor(started / 1000), owned_by: "agent-forge" }] });
  const prometheus = async () => new Response(await metrics.text(), { headers: { "content-type": metrics.contentType } });

  const routes: Record<string, Record<string, (req: Request) => Promise<Response> | Response>> = {
    "/v1/completions": { POST: completions },
    "/v1/tasks/arc": { POST: arc },
    "/v1/tasks/math": { POST: math },
    "/v1/models": { GET: models },
    "/healthz": { GET: health },
    "/metrics": { GET: prometheus },
  };

  async function handle(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    const done = metrics.start(ServerMetrics.endpointOf(path));
    let res: Response;
    try {
      const route = routes[path];
      if (!route) throw new HttpError(404, `no route ${path}; routes: ${Object.keys(routes).join(", ")}`, null, "not_found");
      const handler = route[req.method];
      if (!handler) {
        const allow = Object.keys(route).join(", ");
        res = errorResponse(new HttpError(405, `${req.method} is not allowed on ${path}; allowed: ${allow}`, null, "method_not_allowed"), {
          allow,
        });
      } else res = await handler(req);
    } catch (e) {
      res = e instanceof HttpError
        ? errorResponse(e)
        : errorResponse(new HttpError(500, `internal error: ${(e as Error).message ?? e}`, null, "internal_error"));
    }
    if (!res.body || !res.headers.get("content-type")?.startsWith("text/event-stream")) {
      done(res.status);
      return res;
    }
    // A stream: its request ends when the last event is sent or the client goes away, not at the first byte.
    let ended = false;
    const end = () => {
      if (!ended) done(res.status);
      ended = true;
    };
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        const { done: last, value } = await reader.read();
        if (last) {
          end();
          c.close();
        } else c.enqueue(value);
      },
      cancel(reason) {
        end();
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  }

  const http = Deno.serve({
    hostname: opts.host ?? "127.0.0.1",
    port: opts.port ?? 8000,
    onListen: (addr) => opts.onListen?.(addr), // (given, it also silences Deno's own "Listening on" line)
  }, handle);
  const addr = http.addr as Deno.NetAddr;
  let closing: Promise<void> | undefined;
  return {
    hostname: addr.hostname,
    port: addr.port,
    url: `http://${addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname}:${addr.port}`,
    metrics,
    finished: http.finished,
    close() {
      draining = true;
      closing ??= (async () => {
        await http.shutdown();
        await batcher.drain();
      })();
      return closing;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Finding the model

/** A loaded model to serve, the file it came from, and how to free it. */
export interface LoadedModel extends ServedModel {
  file: string;
  dispose(): void | Promise<void>;
}

/**
 * Loads the model at `path`:
 * - a saveModel file, or `model.compressed` (phase 7's compressed model, its weights decompressed
 *   once; the config comes from the model of the run directory it sits in);
 * - an ONNX file exported with past key values (an HF folder's onnx/model.onnx), run by onnxruntime-node;
 * - a run directory (phase 6's `phase-6-integration/model.safetensors`, else phase 1's base named
 *   by its result's `metrics.base_variant`), or an HF folder (config.json with `model_type`).
 */
export async function loadServedModel(path: string): Promise<LoadedModel> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch {
    throw new Error(`--model ${path}: no such file or directory`);
  }
  const tfjs = (m: { model: RegistryModel; meta: SavedModel }, file: string, runtime = "tfjs"): LoadedModel => ({
    ...m,
    file,
    runtime,
    dispose: () => m.model.dispose(),
  });
  if (stat.isFile && path.endsWith(".onnx")) {
    const onnx = await openOnnxKv(path);
    return {
      model: new OnnxRows(onnx),
      meta: onnx.meta,
      file: path,
      parameters: null,
      runtime: "onnxruntime-node (CPU)",
      dispose: () => onnx.session.release(),
    };
  }
  if (stat.isFile && path.endsWith(".compressed")) {
    const runDir = dirname(dirname(resolve(path)));
    let base: LoadedModel;
    try {
      base = await loadServedModel(runDir);
    } catch (e) {
      throw new Error(
        `--model ${path}: its config comes from the model of its run directory ${runDir}, which failed to load: ${(e as Error).message}`,
      );
    }
    const model = base.model as RegistryModel;
    try {
      model.params.load(loadCompressed(await Deno.readFile(path), path), { source: path });
    } catch (e) {
      model.dispose();
      throw e;
    }
    return { ...base, file: path, runtime: "tfjs (weights decompressed from the compressed file)" };
  }
  if (stat.isFile) return tfjs(await loadModel(path), path);
  const hfConfig = join(path, "config.json");
  if (await exists(hfConfig)) {
    const cfg = await readJsonFile<Record<string, unknown>>(hfConfig);
    if (typeof cfg.model_type === "string") return tfjs(await loadHfFolder(path), path);
  }
  const p6 = join(path, stageModelPath({ id: 6, name: "integration" }));
  if (await exists(p6)) return tfjs(await loadModel(p6), p6);
  const p1 = await readResult(path, { id: 1, name: "cognate" });
  if (p1) {
    const variant = (p1.metrics.base_variant as string | undefined) ?? "standard";
    const file = join(path, phase1ModelPath(variant));
    return tfjs(await loadModel(file), file);
  }
  throw new Error(
    `--model ${path}: a directory, but neither an HF-style folder (config.json with model_type) nor a run directory ` +
      `(phase-6-integration/model.safetensors or phase-1-cognate/result.json)`,
  );
}

// ---------------------------------------------------------------------------------------------
// CLI

const HELP = `Agent Forge inference server.

Usage: deno task serve --model PATH [options]

  --model PATH          a model file (saveModel or model.compressed), an ONNX file with past key
                        values, a run directory or an HF folder
  --port N              TCP port (default 8000; 0 = any free port)
  --host H              interface (default 127.0.0.1)
  --max-batch N         most rows per forward pass (default 16)
  --batch-wait-ms N     how long an idle batcher waits for more requests (default 5)
  --max-body-bytes N    largest request body (default 1048576)
  --max-new-tokens N    most tokens one generation may write (default 256)
  --name ID             the model id clients use (default: the registry key)
  --backend B           tfjs backend: webgpu, wasm, cpu or auto (default auto)
  --seed N              base seed of sampled completions without a seed (default 0)
  --no-kv-cache         recompute every row's prefix each step (for comparison)

SIGTERM or SIGINT: stop accepting, finish in-flight requests, exit 0.
Exit codes: 0 after a graceful shutdown, 1 on a load or runtime error, 2 on bad usage.`;

function intFlag(flag: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${flag} ${v}: expected an integer >= ${min}`);
  return n;
}

class UsageError extends Error {}

async function main(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        model: { type: "string" },
        port: { type: "string" },
        host: { type: "string" },
        "max-batch": { type: "string" },
        "batch-wait-ms": { type: "string" },
        "max-body-bytes": { type: "string" },
        "max-new-tokens": { type: "string" },
        name: { type: "string" },
        backend: { type: "string" },
        seed: { type: "string" },
        "no-kv-cache": { type: "boolean" },
        help: { type: "boolean" },
      },
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  let opts: ServerOptions, backend: BackendRequest;
  try {
    if (!values.model) throw new UsageError("--model PATH is required");
    opts = {
      port: intFlag("port", values.port, 0),
      host: values.host,
      maxBatch: intFlag("max-batch", values["max-batch"], 1),
      batchWaitMs: intFlag("batch-wait-ms", values["batch-wait-ms"], 0),
      maxBodyBytes: intFlag("max-body-bytes", values["max-body-bytes"], 1),
      maxNewTokens: intFlag("max-new-tokens", values["max-new-tokens"], 1),
      seed: intFlag("seed", values.seed, 0),
      kvCache: !values["no-kv-cache"],
    };
    if (opts.port !== undefined && opts.port > 65535) throw new UsageError(`--port ${opts.port}: expected 0..65535`);
    backend = values.backend ? parseBackend(values.backend, "--backend") : "auto";
  } catch (e) {
    console.error(`${(e as Error).message}\n\nRun with --help for the options.`);
    return 2;
  }
  const info = await initBackend(backend, { quiet: true });
  const loaded = await loadServedModel(values.model!);
  const { meta, file } = loaded;
  const server = createServer({ ...loaded, name: values.name }, opts);
  const params = loaded.parameters !== undefined ? loaded.parameters : (loaded.model as RegistryModel).params.count();
  console.error(
    `${describeBackend(info)}\nserving ${file} (${meta.key}, ${params ?? "?"} parameters, context ${contextOf(meta)}; ` +
      `${loaded.runtime ?? "tfjs"}, KV cache ${opts.kvCache === false ? "off" : "where the model has one"})`,
  );
  // The line tools wait for (tests, bench:serve): the bound address.
  console.log(`listening on ${server.url}`);
  let signals = 0;
  const stop = () => {
    if (++signals > 1) {
      console.error("second signal: exiting without waiting");
      Deno.exit(1);
    }
    console.error("shutting down: no new connections, finishing in-flight requests");
    server.close();
  };
  for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, stop);
  // Started through npm's deno shim, which forwards no signal: its exit is our SIGTERM.
  const unwatch = watchShim((pid) => {
    console.error(`the deno shim (pid ${pid}) that started the server is gone: treating it as SIGTERM`);
    stop();
  });
  await server.finished;
  unwatch();
  await server.close();
  await loaded.dispose();
  console.error("stopped");
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`serve: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
