/** The search's results: a table, a parallel-coordinates plot and the ASHA rungs, as figures and a self-contained HTML page. */
import type { Figure } from "../viz/figures.ts";
import { esc, figurePage, type PageSection } from "../viz/report.ts";
import { topResult } from "./asha.ts";
import { type SearchState, searchSummary } from "./run.ts";

/** One row per trial: its parameters, the highest rung it reached, its score there and what it cost. */
export function searchRows(s: SearchState): Record<string, unknown>[] {
  return s.trials.map((t) => {
    const top = topResult(t);
    return {
      trial: t.id,
      ...t.params,
      rung: top?.rung ?? null,
      [s.resourceKey]: top?.resource ?? null,
      [`${s.metric} (${s.objective})`]: top?.score ?? null,
      ...(s.objective === "validation" ? { [`${s.metric} (held-out)`]: top?.heldout ?? null } : {}),
      spent: t.results.reduce((a, r) => a + r.resource, 0),
    };
  });
}

/** Parallel coordinates: one axis per searched key (log10 for log-uniform ones), then the score at each trial's top rung. */
export function parallelCoordinates(s: SearchState): Figure {
  const dims = Object.entries(s.space).map(([k, d]) => {
    const vals = s.trials.map((t) => t.params[k]);
    if ("choice" in d) {
      const labels = d.choice.map(String);
      return { label: k, values: vals.map((v) => labels.indexOf(String(v))), tickvals: labels.map((_, i) => i), ticktext: labels };
    }
    if ("log_uniform" in d) return { label: `log10 ${k}`, values: vals.map((v) => Math.log10(v as number)) };
    return { label: k, values: vals };
  });
  const scores = s.trials.map((t) => topResult(t)?.score ?? NaN);
  const rungs = s.trials.map((t) => topResult(t)?.rung ?? 0);
  return {
    data: [{
      type: "parcoords",
      line: { color: scores, colorscale: "Viridis", showscale: true, colorbar: { title: { text: s.metric } } },
      dimensions: [...dims, { label: "top rung", values: rungs }, { label: s.metric, values: scores }],
    }],
    layout: { title: { text: `search over ${Object.keys(s.space).join(", ")}: ${s.metric} at each trial's top rung` }, height: 420 },
  };
}

/** Every trial's score against the resource it ran at: ASHA's rungs, the weak trials stopped early. */
export function rungFigure(s: SearchState): Figure {
  return {
    data: [
      ...s.trials.map((t) => ({
        type: "scatter",
        mode: "lines+markers",
        name: `trial ${t.id}`,
        x: t.results.map((r) => r.resource),
        y: t.results.map((r) => r.score),
        showlegend: false,
      })),
      ...(s.baseline
        ? [{
          type: "scatter",
          mode: "markers",
          name: "default config",
          x: [s.baseline.resource],
          y: [s.baseline.score],
          marker: { size: 12, symbol: "star" },
        }]
        : []),
    ],
    layout: {
      title: { text: `ASHA: ${s.metric} by ${s.resourceKey}, one line per trial` },
      xaxis: { title: { text: s.resourceKey }, type: "log" },
      yaxis: { title: { text: s.metric } },
      height: 380,
    },
  };
}

/** The report page: the summary, the table and both figures. */
export async function searchReport(s: SearchState): Promise<string> {
  const sum = searchSummary(s);
  const held = (v: number | undefined) => (s.objective === "validation" ? ` (held-out ${v})` : "");
  const rows = searchRows(s);
  const cols = rows.length ? Object.keys(rows[0]) : [];
  const table = `<table><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join("")}</tr>${
    rows.map((r) => `<tr>${cols.map((c) => `<td>${esc(r[c] ?? "")}</td>`).join("")}</tr>`).join("")
  }</table>`;
  const head =
    `<p>Phase ${s.phase}, ${s.sampler} sampling, ASHA (eta ${s.asha.eta}, ${s.resourceKey} ${s.asha.minResource} to ${s.asha.maxResource}), ${s.trials.length} trials, ${s.jobs} rungs run${
      s.done ? "" : " (not finished)"
    }. Objective: ${s.metric} on ${
      s.objective === "validation" ? "a validation context (held-out beside it)" : "the phase's result"
    }. Default config at ${s.asha.maxResource}: ${sum.baseline ?? "not run"}${held(sum.baselineHeldout)}; best trial: ${
      sum.best
        ? `${sum.best.id} at rung ${sum.best.rung}, ${sum.best.score}${held(sum.best.heldout)} (${esc(JSON.stringify(sum.best.params))})`
        : "none"
    }. Trial-steps spent ${sum.spent}, against ${sum.everyTrialToTheEnd} for every trial run to the end.</p>`;
  const sections: PageSection[] = [
    { title: "Trials", html: table },
    { title: "Parallel coordinates", figure: parallelCoordinates(s) },
    { title: "ASHA rungs", figure: rungFigure(s) },
  ];
  return await figurePage(`hyper-parameter search: phase ${s.phase}`, head, sections);
}
