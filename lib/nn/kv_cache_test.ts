/**
 * The KV cache against the plain forward pass: ragged prefill, one-token steps, rows joining and
 * leaving mid-run (continuous batching) and compaction all give each row the logits it gets alone.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/mod.ts";
import { assertClose } from "../testing/gradcheck.ts";
import { Rng } from "../util/rng.ts";
import { Decoder, type DecoderConfig, SMALL_DECODER } from "./decoder.ts";
import { KvCache } from "./kv_cache.ts";

const TOL = 2e-4; // f32: different summation orders of the same products
const base: DecoderConfig = { ...SMALL_DECODER, vocabSize: 40, dModel: 32, maxSeqLen: 32, initStd: 0.2 };
const VARIANTS: Record<string, DecoderConfig> = {
  "learned + layernorm + gelu": base,
  "rope + rmsnorm + swiglu, no bias, tied": {
    ...base,
    positions: "rope",
    norm: "rmsnorm",
    mlp: "swiglu",
    bias: false,
    tieEmbeddings: true,
  },
  "rope, interpolated x2": { ...base, positions: "rope", ropeScale: 2 },
  "rope + embeddings of 3 preceding tokens": { ...base, positions: "rope", prevTokens: 3 },
};

/** Logits of the last token of `row` from the plain forward pass of the row alone. [V] */
function alone(model: Decoder, row: number[]): Float32Array {
  return tf.tidy(() => {
    const { logits } = model.forward(tf.tensor2d([row], [1, row.length], "int32"));
    return logits.slice([0, row.length - 1, 0], [1, 1, -1]).dataSync() as Float32Array;
  });
}

function randomRow(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => Math.floor(rng.next() * base.vocabSize));
}

for (const backend of ["cpu", "wasm"] as const) {
  for (const [name, cfg] of Object.entries(VARIANTS)) {
    Deno.test(`KV cache: ragged prefill and decoding equal each row alone (${name}) [${backend}]`, async () => {
      await initBackend(backend, { quiet: true });
      const model = new Decoder(cfg, 3);
      const rng = new Rng(7);
      const rows = [randomRow(rng, 5), randomRow(rng, 1), randomRow(rng, 9)];
      const cache = new KvCache();
      cache.addRows(rows.length);
      let last = cache.feed(model, rows, 0);
      for (let step = 0; step < 6; step++) {
        const got = await last.data();
        rows.forEach((r, i) =>
          assertClose(
            got.subarray(i * cfg.vocabSize, (i + 1) * cfg.vocabSize) as Float32Array,
            alone(model, r),
            TOL,
            0,
            `step ${step} row ${i}`,
          )
        );
        last.dispose();
        const next = rows.map(() => Math.floor(rng.next() * cfg.vocabSize));
        next.forEach((t, i) => rows[i].push(t));
        last = cache.feed(model, next.map((t) => [t]));
      }
      last.dispose();
      if (cache.slots !== 9 + 6) throw new Error(`expected 15 slots (longest prompt + 6 steps), got ${cache.slots}`);
      cache.dispose();
      model.params.dispose();
    });
  }

  Deno.test(`KV cache: rows join, leave and compact mid-run (continuous batching) [${backend}]`, async () => {
    await initBackend(backend, { quiet: true });
    const cfg = { ...VARIANTS["rope + rmsnorm + swiglu, no bias, tied"], prevTokens: 2 }; // rows that join read their own preceding tokens
    const model = new Decoder(cfg, 4);
    const rng = new Rng(11);
    const rows = [randomRow(rng, 3), randomRow(rng, 6)];
    const cache = new KvCache();
    cache.addRows(2);
    cache.feed(model, rows).dispose();
    // A new request joins: it is prefilled while the others decode one token.
    const joined = randomRow(rng, 7);
    rows.push(joined);
    cache.addRows(1);
    const step = [[1], [2], joined];
    rows[0].push(1);
    rows[1].push(2);
    let last = cache.feed(model, step);
    let got = await last.data();
    last.dispose();
    rows.forEach((r, i) =>
      assertClose(got.subarray(i * cfg.vocabSize, (i + 1) * cfg.vocabSize) as Float32Array, alone(model, r), TOL, 0, `joined row ${i}`)
    );
    // Row 0 finishes; the slots only it used are padding in every remaining row and go.
    cache.keepRows([1, 2]);
    rows.shift();
    const before = cache.slots;
    const freed = cache.compact();
    if (freed !== 0) throw new Error(`row 1's prompt is longer than row 0's; nothing should be freed, got ${freed}`);
    if (cache.slots !== before) throw new Error("compact changed the slot count without freeing slots");
    rows[0].push(5);
    rows[1].push(6);
    last = cache.feed(model, [[5], [6]]);
    got = await last.data();
    last.dispose();
    rows.forEach((r, i) =>
      assertClose(got.subarray(i * cfg.vocabSize, (i + 1) * cfg.vocabSize) as Float32Array, alone(model, r), TOL, 0, `after leave row ${i}`)
    );
    // Keep only the late joiner: the slots where it was padding (the first rows' chunk) are freed.
    cache.keepRows([1]);
    rows.shift();
    const slots = cache.slots;
    const dropped = cache.compact();
    if (dropped === 0 || cache.slots !== slots - dropped || cache.slots !== rows[0].length) {
      throw new Error(`compact should leave exactly the row's ${rows[0].length} tokens, has ${cache.slots} (dropped ${dropped})`);
    }
    last = cache.feed(model, [[9]]);
    rows[0].push(9);
    assertClose(await last.data() as Float32Array, alone(model, rows[0]), TOL, 0, "after compact");
    last.dispose();
    cache.dispose();
    model.params.dispose();
  });
}

Deno.test("KV cache: errors name what is wrong", async () => {
  await initBackend("cpu", { quiet: true });
  const model = new Decoder(base, 1);
  const cache = new KvCache();
  cache.addRows(2);
  const expectThrow = (f: () => unknown, want: string) => {
    try {
      f();
    } catch (e) {
      if (!(e as Error).message.includes(want)) throw new Error(`expected '${want}', got '${(e as Error).message}'`);
      return;
    }
    throw new Error(`expected an error with '${want}'`);
  };
  expectThrow(() => cache.feed(model, [[1]]), "1 token lists for 2 rows");
  expectThrow(() => cache.feed(model, [[1], []]), "at least one new token");
  expectThrow(() => cache.keepRows([5]), "no row 5");
  expectThrow(() => cache.feed(model, [Array(40).fill(1), [1]]), "exceeds maxSeqLen 32");
  cache.dispose();
  model.params.dispose();
});
