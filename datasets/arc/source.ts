/** Where ARC tasks come from: a folder of ARC-AGI JSON files, or the procedural generator (the embedded default). */
import { DEFAULT_GENERATOR, generateTasks, type GeneratorConfig } from "./generator.ts";
import { type LoadResult, loadTaskFolder } from "./loader.ts";

/** A folder of task files. */
export interface ArcFolderSource {
  kind: "folder";
  dir: string;
  /** Skip malformed files instead of failing (they are listed in the result). */
  skipInvalid?: boolean;
  limit?: number;
}

/** Tasks from the generator. */
export interface ArcGeneratedSource extends Partial<GeneratorConfig> {
  kind: "generated";
  count: number;
  seed: number;
  /** Family names (default: all, in turn). */
  families?: string[];
}

/** Either source. */
export type ArcSource = ArcFolderSource | ArcGeneratedSource;

/** The default: 240 generated tasks (10 per family), seed 0, default sizes. */
export const DEFAULT_ARC_SOURCE: ArcGeneratedSource = { kind: "generated", count: 240, seed: 0, ...DEFAULT_GENERATOR };

/** Reads or generates the tasks of a source. */
export async function loadArcSource(src: ArcSource = DEFAULT_ARC_SOURCE): Promise<LoadResult> {
  if (src.kind === "folder") return await loadTaskFolder(src.dir, { skipInvalid: src.skipInvalid, limit: src.limit });
  const { kind: _kind, count, seed, ...cfg } = src;
  return { tasks: generateTasks(count, seed, cfg), skipped: [] };
}
