/**
 * The notebooks: committed without outputs, one per registered phase, their code type-checks,
 * and (when Jupyter's nbclient is installed) every one executes at the tiny preset on one shared
 * run directory, in order, without a cell error and with the plots it promises.
 */
import { checkNotebook, describeCheck, findChromium, findNbconvert } from "../notebooks/browser_check.ts";
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { PHASES } from "../lib/phases/mod.ts";
import { ROOT } from "../lib/pipeline/session.ts";
import { cleanNotebooks, stripOutputs } from "../notebooks/clean.ts";
import { describeRun, executeNotebook, findPython, listNotebooks, type Notebook, privateKernelspec } from "../notebooks/run.ts";

const files = await listNotebooks();
const read = async (f: string) => JSON.parse(await Deno.readTextFile(f)) as Notebook;
const code = (nb: Notebook) =>
  nb.cells.filter((c) => c.cell_type === "code").map((c) => (Array.isArray(c.source) ? c.source.join("") : c.source));

Deno.test("one notebook per registered phase (and the notebooks after them), on the Deno kernel, committed without outputs", async () => {
  assert.ok(files.length > 0, "no notebooks found");
  const phases = [];
  for (const f of files) {
    const nb = await read(f);
    const meta = nb.metadata.agent_forge;
    const spec = nb.metadata.kernelspec as { name?: string; language?: string } | undefined;
    assert.equal(spec?.name, "deno", `${basename(f)}: kernelspec name`);
    assert.equal(spec?.language, "typescript", `${basename(f)}: kernelspec language`);
    assert.ok((meta?.expect_plots ?? []).length > 0, `${basename(f)}: metadata.agent_forge.expect_plots lists no plot`);
    const n = Number(basename(f).slice(0, 2));
    if (meta?.phase === null) {
      // A notebook beyond the phases (08: evolution) comes after them and names the phase whose outputs it needs.
      assert.ok(n > PHASES.length, `${basename(f)}: a notebook without a phase is numbered after the ${PHASES.length} phases`);
      assert.ok(PHASES.some((p) => p.id === meta.after), `${basename(f)}: metadata.agent_forge.after should name a registered phase`);
    } else {
      assert.equal(meta?.phase, n, `${basename(f)}: metadata.agent_forge.phase should match its number`);
      phases.push(meta!.phase);
    }
    assert.deepEqual(stripOutputs(nb).cells.map((c) => c.outputs ?? []).flat(), []);
  }
  assert.deepEqual(phases, PHASES.map((p) => p.id), "notebooks and registered phases (lib/phases/mod.ts) should match one to one");
  assert.deepEqual((await cleanNotebooks(files, true)).map((f) => basename(f)), [], "run `deno task nb:clean` before committing");
});

Deno.test("stripOutputs drops outputs, counts and execution metadata, and ends every cell in a newline", () => {
  const nb: Notebook = {
    cells: [
      {
        cell_type: "code",
        source: ["a;\n", "b;"],
        execution_count: 3,
        metadata: { execution: { x: 1 }, tags: ["t"] },
        outputs: [{ output_type: "stream", text: "hi" }],
      },
      { cell_type: "markdown", source: "# t\nx", metadata: {} },
    ],
    metadata: {},
    nbformat: 4,
    nbformat_minor: 5,
  };
  assert.deepEqual(stripOutputs(nb).cells, [
    { cell_type: "code", source: ["a;\n", "b;\n"], execution_count: null, metadata: { tags: ["t"] }, outputs: [] },
    { cell_type: "markdown", source: ["# t\n", "x\n"], metadata: {} },
  ]);
});

Deno.test("the notebooks' code type-checks against lib/", async () => {
  const dir = await Deno.makeTempDir({ prefix: "af-nbcheck-" });
  try {
    const sources: string[] = [];
    for (const f of files) {
      // The cells of a notebook share one scope, as in a module; imports are relative to notebooks/.
      const text = code(await read(f)).join("\n\n").replaceAll('from "../', `from "${join(ROOT, "")}`);
      const out = join(dir, `${basename(f, ".ipynb")}.ts`);
      await Deno.writeTextFile(out, `${text}\nexport {};\n`);
      sources.push(out);
    }
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--config", join(ROOT, "deno.json"), ...sources],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const python = await findPython();
if (!python) {
  console.log(
    "notebooks_test: skipping notebook execution: Jupyter's nbclient is missing (apt-get install python3-nbclient jupyter-client)",
  );
}

Deno.test({
  name:
    "every notebook executes at the tiny preset on one run directory, with its plots and no error; every chart draws in Chromium after nbconvert",
  ignore: !python,
  async fn() {
    const base = await Deno.makeTempDir({ prefix: "af-notebooks-" });
    const jupyterPath = await privateKernelspec();
    const env = {
      AGENT_FORGE_PRESET: "tiny",
      AGENT_FORGE_RUN_DIR: join(base, "run"),
      AGENT_FORGE_SET: `pipeline.baseline_file=${join(base, "baselines.json")}`,
    };
    let ok = false;
    try {
      const runs = [];
      for (const f of files) {
        const r = await executeNotebook(f, { outDir: join(base, "executed"), env, cellTimeout: 1800, python: python!, jupyterPath });
        runs.push(r);
        console.log(describeRun(r));
        assert.ok(r.ok, `${basename(f)} failed (executed copy kept in ${base}):\n${describeRun(r)}`);
        assert.ok(r.plots.length > 0);
      }
      // Every chart also draws where no plotly renderer is installed: nbconvert's HTML in Chromium.
      const chromium = await findChromium(), nbconvert = await findNbconvert();
      if (!chromium || !nbconvert) console.log(`skipping the browser check: ${!chromium ? "no Chromium" : "no nbconvert"} on this machine`);
      else {
        for (const r of runs) {
          const b = await checkNotebook(r.output, join(base, "html"), { chromium, python: nbconvert });
          console.log(describeCheck(b));
          assert.equal(b.charts, r.plots.length, `${b.notebook}: one HTML chart per plot output`);
          assert.ok(b.charts > 0 && b.drawn === b.charts, describeCheck(b));
        }
      }
      const state = JSON.parse(await Deno.readTextFile(join(base, "run", "state.json")));
      assert.deepEqual(Object.keys(state.phases).map(Number), PHASES.map((p) => p.id));
      assert.equal(state.status, "completed");
      ok = true;
    } finally {
      await Deno.remove(jupyterPath, { recursive: true });
      if (ok) await Deno.remove(base, { recursive: true });
    }
  },
});
