/**
 * HF folders for checking our exports with PyTorch `transformers` on a machine that has it (the
 * GPU machine; see bench/hf_torch_check.py, run by bench/gpu_compare.sh). For each architecture
 * mapping (gpt_neox, gpt2, llama) with the byte tokenizer, and llama with GPT-2 BPE, writes
 * DIR/<name>/ (the exported folder) and DIR/<name>/expected.json: the prompts, their ids, our
 * greedy tokens (KV cache) and our logits at each prompt's last position.
 *
 *   deno run -A bench/hf_fixtures.ts DIR
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { initBackend } from "../lib/backend/mod.ts";
import { type CognateConfig, cognatePresetConfig } from "../lib/models/cognate.ts";
import { createModel } from "../lib/models/registry.ts";
import type { CachedModel } from "../lib/nn/kv_cache.ts";
import { exportHfFolder, type HfTokenizer } from "../lib/deploy/hf.ts";
import { greedyCached, logitsOf } from "../lib/text/generate.ts";
import { TOKENIZER } from "../lib/text/tokens.ts";
import { gpt2Tokenizer } from "../datasets/tokenizers/gpt2.ts";
import type { Tokenizer } from "../datasets/tokenizers/types.ts";
import { writeJsonAtomic } from "../lib/util/fs.ts";

const dir = Deno.args[0];
if (!dir) throw new Error("usage: deno run -A bench/hf_fixtures.ts DIR");
await initBackend("wasm", { quiet: true });
const PROMPTS = ["The cat sat on the", "1+1=", "grids: [[0, 1], [2, 3]] ->"];
const NEW = 12;
const CASES: [string, HfTokenizer, Partial<CognateConfig>][] = [
  ["gpt_neox-byte", "byte", {}],
  ["gpt2-byte", "byte", { positions: "learned", bias: false, tieEmbeddings: true }],
  ["llama-byte", "byte", { norm: "rmsnorm", mlp: "swiglu", bias: true }],
  ["llama-gpt2", "gpt2", { norm: "rmsnorm", mlp: "swiglu", vocabSize: 50257, dModel: 32 }],
];
for (const [name, tokenizer, overrides] of CASES) {
  const config = cognatePresetConfig("tiny", "standard", { initStd: 0.3, ...overrides });
  const model = createModel("cognate-standard", config, 17);
  const out = join(dir, name);
  await exportHfFolder(model, { key: "cognate-standard", config: { ...config } }, out, { tokenizer });
  const gpt2 = await gpt2Tokenizer();
  const encode = (p: string) => tokenizer === "gpt2" ? gpt2.encode(p) : [TOKENIZER.bos, ...TOKENIZER.encode(p)];
  const ids = PROMPTS.map(encode);
  const eos = tokenizer === "gpt2" ? 50256 : TOKENIZER.eos;
  const info = { ...(tokenizer === "gpt2" ? { vocabSize: 50257, pad: eos } : TOKENIZER), eos } as Tokenizer;
  const tokens = [];
  const logits = [];
  for (const row of ids) {
    tokens.push((await greedyCached(model as unknown as CachedModel, [row], NEW, info))[0]);
    const x = tf.tensor2d([row], [1, row.length], "int32");
    const l = await logitsOf(model, x);
    logits.push(Array.from((await l.data()).slice((row.length - 1) * config.vocabSize)));
    tf.dispose([x, l]);
  }
  await writeJsonAtomic(join(out, "expected.json"), { prompts: PROMPTS, ids, tokens, eos, last_logits: logits, new_tokens: NEW });
  console.log(`${name}: ${out}`);
  model.dispose();
}
