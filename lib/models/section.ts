/**
 * The pipeline's `model` section: the shape of the transformer every cognate and stage model is
 * built from (snake_case, as in the documented configuration). The schema holds the type, the
 * defaults (the `small` preset) and the validation; `tiny` and `seed` change a few fields.
 * lib/config composes it into the run config, and `cognateBaseFromModel` (cognate.ts) turns it
 * into a model config.
 */
import { z } from "zod";

/** `model`: every field with its default (the `small` preset: ~0.86M parameters per cognate with the byte tokenizer). */
export const ModelSection = z.strictObject({
  vocab_size: z.number().int().min(2).default(264), // tokens; the byte tokenizer's 261 ids rounded up to a multiple of 8
  hidden_size: z.number().int().min(1).default(128), // residual width
  num_layers: z.number().int().min(1).default(4),
  num_heads: z.number().int().min(1).default(4),
  mlp_ratio: z.number().gt(0).default(4), // MLP hidden width / hidden_size
  max_seq_len: z.number().int().min(1).default(128), // context length in tokens
  norm: z.enum(["layernorm", "rmsnorm"]).default("layernorm"),
  positions: z.enum(["learned", "rope"]).default("rope"),
  mlp: z.enum(["gelu", "swiglu"]).default("gelu"),
  bias: z.boolean().default(true), // biases on Linear layers
  tie_embeddings: z.boolean().default(false),
  init_std: z.number().gt(0).default(0.02),
  rope_base: z.number().gt(1).default(10000),
  prev_tokens: z.number().int().min(0).max(4).default(0), // preceding tokens each position also embeds, one [vocab, hidden] table each (decoder.ts prevTokens): copying what followed an earlier match then takes one attention layer
});
export type ModelSection = z.infer<typeof ModelSection>;

/** What the `tiny` and `seed` presets change in the model section (`small` is the defaults). */
export const MODEL_PRESET_PATCHES = {
  tiny: { hidden_size: 64, num_layers: 2, num_heads: 4, max_seq_len: 64 },
  // The documented configuration (DESIGN.md), meant for a GPU.
  seed: { vocab_size: 50257, hidden_size: 1024, num_layers: 24, num_heads: 16, max_seq_len: 8192 },
} satisfies Record<string, Partial<ModelSection>>;

/** The model section of a preset. */
export function modelSectionOf(preset: "tiny" | "small" | "seed"): ModelSection {
  return ModelSection.parse(preset === "small" ? {} : MODEL_PRESET_PATCHES[preset]);
}
