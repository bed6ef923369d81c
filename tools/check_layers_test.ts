import assert from "node:assert/strict";
import { posix } from "node:path";
import { analyze, checkLayers, importsOf, layerOf, REPO_ROOT } from "./check_layers.ts";

/** Writes `files` (root-relative path to source) under `root`, creating folders as needed. */
async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, source] of Object.entries(files)) {
    await Deno.mkdir(posix.dirname(posix.join(root, path)), { recursive: true });
    await Deno.writeTextFile(posix.join(root, path), source);
  }
}

/** Runs `body` on a fresh temporary repo holding `files`, then removes it. */
async function withRepo(files: Record<string, string>, body: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "check_layers_" });
  try {
    await writeTree(root, files);
    await body(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const CLEAN = {
  "lib/util/a.ts": "export const a = 1;\n",
  "lib/util/a_test.ts": 'import { a } from "./a.ts";\nDeno.test("a", () => {\n  if (a !== 1) throw new Error();\n});\n',
  "lib/models/m.ts": 'import { a } from "../util/a.ts";\nexport const m = a + 1;\n',
  "lib/pipeline/p.ts": 'import { m } from "../models/m.ts";\nexport const p = m + 1;\n',
  "lib/cli.ts": 'import { p } from "./pipeline/p.ts";\nconsole.log(p);\n',
  "lib/scratch/ignored.ts": 'import "../nowhere.ts";\n',
  "lib/.hidden/ignored.ts": 'import "../nowhere.ts";\n',
  "lib/util/notes.md": 'import "../nowhere.ts";\n',
};

Deno.test("importsOf sees every kind of import and re-export", () => {
  const source = [
    'import { a } from "./a.ts";',
    'import type { B } from "./b.ts";',
    "import {",
    "  c,",
    "  type D,",
    '} from "../c.ts";',
    'export * from "./e.ts";',
    'export * as f from "./f.ts";',
    'export { g } from "./g.ts";',
    'export type { H } from "./h.ts";',
    'import "./side.ts";',
    'const i = await import("./dyn.ts");',
    'type J = typeof import("./typed.ts");',
    'import tf from "@tensorflow/tfjs";',
    'import { join } from "node:path";',
    'import * as ns from "./ns.ts";',
    "import def, { k } from './single.ts';",
    "export const x = 1;",
    "export { a };",
  ].join("\n");
  assert.deepEqual(importsOf(source), [
    "./a.ts",
    "./b.ts",
    "../c.ts",
    "./e.ts",
    "./f.ts",
    "./g.ts",
    "./h.ts",
    "./side.ts",
    "./dyn.ts",
    "./typed.ts",
    "@tensorflow/tfjs",
    "node:path",
    "./ns.ts",
    "./single.ts",
  ]);
});

Deno.test("importsOf ignores comments, strings, templates and regexes", () => {
  const source = [
    '// import { a } from "./line_comment.ts";',
    '    // export * from "./indented_comment.ts";',
    '/* import { b } from "./block.ts"; */',
    "/**",
    ' *     import { c } from "./doc_comment.ts";',
    " */",
    'const url = "https://example.com/x"; import { real } from "./real.ts";',
    "const glob = \"src/**/*.ts\"; import { after } from './after_glob.ts';",
    "const code = 'import { s } from \"./in_string.ts\";';",
    'const t = `import { u } from "./in_template.ts" ${url} export * from "./also.ts"`;',
    'const re = /import "\\.\\/in_regex.ts"/g;',
    'const half = 1 / 2; import "./after_division.ts"; const r = 4 / 2;',
    'obj.import("./method_call.ts");',
    "console.log(import.meta.url);",
  ].join("\n");
  assert.deepEqual(importsOf(source), ["./real.ts", "./after_glob.ts", "./after_division.ts"]);
});

Deno.test("layerOf picks the longest matching prefix", () => {
  assert.equal(layerOf("lib/util/files.ts")?.rank, 0);
  assert.equal(layerOf("lib/models/x_test.ts")?.prefix, "lib/models/");
  assert.equal(layerOf("lib/mod_test.ts")?.rank, 12);
  assert.equal(layerOf("lib/cli.ts")?.prefix, "lib/cli.ts");
  assert.equal(layerOf("datasets/puzzles/mod.ts")?.rank, 1);
  assert.equal(layerOf("lib/unknown.ts"), undefined);
  assert.equal(layerOf("lib/mystery/x.ts"), undefined);
});

Deno.test("a clean tree has no violations", async () => {
  await withRepo(CLEAN, async (root) => {
    const report = await analyze(root);
    assert.deepEqual(report.violations, []);
    assert.equal(report.files, 5); // skipped folders, hidden folders and non-.ts files are not walked
    assert.equal(report.imports, 4);
  });
});

Deno.test("an upward import names both files and both layers", async () => {
  await withRepo({ ...CLEAN, "lib/models/m.ts": 'import { p } from "../pipeline/p.ts";\nexport const m = 1;\n' }, async (root) => {
    const violations = await checkLayers(root);
    const layering = violations.filter((v) => v.startsWith("layering:"));
    assert.deepEqual(layering, [
      "layering: lib/models/m.ts imports lib/pipeline/p.ts: lib/models/ (rank 4) may not import lib/pipeline/ (rank 11)",
    ]);
  });
});

Deno.test("test files are ranked by their folder", async () => {
  const files = { ...CLEAN, "lib/models/m_test.ts": 'import { p } from "../pipeline/p.ts";\nconsole.log(p);\n' };
  await withRepo(files, async (root) => {
    const violations = await checkLayers(root);
    assert.equal(violations.length, 1);
    assert.match(violations[0], /^layering: lib\/models\/m_test\.ts imports lib\/pipeline\/p\.ts/);
  });
});

Deno.test("import type, multi-line imports and export * are all checked", async () => {
  const files = {
    ...CLEAN,
    "lib/util/t.ts": 'import type { P } from "../pipeline/types.ts";\nexport type T = P;\n',
    "lib/util/u.ts": 'import {\n  p,\n  q,\n} from "../pipeline/p.ts";\nexport const u = p + q;\n',
    "lib/util/v.ts": 'export * from "../models/m.ts";\n',
    "lib/pipeline/types.ts": "export type P = number;\n",
  };
  await withRepo(files, async (root) => {
    const violations = await checkLayers(root);
    assert.equal(violations.length, 3, violations.join("\n"));
    assert.ok(violations.some((v) => v.startsWith("layering: lib/util/t.ts imports lib/pipeline/types.ts:")));
    assert.ok(violations.some((v) => v.startsWith("layering: lib/util/u.ts imports lib/pipeline/p.ts:")));
    assert.ok(violations.some((v) => v.startsWith("layering: lib/util/v.ts imports lib/models/m.ts:")));
  });
});

Deno.test("a commented-out import is ignored", async () => {
  const files = {
    ...CLEAN,
    "lib/util/c.ts": '// import { p } from "../pipeline/p.ts";\n/*\nimport "../pipeline/p.ts";\n*/\nexport const c = "https://x.y//z";\n',
  };
  await withRepo(files, async (root) => {
    assert.deepEqual(await checkLayers(root), []);
  });
});

Deno.test("a cycle is reported naming its files, but not one through a test file", async () => {
  const files = {
    ...CLEAN,
    "lib/models/x.ts": 'import { y } from "./y.ts";\nexport const x = () => y;\n',
    "lib/models/y.ts": 'import type { X } from "./x.ts";\nexport const y = 1;\nexport type Y = X;\n',
    "lib/models/z.ts": 'import { z } from "./z.ts";\nexport { z };\n',
    "lib/models/w.ts": 'import { w } from "./w_test.ts";\nexport const v = w;\n',
    "lib/models/w_test.ts": 'import { v } from "./w.ts";\nexport const w = 1;\nconsole.log(v);\n',
  };
  await withRepo(files, async (root) => {
    const violations = await checkLayers(root);
    assert.deepEqual(violations, [
      "cycle: lib/models/x.ts -> lib/models/y.ts -> lib/models/x.ts",
      "cycle: lib/models/z.ts -> lib/models/z.ts",
    ]);
  });
});

Deno.test("missing files and files outside the table are reported", async () => {
  const files = {
    ...CLEAN,
    "lib/models/n.ts": 'import { gone } from "./gone.ts";\nexport const n = gone;\n',
    "lib/mystery/q.ts": "export const q = 1;\n",
  };
  await withRepo(files, async (root) => {
    const violations = await checkLayers(root);
    assert.deepEqual(violations, [
      "missing: lib/models/n.ts imports lib/models/gone.ts, which does not exist",
      "no layer for lib/mystery/q.ts: add it to the table in tools/check_layers.ts",
    ]);
  });
});

Deno.test("the real repo can be checked", async () => {
  const { files, imports, violations } = await analyze(REPO_ROOT);
  console.log(`layers: ${files} files, ${imports} imports, ${violations.length} violations`);
});
