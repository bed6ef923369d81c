/**
 * The phase registry of the real pipeline, in order. A phase is registered here only once it
 * does real work; phases not built yet are absent (the CLI says so when asked for them).
 */
import type { PhaseSpec } from "./spec.ts";
import { phase1 } from "./p1_cognate.ts";
import { phase2 } from "./p2_arc.ts";
import { phase3 } from "./p3_puzzles.ts";
import { phase4 } from "./p4_math.ts";
import { phase5 } from "./p5_long_context.ts";
import { phase6 } from "./p6_integration.ts";
import { phase7 } from "./p7_evaluation.ts";

/** The stages that phases 6 and 7 integrate and evaluate (each offers its replay data and evaluation). */
const STAGES: readonly PhaseSpec[] = [phase1, phase2, phase3, phase4, phase5];

export const PHASES: readonly PhaseSpec[] = [...STAGES, phase6(STAGES), phase7(STAGES)];

export * from "./spec.ts";
export { cognateFor, loadBase, loggedLosses, phaseTrainer, trainModel, trainText } from "./common.ts";
export { phase1, Phase1Section } from "./p1_cognate.ts";
export { phase2, Phase2Section } from "./p2_arc.ts";
export { phase3, Phase3Section } from "./p3_puzzles.ts";
export { GrokkingSection } from "./p3_grokking.ts";
export {
  evaluateHrrm,
  fillGridMemory,
  type GridEval,
  GridSection,
  type GridTaskResult,
  gridTaskSection,
  type GridTrace,
  gridTraceHtml,
  heldOutGrids,
  traceGrid,
} from "./p3_grids.ts";
export { phase4, Phase4Section } from "./p4_math.ts";
export { phase5, Phase5Section } from "./p5_long_context.ts";
export {
  loadSpecialists,
  type MergeCandidate,
  type MergeInputs,
  mergeInputs,
  phase6,
  Phase6Section,
  taskArithmetic,
} from "./p6_integration.ts";
export { phase7, Phase7Section } from "./p7_evaluation.ts";
