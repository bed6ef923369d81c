/** Types every puzzle dataset shares (mod.ts re-exports them with the datasets). */

/** One item as text: what the model reads, what it must write, and how hard the item is. */
export interface TextExample {
  prompt: string;
  answer: string;
  /** A per-task measure (Sudoku: blanks; maze: shortest path length; ListOps: nesting depth). */
  difficulty: number;
}

/** Outcome of a checker: ok, or the first problem found. */
export type CheckResult = { ok: true } | { ok: false; reason: string };
