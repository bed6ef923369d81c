/**
 * `deno task bench:serve`: a load benchmark of the inference server on loopback. Starts
 * `lib/deploy/server.ts` as a subprocess (the clients run here, in another process), then for
 * 1, 8 and 32 concurrent clients sends greedy `/v1/completions` requests (seeded prompts of 4 to
 * 32 bytes) until `--requests` are done or `--seconds` have passed, and reports requests/s,
 * generated tokens/s, p50/p99 latency (to the last token; streamed requests also p50 time to the
 * first token), the error count and the mean batch size (rows per forward step, read from the
 * server's /metrics). Requests stream (`stream: true`, server-sent events read to `[DONE]`)
 * unless `--no-stream`. The same load runs against three servers, side by side:
 * - KV cache + batching (`--max-batch`): continuous batching on one cache;
 * - KV cache, no batching (`--max-batch 1`);
 * - batching without the KV cache (`--no-kv-cache`): every step recomputes each row's prefix;
 * and the throughput ratios: batching over none (both cached), the cache over none (both batched).
 *
 * Options: --model PATH (default: the tiny preset's standard cognate, untrained, seed 1)
 *          --requests N (per level, default 64)  --seconds S (per level, default 30)
 *          --max-tokens N (default 16)  --clients 1,8,32  --max-batch N (default 16)
 *          --batch-wait-ms N (default 5)  --backend B (default wasm)  --seed N  --no-stream  --json FILE
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { metricValue } from "../lib/deploy/server_metrics.ts";
import { tinyCognate } from "../lib/deploy/server_testing.ts";
import { saveModel } from "../lib/models/io.ts";
import { writeJsonAtomic } from "../lib/util/fs.ts";
import { Rng } from "../lib/util/rng.ts";
import { initBackend } from "../lib/backend/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string" },
    requests: { type: "string", default: "64" },
    seconds: { type: "string", default: "30" },
    "max-tokens": { type: "string", default: "16" },
    clients: { type: "string", default: "1,8,32" },
    "max-batch": { type: "string", default: "16" },
    "batch-wait-ms": { type: "string", default: "5" },
    backend: { type: "string", default: "wasm" },
    seed: { type: "string", default: "0" },
    "no-stream": { type: "boolean" },
    json: { type: "string" },
  },
});
const intOpt = (name: keyof typeof values, min: number) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} ${values[name]}: expected an integer >= ${min}`);
  return n;
};
const requests = intOpt("requests", 1), seconds = intOpt("seconds", 1), maxTokens = intOpt("max-tokens", 1);
const maxBatch = intOpt("max-batch", 1), batchWait = intOpt("batch-wait-ms", 0), seed = intOpt("seed", 0);
const levels = values.clients!.split(",").map((c) => {
  const n = Number(c);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--clients ${values.clients}: expected integers >= 1 separated by commas`);
  return n;
});

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const WORDS = ["the", "cat", "sat", "on", "a", "mat", "12", "+", "7", "=", "grid", "red", "blue", "apples", "how", "many"];

/** Seeded prompts of 4 to 32 bytes. */
function prompts(n: number): string[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    let p = WORDS[rng.int(WORDS.length)];
    const len = 4 + rng.int(29);
    while (p.length < len) p += " " + WORDS[rng.int(WORDS.length)];
    return p.slice(0, len);
  });
}

/** A running server subprocess and its URL. */
async function startServer(model: string, batch: number, kvCache: boolean) {
  const args = [
    "run",
    "-A",
    "--unstable-no-legacy-abort",
    "lib/deploy/server.ts",
    ...["--model", model, "--port", "0", "--max-batch", String(batch), "--batch-wait-ms", String(batchWait), "--backend", values.backend!],
    ...(kvCache ? [] : ["--no-kv-cache"]),
  ];
  const child = new Deno.Command(Deno.execPath(), { args, cwd: ROOT, stdout: "piped", stderr: "inherit" }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the server exited before listening: ${buf}`);
    buf += value;
    const m = buf.match(/listening on (http:\/\/\S+)/);
    if (m) {
      (async () => {
        while (!(await reader.read()).done);
      })();
      return { child, url: m[1] };
    }
  }
}

const metrics = async (url: string) => await (await fetch(`${url}/metrics`)).text();

/** Nearest-rank percentile of sorted values. */
const pct = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;

interface LevelResult {
  clients: number;
  requests: number;
  errors: number;
  seconds: number;
  req_per_s: number;
  tokens_per_s: number;
  p50_ms: number;
  p99_ms: number;
  /** Streamed: median time to the first text delta. */
  p50_first_ms: number;
  mean_batch: number;
}

const stream = !values["no-stream"];

/** One completion; streamed, read to `[DONE]`. Returns its completion tokens and ms to the first text (streamed). */
async function complete(url: string, prompt: string): Promise<{ tokens: number; firstMs: number }> {
  const s = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    body: JSON.stringify({
      prompt,
      max_tokens: maxTokens,
      temperature: 0,
      ...(stream ? { stream, stream_options: { include_usage: true } } : {}),
    }),
  });
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  if (!stream) return { tokens: (await res.json()).usage.completion_tokens, firstMs: NaN };
  let buf = "", tokens = -1, firstMs = NaN, done = false;
  for await (const part of res.body!.pipeThrough(new TextDecoderStream())) {
    buf += part;
    let at: number;
    while ((at = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, at).replace(/^data: /, "");
      buf = buf.slice(at + 2);
      if (event === "[DONE]") {
        done = true;
        continue;
      }
      const chunk = JSON.parse(event);
      if (chunk.error) throw new Error(chunk.error.message);
      if (Number.isNaN(firstMs) && chunk.choices?.[0]?.text) firstMs = performance.now() - s;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  }
  if (!done || tokens < 0) throw new Error("the stream ended without usage and [DONE]");
  return { tokens, firstMs };
}

/** `clients` workers send requests until `requests` are done or `seconds` have passed. */
async function level(url: string, clients: number, ps: string[]): Promise<LevelResult> {
  const m0 = await metrics(url);
  const lat: number[] = [], first: number[] = [];
  let next = 0, errors = 0, tokens = 0;
  const t0 = performance.now(), deadline = t0 + seconds * 1000;
  const worker = async () => {
    while (next < requests && performance.now() < deadline) {
      const prompt = ps[next++ % ps.length], s = performance.now();
      try {
        const r = await complete(url, prompt);
        tokens += r.tokens;
        if (!Number.isNaN(r.firstMs)) first.push(r.firstMs);
      } catch {
        errors++;
      }
      lat.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: clients }, worker));
  const wall = (performance.now() - t0) / 1000;
  const m1 = await metrics(url);
  const d = (name: string) => metricValue(m1, name) - metricValue(m0, name);
  lat.sort((a, b) => a - b);
  first.sort((a, b) => a - b);
  return {
    clients,
    requests: lat.length,
    errors,
    seconds: wall,
    req_per_s: lat.length / wall,
    tokens_per_s: tokens / wall,
    p50_ms: pct(lat, 50),
    p99_ms: pct(lat, 99),
    p50_first_ms: pct(first, 50),
    mean_batch: d("af_batch_rows_sum") / d("af_batch_rows_count"),
  };
}

await initBackend(values.backend as "wasm", { quiet: true });
let modelPath = values.model, tmp: string | undefined;
if (!modelPath) {
  tmp = await Deno.makeTempDir({ prefix: "af-bench-serve-" });
  modelPath = join(tmp, "tiny.safetensors");
  const tiny = tinyCognate(1);
  await saveModel(modelPath, tiny.model, tiny.meta);
  tiny.model.dispose();
}
const ps = prompts(requests);
const runs: { max_batch: number; kv_cache: boolean; exit_code: number; levels: LevelResult[] }[] = [];
for (const [batch, kv] of [[maxBatch, true], [1, true], [maxBatch, false]] as const) {
  const { child, url } = await startServer(modelPath, batch, kv);
  await level(url, 2, ps.slice(0, 4)); // warm-up (compiles the backend's kernels)
  const rows: LevelResult[] = [];
  for (const c of levels) rows.push(await level(url, c, ps));
  child.kill("SIGTERM");
  runs.push({ max_batch: batch, kv_cache: kv, exit_code: (await child.status).code, levels: rows });
}
if (tmp) await Deno.remove(tmp, { recursive: true });

const f = (x: number, d = 1) => Number.isFinite(x) ? x.toFixed(d) : "-";
console.log(
  `\nbench:serve  model ${values.model ?? "tiny cognate-standard (untrained)"}, max_tokens ${maxTokens}, greedy, ${values.backend}, ${
    stream ? "streamed" : "not streamed"
  }`,
);
console.log(`at most ${requests} requests or ${seconds} s per level; batch wait ${batchWait} ms\n`);
const head = ["kv cache", "max-batch", "clients", "requests", "errors", "req/s", "tok/s", "p50 ms", "p99 ms", "p50 first ms", "mean batch"];
const table = runs.flatMap((r) =>
  r.levels.map((l) =>
    [
      r.kv_cache ? "on" : "off",
      r.max_batch,
      l.clients,
      l.requests,
      l.errors,
      f(l.req_per_s),
      f(l.tokens_per_s),
      f(l.p50_ms),
      f(l.p99_ms),
      f(l.p50_first_ms),
      f(l.mean_batch, 2),
    ].map(String)
  )
);
const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join("  ");
console.log(line(head));
for (const row of table) console.log(line(row));
console.log(`\nreq/s ratios by clients: batching over none (KV cache on both); KV cache over none (batching on both)`);
for (const [i, c] of levels.entries()) {
  const [both, unbatched, uncached] = runs.map((r) => r.levels[i].req_per_s);
  console.log(`  ${c}: ${f(both / unbatched, 2)}x; ${f(both / uncached, 2)}x`);
}
for (const r of runs) {
  if (r.exit_code !== 0) {
    console.log(`server with max-batch ${r.max_batch}, kv cache ${r.kv_cache} exited ${r.exit_code} after SIGTERM (expected 0)`);
  }
}
if (values.json) {
  await writeJsonAtomic(values.json, {
    model: values.model ?? "tiny",
    max_tokens: maxTokens,
    requests,
    seconds,
    batch_wait_ms: batchWait,
    stream,
    runs,
  });
}
