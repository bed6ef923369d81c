/** Evaluation: answer metrics and baselines, ARC answers, stage specs, suites, safety, efficiency, compression to target. */
export * from "./answers.ts";
export * from "./arc_answers.ts";
export * from "./stage.ts";
export * from "./suites.ts";
export * from "./safety.ts";
export * from "./efficiency.ts";
export * from "./compression.ts";
