/**
 * report.html: a self-contained page for a run directory (plotly inlined, no network):
 * the phase table with validation gates, loss curves from metrics.jsonl, phase times and
 * the resolved config.
 */
import { join } from "node:path";
import * as aq from "arquero";
import { readJson, writeAtomic } from "../util/fs.ts";
import { type MetricRecord, type PhaseName, type PhaseResultFile, readMetrics, readResult, readState, RUN_FILES } from "../util/run_dir.ts";
import { type Figure, metricCurves, phaseTimes } from "./figures.ts";

const PLOTLY = new URL("../../node_modules/plotly.js-dist-min/plotly.min.js", import.meta.url);

/** Escapes text for HTML. */
export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** One row of the training summary: a (phase, model)'s logged losses from first to last step. */
export interface TrainingSummaryRow {
  phase: number;
  model: string;
  steps: number;
  first_loss: number;
  last_loss: number;
  min_loss: number;
  tokens_per_s: number;
}

/** Per (phase, model): last step, first/last/min logged loss and median tokens/s (arquero over metrics.jsonl records). */
export function trainingSummary(records: MetricRecord[]): TrainingSummaryRow[] {
  const rows = records.filter((r) => typeof r.loss === "number" && Number.isFinite(r.loss))
    .map((r) => ({ phase: r.phase, model: r.model ?? "", step: r.step, loss: r.loss as number, tps: (r.tokens_per_s as number) ?? NaN }));
  if (!rows.length) return [];
  return aq.from(rows).orderby("phase", "model", "step").groupby("phase", "model").rollup({
    steps: "d => op.max(d.step)",
    first_loss: "d => op.array_agg(d.loss)[0]",
    last_loss: "d => op.array_agg(d.loss)[op.count() - 1]",
    min_loss: "d => op.min(d.loss)",
    tokens_per_s: "d => op.median(d.tps)",
  }).objects() as unknown as TrainingSummaryRow[];
}

/** A section of a figure page: a heading, optional HTML, an optional plotly figure. */
export interface PageSection {
  title: string;
  html?: string;
  figure?: Figure;
}

/** A self-contained HTML page (plotly inlined, no network): `body`, then one section per figure, then `footer`. */
export async function figurePage(title: string, body: string, sections: PageSection[], footer = ""): Promise<string> {
  const plotly = await Deno.readTextFile(PLOTLY);
  const parts = sections.map((f, i) => `<h2>${esc(f.title)}</h2>${f.html ?? ""}${f.figure ? `<div id="fig${i}" class="fig"></div>` : ""}`)
    .join("\n");
  const scripts = sections.map((f, i) =>
    f.figure ? `Plotly.newPlot("fig${i}", ${JSON.stringify(f.figure.data)}, ${JSON.stringify(f.figure.layout)}, {responsive: true});` : ""
  ).join("\n");
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:14px}tr.failed{background:#fdd}tr.completed{background:#efe}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}</style>
<script>${plotly}</script></head><body>
${body}
${parts}
${footer}
<script>${scripts}</script></body></html>`;
}

/** A phase that renders its own report sections from its result.json (a PhaseSpec fits). */
export interface ReportingPhase extends PhaseName {
  report?(result: PhaseResultFile): PageSection[];
}

/**
 * The phase-specific sections of a run (grokking curve, halting curves, heatmaps, retention
 * table...): each registered phase with a `report` renders its own result.json. A phase whose
 * section fails to render gets a section saying why instead of breaking the whole report.
 */
export async function phaseSections(runDir: string, phases: readonly ReportingPhase[]): Promise<PageSection[]> {
  const out: PageSection[] = [];
  for (const p of [...phases].sort((a, b) => a.id - b.id)) {
    const result = p.report ? await readResult(runDir, p) : undefined;
    if (!p.report || !result) continue;
    try {
      out.push(...p.report(result));
    } catch (e) {
      out.push({ title: `Phase ${p.id}: report section failed`, html: `<pre>${esc((e as Error).message)}</pre>` });
    }
  }
  return out;
}

/** Writes `<runDir>/report.html` and returns its path. Extra sections (phase-specific) may be passed in. */
export async function writeReport(runDir: string, extra: PageSection[] = []): Promise<string> {
  const state = await readState(runDir);
  if (!state) throw new Error(`${runDir}: no ${RUN_FILES.state}, not a run directory`);
  const config = await readJson<Record<string, unknown>>(join(runDir, RUN_FILES.config));
  const metrics = await readMetrics(runDir);
  const figures: PageSection[] = [];
  if (metrics.some((m) => typeof m.loss === "number")) {
    const fmt = (x: number) => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(4)) : "");
    const summary = trainingSummary(metrics).map((r) =>
      `<tr><td>${r.phase}</td><td>${esc(r.model)}</td><td>${r.steps}</td><td>${fmt(r.first_loss)}</td><td>${fmt(r.last_loss)}</td><td>${
        fmt(r.min_loss)
      }</td><td>${fmt(r.tokens_per_s)}</td></tr>`
    ).join("");
    figures.push({
      title: "Training loss",
      html:
        `<table><tr><th>phase</th><th>model</th><th>steps</th><th>first loss</th><th>last loss</th><th>min loss</th><th>tokens/s (median)</th></tr>${summary}</table>`,
      figure: metricCurves(metrics, "loss", "training loss"),
    });
  }
  const timed = Object.entries(state.phases).filter(([, p]) => p.seconds !== undefined)
    .map(([id, p]) => ({ phase: Number(id), name: p.name, seconds: p.seconds! }));
  if (timed.length) figures.push({ title: "Phase times", figure: phaseTimes(timed) });
  figures.push(...extra);

  const rows = Object.entries(state.phases).map(([id, p]) => {
    const checks = (p.validation?.checks ?? []).map((c) =>
      `${c.passed ? "✔" : "✘"} ${esc(c.name)}: ${esc(c.value)} (≥/≤ ${esc(c.threshold)})`
    ).join("<br>");
    return `<tr class="${esc(p.status)}"><td>${esc(id)}</td><td>${esc(p.name)}</td><td>${esc(p.status)}</td><td>${
      p.seconds?.toFixed(1) ?? ""
    }</td><td>${p.peak_rss_mb ?? ""}</td><td>${checks}${p.error ? `<br><b>error:</b> ${esc(p.error)}` : ""}${
      p.warning ? `<br><b>warning:</b> ${esc(p.warning)}` : ""
    }</td></tr>`;
  }).join("\n");
  const body = `<h1>Agent Forge run</h1>
<p>run <code>${esc(state.run_id)}</code>, status <b>${esc(state.status)}</b>, preset <b>${
    esc((config.run as { preset?: string })?.preset)
  }</b>, started ${esc(state.created_at)}, updated ${esc(state.updated_at)}</p>
<table><tr><th>phase</th><th>name</th><th>status</th><th>seconds</th><th>peak RSS MB</th><th>validation</th></tr>
${rows}</table>`;
  const html = await figurePage(
    `Agent Forge run ${state.run_id}`,
    body,
    figures,
    `<h2>Resolved config</h2><pre>${esc(JSON.stringify(config, null, 2))}</pre>`,
  );
  const path = join(runDir, RUN_FILES.report);
  await writeAtomic(path, html);
  return path;
}
