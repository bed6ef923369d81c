/**
 * The browser check: do an executed notebook's charts draw for someone who opens it outside
 * VS Code or JupyterLab-with-plotly? Each notebook is converted with `jupyter nbconvert --to
 * html` (which keeps a figure's HTML rendering, not plotly's MIME type) and opened in headless
 * Chromium (Debian's `chromium`); a chart counts as drawn when plotly put its SVG into the
 * chart's div. Optionally screenshots the page.
 *
 *     deno run -A notebooks/browser_check.ts EXECUTED.ipynb... [--out DIR] [--screenshot DIR] [--height PX]
 *
 * (`--height`: the screenshot's height in pixels, default 3600; the page is cut there.)
 *
 * Prints one line per notebook (charts drawn / charts) and exits 1 when a chart did not draw.
 * `tests/notebooks_test.ts` runs it on the notebooks it executes; run it yourself on the folder
 * `deno task nb` wrote (`runs/notebooks-<preset>/executed/*.ipynb`).
 */
import { parseArgs } from "node:util";
import { basename, join, resolve } from "node:path";

/** The browser, when one is installed. */
export async function findChromium(): Promise<string | undefined> {
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    try {
      const r = await new Deno.Command(name, { args: ["--version"], stdout: "null", stderr: "null" }).output();
      if (r.success) return name;
    } catch { /* not installed */ }
  }
  return undefined;
}

/** Chart divs (`af-plot`, lib/viz/notebook.ts's figureHtml) in a page, and which of them hold plotly's SVG. */
export function chartsDrawn(dom: string): { charts: number; drawn: number; blank: number[] } {
  const parts = dom.split(/<div id="af-plot-[^"]*"/).slice(1); // plotly adds its own classes to a drawn div
  const blank = parts.map((p, i) => (p.includes('class="main-svg"') ? -1 : i)).filter((i) => i >= 0);
  return { charts: parts.length, drawn: parts.length - blank.length, blank };
}

export interface BrowserCheck {
  notebook: string;
  html: string;
  charts: number;
  drawn: number;
  /** Indices (in page order) of charts that stayed blank. */
  blank: number[];
  screenshot?: string;
}

/** A Python with nbconvert (Debian's, even when pyenv shadows python3), or undefined. */
export async function findNbconvert(): Promise<string | undefined> {
  for (const py of ["/usr/bin/python3", "python3"]) {
    try {
      const r = await new Deno.Command(py, { args: ["-m", "nbconvert", "--version"], stdout: "null", stderr: "null" }).output();
      if (r.success) return py;
    } catch { /* not installed */ }
  }
  return undefined;
}

/**
 * Converts `ipynb` to HTML in `outDir` (nbconvert under `python`), opens it in `chromium`,
 * counts the charts drawn; screenshots into `shotDir` when given.
 */
export async function checkNotebook(
  ipynb: string,
  outDir: string,
  tools: { chromium: string; python: string },
  shotDir?: string,
  shotHeight = 3600,
): Promise<BrowserCheck> {
  const chromium = tools.chromium;
  await Deno.mkdir(outDir, { recursive: true });
  const conv = await new Deno.Command(tools.python, {
    args: ["-m", "nbconvert", "--to", "html", "--output-dir", outDir, ipynb],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!conv.success) {
    throw new Error(`nbconvert ${ipynb}: ${new TextDecoder().decode(conv.stderr).trim().split("\n").slice(-3).join(" | ")}`);
  }
  const html = join(outDir, basename(ipynb).replace(/\.ipynb$/, ".html"));
  const url = `file://${resolve(html)}`;
  const flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=30000"];
  const dump = await new Deno.Command(chromium, { args: [...flags, "--dump-dom", url], stdout: "piped", stderr: "null" }).output();
  if (!dump.success) throw new Error(`${chromium} --dump-dom ${html}: exit ${dump.code}`);
  const result: BrowserCheck = { notebook: basename(ipynb), html, ...chartsDrawn(new TextDecoder().decode(dump.stdout)) };
  if (shotDir) {
    await Deno.mkdir(shotDir, { recursive: true });
    const png = join(shotDir, basename(ipynb).replace(/\.ipynb$/, ".png"));
    const shot = await new Deno.Command(chromium, {
      args: [...flags, `--window-size=1200,${shotHeight}`, `--screenshot=${resolve(png)}`, url],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!shot.success) throw new Error(`${chromium} --screenshot ${png}: exit ${shot.code}`);
    result.screenshot = png;
  }
  return result;
}

/** One line for logs: `02_arc_visual_reasoning.ipynb: 7/7 charts drawn in Chromium (...)`. */
export function describeCheck(r: BrowserCheck): string {
  const blank = r.blank.length ? `; blank: chart ${r.blank.map((i) => i + 1).join(", ")}` : "";
  return `${r.notebook}: ${r.drawn}/${r.charts} charts drawn in Chromium after nbconvert --to html (${r.html})${blank}` +
    (r.screenshot ? `; screenshot ${r.screenshot}` : "");
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { out: { type: "string" }, screenshot: { type: "string" }, height: { type: "string", default: "3600" } },
  });
  if (!positionals.length) {
    console.error("usage: deno run -A notebooks/browser_check.ts EXECUTED.ipynb... [--out DIR] [--screenshot DIR] [--height PX]");
    Deno.exit(2);
  }
  const chromium = await findChromium(), python = await findNbconvert();
  if (!chromium || !python) {
    console.error(!chromium ? "no Chromium found: apt-get install chromium" : "no nbconvert found: apt-get install jupyter-nbconvert");
    Deno.exit(2);
  }
  let bad = 0;
  const out = values.out ?? await Deno.makeTempDir({ prefix: "af-nbhtml-" });
  for (const f of positionals) {
    const height = Number(values.height);
    if (!Number.isInteger(height) || height < 100) throw new Error(`--height ${values.height}: expected an integer >= 100`);
    const r = await checkNotebook(f, out, { chromium, python }, values.screenshot, height);
    console.log(describeCheck(r));
    if (r.charts === 0 || r.drawn < r.charts) bad++;
  }
  Deno.exit(bad ? 1 : 0);
}
