/**
 * The pipeline's `model` section: the shape of the transformer every cognate and stage model is
 * built from (snake_case, as in the documented configuration). Its defaults are the `small`
 * preset; `tiny` and `seed` change a few fields. lib/config composes this into the run config,
 * and `cognateBaseFromModel` (cognate.ts) turns it into a model config.
 */

export interface ModelSection {
  /** Tokens in the vocabulary. */
  vocab_size: number;
  /** Residual width. */
  hidden_size: number;
  num_layers: number;
  num_heads: number;
  /** MLP hidden width / hidden_size. */
  mlp_ratio: number;
  /** Context length in tokens. */
  max_seq_len: number;
  norm: "layernorm" | "rmsnorm";
  positions: "learned" | "rope";
  mlp: "gelu" | "swiglu";
  /** Biases on Linear layers. */
  bias: boolean;
  tie_embeddings: boolean;
  init_std: number;
  rope_base: number;
}

/** The `small` preset's model (the default): ~0.86M parameters per cognate with the byte tokenizer. */
export const MODEL_SECTION: ModelSection = {
  vocab_size: 264, // the phases' byte tokenizer has 261 ids (256 bytes + 5 specials); rounded up to a multiple of 8
  hidden_size: 128,
  num_layers: 4,
  num_heads: 4,
  mlp_ratio: 4,
  max_seq_len: 128,
  norm: "layernorm",
  positions: "rope",
  mlp: "gelu",
  bias: true,
  tie_embeddings: false,
  init_std: 0.02,
  rope_base: 10000,
};

/** What the `tiny` and `seed` presets change in the model section (`small` is MODEL_SECTION itself). */
export const MODEL_PRESET_PATCHES = {
  tiny: { hidden_size: 64, num_layers: 2, num_heads: 4, max_seq_len: 64 },
  // The documented configuration (DESIGN.md), meant for a GPU.
  seed: { vocab_size: 50257, hidden_size: 1024, num_layers: 24, num_heads: 16, max_seq_len: 8192 },
} satisfies Record<string, Partial<ModelSection>>;

/** The model section of a preset. */
export function modelSectionOf(preset: "tiny" | "small" | "seed"): ModelSection {
  return preset === "small" ? { ...MODEL_SECTION } : { ...MODEL_SECTION, ...MODEL_PRESET_PATCHES[preset] };
}
