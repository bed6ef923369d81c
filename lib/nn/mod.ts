/** Building blocks: parameters, layers, attention + RoPE, the configurable decoder, gradient helpers, PyTorch's default init. */
export * from "./params.ts";
export * from "./layers.ts";
export * from "./attention.ts";
export * from "./decoder.ts";
export * from "./grad.ts";
export * from "./torch_init.ts";
export * from "./kv_cache.ts";
