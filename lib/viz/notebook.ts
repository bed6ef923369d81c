/**
 * Display helpers for the notebooks (Deno's Jupyter kernel): plotly figures, HTML, report
 * sections and arquero tables as rich outputs. Outside Jupyter (`Deno.jupyter` absent: tests,
 * scripts) every helper prints a plain-text rendering instead, so the same calls work anywhere.
 *
 * The kernel can drop output sent just before a cell ends (measured on Deno 2.9.6), so every
 * helper awaits its display and then `settle()`s briefly; cells that end with one of them keep
 * their output.
 */
import * as aq from "arquero";
import type { ColumnTable } from "arquero";
import type { PhaseResultFile } from "../util/run_dir.ts";
import { type Figure, metricCurves } from "./figures.ts";
import type { MetricRecord } from "../util/run_dir.ts";
import { esc, type PageSection, trainingSummary } from "./report.ts";

/** Plotly's MIME type, rendered by JupyterLab (with plotly's extension) and VS Code. */
export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

/** Milliseconds `settle` waits after a display (env `AGENT_FORGE_NB_SETTLE_MS` overrides). */
export const DEFAULT_SETTLE_MS = 150;

/** Where text renderings go outside Jupyter (tests replace it). */
let textSink: (text: string) => void = (t) => console.log(t);

/** Redirects text renderings (outside Jupyter); returns the previous sink. */
export function setTextSink(sink: (text: string) => void): (text: string) => void {
  const prev = textSink;
  textSink = sink;
  return prev;
}

/** True inside the Deno Jupyter kernel. */
export function inJupyter(): boolean {
  try {
    return typeof Deno.jupyter?.display === "function";
  } catch {
    return false; // outside the kernel, reading Deno.jupyter throws
  }
}

function settleMs(): number {
  const env = Deno.env.get("AGENT_FORGE_NB_SETTLE_MS");
  if (env === undefined || env === "") return DEFAULT_SETTLE_MS;
  const ms = Number(env);
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`AGENT_FORGE_NB_SETTLE_MS=${env}: expected a number of milliseconds >= 0`);
  return ms;
}

/** In Jupyter, waits a moment so output sent just before the cell ends is not dropped; elsewhere returns at once. */
export async function settle(): Promise<void> {
  if (inJupyter()) await new Promise((r) => setTimeout(r, settleMs()));
}

/** Displays a MIME bundle in Jupyter (with `text` as its text/plain), or prints `text` elsewhere. */
export async function show(bundle: Record<string, unknown>, text: string): Promise<void> {
  if (inJupyter()) {
    await Deno.jupyter.display({ ...bundle, "text/plain": text }, { raw: true });
    await settle();
  } else textSink(text);
}

function titleOf(fig: Figure): string {
  const t = fig.layout.title;
  if (typeof t === "string") return t;
  if (t && typeof t === "object" && typeof (t as { text?: unknown }).text === "string") return (t as { text: string }).text;
  return "";
}

/** One-line text summary of a figure: its title (after `label`, when given) and each trace's name, type and point count. */
export function figureText(fig: Figure, label = ""): string {
  const traces = fig.data.map((d, i) => {
    const n = ["x", "y", "z", "values"].map((k) => (Array.isArray(d[k]) ? (d[k] as unknown[]).length : 0)).reduce(
      (a, b) => Math.max(a, b),
      0,
    );
    return `${d.name ?? `trace ${i}`} (${d.type ?? "scatter"}, ${n} points)`;
  });
  const title = titleOf(fig);
  const head = label && title && label !== title ? `${label} / ${title}` : label || title || "untitled";
  return `[plot] ${head}: ${traces.join("; ") || "no traces"}`;
}

/** `fig` with `title` as its layout title when it has none of its own. */
export function withTitle(fig: Figure, title: string): Figure {
  return titleOf(fig) ? fig : { ...fig, layout: { ...fig.layout, title: { text: title } } };
}

/** plotly.js as the report inlines it (node_modules, no network). */
const PLOTLY_JS = new URL("../../node_modules/plotly.js-dist-min/plotly.min.js", import.meta.url);

/** True once this process has sent plotly.js in a figure's HTML (it goes into a notebook once, with the first figure). */
let plotlySent = false;

/** Forgets that plotly.js was sent (tests; a kernel whose first figure's output was cleared can call it). */
export function resetPlotlyLibrary(): void {
  plotlySent = false;
}

/**
 * The HTML rendering of a figure, for front ends without a plotly renderer (classic Notebook,
 * JupyterLab without plotly's extension, nbconvert's HTML): a div drawn by plotly.js once it
 * is on the page. With `library` the full plotly.js goes first, inlined (no CDN), with AMD's
 * `define` hidden so that under require.js (classic Notebook) it still sets `window.Plotly`. A
 * figure waits up to 20 s for the library and then says what is missing instead of staying blank.
 */
export function figureHtml(fig: Figure, library?: string): string {
  const id = `af-plot-${crypto.randomUUID().slice(0, 12)}`;
  const height = typeof fig.layout.height === "number" ? fig.layout.height : 420;
  // `</script` inside JSON would end the script element early.
  const json = (v: unknown) => JSON.stringify(v).replace(/<\//g, "<\\/");
  const lib = library === undefined ? "" : `<script type="text/javascript">(function () { var d = window.define; window.define = undefined;
${library}
window.define = d; })();</script>`;
  return `${lib}<div id="${id}" class="af-plot" style="height:${height}px"></div>
<script type="text/javascript">(function () {
  var el = document.getElementById("${id}"), tries = 0;
  var draw = function () { window.Plotly.newPlot(el, ${json(fig.data)}, ${json(fig.layout)}, { responsive: true }); };
  if (window.Plotly) return draw();
  var wait = setInterval(function () {
    if (window.Plotly) { clearInterval(wait); draw(); }
    else if (++tries > 400) { clearInterval(wait); el.textContent = "plotly.js is not on this page: run the notebook's first figure cell again"; }
  }, 50);
})();</script>`;
}

/**
 * Shows a plotly figure inline (plain JSON: data + layout) under plotly's MIME type, which
 * VS Code and JupyterLab with plotly's extension draw, and as HTML drawn by plotly.js for every
 * other front end (the library is sent with the first figure only); `label` leads its
 * text/plain line.
 */
export async function showFigure(fig: Figure, label = ""): Promise<void> {
  const text = figureText(fig, label);
  if (!inJupyter()) return show({}, text);
  const library = plotlySent ? undefined : await Deno.readTextFile(PLOTLY_JS);
  plotlySent = true;
  await show({ [PLOTLY_MIME]: { data: fig.data, layout: fig.layout }, "text/html": figureHtml(fig, library) }, text);
}

/** Sends plotly.js alone, once per notebook, so that charts which redraw in place never carry it. */
async function sendPlotlyLibrary(): Promise<void> {
  if (plotlySent || !inJupyter()) return;
  const library = await Deno.readTextFile(PLOTLY_JS);
  plotlySent = true;
  const script = `<script type="text/javascript">(function () { var d = window.define; window.define = undefined;
${library}
window.define = d; })();</script>`;
  await Deno.jupyter.display({ "text/html": script, "text/plain": "(plotly.js, for the charts of this notebook)" }, { raw: true });
}

/**
 * A chart that redraws in place while something runs: in Jupyter, the first `update` displays
 * it under a display id and later ones send `update_display_data` for that id (Deno's
 * `Deno.jupyter.display(..., { display_id, update })`), so the cell shows one chart that changes;
 * the saved notebook keeps its last state. Outside Jupyter nothing is shown until `close`, which
 * prints the last figure's text line.
 */
export class LiveFigure {
  readonly label: string;
  readonly displayId = `af-live-${crypto.randomUUID().slice(0, 12)}`;
  /** Figures sent so far (the first display included). */
  updates = 0;
  #last?: Figure;

  constructor(label = "") {
    this.label = label;
  }

  /** Draws `fig` in place of the previous one. */
  async update(fig: Figure): Promise<void> {
    this.#last = fig;
    if (!inJupyter()) return;
    await sendPlotlyLibrary();
    const bundle = {
      [PLOTLY_MIME]: { data: fig.data, layout: fig.layout },
      "text/html": figureHtml(fig),
      "text/plain": figureText(fig, this.label),
    };
    await Deno.jupyter.display(bundle, { raw: true, display_id: this.displayId, update: this.updates > 0 });
    this.updates++;
  }

  /** Ends the live chart: in Jupyter it stays as last drawn; elsewhere its text line is printed. */
  async close(): Promise<void> {
    if (inJupyter()) await settle();
    else if (this.#last) textSink(figureText(this.#last, this.label));
  }
}

/** Crude text of an HTML fragment for terminals: tags dropped, cells and rows spaced, entities decoded. */
export function htmlText(html: string): string {
  return html.replace(/<\/(td|th)>/gi, "\t").replace(/<(br|\/tr|\/p|\/h\d|\/li)[^>]*>/gi, "\n").replace(/<[^>]+>/g, "")
    .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, "&")
    .replace(/[ \t]+\n/g, "\n").replace(/\n{3,}/g, "\n\n").trim();
}

/** Shows an HTML fragment (text elsewhere: `text`, or the fragment with its tags stripped). */
export function showHtml(html: string, text = htmlText(html)): Promise<void> {
  return show({ "text/html": html }, text);
}

/**
 * Shows report sections (a phase's `report(result)`): each as a heading with its HTML, then its
 * figure (titled with the section's title when the figure has none; the section's title also
 * leads the figure's text/plain line).
 */
export async function showSections(sections: readonly PageSection[]): Promise<void> {
  for (const s of sections) {
    await showHtml(`<h3>${esc(s.title)}</h3>${s.html ?? ""}`, `== ${s.title} ==${s.html ? `\n${htmlText(s.html)}` : ""}`);
    if (s.figure) await showFigure(withTitle(s.figure, s.title), s.title);
  }
}

/** Rows or an arquero table, as an arquero table. */
export function asTable(t: ColumnTable | readonly Record<string, unknown>[]): ColumnTable {
  if (Array.isArray(t)) {
    if (!t.length) return aq.table({});
    // Nested values (objects, arrays) print as JSON rather than [object Object].
    const rows = t.map((r) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v !== null && typeof v === "object" ? JSON.stringify(v) : v]))
    );
    return aq.from(rows);
  }
  return t as ColumnTable;
}

export interface TableOptions {
  /** Caption shown above the table. */
  title?: string;
  /** Most rows shown (default 50). */
  limit?: number;
  /** Significant digits of non-integer numbers (default 5). */
  digits?: number;
}

/** A number with `digits` significant digits and no trailing zeros (integers as they are); other values as text. */
export function formatCell(v: unknown, digits = 5): string {
  if (typeof v === "number") return Number.isInteger(v) || !Number.isFinite(v) ? String(v) : String(Number(v.toPrecision(digits)));
  return v === null || v === undefined ? "" : String(v);
}

/** arquero format options formatting every column with formatCell. */
function formats(table: ColumnTable, digits: number): Record<string, (v: unknown) => string> {
  return Object.fromEntries(table.columnNames().map((n) => [n, (v: unknown) => formatCell(v, digits)]));
}

/** An arquero table (or rows) as an HTML table: arquero's toHTML, with a caption and a row count when cut. */
export function tableHtml(t: ColumnTable | readonly Record<string, unknown>[], o: TableOptions = {}): string {
  const table = asTable(t);
  const limit = o.limit ?? 50;
  const cell = "border: 1px solid #ccc; padding: 2px 8px";
  const style = { table: "border-collapse: collapse; font-size: 13px", td: cell, th: cell };
  const more = table.numRows() > limit ? `<p>${limit} of ${table.numRows()} rows shown</p>` : "";
  return `${o.title ? `<p><b>${esc(o.title)}</b></p>` : ""}${table.toHTML({ limit, format: formats(table, o.digits ?? 5), style })}${more}`;
}

/** The same table as Markdown text (for terminals). */
export function tableText(t: ColumnTable | readonly Record<string, unknown>[], o: TableOptions = {}): string {
  const table = asTable(t);
  const limit = o.limit ?? 50;
  const more = table.numRows() > limit ? `\n(${limit} of ${table.numRows()} rows shown)` : "";
  return `${o.title ? `${o.title}\n` : ""}${table.toMarkdown({ limit, format: formats(table, o.digits ?? 5) }).trimEnd()}${more}`;
}

/** Shows an arquero table (or an array of row objects) as an HTML table. */
export function showTable(t: ColumnTable | readonly Record<string, unknown>[], o: TableOptions = {}): Promise<void> {
  return show({ "text/html": tableHtml(t, o) }, tableText(t, o));
}

/** Numeric fields of metrics records that are bookkeeping rather than something to plot. */
const NOT_CURVES = new Set(["phase", "step", "loss", "lr", "grad_norm", "tokens_per_s"]);

/**
 * The training view of metrics records (usually one phase's): the loss curves (one line per
 * model), the arquero training summary, and one chart per evaluation metric the phase logged
 * (e.g. val_loss). Says so when there are no records.
 */
export async function showTraining(records: readonly MetricRecord[], title = "training loss"): Promise<void> {
  const losses = records.filter((r) => typeof r.loss === "number");
  if (!losses.length) {
    await showHtml("<p>no training steps were logged</p>", "no training steps were logged");
    return;
  }
  await showFigure(metricCurves([...records], "loss", title));
  await showTable(trainingSummary([...records]) as unknown as Record<string, unknown>[], { title: "training summary (per model)" });
  const evals = new Set<string>();
  for (const r of records) for (const [k, v] of Object.entries(r)) if (!NOT_CURVES.has(k) && typeof v === "number") evals.add(k);
  for (const k of evals) await showFigure(metricCurves([...records], k, `${k} during training`));
}

/** The validation gate of a phase result as a table (check, value, threshold, passed), with the overall verdict. */
export function showValidation(result: PhaseResultFile): Promise<void> {
  const verdict = `phase ${result.phase} (${result.name}): ${result.status}, validation ${
    result.validation.passed ? "passed" : "failed"
  }, ${result.seconds.toFixed(1)} s`;
  return showTable(result.validation.checks as unknown as Record<string, unknown>[], { title: verdict });
}

/**
 * Shows the validation gate (showValidation) and throws when the phase did not pass it, naming
 * the failed checks: the last cell of a notebook, so that a failed gate fails the notebook (and
 * `deno task nb`) after its charts were shown.
 */
export async function checkGate(result: PhaseResultFile): Promise<void> {
  await showValidation(result);
  if (result.status === "completed" && result.validation.passed) return;
  const failed = result.validation.checks.filter((c) => !c.passed).map((c) => `${c.name} = ${c.value} (threshold ${c.threshold})`);
  throw new Error(
    `phase ${result.phase} (${result.name}) did not pass its validation gate: ${failed.join("; ") || result.error || result.status}`,
  );
}
