/** Plumbing every layer uses: atomic files, seeded RNG, progress lines, numbers for reports, the run directory (its layout, lock, graceful stops, fault points). */
export * from "./fs.ts";
export * from "./rng.ts";
export * from "./progress.ts";
export * from "./numbers.ts";
export * from "./run_dir.ts";
export * from "./run_lock.ts";
export * from "./stop.ts";
export * from "./fault.ts";
