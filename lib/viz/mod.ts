/** Plotly figure builders, report pages and notebook display helpers. */
export * from "./figures.ts";
export * from "./report.ts";
export * from "./notebook.ts";
