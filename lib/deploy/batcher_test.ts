/** The batcher: per-row budgets, stops and grammars (checked or enforced); batch composition (wait, cap, continuous admission); context guard; aborts; sampling. */
import assert from "node:assert/strict";
import type * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/mod.ts";
import { TOKENIZER } from "../text/tokens.ts";
import type { RegistryModel } from "../models/registry.ts";
import { Rng } from "../util/rng.ts";
import { argmaxAllowed, Batcher, firstStop, sampleAllowed } from "./batcher.ts";
import { scriptedModel, tinyCognate } from "./server_testing.ts";
import { cognatePresetConfig } from "../models/cognate.ts";
import { createModel } from "../models/registry.ts";

await initBackend("wasm", { quiet: true });

const row = (prompt: string, maxNew: number, extra = {}) => ({ ids: [TOKENIZER.bos, ...TOKENIZER.encode(prompt)], maxNew, ...extra });

/** Wraps a model to record the batch shape [B, T] of every forward pass. */
function recording(model: RegistryModel): { model: RegistryModel; shapes: number[][] } {
  const shapes: number[][] = [];
  return {
    shapes,
    model: {
      ...model,
      params: model.params,
      forward(ids: tf.Tensor2D) {
        shapes.push(ids.shape);
        return model.forward!(ids);
      },
    },
  };
}

Deno.test("batcher: EOS, length, stop strings and grammars end each row on its own", async () => {
  const { model } = scriptedModel(":", "ab.cd");
  const b = new Batcher(model, { context: 64, batchWaitMs: 10 });
  const noDot = () => [...Array.from({ length: 256 }, (_, i) => i).filter((i) => i !== 46), TOKENIZER.eos]; // bytes but '.', and EOS
  const [eos, length, stop, constraint, constrained] = await Promise.all([
    b.submit(row("x:", 20)),
    b.submit(row("x:", 3)),
    b.submit(row("x:", 20, { stop: ["c", "."] })),
    b.submit(row("x:", 20, { grammar: noDot })), // checked: the '.' ends the row
    b.submit(row("x:", 20, { grammar: noDot, constrained: true })), // enforced: the best allowed token (byte 0, all tied) replaces it
  ]);
  assert.deepEqual(eos, { ids: TOKENIZER.encode("ab.cd"), text: "ab.cd", finish: "stop", tokens: 5 });
  assert.deepEqual(length, { ids: TOKENIZER.encode("ab."), text: "ab.", finish: "length", tokens: 3 });
  assert.deepEqual(stop, { ids: TOKENIZER.encode("ab"), text: "ab", finish: "stop", tokens: 3 });
  assert.deepEqual(constraint, { ids: TOKENIZER.encode("ab."), text: "ab.", finish: "constraint", tokens: 3 });
  assert.deepEqual(constrained, { ids: TOKENIZER.encode("ab\0cd"), text: "ab\0cd", finish: "stop", tokens: 5 });
});

Deno.test("batcher: an idle batcher waits for concurrent rows, caps batches at maxBatch and admits rows into a running batch", async () => {
  const rec = recording(scriptedModel(":", "abcdefgh").model);
  const rows: number[] = [];
  const b = new Batcher(rec.model, { context: 64, maxBatch: 3, batchWaitMs: 30, onStep: (n) => rows.push(n) });
  const first = [b.submit(row("a:", 8)), b.submit(row("bb:", 8))];
  await new Promise((r) => setTimeout(r, 10));
  const late = [b.submit(row("c:", 2)), b.submit(row("d:", 2)), b.submit(row("e:", 2))];
  const out = await Promise.all([...first, ...late]);
  assert.deepEqual(out.map((o) => o.text), ["abcdefgh", "abcdefgh", "ab", "ab", "ab"]);
  // All five arrived within the wait; the first step ran three rows (the cap), the other two joined as rows finished.
  assert.equal(rows[0], 3);
  assert.ok(rows.every((n) => n <= 3));
  assert.equal(rows.reduce((a, n) => a + n, 0), 2 * 8 + 3 * 2, "one row-step per token written (each budget is hit before EOS)");
  assert.equal(rec.shapes[0][1], 4, "rows are right-padded to the longest prompt (BOS + 'bb:')");
  assert.equal(b.running + b.waiting, 0);
});

Deno.test("batcher: rows of a real model give the same tokens alone or batched with others", async () => {
  const tiny = tinyCognate(5);
  const prompts = ["a", "hello there", "1+1=", "zz"];
  const alone = new Batcher(tiny.model, { context: 64, maxBatch: 1, batchWaitMs: 0 });
  const together = new Batcher(tiny.model, { context: 64, maxBatch: 4, batchWaitMs: 20 });
  const a: string[] = [];
  for (const p of prompts) a.push((await alone.submit(row(p, 10))).text);
  const t = await Promise.all(prompts.map((p) => together.submit(row(p, 10))));
  assert.deepEqual(t.map((o) => o.text), a);
  tiny.model.dispose();
});

Deno.test("batcher: continuous batching on the KV cache writes what recomputing every prefix writes", async () => {
  // A wide init (0.3) so that random weights write varied bytes: a wrong row, position or mask would show.
  const model = createModel("cognate-standard", cognatePresetConfig("tiny", "standard", { initStd: 0.3 }), 8);
  const prompts = ["a", "hello there", "1+1=", "zz", "the longest prompt of them all", "q"];
  const budgets = [12, 3, 9, 1, 6, 14];
  const run = async (kvCache: boolean) => {
    const steps: number[] = [];
    const b = new Batcher(model, { context: 64, maxBatch: 3, batchWaitMs: 0, kvCache, onStep: (n) => steps.push(n) });
    assert.equal(b.kvCache, kvCache);
    // Rows arrive while others run: they join the cache mid-run and leave at their own budgets.
    const out: Promise<string>[] = [];
    for (const [i, p] of prompts.entries()) {
      out.push(b.submit(row(p, budgets[i])).then((r) => r.text));
      await new Promise((r) => setTimeout(r, 1));
    }
    return { texts: await Promise.all(out), steps };
  };
  const cached = await run(true), full = await run(false);
  assert.deepEqual(cached.texts, full.texts);
  assert.ok(cached.texts.some((t) => new Set(t).size >= 4), JSON.stringify(cached.texts));
  assert.ok(cached.steps.some((n) => n > 1), "rows shared forward passes");
  model.dispose();
});

Deno.test("batcher: the context guard, bad budgets and aborted rows", async () => {
  const { model } = scriptedModel(":", "abc");
  const b = new Batcher(model, { context: 8 });
  assert.throws(() => b.submit(row("abcde:", 3)), /7 prompt tokens \+ 3 new exceed the context of 8/);
  assert.throws(() => b.submit(row("a", 0)), /maxNew = 0/);
  assert.ok(await b.submit(row("abcde:", 2)));
  const ac = new AbortController();
  const gone = b.submit(row("x:", 3, { signal: ac.signal }));
  ac.abort(new Error("client went away"));
  await assert.rejects(gone, /client went away/);
  assert.throws(() => new Batcher(model, { context: 8, maxBatch: 0 }), /maxBatch = 0/);
});

Deno.test("batcher helpers: greedy and sampling over bytes and EOS only, earliest stop string", () => {
  const logits = new Float32Array(TOKENIZER.vocabSize).fill(0);
  logits[TOKENIZER.pad] = 19;
  logits[TOKENIZER.bos] = 18;
  logits[65] = 10;
  logits[TOKENIZER.eos] = 10;
  assert.equal(argmaxAllowed(logits), 65, "PAD and BOS are never chosen; ties go to the first id");
  const rng = new Rng(3), counts = new Map<number, number>();
  for (let i = 0; i < 2000; i++) {
    const t = sampleAllowed(logits, 0, 0.25, rng);
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  assert.deepEqual([...counts.keys()].sort((a, b) => a - b), [65, TOKENIZER.eos], "at temperature 0.25 only the two best ids are drawn");
  assert.ok(Math.abs(counts.get(65)! / 2000 - 0.5) < 0.05);
  const a = sampleAllowed(logits, 0, 5, new Rng(9)), b = sampleAllowed(logits, 0, 5, new Rng(9));
  assert.equal(a, b, "seeded");
  assert.equal(firstStop("hello world", ["wor", "lo", "zz"]), 3);
  assert.equal(firstStop("hello", ["x"]), -1);
});
