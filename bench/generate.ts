/**
 * `deno task bench:generate`: greedy decoding speed of one model, four ways, in one run:
 * - ours on wasm, recomputing the whole prefix for every token (no KV cache);
 * - ours on wasm with the KV cache (lib/nn/kv_cache.ts);
 * - the exported HF folder through Transformers.js (@huggingface/transformers, ONNX Runtime underneath);
 * - the folder's onnx/model.onnx through onnxruntime-node directly (our own loop over past key values).
 *
 * Every way writes exactly `--new` tokens per prompt (EOS does not stop it), and the tokens are
 * compared: the table says whether all four wrote the same ones. Reported: generated tokens per
 * second (batch x new tokens over the wall time, prefill included), the median of `--reps` runs
 * after one warm-up, for each batch size.
 *
 * Options: --model PATH (a model file, run directory or HF folder; default: the small preset's
 *          standard cognate, untrained, seed 0)  --prompt-tokens N (default 32)  --new N (default 64)
 *          --batch 1,8  --reps N (default 3)  --threads N (onnxruntime intra-op threads; default 2)
 *          --json FILE
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { describeBackend, initBackend } from "../lib/backend/mod.ts";
import { cognatePresetConfig } from "../lib/models/cognate.ts";
import { createModel, type RegistryModel } from "../lib/models/registry.ts";
import type { SavedModel } from "../lib/models/io.ts";
import { hasKvCache } from "../lib/nn/kv_cache.ts";
import { exportHfFolder, HF_FILES } from "../lib/deploy/hf.ts";
import { loadServedModel } from "../lib/deploy/server.ts";
import { greedyCached, greedyFull } from "../lib/text/generate.ts";
import { TOKENIZER } from "../lib/text/tokens.ts";
import { median } from "../lib/compress/inference.ts";
import { writeJsonAtomic } from "../lib/util/fs.ts";
import { Rng } from "../lib/util/rng.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string" },
    "prompt-tokens": { type: "string", default: "32" },
    new: { type: "string", default: "64" },
    batch: { type: "string", default: "1,8" },
    reps: { type: "string", default: "3" },
    threads: { type: "string", default: "2" },
    json: { type: "string" },
  },
});
const intOpt = (name: keyof typeof values, min: number) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} ${values[name]}: expected an integer >= ${min}`);
  return n;
};
const promptTokens = intOpt("prompt-tokens", 1), newTokens = intOpt("new", 1), reps = intOpt("reps", 1), threads = intOpt("threads", 1);
const batches = values.batch!.split(",").map((b) => {
  const n = Number(b);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--batch ${values.batch}: expected integers >= 1 separated by commas`);
  return n;
});

const backend = await initBackend("wasm", { quiet: true });
let model: RegistryModel, meta: SavedModel;
if (values.model) {
  const loaded = await loadServedModel(values.model);
  if (!("params" in loaded.model)) throw new Error(`--model ${values.model}: an ONNX file; give a model file, run directory or HF folder`);
  ({ model, meta } = { model: loaded.model, meta: loaded.meta });
} else {
  const config = cognatePresetConfig("small", "standard");
  meta = { key: "cognate-standard", config: { ...config } };
  model = createModel("cognate-standard", config, 0);
}
const context = Number(meta.config.maxSeqLen);
if (promptTokens + 1 + newTokens > context) {
  throw new Error(`--prompt-tokens ${promptTokens} + BOS + --new ${newTokens} exceed the model's context of ${context}`);
}
if (!hasKvCache(model)) throw new Error(`model '${meta.key}' has no KV cache (only the decoder and the standard cognate do)`);
const params = model.params.count();
console.log(`bench:generate: ${meta.key}, ${(params / 1e6).toFixed(2)}M parameters, context ${context}; ${describeBackend(backend)}`);
console.log(
  `prompts of ${promptTokens} bytes + BOS, ${newTokens} new tokens each, median of ${reps} after a warm-up; onnxruntime threads ${threads}`,
);

// Exactly newTokens per row: a tokenizer view whose EOS never occurs.
const noEos = {
  ...TOKENIZER,
  eos: -1,
  encode: (s: string) => TOKENIZER.encode(s),
  decode: (ids: ArrayLike<number>) => TOKENIZER.decode(ids),
};
const rng = new Rng(1);
const WORDS = ["the", "cat", "sat", "on", "a", "mat", "12", "+", "7", "=", "grid", "red", "blue"];
const prompt = () => {
  let p = "";
  while (p.length < promptTokens) p += WORDS[rng.int(WORDS.length)] + " ";
  return p.slice(0, promptTokens);
};

// The HF folder (onnx/model.onnx inside) that Transformers.js and onnxruntime load.
const root = await Deno.makeTempDir({ prefix: "af-bench-generate-" });
const hfDir = join(root, "model");
await exportHfFolder(model, meta, hfDir);
const tjs = await import("@huggingface/transformers");
tjs.env.allowRemoteModels = false;
tjs.env.localModelPath = root + "/";
const tjsTok = await tjs.AutoTokenizer.from_pretrained("model");
const tjsModel = await tjs.AutoModelForCausalLM.from_pretrained("model", {
  dtype: "fp32",
  device: "cpu",
  session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
});
const ort = await import("onnxruntime-node");
const session = await ort.InferenceSession.create(join(hfDir, HF_FILES.onnx), { intraOpNumThreads: threads, interOpNumThreads: 1 });
const cfg = meta.config as { nHeads: number; dModel: number; nLayers: number; vocabSize: number };
const [H, hd, L, V] = [cfg.nHeads, cfg.dModel / cfg.nHeads, cfg.nLayers, cfg.vocabSize];

/** Greedy decoding through onnxruntime: a left-padded prefill, then one token per row per call with past key values. */
async function ortGreedy(rows: number[][]): Promise<number[][]> {
  const B = rows.length, T = Math.max(...rows.map((r) => r.length));
  const i64 = (v: number[], dims: number[]) => new ort.Tensor("int64", BigInt64Array.from(v, BigInt), dims);
  const mask = rows.map((r) => [...Array(T - r.length).fill(0), ...Array(r.length).fill(1)]);
  let feeds: Record<string, import("onnxruntime-node").Tensor> = {
    input_ids: i64(rows.flatMap((r) => [...Array(T - r.length).fill(TOKENIZER.pad), ...r]), [B, T]),
    attention_mask: i64(mask.flat(), [B, T]),
    position_ids: i64(rows.flatMap((r) => [...Array(T - r.length).fill(0), ...r.map((_, i) => i)]), [B, T]),
  };
  for (let l = 0; l < L; l++) {
    for (const n of ["key", "value"]) feeds[`past_key_values.${l}.${n}`] = new ort.Tensor("float32", new Float32Array(0), [B, H, 0, hd]);
  }
  const out = rows.map(() => [] as number[]);
  const pos = rows.map((r) => r.length);
  for (let k = 0; k < newTokens; k++) {
    const res = await session.run(feeds);
    const t = res.logits.dims[1] as number, data = res.logits.data as Float32Array;
    const next = rows.map((_, b) => {
      const off = (b * t + t - 1) * V;
      let best = 0;
      for (let i = 1; i < TOKENIZER.vocabSize; i++) if (data[off + i] > data[off + best]) best = i;
      return best;
    });
    next.forEach((tok, b) => out[b].push(tok));
    mask.forEach((m) => m.push(1));
    feeds = {
      input_ids: i64(next, [B, 1]),
      attention_mask: i64(mask.flat(), [B, mask[0].length]),
      position_ids: i64(pos.map((p) => p + k), [B, 1]),
    };
    for (let l = 0; l < L; l++) for (const n of ["key", "value"]) feeds[`past_key_values.${l}.${n}`] = res[`present.${l}.${n}`];
  }
  return out;
}

/** Greedy decoding through Transformers.js, left-padded batch, EOS ignored. */
async function tjsGreedy(prompts: string[]): Promise<number[][]> {
  const enc = tjsTok(prompts, { padding: true });
  const T = enc.input_ids.dims[1] as number;
  // eos_token_id null: no stopping at EOS (the generation config is merged with these fields).
  const opts = { ...enc, max_new_tokens: newTokens, do_sample: false, eos_token_id: null as unknown as number[] };
  const res = await tjsModel.generate(opts) as {
    tolist(): bigint[][];
  };
  return res.tolist().map((r) => r.slice(T).map(Number));
}

const WAYS = [
  "ours, wasm, no KV cache",
  "ours, wasm, KV cache",
  "Transformers.js (onnxruntime-node)",
  "onnxruntime-node, our loop",
] as const;
type Way = typeof WAYS[number];

interface Row {
  batch: number;
  way: Way;
  tokensPerSecond: number;
  seconds: number[];
}
const results: Row[] = [];
const agree: Record<number, boolean> = {};
for (const B of batches) {
  const prompts = Array.from({ length: B }, prompt);
  const rows = prompts.map((p) => [TOKENIZER.bos, ...TOKENIZER.encode(p)]);
  const run: Record<Way, () => Promise<number[][]>> = {
    "ours, wasm, no KV cache": () => greedyFull(model, rows, newTokens, noEos),
    "ours, wasm, KV cache": () => greedyCached(model as Parameters<typeof greedyCached>[0], rows, newTokens, noEos),
    "Transformers.js (onnxruntime-node)": () => tjsGreedy(prompts),
    "onnxruntime-node, our loop": () => ortGreedy(rows),
  };
  const tokens: number[][][] = [];
  for (const way of WAYS) {
    tokens.push(await run[way]()); // warm-up, and the tokens compared below
    const seconds: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await run[way]();
      seconds.push((performance.now() - t0) / 1000);
    }
    const s = median(seconds);
    results.push({ batch: B, way, tokensPerSecond: (B * newTokens) / s, seconds });
    console.log(`  batch ${B}, ${way}: ${((B * newTokens) / s).toFixed(1)} tokens/s (${s.toFixed(3)} s)`);
  }
  agree[B] = tokens.every((t) => JSON.stringify(t) === JSON.stringify(tokens[0]));
  if (!agree[B]) console.log(`  batch ${B}: the four ways wrote different tokens`);
}

console.log("\n| batch | way | tokens/s | x no-cache |");
console.log("| ----: | --- | -------: | ---------: |");
for (const r of results) {
  const base = results.find((x) => x.batch === r.batch && x.way === WAYS[0])!.tokensPerSecond;
  console.log(`| ${r.batch} | ${r.way} | ${r.tokensPerSecond.toFixed(1)} | ${(r.tokensPerSecond / base).toFixed(2)} |`);
}
console.log(`\nsame tokens in all four ways: ${batches.map((b) => `batch ${b}: ${agree[b] ? "yes" : "NO"}`).join(", ")}`);
if (values.json) {
  await writeJsonAtomic(values.json, { model: meta.key, params, promptTokens, newTokens, reps, threads, results, agree });
}
await tjsModel.dispose();
await session.release();
model.dispose();
tf.disposeVariables();
await Deno.remove(root, { recursive: true });
