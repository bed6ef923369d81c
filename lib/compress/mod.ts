/** Compressors (BitNet b1.58, SeedLM, VPTQ and entropy-coded VPTQ), the size-targeting pipeline and compressed inference. */
export * from "./types.ts";
export * from "./bitnet.ts";
export * from "./seedlm.ts";
export * from "./vptq.ts";
export * from "./vptq_kmeans.ts";
export * from "./ecvq.ts";
export * from "./rans.ts";
export * from "./pipeline.ts";
export * from "./inference.ts";
export * from "./gpu_linear.ts";
