/**
 * The notebooks' explore sections: a run's saved models opened up at the level of the library's
 * components (each notebook imports what its section needs).
 *
 * - text.ts: 01 (the cognates side by side, GatedLTM writes, ACT steps per token), 04 (a
 *   rationale against the reference, first wrong step), 05 (retrieval against needle depth).
 * - cogment.ts: 01 (Cogment's depth and refinement halting, slot use and LTM writes per token).
 * - grokking.ts: 03 (the grokking run again at a chosen weight decay, redrawn live).
 * - grids_merge.ts: 02 (ARC grids with per-cell confidence), 06 (task-vector cosines, a merge
 *   scored live), 07 (one matrix's rate-distortion per compressor, the ONNX export on a prompt).
 */
export * from "./text.ts";
export * from "./cogment.ts";
export * from "./grokking.ts";
export * from "./grids_merge.ts";
