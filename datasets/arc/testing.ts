/** Test helpers: where the real ARC-AGI-1 training set lives, and whether it is there. */
import { loadTaskFolder } from "./loader.ts";
import type { ArcTask } from "./types.ts";

import { ARC_TRAINING_DIR } from "../paths.ts";
export { ARC_TRAINING_DIR };

/** True when the real training folder exists; otherwise prints why the tests of `file` that need it are skipped. */
export function haveArcTraining(file: string, dir: string = ARC_TRAINING_DIR): boolean {
  try {
    if (Deno.statSync(dir).isDirectory) return true;
  } catch {
    // absent
  }
  console.log(`${file}: skipping the real-ARC tests, ${dir} is absent`);
  return false;
}

let cached: Promise<ArcTask[]> | undefined;

/** The real training tasks (read once per test process). */
export function realArcTasks(): Promise<ArcTask[]> {
  cached ??= loadTaskFolder(ARC_TRAINING_DIR).then((r) => r.tasks);
  return cached;
}
