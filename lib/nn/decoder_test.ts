/** The decoder's embeddings of preceding tokens against a plain-TypeScript reference, and their gradient against finite differences. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { assertClose, gradCheck } from "../testing/gradcheck.ts";
import { Decoder, type DecoderConfig, MAX_PREV_TOKENS, prevTokenEmbedding, SMALL_DECODER, tokensBefore } from "./decoder.ts";

const cfg: DecoderConfig = {
  ...SMALL_DECODER,
  vocabSize: 11,
  dModel: 8,
  nHeads: 2,
  nLayers: 1,
  maxSeqLen: 16,
  positions: "rope",
  prevTokens: 2,
};
const IDS = [[3, 7, 7, 0, 10], [1, 2, 3, 4, 5]]; // [B = 2, T = 5]

Deno.test("preceding-token embeddings: tok[ids[t]] + prev1_tok[ids[t - 1]] + prev2_tok[ids[t - 2]], none before the row unless a chunk's context is given", async () => {
  await initBackend("cpu", { quiet: true });
  const d = new Decoder(cfg, 3);
  const host = await d.params.toHost();
  const tok = host.get("tok")!.data, p1 = host.get("prev1_tok")!.data, p2 = host.get("prev2_tok")!.data, C = cfg.dModel;
  const want = IDS.flatMap((row) =>
    row.flatMap((id, t) =>
      Array.from({ length: C }, (_, c) => tok[id * C + c] + (t >= 1 ? p1[row[t - 1] * C + c] : 0) + (t >= 2 ? p2[row[t - 2] * C + c] : 0))
    )
  );
  const ids = tf.tensor2d(IDS, [2, 5], "int32");
  assertClose(await d.embed(ids).data(), want, 1e-6, 0, "embed");
  // The last three tokens as a chunk whose two predecessors are given: the same rows as the whole sequence's.
  const chunk = tf.slice(ids, [0, 2], [2, 3]) as tf.Tensor2D;
  const whole = await tf.slice(d.embed(ids), [0, 2, 0], [2, 3, C]).data();
  assertClose(await d.embed(chunk, 2, tf.slice(ids, [0, 0], [2, 2]) as tf.Tensor2D).data(), whole, 1e-6, 0, "chunk");
  // Without them the chunk's first token has no predecessors: the plain token row.
  const bare = await d.embed(chunk, 2).data();
  assertClose(bare.slice(0, C), tok.slice(IDS[0][2] * C, IDS[0][2] * C + C), 1e-6, 0, "chunk start");
  assert.deepEqual(Array.from(await tokensBefore(ids, 1).data()), [-1, 3, 7, 7, 0, -1, 1, 2, 3, 4]);
  assert.deepEqual(Array.from(await tokensBefore(ids, 2).data()), [-1, -1, 3, 7, 7, -1, -1, 1, 2, 3]);
  assert.throws(() => tokensBefore(ids, 2, tf.tensor2d([[1], [2]], [2, 1], "int32")), /1 context tokens, 2 needed/);
  d.params.dispose();
});

Deno.test("a preceding-token table: its gradient matches finite differences, rows of no predecessor get none", async () => {
  await initBackend("cpu", { quiet: true });
  const before = tf.tensor2d([[-1, 3, 3, 0], [-1, 9, 2, 10]], [2, 4], "int32");
  const table = tf.tensor2d(Array.from({ length: 11 * 4 }, (_, i) => Math.sin(i)), [11, 4]);
  const probe = tf.tensor3d(Array.from({ length: 2 * 4 * 4 }, (_, i) => Math.cos(3 * i)), [2, 4, 4]);
  const f = (w: tf.Tensor) => tf.sum(tf.mul(prevTokenEmbedding(w as tf.Tensor2D, before), probe)) as tf.Scalar;
  await gradCheck(f, table, { what: "d/dprev_tok", samples: 44 });
  const g = await tf.grad(f)(table).data();
  for (const unused of [1, 4, 5, 6, 7, 8]) assertClose(g.slice(unused * 4, unused * 4 + 4), [0, 0, 0, 0], 0, 0, `row ${unused}`);
});

Deno.test("a decoder with prevTokens k has k tables; without, none; more than MAX_PREV_TOKENS is refused", () => {
  const d = new Decoder(cfg, 1), plain = new Decoder({ ...cfg, prevTokens: 0 }, 1);
  assert.deepEqual(d.params.names().filter((n) => n.startsWith("prev")), ["prev1_tok", "prev2_tok"]);
  assert.deepEqual(d.params.get("prev2_tok").shape, [cfg.vocabSize, cfg.dModel]);
  assert.ok(!plain.params.names().some((n) => n.startsWith("prev")));
  assert.throws(() => new Decoder({ ...cfg, prevTokens: MAX_PREV_TOKENS + 1 }, 1), /decoder.prevTokens = 5: expected an integer in 0..4/);
  d.params.dispose();
  plain.params.dispose();
});
