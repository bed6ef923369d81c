/** Breeding merge recipes: merge.ts (task arithmetic, TIES, DARE per layer group), cmaes.ts, breed.ts, compare.ts. */
export * from "./merge.ts";
export * from "./cmaes.ts";
export * from "./breed.ts";
export * from "./compare.ts";
