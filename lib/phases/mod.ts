/**
 * The phase registry of the real pipeline. A phase is registered here only once it does
 * real work; phases not built yet are absent (the CLI says so when asked for them).
 */
import type { PhaseSpec } from "../pipeline/phase.ts";

export const PHASES: readonly PhaseSpec[] = [];
