/**
 * Where the real data sets live: `../shared/data` beside the repository (ARC-AGI-1 training
 * tasks, GSM8K, a small text corpus). Nothing here is needed by the embedded defaults;
 * tests that read these skip with a printed reason when they are absent.
 */
import { fileURLToPath } from "node:url";

/** The shared data folder. */
export const SHARED_DATA_DIR: string = fileURLToPath(new URL("../../shared/data/", import.meta.url));
/** ARC-AGI-1 training tasks (400 JSON files). */
export const ARC_TRAINING_DIR: string = `${SHARED_DATA_DIR}arc-agi-1/training`;
/** GSM8K `train.jsonl` and `test.jsonl`. */
export const GSM8K_DIR: string = `${SHARED_DATA_DIR}gsm8k`;
/** Tiny Shakespeare, a ~1 MB plain-text corpus. */
export const TINYSHAKESPEARE_PATH: string = `${SHARED_DATA_DIR}tinyshakespeare/input.txt`;
