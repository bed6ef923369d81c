/**
 * Standard Hugging Face architectures for our decoder configs: which one computes exactly what a
 * config computes, its config.json fields, and our parameters under its names and layouts (and back).
 *
 * | our config                               | model_type | transformers class   |
 * | ---------------------------------------- | ---------- | -------------------- |
 * | learned positions + LayerNorm + GELU     | gpt2       | GPT2LMHeadModel      |
 * | RoPE + LayerNorm + GELU (default cognate)| gpt_neox   | GPTNeoXForCausalLM   |
 * | RoPE + RMSNorm + SwiGLU                  | llama      | LlamaForCausalLM     |
 *
 * Every other combination (learned positions with RMSNorm or SwiGLU, RoPE with RMSNorm + GELU or
 * LayerNorm + SwiGLU) has no standard architecture: `hfArchOf` says so and the export keeps our own
 * format. GELU is the tanh approximation in all of ours (`gelu_new` in transformers). GPT-2 and
 * GPT-NeoX always carry biases and LayerNorm biases: a config without biases is written with zero
 * biases, which computes the same. GPT-NeoX runs attention and MLP one after the other here
 * (`use_parallel_residual: false`) and rotates every head dimension (`rotary_pct: 1`).
 *
 * Layouts: torch.nn.Linear stores weight [out, in], the transpose of ours; GPT-2's Conv1D stores
 * [in, out] like ours. GPT-NeoX's fused query_key_value interleaves per head: output row
 * h * 3hd + j * hd + d is projection j (q, k, v) of head h, dimension d, where ours is column j * C + h * hd + d.
 */
import type { DecoderConfig } from "../nn/decoder.ts";
import type { HostTensor } from "../nn/params.ts";

/** A standard architecture an export can use. */
export type HfArch = "gpt2" | "gpt_neox" | "llama";

/** The transformers class of each architecture. */
export const HF_ARCH_CLASS: Record<HfArch, string> = {
  gpt2: "GPT2LMHeadModel",
  gpt_neox: "GPTNeoXForCausalLM",
  llama: "LlamaForCausalLM",
};

/** The architecture that computes exactly what `c` computes, or null and why none does. */
export function hfArchOf(c: DecoderConfig): { arch: HfArch; reason?: undefined } | { arch: null; reason: string } {
  if (c.prevTokens) return { arch: null, reason: `prevTokens = ${c.prevTokens}: no standard architecture embeds preceding tokens` };
  if (c.positions === "learned" && c.norm === "layernorm" && c.mlp === "gelu") return { arch: "gpt2" };
  if (c.positions === "rope" && c.norm === "layernorm" && c.mlp === "gelu") return { arch: "gpt_neox" };
  if (c.positions === "rope" && c.norm === "rmsnorm" && c.mlp === "swiglu") return { arch: "llama" };
  return {
    arch: null,
    reason: `${c.positions} positions + ${c.norm} + ${c.mlp}: no standard architecture has this combination ` +
      "(gpt2: learned + layernorm + gelu; gpt_neox: rope + layernorm + gelu; llama: rope + rmsnorm + swiglu)",
  };
}

/** Special token ids written into config.json. */
export interface HfTokenIds {
  bos: number;
  eos: number;
  pad: number;
}

/** The config.json fields of architecture `arch` for `c` (without our own `agent_forge` section). */
export function hfArchConfig(arch: HfArch, c: DecoderConfig, ids: HfTokenIds): Record<string, unknown> {
  const F = Math.round(c.mlpRatio * c.dModel);
  const common = {
    architectures: [HF_ARCH_CLASS[arch]],
    model_type: arch,
    vocab_size: c.vocabSize,
    tie_word_embeddings: c.tieEmbeddings,
    initializer_range: c.initStd,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    torch_dtype: "float32",
    use_cache: true,
    // Transformers.js picks onnx/model.onnx (f32) by default on every device; browsers' wasm would look for a quantized file.
    "transformers.js_config": { dtype: "fp32" },
  };
  const ropeScaling = c.ropeScale === 1 ? null : { rope_type: "linear", type: "linear", factor: c.ropeScale };
  switch (arch) {
    case "gpt2":
      return {
        ...common,
        n_positions: c.maxSeqLen,
        n_ctx: c.maxSeqLen,
        n_embd: c.dModel,
        n_layer: c.nLayers,
        n_head: c.nHeads,
        n_inner: F,
        activation_function: "gelu_new",
        layer_norm_epsilon: c.normEps,
        resid_pdrop: 0,
        embd_pdrop: 0,
        attn_pdrop: 0,
        scale_attn_weights: true,
      };
    case "gpt_neox":
      return {
        ...common,
        hidden_size: c.dModel,
        num_hidden_layers: c.nLayers,
        num_attention_heads: c.nHeads,
        intermediate_size: F,
        hidden_act: "gelu_new",
        max_position_embeddings: c.maxSeqLen,
        layer_norm_eps: c.normEps,
        use_parallel_residual: false,
        attention_bias: true,
        // The rotary fields under both the older and the newer transformers names.
        rotary_pct: 1,
        partial_rotary_factor: 1,
        rotary_emb_base: c.ropeBase,
        rope_theta: c.ropeBase,
        rope_scaling: ropeScaling,
        hidden_dropout: 0,
        attention_dropout: 0,
      };
    case "llama":
      return {
        ...common,
        hidden_size: c.dModel,
        num_hidden_layers: c.nLayers,
        num_attention_heads: c.nHeads,
        num_key_value_heads: c.nHeads,
        head_dim: c.dModel / c.nHeads,
        intermediate_size: F,
        hidden_act: "silu",
        max_position_embeddings: c.maxSeqLen,
        rms_norm_eps: c.normEps,
        rope_theta: c.ropeBase,
        rope_scaling: ropeScaling,
        attention_bias: c.bias,
        mlp_bias: c.bias,
        attention_dropout: 0,
      };
  }
}

// ---------------------------------------------------------------------------------------------
// Tensor layouts

/** [rows, cols] -> [cols, rows]. */
export function transpose(t: HostTensor): HostTensor {
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return { data: out, shape: [c, r] };
}

/** Columns [c0, c0 + n) of [rows, cols]. */
function cols(t: HostTensor, c0: number, n: number): HostTensor {
  const [rows, width] = t.shape;
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) out.set(t.data.subarray(r * width + c0, r * width + c0 + n), r * n);
  return { data: out, shape: [rows, n] };
}

/** [rows, a] and [rows, b] ... side by side. */
function concatCols(parts: HostTensor[]): HostTensor {
  const rows = parts[0].shape[0];
  const width = parts.reduce((s, p) => s + p.shape[1], 0);
  const out = new Float32Array(rows * width);
  let c0 = 0;
  for (const p of parts) {
    for (let r = 0; r < rows; r++) out.set(p.data.subarray(r * p.shape[1], (r + 1) * p.shape[1]), r * width + c0);
    c0 += p.shape[1];
  }
  return { data: out, shape: [rows, width] };
}

const zeros = (n: number): HostTensor => ({ data: new Float32Array(n), shape: [n] });
const vec = (t: HostTensor): HostTensor => ({ data: t.data, shape: [t.data.length] });

/**
 * GPT-NeoX's fused-qkv order from ours, for the output dimension of length 3C: index j * C + h * hd + d
 * (ours) goes to h * 3hd + j * hd + d. `neoxOrder[i]` is the index in ours of NeoX's index i.
 */
function neoxOrder(C: number, H: number): Int32Array {
  const hd = C / H;
  const order = new Int32Array(3 * C);
  for (let h = 0; h < H; h++) for (let j = 0; j < 3; j++) for (let d = 0; d < hd; d++) order[h * 3 * hd + j * hd + d] = j * C + h * hd + d;
  return order;
}

/** Our [C, 3C] qkv weight -> NeoX's [3C, C] (torch Linear, interleaved per head); or our [3C] bias -> NeoX's. */
function toNeoxQkv(t: HostTensor, C: number, H: number): HostTensor {
  const order = neoxOrder(C, H);
  if (t.shape.length === 1) return { data: Float32Array.from(order, (o) => t.data[o]), shape: [3 * C] };
  const out = new Float32Array(3 * C * C);
  for (let i = 0; i < 3 * C; i++) for (let r = 0; r < C; r++) out[i * C + r] = t.data[r * 3 * C + order[i]];
  return { data: out, shape: [3 * C, C] };
}

/** The inverse of toNeoxQkv. */
function fromNeoxQkv(t: HostTensor, C: number, H: number): HostTensor {
  const order = neoxOrder(C, H);
  if (t.shape.length === 1) {
    const out = new Float32Array(3 * C);
    order.forEach((o, i) => out[o] = t.data[i]);
    return { data: out, shape: [3 * C] };
  }
  const out = new Float32Array(C * 3 * C);
  for (let i = 0; i < 3 * C; i++) for (let r = 0; r < C; r++) out[r * 3 * C + order[i]] = t.data[i * C + r];
  return { data: out, shape: [C, 3 * C] };
}

/**
 * One parameter of architecture `arch`: its HF name, how it is made from ours (`to`) and which of
 * ours it gives back (`from`: our name -> tensor). A parameter ours lacks (a zero bias) has `from` empty.
 */
interface Entry {
  hf: string;
  to: (get: (n: string) => HostTensor) => HostTensor;
  from: (t: HostTensor, set: (n: string, t: HostTensor) => void) => void;
}

function entries(arch: HfArch, c: DecoderConfig): Entry[] {
  const C = c.dModel, H = c.nHeads, F = Math.round(c.mlpRatio * c.dModel);
  const out: Entry[] = [];
  const same = (hf: string, ours: string) => out.push({ hf, to: (g) => g(ours), from: (t, s) => s(ours, t) });
  const trans = (hf: string, ours: string) => out.push({ hf, to: (g) => transpose(g(ours)), from: (t, s) => s(ours, transpose(t)) });
  /** A bias: ours when the config has biases, else zeros of length n (dropped on the way back). */
  const bias = (hf: string, ours: string, n: number) =>
    out.push(
      c.bias ? { hf, to: (g) => vec(g(ours)), from: (t, s) => s(ours, vec(t)) } : {
        hf,
        to: () => zeros(n),
        from: (t) => {
          // The architecture has this bias and the config does not: only zeros compute the same.
          if (t.data.some((v) => v !== 0)) {
            throw new Error(`tensor '${hf}' is not zero, and the config has no biases (attention_bias false)`);
          }
        },
      },
    );
  for (let l = 0; l < c.nLayers; l++) {
    const o = `l${l}`;
    if (arch === "gpt2") {
      const p = `transformer.h.${l}`;
      same(`${p}.ln_1.weight`, `${o}.ln1_g`), same(`${p}.ln_1.bias`, `${o}.ln1_b`);
      same(`${p}.attn.c_attn.weight`, `${o}.qkv_w`), bias(`${p}.attn.c_attn.bias`, `${o}.qkv_b`, 3 * C);
      same(`${p}.attn.c_proj.weight`, `${o}.proj_w`), bias(`${p}.attn.c_proj.bias`, `${o}.proj_b`, C);
      same(`${p}.ln_2.weight`, `${o}.ln2_g`), same(`${p}.ln_2.bias`, `${o}.ln2_b`);
      same(`${p}.mlp.c_fc.weight`, `${o}.fc1_w`), bias(`${p}.mlp.c_fc.bias`, `${o}.fc1_b`, F);
      same(`${p}.mlp.c_proj.weight`, `${o}.fc2_w`), bias(`${p}.mlp.c_proj.bias`, `${o}.fc2_b`, C);
    } else if (arch === "gpt_neox") {
      const p = `gpt_neox.layers.${l}`;
      same(`${p}.input_layernorm.weight`, `${o}.ln1_g`), same(`${p}.input_layernorm.bias`, `${o}.ln1_b`);
      out.push({
        hf: `${p}.attention.query_key_value.weight`,
        to: (g) => toNeoxQkv(g(`${o}.qkv_w`), C, H),
        from: (t, s) => s(`${o}.qkv_w`, fromNeoxQkv(t, C, H)),
      });
      if (c.bias) {
        out.push({
          hf: `${p}.attention.query_key_value.bias`,
          to: (g) => toNeoxQkv(vec(g(`${o}.qkv_b`)), C, H),
          from: (t, s) => s(`${o}.qkv_b`, fromNeoxQkv(vec(t), C, H)),
        });
      } else bias(`${p}.attention.query_key_value.bias`, "", 3 * C);
      trans(`${p}.attention.dense.weight`, `${o}.proj_w`), bias(`${p}.attention.dense.bias`, `${o}.proj_b`, C);
      same(`${p}.post_attention_layernorm.weight`, `${o}.ln2_g`), same(`${p}.post_attention_layernorm.bias`, `${o}.ln2_b`);
      trans(`${p}.mlp.dense_h_to_4h.weight`, `${o}.fc1_w`), bias(`${p}.mlp.dense_h_to_4h.bias`, `${o}.fc1_b`, F);
      trans(`${p}.mlp.dense_4h_to_h.weight`, `${o}.fc2_w`), bias(`${p}.mlp.dense_4h_to_h.bias`, `${o}.fc2_b`, C);
    } else {
      const p = `model.layers.${l}`;
      same(`${p}.input_layernorm.weight`, `${o}.ln1_g`);
      ["q", "k", "v"].forEach((n, j) => {
        // Our qkv weight is q, k, v side by side: the three projections are its column blocks.
        out.push({
          hf: `${p}.self_attn.${n}_proj.weight`,
          to: (g) => transpose(cols(g(`${o}.qkv_w`), j * C, C)),
          from: () => {}, // rebuilt from all three below
        });
        if (c.bias) {
          out.push({
            hf: `${p}.self_attn.${n}_proj.bias`,
            to: (g) => ({ data: g(`${o}.qkv_b`).data.slice(j * C, (j + 1) * C), shape: [C] }),
            from: () => {},
          });
        }
      });
      trans(`${p}.self_attn.o_proj.weight`, `${o}.proj_w`);
      if (c.bias) bias(`${p}.self_attn.o_proj.bias`, `${o}.proj_b`, C);
      same(`${p}.post_attention_layernorm.weight`, `${o}.ln2_g`);
      trans(`${p}.mlp.gate_proj.weight`, `${o}.fc1_w`), trans(`${p}.mlp.up_proj.weight`, `${o}.fc3_w`);
      trans(`${p}.mlp.down_proj.weight`, `${o}.fc2_w`);
      if (c.bias) {
        bias(`${p}.mlp.gate_proj.bias`, `${o}.fc1_b`, F), bias(`${p}.mlp.up_proj.bias`, `${o}.fc3_b`, F);
        bias(`${p}.mlp.down_proj.bias`, `${o}.fc2_b`, C);
      }
    }
  }
  const names = {
    gpt2: { tok: "transformer.wte.weight", lnf: "transformer.ln_f", head: "lm_head.weight" },
    gpt_neox: { tok: "gpt_neox.embed_in.weight", lnf: "gpt_neox.final_layer_norm", head: "embed_out.weight" },
    llama: { tok: "model.embed_tokens.weight", lnf: "model.norm", head: "lm_head.weight" },
  }[arch];
  same(names.tok, "tok");
  if (arch === "gpt2") same("transformer.wpe.weight", "pos");
  same(`${names.lnf}.weight`, "lnf_g");
  if (c.norm === "layernorm") same(`${names.lnf}.bias`, "lnf_b");
  if (!c.tieEmbeddings) trans(names.head, "head_w");
  return out;
}

/** Our parameters (by our names) under architecture `arch`'s names and layouts. */
export function toHfTensors(arch: HfArch, c: DecoderConfig, ours: Map<string, HostTensor>): Map<string, HostTensor> {
  const get = (n: string) => {
    const t = ours.get(n);
    if (!t) throw new Error(`${arch} export: missing parameter '${n}'`);
    return t;
  };
  return new Map(entries(arch, c).map((e) => [e.hf, e.to(get)]));
}

/** Our parameters from tensors under architecture `arch`'s names (`source` names the file in errors). */
export function fromHfTensors(arch: HfArch, c: DecoderConfig, hf: Map<string, HostTensor>, source: string): Map<string, HostTensor> {
  const ours = new Map<string, HostTensor>();
  const list = entries(arch, c);
  const known = new Set(list.map((e) => e.hf));
  const extra = [...hf.keys()].filter((n) => !known.has(n));
  if (extra.length) throw new Error(`${source}: tensors a ${arch} model of this config has no parameter for: ${extra.join(", ")}`);
  const get = (n: string) => {
    const t = hf.get(n);
    if (!t) throw new Error(`${source}: missing tensor '${n}' (${arch})`);
    return t;
  };
  for (const e of list) {
    try {
      e.from(get(e.hf), (n, t) => ours.set(n, t));
    } catch (err) {
      const msg = (err as Error).message;
      throw new Error(msg.startsWith(source) ? msg : `${source}: ${msg}`);
    }
  }
  if (arch === "llama") {
    const C = c.dModel;
    for (let l = 0; l < c.nLayers; l++) {
      const p = `model.layers.${l}.self_attn`;
      ours.set(`l${l}.qkv_w`, concatCols(["q", "k", "v"].map((n) => transpose(get(`${p}.${n}_proj.weight`)))));
      if (c.bias) {
        const b = new Float32Array(3 * C);
        ["q", "k", "v"].forEach((n, j) => b.set(get(`${p}.${n}_proj.bias`).data, j * C));
        ours.set(`l${l}.qkv_b`, { data: b, shape: [3 * C] });
      }
    }
  }
  return ours;
}
