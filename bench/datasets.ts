/**
 * `deno task bench:datasets`: generation throughput of every dataset (items/s), so a slow
 * generator is visible, plus the real-data loaders when ../shared/data is present.
 * Options: --seconds S (time per row, default 0.5)
 */
import { parseArgs } from "node:util";
import { DATASET_NAMES, generateExamples } from "../datasets/manager.ts";
import { loadTaskFolder } from "../datasets/arc/mod.ts";
import { loadGsm8k } from "../datasets/math.ts";
import { DEFAULT_LONG_CONTEXT, longContextItem } from "../datasets/long_context.ts";
import { sudokuConfig, sudokuItems } from "../datasets/puzzles/mod.ts";
import { gpt2Tokenizer } from "../datasets/tokenizers/gpt2.ts";
import { ARC_TRAINING_DIR, GSM8K_DIR, TINYSHAKESPEARE_PATH } from "../datasets/paths.ts";

const { values } = parseArgs({ args: Deno.args, options: { seconds: { type: "string", default: "0.5" } } });
const budgetMs = Number(values.seconds) * 1000;

/** Calls `make(n)` with growing n until one call takes budgetMs; returns units per second. */
async function rate(make: (n: number) => number | Promise<number>): Promise<number> {
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    const units = await make(n);
    const ms = performance.now() - t0;
    if (ms >= budgetMs || n >= 1 << 20) return (units / ms) * 1000;
    n *= Math.max(2, Math.min(8, Math.ceil(budgetMs / Math.max(ms, 1))));
  }
}

const rows: [string, number, string][] = [];
for (const name of DATASET_NAMES) {
  rows.push([
    `${name} (embedded default)`,
    await rate((n) => generateExamples(name, n, 0).length),
    "items/s",
  ]);
}
rows.push(["sudoku 9x9, 26-36 clues", await rate((n) => sudokuItems(sudokuConfig({ size: 9 }), n).length), "items/s"]);
for (const length of [1024, 8192]) {
  rows.push([
    `long context passkey @ ${length} bytes`,
    await rate((n) => Array.from({ length: n }, (_, i) => longContextItem({ ...DEFAULT_LONG_CONTEXT, length, seed: i })).length),
    "items/s",
  ]);
}
const present = (p: string) => Deno.stat(p).then(() => true, () => false);
if (await present(ARC_TRAINING_DIR)) {
  rows.push([
    "ARC-AGI-1 training folder load",
    await rate(async () => (await loadTaskFolder(ARC_TRAINING_DIR)).tasks.length),
    "tasks/s",
  ]);
} else console.log(`skipping the ARC loader row: ${ARC_TRAINING_DIR} is absent`);
if (await present(GSM8K_DIR)) {
  rows.push([
    "GSM8K train.jsonl load",
    await rate(async () => (await loadGsm8k(`${GSM8K_DIR}/train.jsonl`)).items.length),
    "lines/s",
  ]);
} else console.log(`skipping the GSM8K row: ${GSM8K_DIR} is absent`);
if (await present(TINYSHAKESPEARE_PATH)) {
  const gpt2 = await gpt2Tokenizer();
  const text = (await Deno.readTextFile(TINYSHAKESPEARE_PATH)).slice(0, 200_000);
  rows.push([
    "GPT-2 BPE encode (tinyshakespeare)",
    await rate((n) => {
      let t = 0;
      for (let i = 0; i < n; i++) t += gpt2.encode(text).length;
      return t;
    }),
    "tokens/s",
  ]);
}

console.log("\ndataset generation throughput (one thread)");
for (const [what, r, unit] of rows) console.log(`${what.padEnd(42)}${Math.round(r).toLocaleString("en-US").padStart(12)} ${unit}`);
