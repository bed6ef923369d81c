/** The pipeline: the phase controller and the notebooks' session on a run directory. */
export * from "./controller.ts";
export * from "./session.ts";
