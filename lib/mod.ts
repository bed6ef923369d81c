/**
 * Everything a notebook or script imports, one namespace per module:
 *
 *     import { backend, decoder, trainer, models, datasets } from "../lib/mod.ts";
 *     await backend.initBackend();
 *     const m = models.createModel("cognate-reasoning", {}, 0);
 */
export * as backend from "./backend/mod.ts";
export * as params from "./nn/params.ts";
export * as layers from "./nn/layers.ts";
export * as attention from "./nn/attention.ts";
export * as decoder from "./nn/decoder.ts";
export * as grad from "./nn/grad.ts";
export * as optim from "./train/optim.ts";
export * as trainer from "./train/trainer.ts";
export * as checkpoint from "./train/checkpoint.ts";
export * as grokfast from "./train/grokfast.ts";
export * as detectors from "./train/detectors.ts";
export * as models from "./models/registry.ts";
export * as act from "./models/act.ts";
export * as refinement from "./models/refinement.ts";
export * as gatedLtm from "./models/gated_ltm.ts";
export * as cognate from "./models/cognate.ts";
export * as cogment from "./models/cogment.ts";
export * as hrrm from "./models/hrrm.ts";
export * as compress from "./compress/pipeline.ts";
export * as bitnet from "./compress/bitnet.ts";
export * as seedlm from "./compress/seedlm.ts";
export * as vptq from "./compress/vptq.ts";
export * as inference from "./compress/inference.ts";
export * as config from "./pipeline/config.ts";
export * as session from "./pipeline/session.ts";
export * as phases from "./phases/mod.ts";
export * as phaseTools from "./phases/common.ts";
export * as suites from "./eval/suites.ts";
export * as safety from "./eval/safety.ts";
export * as deploy from "./deploy/mod.ts";
export * as notebook from "./viz/notebook.ts";
export * as figures from "./viz/figures.ts";
export * as report from "./viz/report.ts";
export * as rng from "./util/rng.ts";
export * as datasets from "../datasets/manager.ts";
export * as arc from "../datasets/arc/mod.ts";
export * as puzzles from "../datasets/puzzles/mod.ts";
export * as modular from "../datasets/modular.ts";
export * as math from "../datasets/math.ts";
export * as longContext from "../datasets/long_context.ts";
export * as sanity from "../datasets/sanity.ts";
