/**
 * The exported HF folder as its users run it: Transformers.js (`@huggingface/transformers`, ONNX
 * Runtime underneath) loads it from the local path, offline, tokenizes with its tokenizer.json and
 * generates greedily, batched with left padding. Its tokens must equal our own greedy decoding
 * (KV cache) for every architecture mapping (gpt_neox, gpt2, llama) and both tokenizers (bytes,
 * GPT-2 BPE). Skipped, with the reason printed, only when Transformers.js cannot load here.
 */
import assert from "node:assert/strict";
import { basename, dirname } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { type CognateConfig, cognatePresetConfig } from "../models/cognate.ts";
import { createModel } from "../models/registry.ts";
import type { CachedModel } from "../nn/kv_cache.ts";
import { greedyCached } from "../text/generate.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { gpt2Tokenizer } from "../../datasets/tokenizers/gpt2.ts";
import type { Tokenizer } from "../../datasets/tokenizers/types.ts";
import { exportHfFolder, type HfTokenizer } from "./hf.ts";

type Tjs = typeof import("@huggingface/transformers");
let tjs: Tjs | undefined;
try {
  tjs = await import("@huggingface/transformers");
  tjs.env.allowRemoteModels = false; // offline: only the folder on disk
  tjs.env.allowLocalModels = true;
} catch (e) {
  console.error(`transformers_js_test: @huggingface/transformers cannot load here, tests skipped: ${(e as Error).message}`);
}

const PROMPTS = ["The cat sat on the", "1+1=", "grids: [[0, 1], [2, 3]] ->"];
const NEW_TOKENS = 12;

const CASES: [string, HfTokenizer, Partial<CognateConfig>][] = [
  ["gpt_neox", "byte", {}],
  ["gpt2", "byte", { positions: "learned", bias: false, tieEmbeddings: true }],
  ["llama", "byte", { norm: "rmsnorm", mlp: "swiglu", bias: false }],
  ["gpt2", "gpt2", { positions: "learned", vocabSize: 50257, dModel: 32, maxSeqLen: 64 }],
  ["llama", "gpt2", { norm: "rmsnorm", mlp: "swiglu", vocabSize: 50257, dModel: 32, maxSeqLen: 64 }],
];

for (const [arch, tokenizer, overrides] of CASES) {
  Deno.test({
    name: `Transformers.js loads the exported folder offline and decodes greedily as we do: ${arch}, ${tokenizer} tokenizer`,
    ignore: !tjs,
    fn: async () => {
      await initBackend("wasm", { quiet: true });
      // A wide init (0.3) so that random weights write varied tokens: a mismatch anywhere shows.
      const config = cognatePresetConfig("tiny", "standard", { initStd: 0.3, ...overrides });
      const model = createModel("cognate-standard", config, 17);
      const root = await Deno.makeTempDir();
      const dir = `${root}/model`;
      await exportHfFolder(model, { key: "cognate-standard", config: { ...config } }, dir, { tokenizer });
      assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/config.json`)).model_type, arch);

      tjs!.env.localModelPath = dirname(dir) + "/";
      const tok = await tjs!.AutoTokenizer.from_pretrained(basename(dir));
      const theirs = await tjs!.AutoModelForCausalLM.from_pretrained(basename(dir), { dtype: "fp32", device: "cpu" });
      const ours: Tokenizer = tokenizer === "gpt2" ? await gpt2Tokenizer() : TOKENIZER;
      const rows = PROMPTS.map((p) => [...(tokenizer === "byte" ? [TOKENIZER.bos] : []), ...ours.encode(p)]);

      // Same prompt ids: their tokenizer (left-padded batch) against ours.
      const enc = tok(PROMPTS, { padding: true });
      const ids = (enc.input_ids.tolist() as bigint[][]).map((r) => r.map(Number));
      const mask = (enc.attention_mask.tolist() as bigint[][]).map((r) => r.map(Number));
      ids.forEach((r, i) => assert.deepEqual(r.filter((_, j) => mask[i][j] === 1), rows[i], `prompt ${i} ids`));

      const out = await theirs.generate({ ...enc, max_new_tokens: NEW_TOKENS, do_sample: false }) as { tolist(): bigint[][] };
      const eos = tokenizer === "gpt2" ? 50256 : TOKENIZER.eos;
      const generated = out.tolist().map((r) => {
        const tail = r.slice(ids[0].length).map(Number);
        const stop = tail.indexOf(eos);
        return stop < 0 ? tail : tail.slice(0, stop);
      });
      const tokInfo = tokenizer === "gpt2" ? { ...ours, eos, pad: eos } as Tokenizer : TOKENIZER;
      const mine = await greedyCached(model as unknown as CachedModel, rows, NEW_TOKENS, tokInfo);
      assert.deepEqual(generated, mine);
      // Varied output, not one repeated token or an immediate EOS: the comparison covers real decoding.
      assert.ok(mine.some((r) => new Set(r).size >= 4), JSON.stringify(mine));
      console.log(`transformers.js ${arch}/${tokenizer}: ${mine.map((r) => r.length).join("+")} tokens identical`);
      await theirs.dispose();
      model.dispose();
      await Deno.remove(root, { recursive: true });
    },
  });
}
