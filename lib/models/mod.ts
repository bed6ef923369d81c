/** Models, one per file, the registry that builds them by key, model files, and the model section. */
export * from "./registry.ts";
export * from "./io.ts";
export * from "./section.ts";
export * from "./act.ts";
export * from "./refinement.ts";
export * from "./gated_ltm.ts";
export * from "./cognate.ts";
export * from "./cogment.ts";
export * from "./hrrm.ts";
