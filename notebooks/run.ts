/**
 * `deno task nb`: executes the notebooks headless, in order, on one run directory, and fails on
 * the first cell error. Executed copies go to an output folder (default `<run dir>/executed/`);
 * the committed notebooks are never written.
 *
 *     deno task nb [--preset tiny|small|seed] [--run-dir DIR] [--out DIR] [--only 01,06]
 *                  [--set key.path=value ...] [--timeout SECONDS]
 *
 * Execution uses nbclient (Debian `python3-nbclient`, `jupyter-client`) with a private
 * kernelspec for the running Deno binary (`deno jupyter --kernel`), so it needs no
 * `deno jupyter --install` and always runs the same Deno as this script. Exit codes: 0 every
 * notebook ran without a cell error, 1 one failed (its partial output is still written), 2 bad
 * usage or Jupyter missing.
 */
import { parseArgs } from "node:util";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PLOTLY_MIME } from "../lib/viz/notebook.ts";
import { NB_ENV } from "../lib/pipeline/session.ts";
import { type Preset, PRESETS } from "../lib/config/config.ts";

/** This folder (where the committed notebooks live). */
export const NOTEBOOK_DIR = fileURLToPath(new URL(".", import.meta.url));

/** The notebooks to execute, in order: `NN_<name>.ipynb` in `dir`. */
export async function listNotebooks(dir = NOTEBOOK_DIR): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile && /^\d\d_.+\.ipynb$/.test(e.name)) out.push(join(dir, e.name));
  return out.sort();
}

/** The parts of a notebook file this tooling reads. */
export interface Notebook {
  cells: {
    cell_type: string;
    source: string | string[];
    outputs?: Output[];
    execution_count?: number | null;
    metadata?: Record<string, unknown>;
  }[];
  metadata: Record<string, unknown> & { agent_forge?: { phase: number | null; after?: number; expect_plots?: string[] } };
  nbformat: number;
  nbformat_minor: number;
}

/** One cell output (nbformat 4). */
export interface Output {
  output_type: string;
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
  text?: string | string[];
}

const joined = (s: string | string[] | undefined) => (Array.isArray(s) ? s.join("") : s ?? "");

/** The error outputs of a notebook: cell index, name and message. */
export function cellErrors(nb: Notebook): { cell: number; ename: string; evalue: string }[] {
  return nb.cells.flatMap((c, cell) =>
    (c.outputs ?? []).filter((o) => o.output_type === "error").map((o) => ({ cell, ename: o.ename ?? "", evalue: o.evalue ?? "" }))
  );
}

/** The plotly outputs of a notebook: cell index, the figure's title and its text/plain line. */
export function plotOutputs(nb: Notebook): { cell: number; title: string; text: string }[] {
  return nb.cells.flatMap((c, cell) =>
    (c.outputs ?? []).filter((o) => o.data?.[PLOTLY_MIME] !== undefined).map((o) => {
      const fig = o.data![PLOTLY_MIME] as { layout?: { title?: string | { text?: string } } };
      const t = fig.layout?.title;
      return { cell, title: typeof t === "string" ? t : t?.text ?? "", text: joined(o.data!["text/plain"] as string | string[]) };
    })
  );
}

/** Expected plots (the notebook's `metadata.agent_forge.expect_plots`, matched case-insensitively in a plot's title or text) that no plot output shows. */
export function missingPlots(nb: Notebook): string[] {
  const plots = plotOutputs(nb).map((p) => `${p.title}\n${p.text}`.toLowerCase());
  return (nb.metadata.agent_forge?.expect_plots ?? []).filter((want) => !plots.some((p) => p.includes(want.toLowerCase())));
}

/** A Python with nbclient and nbformat (Debian's, even when pyenv shadows python3), or undefined. */
export async function findPython(): Promise<string | undefined> {
  for (const py of ["/usr/bin/python3", "python3"]) {
    try {
      const r = await new Deno.Command(py, { args: ["-c", "import nbclient, nbformat, jupyter_client"], stdout: "null", stderr: "null" })
        .output();
      if (r.success) return py;
    } catch {
      // not installed
    }
  }
  return undefined;
}

/** Writes a kernelspec `deno` for this Deno binary into a fresh folder to put on JUPYTER_PATH. */
export async function privateKernelspec(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "af-jupyter-" });
  await Deno.mkdir(join(dir, "kernels", "deno"), { recursive: true });
  const spec = {
    argv: [Deno.execPath(), "jupyter", "--kernel", "--conn", "{connection_file}"],
    display_name: "Deno",
    language: "typescript",
  };
  await Deno.writeTextFile(join(dir, "kernels", "deno", "kernel.json"), JSON.stringify(spec, null, 2));
  return dir;
}

/**
 * The nbclient driver: executes argv[1] in its own folder, stops at the first failing cell, always
 * writes what ran to argv[2], and prints one JSON status line.
 */
const DRIVER = `
import json, os, sys, traceback
import nbformat
from nbclient import NotebookClient
src, out, timeout, startup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
nb = nbformat.read(src, as_version=4)
client = NotebookClient(nb, kernel_name="deno", timeout=timeout if timeout > 0 else None, startup_timeout=startup,
                        resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}})
status = {"ok": True}
try:
    client.execute()
except Exception as e:
    started = any(c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    status = {"ok": False, "kind": type(e).__name__, "started": bool(started), "message": str(e)[-4000:]}
finally:
    nbformat.write(nb, out)
print(json.dumps(status))
`;

export interface ExecuteOptions {
  /** Where the executed copy goes (a folder). */
  outDir: string;
  /** Environment for the kernel (the notebooks' settings). */
  env: Record<string, string>;
  /** Seconds a single cell may run (0: no limit). */
  cellTimeout: number;
  /** Seconds to wait for the kernel to start. */
  startupTimeout?: number;
  python: string;
  /** A folder holding kernels/deno (privateKernelspec). */
  jupyterPath: string;
}

export interface NotebookRun {
  notebook: string;
  output: string;
  ok: boolean;
  seconds: number;
  /** Cell errors recorded in the executed notebook. */
  errors: ReturnType<typeof cellErrors>;
  plots: ReturnType<typeof plotOutputs>;
  missingPlots: string[];
  /** Why execution stopped, when it did (nbclient's exception, e.g. a timeout or a dead kernel). */
  failure?: string;
}

async function executeOnce(
  path: string,
  o: ExecuteOptions,
): Promise<{ status: { ok: boolean; kind?: string; started?: boolean; message?: string }; stderr: string }> {
  const output = join(o.outDir, basename(path));
  const env = { ...o.env, JUPYTER_PATH: [o.jupyterPath, Deno.env.get("JUPYTER_PATH")].filter(Boolean).join(":"), NO_COLOR: "1" };
  const r = await new Deno.Command(o.python, {
    args: ["-c", DRIVER, path, output, String(o.cellTimeout), String(o.startupTimeout ?? 300)],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(r.stdout).trim().split("\n").pop() ?? "";
  const stderr = new TextDecoder().decode(r.stderr);
  try {
    return { status: JSON.parse(stdout), stderr };
  } catch {
    return {
      status: { ok: false, kind: "driver", started: false, message: `nbclient driver exited ${r.code}: ${stderr.slice(-2000)}` },
      stderr,
    };
  }
}

/**
 * Executes one notebook into `outDir` and reads the result back. A kernel that fails before the
 * first cell runs (start-up on a loaded machine) is retried once.
 */
export async function executeNotebook(path: string, o: ExecuteOptions): Promise<NotebookRun> {
  await Deno.mkdir(o.outDir, { recursive: true });
  const t0 = performance.now();
  let { status } = await executeOnce(path, o);
  if (!status.ok && !status.started) ({ status } = await executeOnce(path, o));
  const output = join(o.outDir, basename(path));
  const nb = JSON.parse(await Deno.readTextFile(output)) as Notebook;
  const errors = cellErrors(nb);
  const missing = missingPlots(nb);
  return {
    notebook: path,
    output,
    ok: status.ok && errors.length === 0 && missing.length === 0,
    seconds: (performance.now() - t0) / 1000,
    errors,
    plots: plotOutputs(nb),
    missingPlots: missing,
    ...(status.ok ? {} : { failure: `${status.kind}: ${status.message}` }),
  };
}

/** One line per notebook run, plus the failure's details. */
export function describeRun(r: NotebookRun): string {
  const head = `${r.ok ? "ok  " : "FAIL"} ${basename(r.notebook)} in ${
    r.seconds.toFixed(0)
  } s: ${r.plots.length} plot(s), ${r.errors.length} error(s) -> ${r.output}`;
  const errs = r.errors.map((e) => `  cell ${e.cell}: ${e.ename}: ${e.evalue.split("\n")[0]}`);
  const miss = r.missingPlots.length ? [`  expected plots not shown: ${r.missingPlots.join(", ")}`] : [];
  const fail = r.failure && !r.errors.length ? [`  ${r.failure.split("\n").slice(-6).join("\n  ")}`] : [];
  return [head, ...errs, ...miss, ...fail].join("\n");
}

const HELP = `deno task nb: executes the notebooks headless, in order, on one run directory.

Options:
  --preset tiny|small|seed   preset of the run (default small, as in the notebooks)
  --run-dir DIR              run directory (default runs/notebooks-<preset>)
  --out DIR                  executed notebooks (default <run dir>/executed)
  --only 01,06               only these notebooks (by number)
  --set key.path=value       config override (repeatable), as for deno task pipeline
  --timeout SECONDS          most seconds one cell may run (default 7200; 0 = no limit)
  --help                     this text

Exit codes: 0 all ran without a cell error, 1 a notebook failed, 2 bad usage or Jupyter missing.`;

/** Runs the CLI; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      options: {
        preset: { type: "string" },
        "run-dir": { type: "string" },
        out: { type: "string" },
        only: { type: "string" },
        set: { type: "string", multiple: true },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const preset = (values.preset ?? "small") as Preset;
  if (!PRESETS.includes(preset)) {
    console.error(`error: --preset ${values.preset}: expected one of ${PRESETS.join(", ")}`);
    return 2;
  }
  const timeout = Number(values.timeout ?? 7200);
  if (!Number.isInteger(timeout) || timeout < 0) {
    console.error(`error: --timeout ${values.timeout}: expected whole seconds >= 0`);
    return 2;
  }
  let notebooks = await listNotebooks();
  if (values.only) {
    const want = values.only.split(",").map((s) => s.trim().padStart(2, "0"));
    const unknown = want.filter((w) => !notebooks.some((n) => basename(n).startsWith(`${w}_`)));
    if (unknown.length) {
      console.error(
        `error: --only ${values.only}: no notebook ${unknown.join(", ")}; have ${notebooks.map((n) => basename(n)).join(", ")}`,
      );
      return 2;
    }
    notebooks = notebooks.filter((n) => want.some((w) => basename(n).startsWith(`${w}_`)));
  }
  const python = await findPython();
  if (!python) {
    console.error(
      "error: Jupyter's nbclient is missing: apt-get install -y --no-install-recommends jupyter-nbconvert python3-nbclient jupyter-client",
    );
    return 2;
  }
  const runDir = resolve(values["run-dir"] ?? join("runs", `notebooks-${preset}`));
  const outDir = resolve(values.out ?? join(runDir, "executed"));
  const jupyterPath = await privateKernelspec();
  const env = { [NB_ENV.preset]: preset, [NB_ENV.runDir]: runDir, [NB_ENV.sets]: (values.set ?? []).join(";") };
  console.log(`executing ${notebooks.length} notebook(s) at preset ${preset} on ${runDir}; executed copies in ${outDir}`);
  try {
    for (const nb of notebooks) {
      const r = await executeNotebook(nb, { outDir, env, cellTimeout: timeout, python, jupyterPath });
      console.log(describeRun(r));
      if (!r.ok) return 1;
    }
  } finally {
    await Deno.remove(jupyterPath, { recursive: true });
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
