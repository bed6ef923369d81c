/** The pipeline's text: byte tokenizer, text items, windows and batches; logits and greedy decoding. */
export * from "./tokens.ts";
export * from "./generate.ts";
