/**
 * Layering check: every `.ts` file under the walked folders gets a rank from {@link LAYERS}; a file may import files of its
 * own rank or lower, never higher, every relative import must name a file that exists, and non-test files may not import
 * each other in a cycle.
 *
 * Usage: `deno run -A tools/check_layers.ts [root]` (root defaults to the repo root, the parent of tools/). Prints one
 * line per violation and exits 1, or prints a one-line summary and exits 0.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { posix } from "node:path";

/** One row of the layer table: files whose root-relative path starts with `prefix` (a folder, ending in `/`) or equals it. */
export interface Layer {
  /** A folder (ends with `/`) or a single file, relative to the repo root. */
  prefix: string;
  /** Lower ranks may not import higher ones. */
  rank: number;
}

/** The layer table, lowest rank first. {@link layerOf} tries the longest prefix first, so the order here is for reading. */
export const LAYERS: readonly Layer[] = [
  { prefix: "lib/util/", rank: 0 }, // files, rng, progress, run-directory layout
  { prefix: "lib/testing/", rank: 0 }, // test helpers used by low-layer tests
  { prefix: "datasets/", rank: 1 }, // generators, loaders, tokenizers
  { prefix: "lib/viz/", rank: 1 }, // plotly figure builders, HTML pieces
  { prefix: "lib/backend/", rank: 1 }, // picks the tfjs backend
  { prefix: "kernels/", rank: 1 }, // WGSL kernels + dispatch + CPU references
  { prefix: "lib/nn/", rank: 2 }, // layers and building blocks
  { prefix: "lib/train/", rank: 3 }, // optimizers, training loops
  { prefix: "lib/models/", rank: 4 }, // model architectures
  { prefix: "lib/compress/", rank: 5 }, // quantization and compression
  { prefix: "lib/config/", rank: 6 }, // the pipeline's config schema, presets, resolution
  { prefix: "lib/text/", rank: 7 }, // tokenizer, text items, windows, logits, greedy generation
  { prefix: "lib/eval/", rank: 8 }, // evaluation suites and exports
  { prefix: "lib/deploy/", rank: 9 }, // export formats and the server
  { prefix: "lib/phases/", rank: 10 }, // the pipeline's phases
  { prefix: "lib/evolve/", rank: 10 }, // merge recipes and their search (CMA-ES), over the phases' stages
  { prefix: "lib/pipeline/", rank: 11 }, // runs the phases in order
  { prefix: "lib/search/", rank: 11 }, // hyper-parameter search over config keys (trials run through the session)
  { prefix: "lib/explore/", rank: 11 }, // the notebooks' explore sections: models of a run, opened up
  { prefix: "lib/cli.ts", rank: 12 }, // command line entry point
  { prefix: "lib/mod.ts", rank: 12 }, // the library's public surface
  { prefix: "lib/mod_test.ts", rank: 12 }, // tests of the public surface
  { prefix: "notebooks/", rank: 12 }, // notebook runner and helpers
  { prefix: "bench/", rank: 12 }, // benchmarks
  { prefix: "tests/", rank: 12 }, // end-to-end and cross-layer tests
  { prefix: "tools/", rank: 12 }, // repo tooling such as this check
];

/** Top-level folders walked for `.ts` files. */
export const TOP_LEVEL: readonly string[] = ["lib", "datasets", "kernels", "bench", "tests", "notebooks", "tools"];

/** Folder names never walked into (besides hidden folders). */
const SKIPPED = new Set(["node_modules", "scratch", "runs"]);

const BY_LENGTH = [...LAYERS].sort((a, b) => b.prefix.length - a.prefix.length);

/** The layer of a root-relative posix path (longest matching prefix wins), or undefined when no row matches. */
export function layerOf(path: string): Layer | undefined {
  return BY_LENGTH.find((l) => l.prefix.endsWith("/") ? path.startsWith(l.prefix) : path === l.prefix);
}

/** True for `*_test.ts` files, which are left out of cycle detection. */
export function isTestFile(path: string): boolean {
  return path.endsWith("_test.ts");
}

/** A lexical token: an identifier or keyword, a string literal (value without quotes), or a punctuation character. */
type Token = { kind: "name" | "string" | "punct"; value: string };

const NAME_START = /[A-Za-z_$\u0080-\uffff]/;
const NAME_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
/** Keywords after which a `/` starts a regular expression rather than a division. */
const BEFORE_REGEX = new Set([
  "return",
  "typeof",
  "instanceof",
  "in",
  "of",
  "new",
  "delete",
  "void",
  "throw",
  "case",
  "do",
  "else",
  "yield",
  "await",
]);

/**
 * Splits TypeScript source into the tokens the import scanner needs. Comments are dropped; template literals and regular
 * expressions become a single punctuation token (code inside `${}` is tokenized), so text inside them is never read as code.
 */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  const braces: ("code" | "template")[] = [];
  let i = 0;
  const n = source.length;

  const regexAllowed = (): boolean => {
    const last = tokens.at(-1);
    if (!last) return true;
    if (last.kind === "string") return false;
    if (last.kind === "name") return BEFORE_REGEX.has(last.value);
    return !")]}`".includes(last.value) && last.value !== "/regex/";
  };

  /** Scans template text from i (just past a backtick or a closing `}`) to the closing backtick or a `${`. */
  const templateText = (): void => {
    while (i < n) {
      const c = source[i];
      if (c === "\\") i += 2;
      else if (c === "`") {
        i++;
        tokens.push({ kind: "punct", value: "`" });
        return;
      } else if (c === "$" && source[i + 1] === "{") {
        i += 2;
        braces.push("template");
        tokens.push({ kind: "punct", value: "${" });
        return;
      } else i++;
    }
  };

  while (i < n) {
    const c = source[i];
    if (c === "/" && source[i + 1] === "/") {
      while (i < n && source[i] !== "\n") i++;
    } else if (c === "/" && source[i + 1] === "*") {
      const end = source.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let value = "";
      while (j < n && source[j] !== c && source[j] !== "\n") {
        if (source[j] === "\\") {
          value += source[j + 1] ?? "";
          j += 2;
        } else value += source[j++];
      }
      tokens.push({ kind: "string", value });
      i = j + 1;
    } else if (c === "`") {
      i++;
      templateText();
    } else if (c === "{") {
      braces.push("code");
      tokens.push({ kind: "punct", value: c });
      i++;
    } else if (c === "}") {
      i++;
      if (braces.pop() === "template") templateText();
      else tokens.push({ kind: "punct", value: c });
    } else if (c === "/" && regexAllowed()) {
      let j = i + 1;
      let inClass = false;
      while (j < n && source[j] !== "\n") {
        const d = source[j];
        if (d === "\\") j++;
        else if (d === "[") inClass = true;
        else if (d === "]") inClass = false;
        else if (d === "/" && !inClass) break;
        j++;
      }
      i = j + 1;
      while (i < n && NAME_PART.test(source[i])) i++;
      tokens.push({ kind: "punct", value: "/regex/" });
    } else if (NAME_START.test(c)) {
      let j = i + 1;
      while (j < n && NAME_PART.test(source[j])) j++;
      tokens.push({ kind: "name", value: source.slice(i, j) });
      i = j;
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(source[j])) j++;
      tokens.push({ kind: "name", value: source.slice(i, j) });
      i = j;
    } else if (/\s/.test(c)) {
      i++;
    } else {
      tokens.push({ kind: "punct", value: c });
      i++;
    }
  }
  return tokens;
}

/** Tokens that may appear between `import`/`export` and `from` in a static import or re-export clause. */
function inClause(t: Token): boolean {
  return t.kind === "name" || t.kind === "string" || (t.kind === "punct" && "{},*".includes(t.value));
}

/**
 * Every module specifier in `source`, in order: static imports (`import x from`, `import type`, multi-line lists),
 * re-exports (`export { x } from`, `export * from`), side-effect imports (`import "x"`) and dynamic `import("x")` with a
 * string literal. Comments, strings and template literals are not read as code.
 */
export function importsOf(source: string): string[] {
  const tokens = tokenize(source);
  const specifiers: string[] = [];
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    if (t.kind !== "name" || (t.value !== "import" && t.value !== "export")) continue;
    if (tokens[k - 1]?.value === ".") continue; // obj.import(...)
    const next = tokens[k + 1];
    if (!next) break;
    if (t.value === "import" && next.kind === "string") {
      specifiers.push(next.value);
    } else if (t.value === "import" && next.value === "(") {
      const arg = tokens[k + 2];
      const after = tokens[k + 3];
      if (arg?.kind === "string" && (after?.value === ")" || after?.value === ",")) specifiers.push(arg.value);
    } else {
      for (let j = k + 1; j < tokens.length && inClause(tokens[j]); j++) {
        const u = tokens[j];
        if (u.kind === "string" || u.value === "import" || u.value === "export") break; // past the clause
        if (u.value === "from" && tokens[j + 1]?.kind === "string") {
          specifiers.push(tokens[j + 1].value);
          break;
        }
      }
    }
  }
  return specifiers;
}

/** True for specifiers that name a file relative to the importer (`./x.ts`, `../x.ts`). */
export function isRelative(specifier: string): boolean {
  return specifier.startsWith("./") || specifier.startsWith("../");
}

/** The root-relative posix path a relative specifier in `from` (root-relative) names; starts with `../` when it leaves the root. */
export function resolveImport(from: string, specifier: string): string {
  const bare = specifier.replace(/[?#].*$/, "");
  return posix.normalize(posix.join(posix.dirname(from), bare));
}

/** Root-relative posix paths of the `.ts` files under the {@link TOP_LEVEL} folders of `root`, sorted. */
export async function listFiles(root: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(posix.join(root, rel)));
    } catch {
      return; // a top-level folder this repo does not have
    }
    for (const e of entries) {
      const path = `${rel}/${e.name}`;
      if (e.isDirectory && !e.name.startsWith(".") && !SKIPPED.has(e.name)) await walk(path);
      else if (e.isFile && e.name.endsWith(".ts")) files.push(path);
    }
  };
  for (const top of TOP_LEVEL) await walk(top);
  return files.sort();
}

/** The import graph: each file's distinct relative import targets (root-relative, possibly missing or outside the root). */
export type Graph = Map<string, string[]>;

/** Reads each file and resolves its relative imports. */
export async function buildGraph(root: string, files: string[]): Promise<Graph> {
  const graph: Graph = new Map();
  for (const file of files) {
    const source = await Deno.readTextFile(posix.join(root, file));
    const targets = importsOf(source).filter(isRelative).map((s) => resolveImport(file, s));
    graph.set(file, [...new Set(targets)].sort());
  }
  return graph;
}

/** Strongly connected components of `graph` restricted to `nodes` (Tarjan), each sorted, in a deterministic order. */
export function stronglyConnected(graph: Graph, nodes: Set<string>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!nodes.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      components.push(component.sort());
    }
  };
  for (const v of [...nodes].sort()) if (!index.has(v)) visit(v);
  return components.sort((a, b) => a[0].localeCompare(b[0]));
}

/** A shortest cycle through `start` using only edges inside `component`, as a path that ends where it starts. */
export function cycleThrough(graph: Graph, component: string[], start: string): string[] {
  const inside = new Set(component);
  const parent = new Map<string, string>();
  const queue = [start];
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q];
    for (const w of graph.get(v) ?? []) {
      if (w === start) {
        const path = [start];
        for (let u: string | undefined = v; u !== undefined && u !== start; u = parent.get(u)) path.splice(1, 0, u);
        return [...path, start];
      }
      if (inside.has(w) && !parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** The outcome of a check: how many files and imports were seen, and one line per violation. */
export interface Report {
  files: number;
  imports: number;
  violations: string[];
}

/** Layer and existence violations for one file's imports. */
function importViolations(file: string, targets: string[], exists: (path: string) => boolean): string[] {
  const out: string[] = [];
  const layer = layerOf(file);
  if (!layer) out.push(`no layer for ${file}: add it to the table in tools/check_layers.ts`);
  for (const target of targets) {
    if (!exists(target)) {
      out.push(`missing: ${file} imports ${target}, which does not exist`);
      continue;
    }
    const to = layerOf(target);
    if (!to) out.push(`no layer for ${target} (imported by ${file}): add it to the table in tools/check_layers.ts`);
    else if (layer && to.rank > layer.rank) {
      out.push(`layering: ${file} imports ${target}: ${layer.prefix} (rank ${layer.rank}) may not import ${to.prefix} (rank ${to.rank})`);
    }
  }
  return out;
}

/** One `cycle:` line per strongly connected component of non-test files with more than one file or a self-import. */
export function cycleViolations(graph: Graph): string[] {
  const nodes = new Set([...graph.keys()].filter((f) => !isTestFile(f)));
  return stronglyConnected(graph, nodes)
    .filter((c) => c.length > 1 || (graph.get(c[0]) ?? []).includes(c[0]))
    .map((c) => {
      const cycle = cycleThrough(graph, c, c[0]);
      const more = c.length > cycle.length - 1 ? ` (${c.length} files tangled: ${c.join(", ")})` : "";
      return `cycle: ${cycle.join(" -> ")}${more}`;
    });
}

/** Runs the whole check on `root` and returns the counts and the violation lines. */
export async function analyze(root: string): Promise<Report> {
  const files = await listFiles(root);
  const graph = await buildGraph(root, files);
  const known = new Set(files);
  const targets = [...new Set([...graph.values()].flat())].filter((t) => !known.has(t));
  const others = new Set<string>();
  for (const t of targets) {
    try {
      if ((await Deno.stat(posix.join(root, t))).isFile) others.add(t);
    } catch {
      // missing: reported below
    }
  }
  const exists = (path: string) => known.has(path) || others.has(path);
  const violations = files.flatMap((f) => importViolations(f, graph.get(f)!, exists));
  violations.push(...cycleViolations(graph));
  const imports = [...graph.values()].reduce((sum, t) => sum + t.length, 0);
  return { files: files.length, imports, violations };
}

/** The violation lines for the repo at `root` (empty when clean). */
export async function checkLayers(root: string): Promise<string[]> {
  return (await analyze(root)).violations;
}

/** The repo root: the parent of this file's folder. */
export const REPO_ROOT: string = fileURLToPath(new URL("..", import.meta.url));

if (import.meta.main) {
  const root = Deno.args[0] ?? REPO_ROOT;
  const { files, imports, violations } = await analyze(root);
  if (violations.length === 0) {
    console.log(`layers: ${files} files, ${imports} imports, no violations`);
  } else {
    for (const v of violations) console.error(v);
    console.error(`layers: ${files} files, ${imports} imports, ${violations.length} violations`);
    Deno.exit(1);
  }
}
