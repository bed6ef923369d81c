import assert from "node:assert/strict";
import * as aq from "arquero";
import {
  checkGate,
  figureHtml,
  figureText,
  formatCell,
  htmlText,
  inJupyter,
  setTextSink,
  settle,
  showFigure,
  showSections,
  showTable,
  showTraining,
  showValidation,
  tableHtml,
  tableText,
  withTitle,
} from "./notebook.ts";
import type { MetricRecord } from "../util/run_dir.ts";
import type { PhaseResultFile } from "../util/run_dir.ts";

function includes(text: string, part: string): void {
  assert.ok(text.includes(part), `expected ${JSON.stringify(part)} in:\n${text}`);
}

/** Runs `f` with text renderings captured. */
async function captured(f: () => Promise<void>): Promise<string[]> {
  const out: string[] = [];
  const prev = setTextSink((t) => out.push(t));
  try {
    await f();
  } finally {
    setTextSink(prev);
  }
  return out;
}

Deno.test("outside Jupyter the helpers print text and settle returns at once", async () => {
  assert.deepEqual(inJupyter(), false);
  const t0 = performance.now();
  await settle();
  assert.ok(performance.now() - t0 < 50);
  const out = await captured(() =>
    showFigure({ data: [{ type: "scatter", name: "a", x: [1, 2, 3], y: [4, 5, 6] }], layout: { title: { text: "loss" } } })
  );
  assert.deepEqual(out, ["[plot] loss: a (scatter, 3 points)"]);
});

Deno.test("figureText and withTitle", () => {
  const fig = { data: [{ type: "heatmap", z: [[1, 2], [3, 4]] }, { type: "bar", name: "b", x: ["p", "q"], y: [1, 2] }], layout: {} };
  assert.deepEqual(figureText(fig), "[plot] untitled: trace 0 (heatmap, 2 points); b (bar, 2 points)");
  assert.deepEqual(figureText(withTitle(fig, "accuracy")).startsWith("[plot] accuracy:"), true);
  assert.deepEqual(figureText(fig, "section"), "[plot] section: trace 0 (heatmap, 2 points); b (bar, 2 points)");
  const titled = { data: [], layout: { title: "own" } };
  assert.deepEqual(figureText(titled, "section"), "[plot] section / own: no traces");
  assert.deepEqual(withTitle(titled, "other"), titled);
});

Deno.test("tables: arquero table or rows to HTML (escaped, cut at the limit) and Markdown", () => {
  const rows = [{ name: "<b>x</b>", value: 1 / 3, nested: { a: 1 } }, { name: "y", value: 2, nested: [1, 2] }];
  const html = tableHtml(rows, { title: "T & U", digits: 2 });
  includes(html, "<table");
  includes(html, "&lt;b&gt;x&lt;/b&gt;");
  includes(html, "0.33");
  assert.ok(!html.includes("0.333"));
  includes(html, "T &amp; U");
  includes(html, '{"a":1}'); // nested values as JSON
  const t = aq.table({ k: [1, 2, 3, 4] });
  const cut = tableHtml(t, { limit: 2 });
  assert.deepEqual((cut.match(/<tr/g) ?? []).length, 3); // header + 2 rows
  includes(cut, "2 of 4 rows shown");
  const md = tableText(t, { limit: 2 });
  assert.match(md, /\|k\|/);
  includes(md, "(2 of 4 rows shown)");
  assert.deepEqual(tableHtml([]).includes("<table"), true);
});

Deno.test("formatCell: significant digits without trailing zeros, integers as they are", () => {
  assert.deepEqual([150, 0.075, 2537.2269, 5.09184, 1 / 3, NaN, null, "x", true].map((v) => formatCell(v)), [
    "150",
    "0.075",
    "2537.2",
    "5.0918",
    "0.33333",
    "NaN",
    "",
    "x",
    "true",
  ]);
  assert.equal(formatCell(1 / 3, 2), "0.33");
});

Deno.test("htmlText keeps cells and rows apart", () => {
  assert.deepEqual(htmlText("<table><tr><th>a</th><th>b</th></tr><tr><td>1 &lt; 2</td><td>x</td></tr></table>"), "a\tb\n1 < 2\tx");
});

Deno.test("showSections prints each section's title, text and figure (titled by the section)", async () => {
  const out = await captured(() =>
    showSections([
      { title: "Retention", html: "<p>kept 90%</p>", figure: { data: [{ type: "bar", x: ["a"], y: [1] }], layout: {} } },
      { title: "Only text", html: "<p>hello</p>" },
    ])
  );
  assert.deepEqual(out, ["== Retention ==\nkept 90%", "[plot] Retention: trace 0 (bar, 1 points)", "== Only text ==\nhello"]);
});

Deno.test("showTraining: loss curves per model, the summary table and one chart per logged evaluation metric", async () => {
  const recs: MetricRecord[] = [];
  for (let step = 5; step <= 20; step += 5) {
    recs.push({ phase: 1, model: "standard", step, loss: 3 - step / 10, lr: 0.001, tokens_per_s: 1000 });
    recs.push({ phase: 1, model: "memory", step, loss: 3.1 - step / 10, lr: 0.001, ...(step % 10 === 0 ? { val_loss: 2.5 } : {}) });
  }
  const out = await captured(() => showTraining(recs));
  assert.deepEqual(out.length, 3);
  assert.deepEqual(out[0], "[plot] training loss: phase 1 standard (scatter, 4 points); phase 1 memory (scatter, 4 points)");
  includes(out[1], "training summary");
  includes(out[1], "|standard|");
  includes(out[1], "|2.6|"); // memory's first loss, 3.1 - 0.5
  assert.deepEqual(out[2], "[plot] val_loss during training: phase 1 memory (scatter, 2 points)");
  assert.deepEqual(await captured(() => showTraining([])), ["no training steps were logged"]);
});

Deno.test("showTable, showValidation and checkGate (which throws after showing a failed gate)", async () => {
  const result: PhaseResultFile = {
    phase: 6,
    name: "integration",
    status: "completed",
    seconds: 12.34,
    metrics: {},
    validation: { passed: true, checks: [{ name: "mean_retention", value: 0.9, threshold: 0.6, passed: true }] },
    artifacts: [],
  };
  const [v] = await captured(() => showValidation(result));
  includes(v, "phase 6 (integration): completed, validation passed, 12.3 s");
  includes(v, "|mean_retention|0.9|0.6|true|");
  const [g] = await captured(() => checkGate(result));
  assert.equal(g, v);
  const failed: PhaseResultFile = {
    ...result,
    status: "failed",
    validation: { passed: false, checks: [...result.validation.checks, { name: "gain", value: -0.1, threshold: 0, passed: false }] },
  };
  const shown: string[] = [];
  const prev = setTextSink((t) => shown.push(t));
  try {
    await assert.rejects(() => checkGate(failed), /phase 6 \(integration\) did not pass its validation gate: gain = -0.1 \(threshold 0\)$/);
  } finally {
    setTextSink(prev);
  }
  assert.ok(shown[0].includes("|gain|-0.1|0|false|"), shown[0]); // shown before it throws
  const [t] = await captured(() => showTable([{ a: 1 }], { title: "x" }));
  assert.deepEqual(t, "x\n|a|\n|-:|\n|1|");
});

Deno.test("figureHtml: plotly.js inlined only when given (AMD's define hidden), data escaped out of </script>, a div per figure", () => {
  const fig = { data: [{ type: "bar", x: ["a"], y: [1], name: "</script><b>x" }], layout: { title: { text: "t" }, height: 300 } };
  const first = figureHtml(fig, "/* plotly.js */ window.Plotly = {};"), next = figureHtml(fig);
  assert.ok(first.includes("/* plotly.js */") && first.includes("window.define = undefined"));
  assert.ok(!next.includes("/* plotly.js */"), "the library goes in once");
  for (const h of [first, next]) {
    assert.equal((h.match(/<div id="af-plot-[0-9a-f-]+" class="af-plot" style="height:300px"><\/div>/g) ?? []).length, 1);
    assert.ok(!h.includes("</script><b>"), "a figure's strings cannot close its script");
    assert.ok(h.includes("window.Plotly.newPlot(el, "));
  }
  assert.notEqual(first.match(/af-plot-[0-9a-f-]+/)![0], next.match(/af-plot-[0-9a-f-]+/)![0]);
});
