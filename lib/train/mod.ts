/** Training: AdamW and schedules, the trainer loop, checkpoints and safetensors, GrokFast, detectors, the competence curriculum, the training section and its one rule. */
export * from "./optim.ts";
export * from "./trainer.ts";
export * from "./checkpoint.ts";
export * from "./safetensors.ts";
export * from "./grokfast.ts";
export * from "./ema.ts";
export * from "./detectors.ts";
export * from "./config.ts";
export * from "./curriculum.ts";
