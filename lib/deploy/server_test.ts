/**
 * The inference server: every endpoint on a small real model (the tiny preset's standard
 * cognate, untrained) and on a scripted model whose answers are known exactly; greedy
 * determinism; streamed completions (server-sent events) equal to plain ones, whole characters,
 * stop strings held back, a client going away mid-stream; batched results equal to unbatched ones; malformed requests and their 4xx
 * answers; /metrics counters moving; model paths (file, run directory, HF folder); and a
 * graceful SIGTERM of the `serve` CLI in a subprocess with a request in flight.
 */
import { npmShim } from "../testing/npm_shim.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { initBackend } from "../backend/mod.ts";
import { phase1ModelPath } from "../util/run_dir.ts";
import { saveModel } from "../models/io.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { parseGrid } from "../../datasets/arc/text.ts";
import { arcItem, greedyGrids } from "../eval/arc_answers.ts";
import { writeJsonAtomic } from "../util/fs.ts";
import { exportHfFolder } from "./hf.ts";
import { createModel } from "../models/registry.ts";
import { compressToTarget, loadCompressed, STANDARD_OPTIONS } from "../compress/pipeline.ts";
import { createServer, type InferenceServer, loadServedModel, type ServedModel, type ServerOptions } from "./server.ts";
import { metricValue } from "./server_metrics.ts";
import { scriptedModel, tinyCognate } from "./server_testing.ts";

await initBackend("wasm", { quiet: true });

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Runs `fn` against a fresh server on a free port, then closes it. */
async function withServer(served: ServedModel, opts: ServerOptions, fn: (s: InferenceServer) => Promise<void>): Promise<void> {
  const s = createServer(served, { port: 0, ...opts });
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

/** POSTs JSON (or a raw string) and returns the status, headers and parsed body. */
async function post(s: InferenceServer, path: string, body: unknown, init: RequestInit = {}) {
  const res = await fetch(`${s.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });
  // deno-lint-ignore no-explicit-any
  return { status: res.status, headers: res.headers, json: await res.json() as any };
}

async function getText(s: InferenceServer, path: string) {
  const res = await fetch(`${s.url}${path}`);
  return { status: res.status, text: await res.text(), type: res.headers.get("content-type") ?? "" };
}

const PROMPTS = ["Hello", "12+7=", "abc", "The cat sat on the", "x", "Once upon a time there"];

Deno.test("completions on a real model: greedy is deterministic, batched equals unbatched, usage and ids", async () => {
  const tiny = tinyCognate();
  const body = (prompt: string | string[]) => ({ prompt, max_tokens: 12, temperature: 0 });
  let sequential: string[] = [];
  await withServer(tiny, { maxBatch: 1, batchWaitMs: 0 }, async (s) => {
    for (const p of PROMPTS) {
      const r = await post(s, "/v1/completions", body(p));
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.object, "text_completion");
      assert.equal(r.json.model, "cognate-standard");
      assert.match(r.json.id, /^cmpl-/);
      const [c] = r.json.choices;
      assert.equal(c.index, 0);
      assert.ok(c.finish_reason === "stop" || c.finish_reason === "length");
      assert.equal(r.json.usage.prompt_tokens, new TextEncoder().encode(p).length);
      assert.equal(r.json.usage.total_tokens, r.json.usage.prompt_tokens + r.json.usage.completion_tokens);
      assert.ok(r.json.usage.completion_tokens <= 12);
      if (c.finish_reason === "length") assert.equal(r.json.usage.completion_tokens, 12);
      sequential.push(c.text);
    }
    // The same greedy request twice gives the same text.
    const again = await post(s, "/v1/completions", body(PROMPTS[1]));
    assert.equal(again.json.choices[0].text, sequential[1]);
  });
  assert.ok(new Set(sequential).size > 1, `an untrained model still answers different prompts differently: ${JSON.stringify(sequential)}`);
  await withServer(tiny, { maxBatch: 8, batchWaitMs: 50 }, async (s) => {
    // Concurrent requests share forward passes and answer exactly as one at a time.
    const concurrent = await Promise.all(PROMPTS.map((p) => post(s, "/v1/completions", body(p))));
    assert.deepEqual(concurrent.map((r) => r.json.choices[0].text), sequential);
    // An array of prompts: one choice per prompt, in order.
    const arr = await post(s, "/v1/completions", body(PROMPTS));
    assert.deepEqual(arr.json.choices.map((c: { index: number }) => c.index), PROMPTS.map((_, i) => i));
    assert.deepEqual(arr.json.choices.map((c: { text: string }) => c.text), sequential);
    const m = (await getText(s, "/metrics")).text;
    const steps = metricValue(m, "af_batch_rows_count"), rows = metricValue(m, "af_batch_rows_sum");
    assert.ok(rows / steps > 2, `requests were batched: mean ${rows / steps} rows per step`);
    assert.ok(metricValue(m, "af_batch_rows_bucket", { le: "8" }) === steps, "no step ran more than max-batch rows");
  });
  sequential = [];
  tiny.model.dispose();
});

Deno.test("completions sampling: temperature > 0 is reproducible under a seed, and the seed matters", async () => {
  const tiny = tinyCognate();
  await withServer(tiny, {}, async (s) => {
    const ask = (seed: number) => post(s, "/v1/completions", { prompt: "abc", max_tokens: 16, temperature: 1, seed });
    const [a, b, c] = [await ask(7), await ask(7), await ask(8)];
    assert.equal(a.json.choices[0].text, b.json.choices[0].text);
    assert.notEqual(a.json.choices[0].text, c.json.choices[0].text);
    const greedy = await post(s, "/v1/completions", { prompt: "abc", max_tokens: 16 });
    assert.notEqual(a.json.choices[0].text, greedy.json.choices[0].text, "the default temperature (0) is greedy, not sampling");
  });
  // Without a seed, the n-th request of a fresh server with the same --seed draws the same.
  const unseeded = async () => {
    const texts: string[] = [];
    await withServer(tiny, { seed: 5 }, async (s) => {
      for (let i = 0; i < 2; i++) {
        texts.push((await post(s, "/v1/completions", { prompt: "abc", max_tokens: 16, temperature: 1 })).json.choices[0].text);
      }
    });
    return texts;
  };
  const [first, second] = [await unseeded(), await unseeded()];
  assert.deepEqual(first, second);
  assert.notEqual(first[0], first[1], "successive unseeded requests draw differently");
  tiny.model.dispose();
});

Deno.test("completions on a scripted model: stop strings, length and EOS finish reasons", async () => {
  const served = scriptedModel(":", "hello world. bye");
  await withServer(served, { maxNewTokens: 64 }, async (s) => {
    const ask = async (extra: Record<string, unknown>) => (await post(s, "/v1/completions", { prompt: "say:", ...extra })).json;
    let r = await ask({ max_tokens: 40 });
    assert.deepEqual([r.choices[0].text, r.choices[0].finish_reason, r.usage.completion_tokens], ["hello world. bye", "stop", 16]);
    r = await ask({ max_tokens: 5 });
    assert.deepEqual([r.choices[0].text, r.choices[0].finish_reason, r.usage.completion_tokens], ["hello", "length", 5]);
    r = await ask({ max_tokens: 40, stop: ["xyz", "."] });
    assert.deepEqual([r.choices[0].text, r.choices[0].finish_reason], ["hello world", "stop"]);
    r = await ask({ max_tokens: 40, stop: "o w" });
    assert.equal(r.choices[0].text, "hell");
  });
});

// ---------------------------------------------------------------------------------------------
// Streaming completions (server-sent events)

/** A streamed completion's chunk (or the `[DONE]` marker, as null). */
// deno-lint-ignore no-explicit-any
type Chunk = any;

/** POSTs a completion with `stream: true` and reads every server-sent event: the status, content type and chunks in order (`[DONE]` as null). */
async function postStream(s: InferenceServer, body: Record<string, unknown>) {
  const res = await fetch(`${s.url}/v1/completions`, { method: "POST", body: JSON.stringify({ ...body, stream: true }) });
  const type = res.headers.get("content-type") ?? "";
  const text = await res.text();
  assert.ok(text.endsWith("\n\n"), `events end with a blank line: ${JSON.stringify(text.slice(-40))}`);
  const chunks: Chunk[] = text.slice(0, -2).split("\n\n").map((event) => {
    assert.match(event, /^data: /, `an event is one data line: ${JSON.stringify(event)}`);
    const data = event.slice("data: ".length);
    assert.ok(!data.includes("\n"), "one line per event");
    return data === "[DONE]" ? null : JSON.parse(data);
  });
  return { status: res.status, type, chunks };
}

/** Checks a stream's shape and returns per choice index its deltas, its finish_reason and the usage chunk (if any). */
function readChoices(chunks: Chunk[], n: number) {
  assert.equal(chunks.at(-1), null, "[DONE] comes last");
  assert.equal(chunks.indexOf(null), chunks.length - 1, "[DONE] comes once");
  const body = chunks.slice(0, -1), ids = new Set(body.map((c) => c.id));
  assert.equal(ids.size, 1, "every chunk carries the completion's id");
  assert.match([...ids][0], /^cmpl-/);
  const deltas: string[][] = Array.from({ length: n }, () => []), finish: (string | undefined)[] = Array(n).fill(undefined);
  let usage: Chunk;
  for (const c of body) {
    assert.equal(c.object, "text_completion");
    assert.equal(typeof c.created, "number");
    assert.equal(usage, undefined, "nothing follows the usage chunk but [DONE]");
    if (c.usage) {
      assert.deepEqual(c.choices, []);
      usage = c.usage;
      continue;
    }
    assert.equal(c.choices.length, 1);
    const [{ text, index, logprobs, finish_reason }] = c.choices;
    assert.ok(Number.isInteger(index) && index >= 0 && index < n, `index ${index}`);
    assert.equal(logprobs, null);
    assert.equal(finish[index], undefined, `choice ${index}: nothing after its finish_reason`);
    if (finish_reason === null) {
      assert.ok(text.length > 0, "a delta chunk carries text");
      deltas[index].push(text);
    } else {
      assert.equal(text, "", "the finishing chunk carries no text");
      assert.ok(finish_reason === "stop" || finish_reason === "length", finish_reason);
      finish[index] = finish_reason;
    }
  }
  assert.ok(finish.every((f) => f !== undefined), "every choice ends with a finish_reason");
  return { deltas, texts: deltas.map((d) => d.join("")), finish, usage };
}

/** A delta is well-formed text: no half character (so no U+FFFD of a split byte sequence, no lone surrogate). */
const wellFormed = (d: string) => new TextDecoder().decode(new TextEncoder().encode(d)) === d && !d.includes("\uFFFD");

Deno.test("streamableLength: holds back text that is or could become a stop string, never splits a surrogate pair", async () => {
  const { streamableLength } = await import("./server_endpoints.ts");
  assert.equal(streamableLength("hello wor", 0, []), 9);
  assert.equal(streamableLength("hello wor", 0, ["world"]), 6);
  assert.equal(streamableLength("hello wox", 6, ["world"]), 9, "the prefix broke off: all of it");
  assert.equal(streamableLength("hello world!", 0, ["world"]), 6, "a whole stop string is held back too");
  assert.equal(streamableLength("a.b", 0, ["xyz", "."]), 1);
  assert.equal(streamableLength("ab", 0, ["b", "abc"]), 0, "the earliest possible start wins");
  assert.equal(streamableLength("x\u{1F600}", 0, ["\uDE00"]), 1, "a stop starting with a low surrogate does not split the pair");
});

Deno.test("streamed completions on a real model: deltas add up to the non-streamed text, finish reasons, [DONE], usage", async () => {
  const tiny = tinyCognate();
  const prompts = PROMPTS.slice(0, 4);
  await withServer(tiny, { maxBatch: 8, batchWaitMs: 20 }, async (s) => {
    const plain = async (extra: Record<string, unknown>) =>
      (await post(s, "/v1/completions", { prompt: prompts, max_tokens: 12, ...extra })).json;
    const base = await plain({});
    // Stop strings from the model's own output: one that occurs, and one whose first characters occur (held back, then released).
    const longest = base.choices.map((c: { text: string }) => c.text).sort((a: string, b: string) => b.length - a.length)[0];
    assert.ok(longest.length >= 6, `an output long enough to cut: ${JSON.stringify(longest)}`);
    const stops = [[longest.slice(4, 6)], [`${longest.slice(1, 3)}\u{1F600}never`, longest.slice(5, 7)]];
    for (const extra of [{}, { stop: stops[0] }, { stop: stops[1] }, { temperature: 1, seed: 3 }]) {
      const want = await plain(extra);
      const r = await postStream(s, { prompt: prompts, max_tokens: 12, ...extra });
      assert.equal(r.status, 200);
      assert.match(r.type, /^text\/event-stream/);
      const got = readChoices(r.chunks, prompts.length);
      const what = JSON.stringify(extra);
      assert.deepEqual(got.texts, want.choices.map((c: { text: string }) => c.text), what);
      assert.deepEqual(got.finish, want.choices.map((c: { finish_reason: string }) => c.finish_reason), what);
      assert.equal(got.usage, undefined, "no usage chunk unless asked");
      // (An untrained model writes invalid UTF-8 too, which decodes to U+FFFD as without streaming; still no lone surrogate.)
      for (const d of got.deltas.flat()) assert.equal(new TextDecoder().decode(new TextEncoder().encode(d)), d);
    }
    assert.ok(
      (await plain({ stop: stops[0] })).choices.some((c: { text: string }) =>
        !base.choices.some((b: { text: string }) => b.text === c.text)
      ),
      "the stop string cuts some choice",
    );
    // A single prompt string, with the usage chunk; the generated-token counter moves as without streaming.
    const before = (await getText(s, "/metrics")).text;
    const r = await postStream(s, { prompt: "Hello", max_tokens: 10, stream_options: { include_usage: true } });
    const got = readChoices(r.chunks, 1);
    const want = (await post(s, "/v1/completions", { prompt: "Hello", max_tokens: 10 })).json;
    assert.deepEqual([got.texts[0], got.finish[0]], [want.choices[0].text, want.choices[0].finish_reason]);
    assert.deepEqual(got.usage, want.usage);
    assert.equal(r.chunks.at(-2).usage.total_tokens, want.usage.total_tokens, "the usage chunk comes just before [DONE]");
    const after = (await getText(s, "/metrics")).text;
    assert.equal(
      metricValue(after, "af_generated_tokens_total") - metricValue(before, "af_generated_tokens_total"),
      2 * want.usage.completion_tokens,
    );
    // Streamed and plain requests at once share the batcher and still answer as alone.
    const [a, b] = await Promise.all([postStream(s, { prompt: prompts, max_tokens: 12 }), plain({})]);
    assert.deepEqual(readChoices(a.chunks, prompts.length).texts, base.choices.map((c: { text: string }) => c.text));
    assert.deepEqual(b, { ...base, id: b.id, created: b.created });
  });
  tiny.model.dispose();
});

Deno.test("streamed completions on a scripted model: whole characters per delta, stop strings held back, never streamed", async () => {
  const answer = "héllo wörld → ✓ 😀 done";
  await withServer(scriptedModel(":", answer), { maxNewTokens: 64 }, async (s) => {
    const both = async (extra: Record<string, unknown>) => {
      const want = (await post(s, "/v1/completions", { prompt: ["say:", "tell me:"], max_tokens: 64, ...extra })).json;
      const got = readChoices((await postStream(s, { prompt: ["say:", "tell me:"], max_tokens: 64, ...extra })).chunks, 2);
      assert.deepEqual(got.texts, want.choices.map((c: { text: string }) => c.text), JSON.stringify(extra));
      assert.deepEqual(got.finish, want.choices.map((c: { finish_reason: string }) => c.finish_reason), JSON.stringify(extra));
      return { got, want };
    };
    // No stop string: a delta per character, as soon as its last byte is written (a multi-byte character never splits).
    let { got } = await both({});
    assert.deepEqual(got.deltas, [[...answer], [...answer]]);
    assert.deepEqual(got.finish, ["stop", "stop"]);
    // Stop strings: the text is cut before them, and nothing of them (or after them) is ever streamed.
    for (const stop of ["😀", ["✓ 😀", "xyz"], "wö", "ö", "→ ✓"]) {
      ({ got } = await both({ stop }));
      const cut = answer.slice(0, answer.indexOf(Array.isArray(stop) ? stop[0] : stop));
      assert.deepEqual(got.texts, [cut, cut]);
      assert.deepEqual(got.finish, ["stop", "stop"]);
      for (const d of got.deltas.flat()) assert.ok(wellFormed(d), JSON.stringify(d));
    }
    // Prefixes of a stop string that never completes are held back, then released: the whole answer arrives.
    ({ got } = await both({ stop: ["wörx", "😀!", "é"] }));
    assert.equal(got.texts[0], "h", "stops at é");
    ({ got } = await both({ stop: ["wörx", "😀!"] }));
    assert.deepEqual(got.texts, [answer, answer]);
    // ("wörl" waits until its "l" rules out "wörx"; "😀 " until its space rules out "😀!".)
    assert.ok(got.deltas[0].includes("wörl") && got.deltas[0].includes("😀 "), JSON.stringify(got.deltas[0]));
    for (const d of got.deltas.flat()) assert.ok(wellFormed(d), JSON.stringify(d));
    // A budget that ends inside a character: the same U+FFFD as the non-streamed text, in the last delta only.
    ({ got } = await both({ max_tokens: 2 }));
    assert.deepEqual([got.deltas[0], got.finish[0]], [["h", "\uFFFD"], "length"]);
    // Validation errors come before the stream: JSON with their status.
    const bad = await post(s, "/v1/completions", { prompt: "say:", stream: true, max_tokens: 500 });
    assert.equal(bad.status, 422);
    assert.match(bad.headers.get("content-type") ?? "", /application\/json/);
    assert.match(bad.json.error.message, /max_tokens = 500 exceeds/);
  });
});

Deno.test("streamed completions: a client that goes away mid-stream drops its rows, and the server serves on", async () => {
  const slow = scriptedModel(":", "abcdefghij".repeat(15), 256);
  const forward = slow.model.forward!;
  slow.model.forward = (ids) => {
    const t = performance.now();
    while (performance.now() - t < 2); // 2 ms a step: the 150 steps would take 300 ms at least
    return forward(ids);
  };
  await withServer(slow, { maxNewTokens: 200 }, async (s) => {
    const before = (await getText(s, "/metrics")).text;
    const ac = new AbortController();
    const res = await fetch(`${s.url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ prompt: ["say:", "tell:"], max_tokens: 150, stream: true }),
      signal: ac.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes('"text":"a"')) {
      const { value, done } = await reader.read();
      assert.ok(!done, "the stream went on");
      seen += value;
    }
    // Mid-stream the request is still in flight (it ends with its last event, not its first byte).
    const mid = (await getText(s, "/metrics")).text;
    assert.equal(metricValue(mid, "af_http_requests_in_flight", { endpoint: "/v1/completions" }), 1, "the stream is in flight");
    ac.abort();
    // Chunks already buffered may still come; then the read fails (the stream never ends normally).
    await assert.rejects(async () => {
      for (;;) if ((await reader.read()).done) return;
    });
    // The batcher drops both rows: it goes idle long before their 150 tokens.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const h = await (await fetch(`${s.url}/healthz`)).json();
      if (h.running === 0 && h.queue === 0) break;
      assert.ok(Date.now() < deadline, "the aborted rows are still running");
      await new Promise((r) => setTimeout(r, 10));
    }
    const after = (await getText(s, "/metrics")).text;
    assert.equal(metricValue(after, "af_http_requests_in_flight", { endpoint: "/v1/completions" }), 0, "the cancelled stream ended");
    const delta = (name: string) => metricValue(after, name) - metricValue(before, name);
    assert.ok(delta("af_batch_rows_count") < 100, `the rows stopped early: ${delta("af_batch_rows_count")} steps`);
    assert.equal(delta("af_generated_tokens_total"), 0, "dropped rows count no generated tokens");
    // The server serves on, streamed and not.
    const next = await postStream(s, { prompt: "say:", max_tokens: 5 });
    assert.deepEqual(readChoices(next.chunks, 1).texts, ["abcde"]);
    const plain = await post(s, "/v1/completions", { prompt: "say:", max_tokens: 5 });
    assert.deepEqual([plain.status, plain.json.choices[0].text], [200, "abcde"]);
  });
});

const ARC_TASK = {
  train: [{ input: [[1, 2], [3, 4]], output: [[1, 2], [3, 4]] }],
  test: [{ input: [[5, 6], [7, 8]], output: [[1, 2], [3, 4]] }, { input: [[0]] }],
};

Deno.test("ARC endpoint: phase 2's rendering and grid grammar; a grid answer parses, malformed output is reported as such", async () => {
  const prompt = (t: { input: number[][] }) => arcItem({ train: ARC_TASK.train, test: [{ input: t.input, output: t.input }] }).prompt;
  await withServer(scriptedModel(">", "2x2:a12b34"), {}, async (s) => {
    const r = await post(s, "/v1/tasks/arc", ARC_TASK);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.object, "arc.prediction");
    assert.equal(r.json.predictions.length, 2);
    const [p0, p1] = r.json.predictions;
    assert.deepEqual(p0, {
      index: 0,
      output: [[1, 2], [3, 4]],
      well_formed: true,
      text: "2x2:a12b34",
      finish_reason: "stop",
      matches_expected: true,
    });
    assert.deepEqual([p1.output, p1.matches_expected], [[[1, 2], [3, 4]], undefined], "no expected output given, so no verdict");
    assert.equal(r.json.usage.prompt_tokens, prompt(ARC_TASK.test[0]).length + prompt(ARC_TASK.test[1]).length);
    assert.equal(r.json.usage.completion_tokens, 20);
    // Unconstrained decoding writes the same grid: the model's own choices follow the grammar.
    const free = await post(s, "/v1/tasks/arc", { ...ARC_TASK, constrained: false });
    assert.deepEqual(free.json.predictions, r.json.predictions);
  });
  const one = { ...ARC_TASK, test: [ARC_TASK.test[0]] };
  // A wrong row label (c where row b must start): unconstrained, generation stops at the first token outside the grammar.
  await withServer(scriptedModel(">", "2x2:a12c34"), {}, async (s) => {
    const [p] = (await post(s, "/v1/tasks/arc", { ...one, constrained: false })).json.predictions;
    assert.deepEqual([p.output, p.well_formed, p.text, p.finish_reason, p.matches_expected], [
      null,
      false,
      "2x2:a12c",
      "malformed",
      false,
    ]);
    assert.match(p.error, /not a grid \(expected `HxW:`/);
    // Constrained, the grammar writes the right label and the model its digits.
    const [c] = (await post(s, "/v1/tasks/arc", one)).json.predictions;
    assert.deepEqual([c.output, c.well_formed, c.text, c.finish_reason], [[[1, 2], [3, 4]], true, "2x2:a12b34", "stop"]);
  });
  // Letters are not colours: malformed unconstrained; constrained, the grammar picks the best allowed token each time.
  await withServer(scriptedModel(">", "ab", 256), {}, async (s) => {
    const [p] = (await post(s, "/v1/tasks/arc", { ...ARC_TASK, constrained: false })).json.predictions;
    assert.deepEqual([p.well_formed, p.output, p.text, p.finish_reason], [false, null, "a", "malformed"]);
    const [c] = (await post(s, "/v1/tasks/arc", ARC_TASK)).json.predictions;
    assert.equal(c.well_formed, true);
    assert.deepEqual(c.output, parseGrid(c.text));
  });
  // A budget too small for the grid: cut by length, reported as such.
  await withServer(scriptedModel(">", "2x2:a12b34"), { maxNewTokens: 5 }, async (s) => {
    const [p] = (await post(s, "/v1/tasks/arc", one)).json.predictions;
    assert.deepEqual([p.well_formed, p.text, p.finish_reason], [false, "2x2:a", "length"]);
    assert.match(p.error, /reached its limit of 5 tokens before the grid ended/);
  });
  // The real model answers too (well-formed or not, the response says which, consistently).
  const tiny = tinyCognate();
  await withServer(tiny, {}, async (s) => {
    const small = { train: [{ input: [[1]], output: [[2]] }], test: [{ input: [[3]] }] };
    for (const constrained of [true, false]) {
      const r = await post(s, "/v1/tasks/arc", { ...small, constrained });
      assert.equal(r.status, 200);
      const [p] = r.json.predictions;
      assert.equal(p.well_formed, p.output !== null);
      assert.equal(p.well_formed, p.finish_reason === "stop" && parseGrid(p.text) !== null);
      if (!p.well_formed) assert.ok(p.error);
      // The same tokens as phase 2's own decoder on this model (its budget: what the context leaves).
      const item = arcItem({ train: small.train, test: [{ input: small.test[0].input, output: small.test[0].input }] });
      const [want] = await greedyGrids(tiny.model, [{ prompt: item.prompt, draft: "", maxNew: 64 - item.prompt.length }], 1, constrained);
      assert.equal(p.text, TOKENIZER.decode(want.ids), `constrained ${constrained}`);
    }
  });
  tiny.model.dispose();
});

Deno.test("ARC endpoint: a task file's extra fields (its name or id, fields inside pairs) are ignored", async () => {
  await withServer(scriptedModel(">", "2x2:a12b34"), {}, async (s) => {
    const want = await post(s, "/v1/tasks/arc", ARC_TASK);
    assert.equal(want.status, 200);
    const published = {
      name: "007bbfb7",
      id: "007bbfb7",
      description: { source: "ARC-AGI-1 training" },
      train: ARC_TASK.train.map((p) => ({ ...p, note: "a demonstration" })),
      test: ARC_TASK.test.map((p, i) => ({ ...p, id: `t${i}` })),
    };
    const r = await post(s, "/v1/tasks/arc", published);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.predictions, want.json.predictions);
    assert.equal(r.json.predictions[0].matches_expected, true);
    assert.deepEqual(r.json.usage, want.json.usage);
    // The fields it reads are as strict as ever.
    const bad = await post(s, "/v1/tasks/arc", { ...published, train: [{ input: [[1]], output: [[12]] }] });
    assert.deepEqual([bad.status, bad.json.error.param], [422, "train[0].output"]);
  });
});

Deno.test("math endpoint: the rationale and its extracted answer", async () => {
  await withServer(scriptedModel("\n", "3*4=12 then 12+1=13 #### 13"), {}, async (s) => {
    const r = await post(s, "/v1/tasks/math", { question: "Ann has 3 bags of 4 apples and finds 1 more. How many?" });
    assert.equal(r.status, 200);
    assert.deepEqual([r.json.object, r.json.rationale, r.json.answer, r.json.finish_reason], [
      "math.solution",
      "3*4=12 then 12+1=13 #### 13",
      "13",
      "stop",
    ]);
    const cut = await post(s, "/v1/tasks/math", { question: "How many?", max_tokens: 6 });
    assert.deepEqual([cut.json.rationale, cut.json.answer, cut.json.finish_reason], ["3*4=12", "12", "length"]);
  });
  await withServer(scriptedModel("\n", "no numbers here"), {}, async (s) => {
    assert.equal((await post(s, "/v1/tasks/math", { question: "?" })).json.answer, null);
  });
});

Deno.test("healthz, models, unknown routes and wrong methods", async () => {
  const tiny = tinyCognate();
  await withServer({ ...tiny, name: "forge-tiny" }, {}, async (s) => {
    const h = await fetch(`${s.url}/healthz`);
    const hj = await h.json();
    assert.equal(h.status, 200);
    assert.deepEqual([hj.status, hj.model, hj.key, hj.context, hj.parameters], [
      "ok",
      "forge-tiny",
      "cognate-standard",
      64,
      tiny.model.params.count(),
    ]);
    const m = await (await fetch(`${s.url}/v1/models`)).json();
    assert.deepEqual(m.data.map((d: { id: string }) => d.id), ["forge-tiny"]);
    const r404 = await post(s, "/v2/nothing", {});
    assert.equal(r404.status, 404);
    assert.match(r404.json.error.message, /no route \/v2\/nothing/);
    const r405 = await fetch(`${s.url}/v1/completions`);
    assert.equal(r405.status, 405);
    assert.equal(r405.headers.get("allow"), "POST");
    assert.match((await r405.json()).error.message, /GET is not allowed on \/v1\/completions/);
    const p405 = await post(s, "/healthz", {});
    assert.equal(p405.status, 405);
    assert.equal(p405.headers.get("allow"), "GET");
    const wrongModel = await post(s, "/v1/completions", { model: "gpt-4", prompt: "a" });
    assert.equal(wrongModel.status, 404);
    assert.match(wrongModel.json.error.message, /model 'gpt-4' is not served here; this server serves 'forge-tiny'/);
  });
  tiny.model.dispose();
});

/** [path, body, status, message pattern, param] of malformed requests. */
const BAD: [string, unknown, number, RegExp, string | null][] = [
  ["/v1/completions", "{not json", 400, /not valid JSON/, null],
  ["/v1/completions", "", 400, /body is empty/, null],
  ["/v1/completions", [1, 2], 400, /expected a JSON object, got an array/, null],
  ["/v1/completions", {}, 400, /missing required field 'prompt'/, "prompt"],
  ["/v1/completions", { prompt: 42 }, 400, /prompt: expected a string or a non-empty array/, "prompt"],
  ["/v1/completions", { prompt: [] }, 400, /prompt: expected a string or a non-empty array/, "prompt"],
  ["/v1/completions", { prompt: "a", max_tokens: "5" }, 400, /max_tokens: expected an integer >= 1/, "max_tokens"],
  ["/v1/completions", { prompt: "a", max_tokens: 0 }, 400, /max_tokens: expected an integer >= 1/, "max_tokens"],
  ["/v1/completions", { prompt: "a", max_tokens: 2.5 }, 400, /max_tokens: expected an integer/, "max_tokens"],
  ["/v1/completions", { prompt: "a", temperature: -1 }, 400, /temperature: expected a number from 0 to 2/, "temperature"],
  ["/v1/completions", { prompt: "a", temperature: "hot" }, 400, /temperature: expected a number from 0 to 2/, "temperature"],
  ["/v1/completions", { prompt: "a", stop: 3 }, 400, /stop: expected a non-empty string or an array/, "stop"],
  [
    "/v1/completions",
    { prompt: "a", stop: ["a", "b", "c", "d", "e"] },
    400,
    /stop: expected a non-empty string or an array of at most 4/,
    "stop",
  ],
  ["/v1/completions", { prompt: "a", stream: "yes" }, 400, /stream: expected true or false, got a string/, "stream"],
  [
    "/v1/completions",
    { prompt: "a", stream_options: { include_usage: true } },
    400,
    /stream_options: only allowed when stream is true/,
    "stream_options",
  ],
  [
    "/v1/completions",
    { prompt: "a", stream: true, stream_options: { include_usage: 1 } },
    400,
    /stream_options\.include_usage: expected true or false/,
    "stream_options.include_usage",
  ],
  [
    "/v1/completions",
    { prompt: "a", stream: true, stream_options: { usage: true } },
    400,
    /unknown field 'stream_options\.usage'; accepted: include_usage/,
    "stream_options.usage",
  ],
  ["/v1/completions", { prompt: "x".repeat(60), max_tokens: 10, stream: true }, 422, /prompt is 60 tokens/, "prompt"],
  ["/v1/completions", { prompt: "a", n: 2 }, 400, /only n = 1/, "n"],
  ["/v1/completions", { prompt: "a", foo: 1 }, 400, /unknown field 'foo'; accepted: model, prompt, max_tokens/, "foo"],
  ["/v1/completions", { prompt: "a", max_tokens: 500 }, 422, /max_tokens = 500 exceeds this server's limit of 32/, "max_tokens"],
  [
    "/v1/completions",
    { prompt: "x".repeat(60), max_tokens: 10 },
    422,
    /prompt is 60 tokens and max_tokens is 10: 70 exceeds the model's context of 64/,
    "prompt",
  ],
  ["/v1/completions", { prompt: ["ok", "x".repeat(60)], max_tokens: 10 }, 422, /prompt\[1\] is 60 tokens/, "prompt[1]"],
  ["/v1/tasks/arc", { test: [{ input: [[1]] }] }, 400, /missing required field 'train'/, "train"],
  ["/v1/tasks/arc", { train: [], test: [{ input: [[1]] }] }, 400, /train: expected at least one demonstration pair/, "train"],
  [
    "/v1/tasks/arc",
    { train: [{ input: [[1]], output: [[1]] }], test: [{ input: "1" }] },
    400,
    /test\[0\]\.input: expected/,
    "test[0].input",
  ],
  [
    "/v1/tasks/arc",
    { train: [{ input: [[1]], output: [["1"]] }], test: [{ input: [[1]] }] },
    400,
    /train\[0\]\.output\[0\]\[0\]: expected a number \(a colour 0\.\.9\), got a string/,
    "train[0].output[0][0]",
  ],
  [
    "/v1/tasks/arc",
    { train: [{ input: [[1]], out: [[1]] }], test: [{ input: [[1]] }] },
    400,
    /missing required field 'train\[0\]\.output'|unknown field 'train\[0\]\.out'/,
    null,
  ],
  [
    "/v1/tasks/arc",
    { train: [{ input: [[1, 2], [3]], output: [[1]] }], test: [{ input: [[1]] }] },
    422,
    /train\[0\]\.input: invalid grid: row 1 has 1 cells but row 0 has 2/,
    "train[0].input",
  ],
  [
    "/v1/tasks/arc",
    { train: [{ input: [[1]], output: [[1, 10]] }], test: [{ input: [[1]] }] },
    422,
    /train\[0\]\.output: invalid grid: cell \[0\]\[1\] is 10; colours are integers 0\.\.9/,
    "train[0].output",
  ],
  [
    "/v1/tasks/arc",
    { train: [{ input: [[1]], output: [[-1]] }], test: [{ input: [[1]] }] },
    422,
    /cell \[0\]\[0\] is -1/,
    "train[0].output",
  ],
  [
    "/v1/tasks/arc",
    { train: [{ input: [[1]], output: [[1.5]] }], test: [{ input: [[1]] }] },
    422,
    /cell \[0\]\[0\] is 1\.5/,
    "train[0].output",
  ],
  [
    "/v1/tasks/arc",
    { train: [{ input: [[1]], output: [[1]] }], test: [{ input: Array(31).fill([1]) }] },
    422,
    /test\[0\]\.input: invalid grid: has 31 rows; expected at most 30/,
    "test[0].input",
  ],
  [
    "/v1/tasks/arc",
    { train: [{ input: [Array(31).fill(1)], output: [[1]] }], test: [{ input: [[1]] }] },
    422,
    /row 0 has 31 cells; expected at most 30/,
    "train[0].input",
  ],
  [
    "/v1/tasks/arc",
    { train: [{ input: [], output: [[1]] }], test: [{ input: [[1]] }] },
    422,
    /train\[0\]\.input: invalid grid: has no rows/,
    "train[0].input",
  ],
  ["/v1/tasks/arc", { train: [{ input: [[]], output: [[1]] }], test: [{ input: [[1]] }] }, 422, /row 0 is empty/, "train[0].input"],
  [
    "/v1/tasks/arc",
    { train: [{ input: [Array(30).fill(1)], output: [Array(30).fill(1)] }], test: [{ input: [[1]] }] },
    422,
    /renders to \d+ tokens, which leaves no room/,
    "test[0]",
  ],
  [
    "/v1/tasks/arc",
    { train: [{ input: [[1]], output: [[1]] }], test: [{ input: [[1]] }], constrained: "yes" },
    400,
    /constrained: expected true or false, got a string/,
    "constrained",
  ],
  ["/v1/tasks/math", {}, 400, /missing required field 'question'/, "question"],
  ["/v1/tasks/math", { question: 7 }, 400, /question: expected a string/, "question"],
  ["/v1/tasks/math", { question: "" }, 400, /question: expected a non-empty string/, "question"],
  [
    "/v1/tasks/math",
    { question: "x".repeat(70) },
    422,
    /question is 71 tokens with its newline: that does not fit the model's context of 64/,
    "question",
  ],
];

Deno.test("malformed requests answer 4xx with a message naming the field", async () => {
  const tiny = tinyCognate();
  await withServer(tiny, { maxNewTokens: 32, maxBodyBytes: 4096 }, async (s) => {
    for (const [path, body, status, pattern, param] of BAD) {
      const r = await post(s, path, body);
      const what = `${path} ${typeof body === "string" ? body : JSON.stringify(body).slice(0, 80)}`;
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.error.message, pattern, `${what}: ${r.json.error.message}`);
      assert.equal(r.json.error.type, "invalid_request_error");
      if (param !== null) assert.equal(r.json.error.param, param, what);
    }
    // Oversized bodies: by Content-Length, and streamed without one.
    const big = await post(s, "/v1/completions", { prompt: "x".repeat(5000) });
    assert.equal(big.status, 413);
    assert.match(big.json.error.message, /exceeds the limit of 4096 bytes/);
    const chunks = [new TextEncoder().encode('{"prompt": "'), new TextEncoder().encode("y".repeat(5000)), new TextEncoder().encode('"}')];
    const stream = new ReadableStream({
      pull(c) {
        const next = chunks.shift();
        if (next) c.enqueue(next);
        else c.close();
      },
    });
    const streamed = await post(s, "/v1/completions", stream as unknown as string, { body: stream });
    assert.equal(streamed.status, 413);
    // The server still serves after all that.
    assert.equal((await post(s, "/v1/completions", { prompt: "a", max_tokens: 2 })).status, 200);
  });
  tiny.model.dispose();
});

Deno.test("/metrics: Prometheus text whose counters move with the requests", async () => {
  const tiny = tinyCognate();
  await withServer(tiny, {}, async (s) => {
    const before = await getText(s, "/metrics");
    assert.equal(before.status, 200);
    assert.match(before.type, /^text\/plain/);
    const ok = { endpoint: "/v1/completions", status: "200" }, bad = { endpoint: "/v1/completions", status: "400" };
    const rs = await Promise.all([0, 1, 2].map((i) => post(s, "/v1/completions", { prompt: `p${i}`, max_tokens: 5 })));
    await post(s, "/v1/completions", { prompt: 1 });
    await post(s, "/nowhere", {});
    const after = (await getText(s, "/metrics")).text;
    const delta = (name: string, labels?: Record<string, string>) =>
      metricValue(after, name, labels) - metricValue(before.text, name, labels);
    assert.equal(delta("af_http_requests_total", ok), 3);
    assert.equal(delta("af_http_requests_total", bad), 1);
    assert.equal(delta("af_http_requests_total", { endpoint: "other", status: "404" }), 1);
    assert.equal(delta("af_http_request_duration_seconds_count", { endpoint: "/v1/completions" }), 4);
    assert.ok(delta("af_http_request_duration_seconds_sum", { endpoint: "/v1/completions" }) > 0);
    const generated = rs.reduce((a, r) => a + r.json.usage.completion_tokens, 0);
    assert.equal(delta("af_generated_tokens_total"), generated);
    assert.equal(delta("af_prompt_tokens_total"), 6);
    assert.ok(delta("af_batch_rows_count") >= 5, "one forward step per generated token at least");
    assert.ok(delta("af_batch_rows_sum") >= generated);
    // The /metrics request itself is the only one in flight while it is answered.
    assert.equal(metricValue(after, "af_http_requests_in_flight", { endpoint: "/metrics" }), 1);
    assert.equal(metricValue(after, "af_http_requests_in_flight", { endpoint: "/v1/completions" }), 0);
    assert.match(after, /# TYPE af_http_request_duration_seconds histogram/);
  });
  tiny.model.dispose();
});

Deno.test("model paths: a saved file, a run directory (phase 6, else phase 1's base), an HF folder, its ONNX graph and a compressed file serve", async () => {
  const dir = await Deno.makeTempDir({ prefix: "af-serve-" });
  const tiny = tinyCognate(3), other = tinyCognate(4);
  const file = join(dir, "m.safetensors");
  await saveModel(file, tiny.model, tiny.meta);
  const run = join(dir, "run");
  await saveModel(join(run, phase1ModelPath("standard")), other.model, other.meta);
  await writeJsonAtomic(join(run, "phase-1-cognate", "result.json"), { metrics: { base_variant: "standard" } });
  await exportHfFolder(tiny.model, tiny.meta, join(dir, "hf"));
  const textOf = async (served: ServedModel) => {
    let text = "";
    await withServer(served, {}, async (s) => {
      text = (await post(s, "/v1/completions", { prompt: "Hello", max_tokens: 10 })).json.choices[0].text;
    });
    if ("dispose" in served.model) served.model.dispose();
    return text;
  };
  const want = await textOf(tiny);
  assert.equal(await textOf(await loadServedModel(file)), want);
  assert.equal(await textOf(await loadServedModel(join(dir, "hf"))), want);
  const p1 = await loadServedModel(run);
  assert.equal(p1.file, join(run, "phase-1-cognate", "standard.safetensors"));
  assert.equal(await textOf(p1), await textOf(other));
  const same = tinyCognate(3); // the served models are disposed after each use: the same weights again
  await saveModel(join(run, "phase-6-integration", "model.safetensors"), same.model, same.meta);
  const p6 = await loadServedModel(run);
  assert.equal(p6.file, join(run, "phase-6-integration", "model.safetensors"));
  assert.equal(await textOf(p6), want);
  // The HF folder's ONNX graph through onnxruntime-node.
  const onnx = await loadServedModel(join(dir, "hf", "onnx", "model.onnx"));
  assert.equal(onnx.runtime, "onnxruntime-node (CPU)");
  assert.equal(await textOf(onnx), want);
  await onnx.dispose();
  // Phase 7's compressed file: the run's config, the decompressed weights (ternary: they change the model).
  const dense = await same.model.params.toHost();
  same.model.dispose();
  const { file: bytes } = compressToTarget(dense, { targetBytes: 1, options: STANDARD_OPTIONS.bitnet });
  const compressedPath = join(run, "phase-7-evaluation", "model.compressed");
  await Deno.mkdir(join(run, "phase-7-evaluation"), { recursive: true });
  await Deno.writeFile(compressedPath, bytes);
  const restored = createModel("cognate-standard", tiny.meta.config, 0);
  restored.params.load(loadCompressed(bytes));
  const served = await loadServedModel(compressedPath);
  assert.match(String(served.runtime), /decompressed/);
  assert.equal(await textOf(served), await textOf({ model: restored, meta: tiny.meta }));
  await assert.rejects(loadServedModel(join(dir, "missing")), /no such file or directory/);
  await Deno.mkdir(join(dir, "empty"));
  await assert.rejects(loadServedModel(join(dir, "empty")), /neither an HF-style folder .* nor a run directory/);
  await Deno.remove(dir, { recursive: true });
});

/** Reads lines of a stream until one matches `re`; returns the match (the rest keeps flowing into `sink`). */
async function waitForLine(stream: ReadableStream<Uint8Array>, re: RegExp, sink: string[]): Promise<RegExpMatchArray> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before a line matching ${re}: ${buf}`);
    buf += value;
    sink.push(value);
    const m = buf.match(re);
    if (m) {
      (async () => {
        for (;;) {
          const r = await reader.read();
          if (r.done) break;
          sink.push(r.value);
        }
      })();
      return m;
    }
  }
}

const SHIM = await npmShim();
if (!SHIM) console.log("skipping the serve-through-the-shim test: no npm-installed deno package (deno/bin.cjs) found");

/** Processes whose command line mentions `marker` (ps), waiting up to 10 s for them to go. */
async function leftRunning(marker: string): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ps = await new Deno.Command("ps", { args: ["-eo", "pid,args"], stdout: "piped" }).output();
    const left = new TextDecoder().decode(ps.stdout).split("\n").filter((l) => l.includes(marker) && !l.includes("ps -eo"));
    if (!left.length || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 200));
  }
}

// The ways README starts the server: `deno task serve`, through npm's deno shim (a SIGTERM to
// it reaches no child: the server watches for its exit), and `deno run` directly.
for (const via of ["deno run", "deno task serve", "npm shim + deno task serve"] as const) {
  Deno.test({
    name: `serve CLI (${via}): SIGTERM stops accepting, finishes the in-flight request, exits 0 and leaves no process (ps)`,
    ignore: via.startsWith("npm") && !SHIM,
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: "af-serve-cli-" });
      const tiny = tinyCognate();
      const file = join(dir, "model.safetensors");
      await saveModel(file, tiny.model, tiny.meta);
      tiny.model.dispose();
      // A long batch wait keeps the request in flight long enough to signal while it is.
      const flags = ["--model", file, "--port", "0", "--batch-wait-ms", "1500", "--backend", "wasm"];
      const [cmd, args] = via === "deno run"
        ? [Deno.execPath(), ["run", "-A", "--unstable-no-legacy-abort", "lib/deploy/server.ts", ...flags]]
        : via === "deno task serve"
        ? [Deno.execPath(), ["task", "serve", ...flags]]
        : ["node", [SHIM!, "task", "serve", ...flags]];
      const child = new Deno.Command(cmd, { args, cwd: ROOT, stdout: "piped", stderr: "piped" }).spawn();
      const out: string[] = [], err: string[] = [];
      const errDone = (async () => {
        for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) err.push(c);
      })();
      const [, url] = await waitForLine(child.stdout, /listening on (http:\/\/\S+)/, out);
      const inFlight = fetch(`${url}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt: "Hello", max_tokens: 8 }) });
      const deadline = Date.now() + 10_000;
      for (;;) {
        const m = await (await fetch(`${url}/metrics`)).text();
        if (metricValue(m, "af_http_requests_in_flight", { endpoint: "/v1/completions" }) === 1) break;
        assert.ok(Date.now() < deadline, "the completion request never showed as in flight");
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill("SIGTERM");
      const res = await inFlight;
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.choices.length, 1);
      assert.equal(typeof body.choices[0].text, "string");
      const status = await child.status;
      if (!via.startsWith("npm")) assert.equal(status.code, 0, err.join("")); // the shim itself dies of the signal
      assert.deepEqual(await leftRunning(file), [], "no server process is left running");
      await errDone;
      assert.match(err.join(""), /shutting down/);
      await assert.rejects(fetch(`${url}/healthz`), "nothing listens after the exit");
      await Deno.remove(dir, { recursive: true });
    },
  });
}

Deno.test("serve CLI: bad usage exits 2 with a message naming the flag", async () => {
  const run = async (args: string[]) => {
    const o = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "lib/deploy/server.ts", ...args],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: o.code, err: new TextDecoder().decode(o.stderr) };
  };
  const noModel = await run([]);
  assert.equal(noModel.code, 2);
  assert.match(noModel.err, /--model PATH is required/);
  const badBatch = await run(["--model", "x", "--max-batch", "0"]);
  assert.equal(badBatch.code, 2);
  assert.match(badBatch.err, /--max-batch 0: expected an integer >= 1/);
  const missing = await run(["--model", "/nonexistent/model.safetensors", "--backend", "cpu"]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /--model \/nonexistent\/model.safetensors: no such file or directory/);
});
