/**
 * Everything a notebook or script imports, one namespace per layer (README's layer map), lowest
 * first:
 *
 *     import * as af from "../lib/mod.ts";
 *     await af.backend.initBackend();
 *     const m = af.models.createModel("cognate-reasoning", {}, 0);
 *     const run = await af.pipeline.openRun({ preset: "tiny" });
 */
export * as util from "./util/mod.ts";
export * as backend from "./backend/mod.ts";
export * as nn from "./nn/mod.ts";
export * as train from "./train/mod.ts";
export * as models from "./models/mod.ts";
export * as compress from "./compress/mod.ts";
export * as config from "./config/config.ts";
export * as text from "./text/mod.ts";
/** lib/eval (named `evaluation`: `eval` cannot be imported by name). */
export * as evaluation from "./eval/mod.ts";
export * as deploy from "./deploy/mod.ts";
export * as phases from "./phases/mod.ts";
export * as evolve from "./evolve/mod.ts";
export * as pipeline from "./pipeline/mod.ts";
export * as explore from "./explore/mod.ts";
export * as viz from "./viz/mod.ts";
// Data, beside the layers (datasets/ sits at rank 1).
export * as datasets from "../datasets/manager.ts";
export * as arc from "../datasets/arc/mod.ts";
export * as puzzles from "../datasets/puzzles/mod.ts";
export * as modular from "../datasets/modular.ts";
export * as math from "../datasets/math.ts";
export * as longContext from "../datasets/long_context.ts";
export * as sanity from "../datasets/sanity.ts";
