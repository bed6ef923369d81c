/** Plotly figure builders (plain JSON: the same figure feeds notebooks and report.html). */
import type { MetricRecord } from "../util/run_dir.ts";

export interface Figure {
  data: Record<string, unknown>[];
  layout: Record<string, unknown>;
}

/**
 * One line per (phase, model) of `metric` against step, from metrics records.
 * Records without the metric are skipped.
 */
export function metricCurves(records: MetricRecord[], metric = "loss", title = metric): Figure {
  const series = new Map<string, { x: number[]; y: number[] }>();
  for (const r of records) {
    const v = r[metric];
    if (typeof v !== "number" || !Number.isFinite(v)) continue;
    const name = `phase ${r.phase}${r.model ? ` ${r.model}` : ""}`;
    const s = series.get(name) ?? { x: [], y: [] };
    s.x.push(r.step);
    s.y.push(v);
    series.set(name, s);
  }
  return {
    data: [...series].map(([name, s]) => ({ type: "scatter", mode: "lines", name, x: s.x, y: s.y })),
    layout: { title: { text: title }, xaxis: { title: { text: "step" } }, yaxis: { title: { text: metric } }, height: 380 },
  };
}

/** Horizontal bars of seconds per phase. */
export function phaseTimes(rows: { phase: number; name: string; seconds: number }[]): Figure {
  return {
    data: [{ type: "bar", orientation: "h", x: rows.map((r) => r.seconds), y: rows.map((r) => `${r.phase} ${r.name}`) }],
    layout: { title: { text: "wall time per phase (s)" }, height: 120 + 30 * rows.length, margin: { l: 160 } },
  };
}

/** Options of `heatmap`. */
export interface HeatmapOptions {
  /** Column and row labels (default 0..n-1). */
  x?: (string | number)[];
  y?: (string | number)[];
  xTitle?: string;
  yTitle?: string;
  /** What a cell's number means (the colour bar's title). */
  zTitle?: string;
  /** Fixed colour range (default: the data's). */
  zmin?: number;
  zmax?: number;
  /** Print each cell's value on it. */
  annotate?: boolean;
}

/** A heatmap of `z` (rows of equal length; row 0 drawn on top). */
export function heatmap(z: number[][], title: string, o: HeatmapOptions = {}): Figure {
  const rows = z.length, cols = z[0]?.length ?? 0;
  const x = o.x ?? Array.from({ length: cols }, (_, i) => i);
  const y = o.y ?? Array.from({ length: rows }, (_, i) => i);
  const trace: Record<string, unknown> = {
    type: "heatmap",
    z,
    x,
    y,
    colorscale: "Viridis",
    colorbar: o.zTitle ? { title: { text: o.zTitle } } : undefined,
    ...(o.zmin !== undefined ? { zmin: o.zmin } : {}),
    ...(o.zmax !== undefined ? { zmax: o.zmax } : {}),
    ...(o.annotate ? { texttemplate: "%{z:.2f}" } : {}),
  };
  return {
    data: [trace],
    layout: {
      title: { text: title },
      xaxis: { title: { text: o.xTitle ?? "" }, type: "category" },
      yaxis: { title: { text: o.yTitle ?? "" }, type: "category", autorange: "reversed" },
      height: Math.min(900, 160 + 28 * rows),
    },
  };
}
