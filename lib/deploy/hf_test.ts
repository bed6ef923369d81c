/**
 * The HF folder: a round trip gives identical logits, in a standard architecture's layout (gpt2,
 * gpt_neox, llama) or our own; its tokenizer files, read by an independent implementation
 * (@huggingface/tokenizers), encode and decode as the byte tokenizer; a bad config.json is
 * rejected with the file and field named.
 */
import * as tf from "@tensorflow/tfjs";
import { Tokenizer } from "@huggingface/tokenizers";
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../backend/mod.ts";
import { type CognateConfig, cognatePresetConfig } from "../models/cognate.ts";
import { createModel, type RegistryModel } from "../models/registry.ts";
import { loadModel, type SavedModel } from "../models/io.ts";
import { logitsOf } from "../text/generate.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { Rng } from "../util/rng.ts";
import { byteLevelAlphabet, exportHfFolder, HF_FILES, loadHfFolder } from "./hf.ts";

function tinyCognate(seed: number, overrides: Partial<CognateConfig> = {}): { model: RegistryModel; meta: SavedModel } {
  const config = cognatePresetConfig("tiny", "standard", overrides);
  return { model: createModel("cognate-standard", config, seed), meta: { key: "cognate-standard", config: { ...config } } };
}

/** Logits of a fixed random batch [2, 20]. */
async function logitsFor(model: RegistryModel): Promise<Float32Array> {
  const rng = new Rng(3);
  const ids = tf.tensor2d(Int32Array.from({ length: 40 }, () => rng.int(261)), [2, 20], "int32");
  const logits = await logitsOf(model, ids);
  const data = (await logits.data()) as Float32Array;
  tf.dispose([ids, logits]);
  return data;
}

async function readConfig(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(join(dir, HF_FILES.config)));
}

async function writeConfig(dir: string, cfg: Record<string, unknown>): Promise<void> {
  await Deno.writeTextFile(join(dir, HF_FILES.config), JSON.stringify(cfg));
}

for (
  const [label, overrides] of [
    ["gpt_neox: rope, layernorm, gelu, untied", {}],
    ["gpt2: learned, layernorm, gelu, no bias (zero biases written)", { positions: "learned", bias: false }],
    ["llama: rope, rmsnorm, swiglu, bias, tied", { norm: "rmsnorm", mlp: "swiglu", tieEmbeddings: true }],
    ["our format: learned (a rope scale in the config, unused), rmsnorm, swiglu, tied, no bias", {
      positions: "learned",
      ropeScale: 2,
      norm: "rmsnorm",
      mlp: "swiglu",
      tieEmbeddings: true,
      bias: false,
    }],
    ["gpt_neox: rope with x4 interpolation", { ropeScale: 4 }],
  ] as [string, Partial<CognateConfig>][]
) {
  Deno.test(`HF folder round trip gives identical logits: ${label}`, async () => {
    await initBackend("wasm", { quiet: true });
    const { model, meta } = tinyCognate(21, overrides);
    const dir = await Deno.makeTempDir();
    const written = await exportHfFolder(model, meta, dir);
    const standard = !label.startsWith("our format");
    const files = Object.values(HF_FILES).filter((f) => standard || f !== HF_FILES.onnx);
    assert.deepEqual(written.map((p) => p.slice(dir.length + 1)).sort(), files.sort());
    const modelType = (await readConfig(dir)).model_type;
    assert.equal(modelType, standard ? label.split(":")[0] : "agent-forge-cognate");
    const back = await loadHfFolder(dir);
    assert.deepEqual(back.meta, meta);
    assert.deepEqual(await logitsFor(back.model), await logitsFor(model));
    const loaded = [back.model];
    if (!standard) {
      // Our format's weights file alone also loads through the pipeline's loadModel (same metadata).
      const viaSafetensors = await loadModel(join(dir, HF_FILES.weights));
      assert.deepEqual(await logitsFor(viaSafetensors.model), await logitsFor(model));
      loaded.push(viaSafetensors.model);
    }
    // Without the agent_forge section, the HF fields alone rebuild the same architecture.
    const cfg = await readConfig(dir);
    delete cfg.agent_forge;
    await writeConfig(dir, cfg);
    const fromHf = await loadHfFolder(dir);
    assert.deepEqual(await logitsFor(fromHf.model), await logitsFor(model));
    [model, fromHf.model, ...loaded].forEach((m) => m.dispose());
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("HF folder round trip of a memory cognate: the registry section rebuilds its extra module", async () => {
  await initBackend("wasm", { quiet: true });
  const config = cognatePresetConfig("tiny", "memory");
  const model = createModel("cognate-memory", config, 6);
  const meta: SavedModel = { key: "cognate-memory", config: { ...config } };
  const dir = await Deno.makeTempDir();
  await exportHfFolder(model, meta, dir);
  assert.equal((await readConfig(dir)).model_type, "agent-forge-cognate");
  const back = await loadHfFolder(dir);
  assert.equal(back.meta.key, "cognate-memory");
  assert.deepEqual(back.model.params.names(), model.params.names());
  assert.deepEqual(await logitsFor(back.model), await logitsFor(model));
  [model, back.model].forEach((m) => m.dispose());
  await Deno.remove(dir, { recursive: true });
});

Deno.test("config.json carries the architecture fields: gpt_neox for the default cognate, ours where none fits", async () => {
  await initBackend("wasm", { quiet: true });
  const { model, meta } = tinyCognate(1, { ropeScale: 2 });
  const dir = await Deno.makeTempDir();
  await exportHfFolder(model, meta, dir);
  const cfg = await readConfig(dir);
  const c = meta.config as unknown as CognateConfig;
  assert.equal(cfg.model_type, "gpt_neox");
  assert.deepEqual(cfg.architectures, ["GPTNeoXForCausalLM"]);
  assert.deepEqual(cfg["transformers.js_config"], { dtype: "fp32" }, "Transformers.js loads onnx/model.onnx on every device");
  assert.equal(cfg.vocab_size, c.vocabSize);
  assert.equal(cfg.hidden_size, 64);
  assert.equal(cfg.num_hidden_layers, c.nLayers);
  assert.equal(cfg.num_attention_heads, 4);
  assert.equal(cfg.intermediate_size, Math.round(c.mlpRatio * 64));
  assert.equal(cfg.max_position_embeddings, 64);
  assert.equal(cfg.rope_theta, 10000);
  assert.equal(cfg.rotary_pct, 1);
  assert.equal(cfg.use_parallel_residual, false);
  assert.equal((cfg.rope_scaling as Record<string, unknown>).factor, 2);
  assert.equal(cfg.hidden_act, "gelu_new");
  assert.equal(cfg.tie_word_embeddings, false);
  assert.deepEqual([cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id], [256, 257, 258]);
  const gen = JSON.parse(await Deno.readTextFile(join(dir, HF_FILES.generation)));
  assert.deepEqual([gen.pad_token_id, gen.bos_token_id, gen.eos_token_id, gen.max_length], [256, 257, 258, 64]);
  // The vocabulary is rounded up past the tokenizer's 261 ids: other runtimes must never pick those.
  assert.deepEqual(gen.suppress_tokens, Array.from({ length: c.vocabSize - 261 }, (_, i) => 261 + i));
  model.dispose();
  // No architecture computes learned positions with RMSNorm: our format, and config.json says why.
  const other = tinyCognate(1, { positions: "learned", norm: "rmsnorm" });
  await exportHfFolder(other.model, other.meta, dir);
  const ours = await readConfig(dir);
  assert.equal(ours.model_type, "agent-forge-cognate");
  assert.equal(ours.norm_type, "rmsnorm");
  assert.equal(ours.hidden_act, "gelu_pytorch_tanh");
  assert.match(String((ours.agent_forge as Record<string, unknown>).no_standard_architecture), /learned positions \+ rmsnorm \+ gelu/);
  other.model.dispose();
  // Nor embeddings of preceding tokens (`model.prev_tokens`).
  const prev = tinyCognate(1, { prevTokens: 2 });
  await exportHfFolder(prev.model, prev.meta, dir);
  const withPrev = await readConfig(dir);
  assert.equal(withPrev.model_type, "agent-forge-cognate");
  assert.match(
    String((withPrev.agent_forge as Record<string, unknown>).no_standard_architecture),
    /prevTokens = 2: no standard architecture embeds preceding tokens/,
  );
  const back = await loadHfFolder(dir);
  assert.ok(back.model.params.names().includes("prev2_tok"));
  back.model.dispose();
  prev.model.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tokenizer.json read by @huggingface/tokenizers encodes and decodes as the byte tokenizer", async () => {
  await initBackend("wasm", { quiet: true });
  const { model, meta } = tinyCognate(1);
  const dir = await Deno.makeTempDir();
  await exportHfFolder(model, meta, dir);
  const tok = new Tokenizer(
    JSON.parse(await Deno.readTextFile(join(dir, HF_FILES.tokenizer))),
    JSON.parse(await Deno.readTextFile(join(dir, HF_FILES.tokenizerConfig))),
  );
  const texts = [
    "Hello, world!",
    "  two  spaces\tand\ttabs\n",
    "héllo wörld — ñ",
    "grid: [[0,1],[2,3]]",
    "emoji 🙂🚀",
    "\u0000\u007f\u00ad",
  ];
  for (const s of texts) {
    assert.deepEqual(tok.encode(s).ids, [TOKENIZER.bos, ...TOKENIZER.encode(s)], JSON.stringify(s));
    assert.equal(tok.decode([TOKENIZER.bos, ...TOKENIZER.encode(s), TOKENIZER.eos], { skip_special_tokens: true }), s);
  }
  for (const [id, name] of [[256, "<pad>"], [257, "<bos>"], [258, "<eos>"], [259, "<sep>"], [260, "<mask>"]] as const) {
    assert.equal(tok.token_to_id(name), id);
  }
  assert.equal(new Set(byteLevelAlphabet()).size, 256);
  model.dispose();
  await Deno.remove(dir, { recursive: true });
});

/** Writes each mutated config.json into `dir` and checks loadHfFolder's error names the file and matches. */
async function rejects(dir: string, good: Record<string, unknown>, cases: [string, (c: Record<string, unknown>) => void, RegExp][]) {
  const file = join(dir, HF_FILES.config).replaceAll("/", "\\/").replaceAll(".", "\\.");
  for (const [label, mutate, pattern] of cases) {
    const cfg = structuredClone(good);
    mutate(cfg);
    await writeConfig(dir, cfg);
    await assert.rejects(loadHfFolder(dir), (e: Error) => {
      assert.match(e.message, new RegExp(`^${file}: `), `${label}: ${e.message}`);
      assert.match(e.message, pattern, label);
      return true;
    });
  }
}

Deno.test("a bad config.json is rejected, naming the file and the field", async () => {
  await initBackend("wasm", { quiet: true });
  // Our own format (no standard architecture has learned positions with SwiGLU).
  const { model, meta } = tinyCognate(2, { positions: "learned", mlp: "swiglu" });
  const dir = await Deno.makeTempDir();
  await exportHfFolder(model, meta, dir);
  await rejects(dir, await readConfig(dir), [
    ["hidden_size not a number", (c) => c.hidden_size = "wide", /field 'hidden_size' = "wide": expected a positive integer/],
    ["missing vocab_size", (c) => delete c.vocab_size, /field 'vocab_size' = missing/],
    ["unknown model_type", (c) => c.model_type = "bert", /field 'model_type' = "bert": expected one of "agent-forge-cognate"/],
    ["norm_type", (c) => c.norm_type = "batchnorm", /field 'norm_type' = "batchnorm"/],
    ["heads do not divide", (c) => c.num_attention_heads = 5, /field 'num_attention_heads' = 5: expected a divisor of hidden_size = 64/],
    [
      "disagrees with the registry config",
      (c) => c.num_hidden_layers = 7,
      /field 'num_hidden_layers' \(7\) disagrees with agent_forge\.config\.nLayers/,
    ],
    [
      "unknown registry key",
      (c) => (c.agent_forge as Record<string, unknown>).registry_key = "gpt9",
      /field 'agent_forge\.registry_key' = "gpt9"/,
    ],
  ]);
  // A standard architecture (gpt_neox): its own fields, and what our decoder cannot compute.
  const neox = tinyCognate(2);
  await exportHfFolder(neox.model, neox.meta, dir);
  const good = await readConfig(dir);
  await rejects(dir, good, [
    [
      "disagrees with the registry config",
      (c) => c.num_hidden_layers = 7,
      /field 'num_hidden_layers' \(7\) disagrees with agent_forge\.config/,
    ],
    ["bad rope_scaling", (c) => c.rope_scaling = { rope_type: "dynamic", factor: 2 }, /field 'rope_scaling'/],
    ["wrong architecture for the section", (c) => c.model_type = "llama", /field 'model_type' = "llama": expected "gpt_neox"/],
  ]);
  // Without our section, fields that ask for other maths are refused by name.
  const bare = structuredClone(good);
  delete bare.agent_forge;
  await rejects(dir, bare, [
    [
      "heads do not divide",
      (c) => c.num_attention_heads = 5,
      /field 'num_attention_heads' = 5: expected a divisor of the hidden size = 64/,
    ],
    ["parallel residual (Pythia)", (c) => c.use_parallel_residual = true, /field 'use_parallel_residual' = true: expected false/],
    ["exact GELU", (c) => c.hidden_act = "gelu", /field 'hidden_act' = "gelu": expected one of "gelu_new", "gelu_pytorch_tanh"/],
    ["partial rotary", (c) => (c.rotary_pct = 0.25, c.partial_rotary_factor = 0.25), /field 'rotary_pct' = 0\.25/],
  ]);
  await Deno.writeTextFile(join(dir, HF_FILES.config), "{ not json");
  await assert.rejects(loadHfFolder(dir), /config\.json: not valid JSON/);
  await Deno.remove(join(dir, HF_FILES.config));
  await assert.rejects(loadHfFolder(dir), /config\.json: not found/);
  [model, neox.model].forEach((m) => m.dispose());
  await Deno.remove(dir, { recursive: true });
});

Deno.test("weights that do not fit the config are rejected naming the weights file and parameter", async () => {
  await initBackend("wasm", { quiet: true });
  const small = tinyCognate(3); // gpt_neox
  const llama = tinyCognate(3, { norm: "rmsnorm", mlp: "swiglu" });
  const narrow = tinyCognate(3, { dModel: 32 });
  const swiglu = tinyCognate(3, { positions: "learned", mlp: "swiglu" }); // our format
  const dir = await Deno.makeTempDir(), dir2 = await Deno.makeTempDir();
  await exportHfFolder(small.model, small.meta, dir);
  await exportHfFolder(llama.model, llama.meta, dir2);
  await Deno.copyFile(join(dir2, HF_FILES.weights), join(dir, HF_FILES.weights)); // llama weights, gpt_neox config
  await assert.rejects(
    loadHfFolder(dir),
    /model\.safetensors: tensors a gpt_neox model of this config has no parameter for: model\.layers\.0\./,
  );
  await exportHfFolder(narrow.model, narrow.meta, dir2);
  await Deno.copyFile(join(dir2, HF_FILES.weights), join(dir, HF_FILES.weights)); // 32-wide weights, 64-wide config
  await assert.rejects(
    loadHfFolder(dir),
    /model\.safetensors: tensor 'gpt_neox\.layers\.0\.input_layernorm\.weight' has shape \[32\], expected \[64\]/,
  );
  // Our format: a SwiGLU model's weights under a GELU config.
  const gelu = tinyCognate(3, { positions: "learned", norm: "rmsnorm" });
  await exportHfFolder(gelu.model, gelu.meta, dir);
  await exportHfFolder(swiglu.model, swiglu.meta, dir2);
  await Deno.copyFile(join(dir2, HF_FILES.weights), join(dir, HF_FILES.weights));
  await assert.rejects(loadHfFolder(dir), /model\.safetensors: tensors the 'cognate-standard' config has no parameter for: .*l0\.fc3_w/);
  const cogment = createModel("cogment", {}, 0);
  await assert.rejects(exportHfFolder(cogment, { key: "cogment", config: {} }, dir), /model 'cogment' has no decoder architecture/);
  [small.model, llama.model, narrow.model, swiglu.model, gelu.model, cogment].forEach((m) => m.dispose());
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(dir2, { recursive: true });
});
