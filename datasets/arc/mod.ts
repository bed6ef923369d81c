/**
 * ARC (Abstraction and Reasoning Corpus) datasets: loader for ARC-AGI folders, procedural
 * generator, augmentations with inverses and voting, token serialization and hashing.
 */
export * from "./types.ts";
export * from "./grid.ts";
export * from "./loader.ts";
export * from "./augment.ts";
export * from "./rules.ts";
export * from "./generator.ts";
export * from "./serialize.ts";
export * from "./source.ts";
export { decodeGrid, encodeGrid, GRID_TOKENS, GRID_VOCAB_SIZE, tokensToText } from "../tokenizers/grid.ts";
export * from "./text.ts";
