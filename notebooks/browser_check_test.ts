/**
 * The browser check on a notebook made here: two figures as lib/viz/notebook.ts sends them (the
 * first with plotly.js inlined), converted by nbconvert and opened in headless Chromium, both draw;
 * a page whose library is missing leaves its chart blank and the check says so. Skips, saying
 * why, without Chromium or nbconvert.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { figureHtml } from "../lib/viz/notebook.ts";
import { chartsDrawn, checkNotebook, findChromium, findNbconvert } from "./browser_check.ts";

const chromium = await findChromium(), python = await findNbconvert();
const why = !chromium ? "no Chromium (apt-get install chromium)" : !python ? "no nbconvert (apt-get install jupyter-nbconvert)" : "";
if (why) console.log(`skipping the browser check test: ${why}`);

const PLOTLY = await Deno.readTextFile(new URL("../node_modules/plotly.js-dist-min/plotly.min.js", import.meta.url));

/** A notebook whose cells display `htmls` as the kernel would (text/html beside text/plain). */
function notebook(htmls: string[]): string {
  const cells = htmls.map((h, i) => ({
    cell_type: "code",
    execution_count: i + 1,
    metadata: {},
    source: [`figure ${i}`],
    outputs: [{ output_type: "display_data", metadata: {}, data: { "text/html": [h], "text/plain": [`[plot] ${i}`] } }],
  }));
  return JSON.stringify({ cells, metadata: { language_info: { name: "typescript" } }, nbformat: 4, nbformat_minor: 5 });
}

const fig = (title: string) => ({
  data: [{ type: "scatter", x: [1, 2, 3], y: [3, 1, 2], name: title }],
  layout: { title: { text: title } },
});

Deno.test({
  name: "figures sent as HTML draw in Chromium after nbconvert --to html; without plotly.js a chart stays blank and is counted so",
  ignore: !!why,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "af-browser-" });
    await Deno.writeTextFile(join(dir, "ok.ipynb"), notebook([figureHtml(fig("first"), PLOTLY), figureHtml(fig("second"))]));
    await Deno.writeTextFile(join(dir, "nolib.ipynb"), notebook([figureHtml(fig("orphan"))]));
    const ok = await checkNotebook(join(dir, "ok.ipynb"), join(dir, "html"), { chromium: chromium!, python: python! });
    assert.deepEqual([ok.charts, ok.drawn], [2, 2]);
    const nolib = await checkNotebook(join(dir, "nolib.ipynb"), join(dir, "html"), { chromium: chromium!, python: python! });
    assert.deepEqual([nolib.charts, nolib.drawn, nolib.blank], [1, 0, [0]]);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("chartsDrawn counts chart divs and the ones plotly filled", () => {
  const dom =
    '<div id="af-plot-1" class="af-plot js-plotly-plot"><svg class="main-svg"></svg></div><div id="af-plot-2" class="af-plot"></div>';
  assert.deepEqual(chartsDrawn(dom), { charts: 2, drawn: 1, blank: [1] });
});
