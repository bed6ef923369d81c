/**
 * The data manager: which datasets each phase trains and evaluates on (the documented
 * pipeline), every dataset's embedded generator behind one call, deterministic
 * train/validation/test splits keyed by a content hash with a leakage check, and batching
 * into fixed-length windows with padding and answer-only loss masks.
 *
 * Items are text (prompt -> answer) for a byte- or char-level model; ARC tasks are also
 * rendered as text here (rows of digits), while phase 2 itself reads `datasets/arc`'s
 * grid-token serialization.
 */
import { type ArcTask, generateTasks } from "./arc/mod.ts";
import { fnv1a64 } from "./arc/serialize.ts";
import { DEFAULT_LONG_CONTEXT, LONG_CONTEXT_TASKS, longContextItem } from "./long_context.ts";
import { DEFAULT_MATH, mathDataset, toGsm8k } from "./math.ts";
import { modularDataset } from "./modular.ts";
import {
  listOpsConfig,
  listOpsItems,
  listOpsToText,
  mazeConfig,
  mazeItems,
  mazeToText,
  sudokuConfig,
  sudokuItems,
  sudokuToText,
} from "./puzzles/mod.ts";
import { DEFAULT_SANITY, type LmWindows, lmWindows, sanityItems, type WindowConfig } from "./sanity.ts";
import type { Tokenizer } from "./tokenizers/types.ts";
import { deriveSeed } from "../lib/util/rng.ts";

export const DATASET_NAMES = ["sanity", "arc", "modular", "sudoku", "maze", "listops", "math", "long_context"] as const;
export type DatasetName = typeof DATASET_NAMES[number];

/** The phase -> datasets mapping of the documented pipeline (6 integrates and 7 evaluates everything). */
export const PHASE_DATASETS: Readonly<Record<1 | 2 | 3 | 4 | 5 | 6 | 7, readonly DatasetName[]>> = {
  1: ["sanity"],
  2: ["arc"],
  3: ["modular", "sudoku", "maze", "listops"],
  4: ["math"],
  5: ["long_context"],
  6: DATASET_NAMES,
  7: DATASET_NAMES,
};

/** One text item: the model reads `prompt` and must write `answer`. */
export interface Example {
  dataset: DatasetName;
  prompt: string;
  answer: string;
}

/** ARC task as text: demonstrations and the test input as rows of digits; the answer is the test output. */
export function arcToText(task: ArcTask, testIndex = 0): { prompt: string; answer: string } {
  const grid = (g: number[][]) => g.map((r) => r.join("")).join("\n");
  const demos = task.train.map((p) => `in\n${grid(p.input)}\nout\n${grid(p.output)}\n`).join("");
  const test = task.test[testIndex];
  return { prompt: `${demos}in\n${grid(test.input)}\nout\n`, answer: grid(test.output) };
}

const MOD_SYMBOL = { add: "+", sub: "-", mul: "*", div: "/", sq_sum: "#", quad: "&", cubic: "@" } as const;

/**
 * `n` items of one dataset from its embedded generator, deterministic in `seed`. Sizes are
 * the small defaults of each generator (4x4 Sudoku, 8x8 mazes, long context at 256-1,024
 * bytes); phases pass their own configs to the generators directly when they need others.
 */
export function generateExamples(name: DatasetName, n: number, seed: number): Example[] {
  if (!Number.isInteger(n) || n < 0) throw new Error(`generateExamples(${name}): n = ${n}, expected a non-negative integer`);
  const s = deriveSeed(seed, `dataset-${name}`);
  const tag = (items: { prompt: string; answer: string }[]): Example[] =>
    items.map(({ prompt, answer }) => ({ dataset: name, prompt, answer }));
  switch (name) {
    case "sanity":
      return tag(sanityItems(n, { ...DEFAULT_SANITY, seed: s }));
    case "arc":
      return tag(generateTasks(n, s, { maxSize: 8 }).map((t) => arcToText(t)));
    case "modular": {
      const d = modularDataset({ p: 97, op: "add", trainFraction: 0.5, seed: s });
      const all = [d.train, d.val];
      const out: { prompt: string; answer: string }[] = [];
      for (const split of all) {
        for (let i = 0; i < split.size && out.length < n; i++) {
          const [x, , y] = split.inputs.subarray(i * 4, i * 4 + 3);
          out.push({ prompt: `${x}${MOD_SYMBOL[d.config.op]}${y}=`, answer: String(split.targets[i]) });
        }
      }
      return tag(out);
    }
    case "sudoku":
      return tag(sudokuItems(sudokuConfig({ size: 4, seed: s }), n).map(sudokuToText));
    case "maze":
      return tag(mazeItems(mazeConfig({ seed: s }), n).map(mazeToText));
    case "listops":
      return tag(listOpsItems(listOpsConfig({ seed: s }), n).map(listOpsToText));
    case "math":
      return tag(
        mathDataset({ ...DEFAULT_MATH, count: n, maxSteps: 4, seed: s }).map(toGsm8k).map((q) => ({
          prompt: `${q.question}\n`,
          answer: q.answer,
        })),
      );
    case "long_context":
      return tag(Array.from({ length: n }, (_, i) => {
        const item = longContextItem({
          ...DEFAULT_LONG_CONTEXT,
          task: LONG_CONTEXT_TASKS[i % LONG_CONTEXT_TASKS.length],
          length: [256, 512, 1024][Math.floor(i / LONG_CONTEXT_TASKS.length) % 3],
          depth: [0, 0.25, 0.5, 0.75, 1][i % 5],
          seed: deriveSeed(s, `item-${i}`),
        });
        return { prompt: item.prompt, answer: item.answer };
      }));
    default:
      throw new Error(`generateExamples: unknown dataset '${name}', expected one of ${DATASET_NAMES.join(", ")}`);
  }
}

/** `perDataset` items of every dataset the phase uses. */
export function phaseExamples(phase: keyof typeof PHASE_DATASETS, perDataset: number, seed: number): Example[] {
  const names = PHASE_DATASETS[phase];
  if (!names) throw new Error(`phaseExamples: phase ${phase} is not one of 1-7`);
  return names.flatMap((name) => generateExamples(name, perDataset, seed));
}

/** The content key of an item: its dataset and prompt (two items with the same prompt are the same question). */
export function exampleKey(e: Example): string {
  return fnv1a64(new TextEncoder().encode(`${e.dataset}\u0000${e.prompt}`));
}

export interface Splits {
  train: Example[];
  val: Example[];
  test: Example[];
  /** Items dropped because an earlier item had the same key. */
  duplicates: number;
}

/**
 * Splits by content hash: an item's split is a function of (its key, seed) alone, so a
 * question lands in the same split however the list was generated or ordered, and
 * duplicates (same key) are dropped before splitting. Fractions are of the whole.
 */
export function splitExamples(examples: readonly Example[], fractions: { val: number; test: number }, seed: number): Splits {
  const { val, test } = fractions;
  if (!(val >= 0 && test >= 0 && val + test < 1)) {
    throw new Error(`splitExamples: val = ${val}, test = ${test}: expected >= 0 with val + test < 1`);
  }
  const out: Splits = { train: [], val: [], test: [], duplicates: 0 };
  const seen = new Set<string>();
  for (const e of examples) {
    const key = exampleKey(e);
    if (seen.has(key)) {
      out.duplicates++;
      continue;
    }
    seen.add(key);
    const u = parseInt(fnv1a64(new TextEncoder().encode(`${seed}:${key}`)).slice(0, 8), 16) / 2 ** 32; // [0, 1)
    (u < test ? out.test : u < test + val ? out.val : out.train).push(e);
  }
  return out;
}

/** Items whose key appears in more than one split (none, for splits made by `splitExamples`). */
export function findLeaks(splits: Pick<Splits, "train" | "val" | "test">): { key: string; splits: string[]; example: Example }[] {
  const where = new Map<string, { splits: Set<string>; example: Example }>();
  for (const name of ["train", "val", "test"] as const) {
    for (const e of splits[name]) {
      const k = exampleKey(e);
      const w = where.get(k) ?? { splits: new Set(), example: e };
      w.splits.add(name);
      where.set(k, w);
    }
  }
  return [...where].filter(([, w]) => w.splits.size > 1).map(([key, w]) => ({ key, splits: [...w.splits], example: w.example }));
}

/** Throws naming the first leaked item (its dataset, splits and prompt start) if any key is in two splits. */
export function assertNoLeakage(splits: Pick<Splits, "train" | "val" | "test">): void {
  const leaks = findLeaks(splits);
  if (leaks.length) {
    const l = leaks[0];
    throw new Error(
      `leakage: ${leaks.length} item(s) in more than one split, e.g. ${l.example.dataset} item in ${l.splits.join(" and ")}: ${
        JSON.stringify(l.example.prompt.slice(0, 60))
      }`,
    );
  }
}

/**
 * Items as fixed-length training windows: [bos] prompt answer [eos], padded, with targets
 * shifted by one and a loss mask that is 1 only on answer tokens (see `lmWindows`).
 */
export function batchExamples(examples: readonly Example[], tokenizer: Tokenizer, cfg: WindowConfig): LmWindows {
  return lmWindows(examples, tokenizer, cfg);
}
