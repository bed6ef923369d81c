import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import type { LmWindows } from "../../datasets/sanity.ts";
import { initBackend } from "../backend/mod.ts";
import type { RegistryModel } from "../models/registry.ts";
import { TOKENIZER, windowsOf } from "../text/tokens.ts";
import { answerMetrics, majorityTokenAccuracy, unigramLoss } from "./answers.ts";

/** Hand-built windows: 2 rows of length 6 (ids are irrelevant to the baselines). */
function hand(targets: number[], mask: number[]): LmWindows {
  return { ids: new Int32Array(12), targets: Int32Array.from(targets), mask: Float32Array.from(mask), count: 2, seqLen: 6, padId: 256 };
}

// fit answer tokens (mask = 1): row 0 -> 30 30 20, row 1 -> 30 20 40; so 30 x3, 20 x2, 40 x1 (6 tokens).
// Unmasked targets are mostly 10 (7 of them), so a baseline ignoring the mask would pick 10.
const FIT = hand([10, 30, 30, 10, 20, 10, 10, 10, 30, 20, 40, 10], [0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 0]);
// w answer tokens: row 0 -> 20 20 20, row 1 -> 30 10; so 20 x3, 30 x1, 10 x1 (5 tokens).
const W = hand([30, 20, 20, 20, 10, 30, 30, 30, 40, 30, 10, 10], [0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0]);
const EMPTY = hand([30, 20, 20, 20, 10, 30, 30, 30, 40, 30, 10, 10], new Array(12).fill(0));

Deno.test("majorityTokenAccuracy: majority of fit's answer tokens, scored on w", () => {
  // On fit itself: token 30, right 3 of 6 = 0.5.
  assert.deepEqual(majorityTokenAccuracy(FIT), { token: 30, accuracy: 0.5 });
  // fit != w: fit's token 30 matches 1 of w's 5 answer tokens = 0.2 (w's own majority, 20, would score 3/5).
  assert.deepEqual(majorityTokenAccuracy(FIT, W), { token: 30, accuracy: 0.2 });
  assert.deepEqual(majorityTokenAccuracy(W), { token: 20, accuracy: 0.6 });
  // No answer tokens in w: NaN.
  const empty = majorityTokenAccuracy(FIT, EMPTY);
  assert.equal(empty.token, 30);
  assert.ok(Number.isNaN(empty.accuracy));
});

Deno.test("unigramLoss: add-one smoothed unigram of fit's answer tokens over 261 ids, cross-entropy on w", () => {
  assert.equal(TOKENIZER.vocabSize, 261);
  // Smoothed counts: 30 -> 1+3 = 4, 20 -> 1+2 = 3, 40 -> 1+1 = 2, every other id (10 included) -> 1;
  // total = 261 + 6 = 267.
  // On fit: -(3 ln(4/267) + 2 ln(3/267) + ln(2/267)) / 6 = ln 267 - (3 ln 4 + 2 ln 3 + ln 2) / 6.
  const onFit = Math.log(267) - (3 * Math.log(4) + 2 * Math.log(3) + Math.log(2)) / 6;
  assert.ok(Math.abs(unigramLoss(FIT) - onFit) < 1e-12, `${unigramLoss(FIT)} vs ${onFit}`);
  // On w (20 x3, 30, 10): -(3 ln(3/267) + ln(4/267) + ln(1/267)) / 5 = ln 267 - (3 ln 3 + ln 4) / 5.
  const onW = Math.log(267) - (3 * Math.log(3) + Math.log(4)) / 5;
  assert.ok(Math.abs(unigramLoss(FIT, W) - onW) < 1e-12, `${unigramLoss(FIT, W)} vs ${onW}`);
  assert.ok(Number.isNaN(unigramLoss(FIT, EMPTY)));
});

// Byte tokens, seqLen 8 (9 tokens a window), packed:
//  window 0: [BOS a b c EOS][BOS d e EOS] -> mask 0 0 1 1 0 0 1 1  (items A, B; B runs to the end)
//  window 1: [BOS f g h i j EOS] PAD PAD  -> mask 0 0 1 1 1 1 0 0  (item C)
//  window 2: [BOS k l EOS][BOS m n o EOS] -> mask 0 1 1 0 0 1 1 1  (items D, E; E runs to the end)
// 13 answer tokens, 5 items.
const ITEMS = [
  { prompt: "ab", answer: "c" },
  { prompt: "d", answer: "e" },
  { prompt: "fg", answer: "hij" },
  { prompt: "k", answer: "l" },
  { prompt: "m", answer: "no" },
];
const MARGIN = 10, V = TOKENIZER.vocabSize;
// Logit MARGIN on the predicted token, 0 on the other V - 1: a right token's nll is
// -log_softmax = log(1 + (V-1) e^-MARGIN); a wrong one's is MARGIN + that.
const NLL_RIGHT = Math.log1p((V - 1) * Math.exp(-MARGIN));

/**
 * A fake model that predicts each row's true next target (found by looking its ids up in `w`),
 * except at `wrong` ("window:position") and, if `wrongOffMask`, every position with mask 0.
 */
function fakeModel(w: LmWindows, wrong: Set<string>, wrongOffMask: boolean, calls: number[][]): RegistryModel {
  const T = w.seqLen, rowOf = new Map<string, number>();
  for (let r = 0; r < w.count; r++) rowOf.set(w.ids.subarray(r * T, (r + 1) * T).join(","), r);
  const forward = (ids: tf.Tensor2D) => {
    calls.push(ids.shape);
    const rows = ids.arraySync(), data = new Float32Array(rows.length * T * V);
    rows.forEach((ids, b) => {
      const r = rowOf.get(ids.join(","));
      assert.ok(r !== undefined, `unknown row ${ids}`);
      for (let t = 0; t < T; t++) {
        const i = r * T + t, tgt = w.targets[i];
        const bad = wrong.has(`${r}:${t}`) || (wrongOffMask && w.mask[i] === 0);
        data[(b * T + t) * V + (bad ? (tgt + 1) % V : tgt)] = MARGIN;
      }
    });
    return { logits: tf.tensor3d(data, [rows.length, T, V]) };
  };
  return { forward } as unknown as RegistryModel;
}

Deno.test("answerMetrics: windows of packed items have the expected layout", () => {
  const w = windowsOf(ITEMS, 8);
  assert.equal(w.count, 3);
  assert.deepEqual(Array.from(w.mask), [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1]);
});

Deno.test("answerMetrics: an oracle scores token_acc 1, exact 1, loss log(1 + (V-1) e^-margin); batches of 2", async () => {
  await initBackend("cpu", { quiet: true });
  const w = windowsOf(ITEMS, 8), calls: number[][] = [];
  const before = tf.memory().numTensors;
  const m = await answerMetrics(fakeModel(w, new Set(), false, calls), w, 2);
  assert.equal(tf.memory().numTensors, before, "answerMetrics leaks tensors");
  assert.deepEqual(calls, [[2, 8], [1, 8]]);
  assert.equal(m.tokens, 13);
  assert.equal(m.items, 5);
  assert.deepEqual(m.correct, [true, true, true, true, true]);
  assert.equal(m.token_acc, 1);
  assert.equal(m.exact, 1);
  assert.ok(NLL_RIGHT > 0.01 && Math.abs(m.loss - NLL_RIGHT) < 1e-5, `loss ${m.loss} vs ${NLL_RIGHT}`);
});

Deno.test("answerMetrics: one wrong answer token fails exactly its item; mask-0 positions are ignored", async () => {
  await initBackend("cpu", { quiet: true });
  const w = windowsOf(ITEMS, 8);
  // Loss: 12 right + 1 wrong over 13 tokens = (12 NLL_RIGHT + MARGIN + NLL_RIGHT) / 13.
  const loss = NLL_RIGHT + MARGIN / 13;
  // [wrong position, the item it belongs to]: B's EOS (end of window 0, first batch),
  // C's first answer token (window 1), E's EOS (end of window 2, second batch), D's EOS (mid-window).
  const cases: [string, number][] = [["0:7", 1], ["1:2", 2], ["2:7", 4], ["2:2", 3]];
  for (const [pos, item] of cases) {
    for (const wrongOffMask of [false, true]) {
      const m = await answerMetrics(fakeModel(w, new Set([pos]), wrongOffMask, []), w, 2);
      const what = `wrong at ${pos}, wrongOffMask ${wrongOffMask}`;
      assert.equal(m.tokens, 13, what);
      assert.equal(m.items, 5, what);
      assert.deepEqual(m.correct, [0, 1, 2, 3, 4].map((k) => k !== item), what);
      assert.equal(m.token_acc, 12 / 13, what);
      assert.equal(m.exact, 4 / 5, what);
      assert.ok(Math.abs(m.loss - loss) < 1e-4, `${what}: loss ${m.loss} vs ${loss}`);
    }
  }
});

Deno.test("answerMetrics: no answer tokens gives NaN metrics and no items", async () => {
  await initBackend("cpu", { quiet: true });
  const w = windowsOf(ITEMS, 8);
  const blind = { ...w, mask: new Float32Array(w.mask.length) };
  const m = await answerMetrics(fakeModel(w, new Set(), false, []), blind, 2);
  assert.equal(m.tokens, 0);
  assert.equal(m.items, 0);
  assert.deepEqual(m.correct, []);
  assert.ok(Number.isNaN(m.loss) && Number.isNaN(m.token_acc) && Number.isNaN(m.exact));
});
