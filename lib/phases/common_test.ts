/**
 * Every documented `training.*` key reaches the trainers of every phase that trains, through
 * `phaseTrainer` (lib/train/config.ts's one rule): each test changes one key with `--set` and
 * sees the phases' trainer configs change. A key added to the section without an entry here
 * fails the first test.
 */
import assert from "node:assert/strict";
import { DEFAULT_CONFIG, type PipelineConfig, resolveConfig } from "../config/config.ts";
import { grokfastFromConfig } from "../train/grokfast.ts";
import type { TrainConfig } from "../train/trainer.ts";
import { phaseTrainer } from "./common.ts";
import { PHASES } from "./mod.ts";

/** Phases whose run has `steps`, `lr` and `batch_size` keys (phase 5's stages have their own steps). */
const TRAINING_PHASES = [1, 2, 3, 4, 6];

/** Every training phase's trainer config and batch size in a run resolved with `sets`. */
function trainers(sets: string[]): { train: TrainConfig; batchSize: number }[] {
  const config: PipelineConfig = resolveConfig({ preset: "small", sets, phases: PHASES });
  return TRAINING_PHASES.map((phase) => phaseTrainer({ config, phase }, config.phases[String(phase)] as never));
}

/** `phases.N.<key>=0` for every training phase: they inherit the training section. */
const inherit = (key: string) => TRAINING_PHASES.map((id) => `phases.${id}.${key}=0`);

/** Per key: the `--set` lines that change it, and what must differ in every phase's trainer. */
const EFFECTS: Record<string, { sets: string[]; base?: string[]; see: (t: { train: TrainConfig; batchSize: number }) => unknown }> = {
  batch_size: { sets: ["training.batch_size=7"], base: inherit("batch_size"), see: (t) => t.batchSize },
  grad_accum: { sets: ["training.grad_accum=3"], see: (t) => t.train.gradAccum },
  lr: { sets: ["training.lr=0.0042"], base: inherit("lr"), see: (t) => t.train.lr },
  min_lr: { sets: ["training.min_lr=0.00002"], base: ["phases.4.min_lr=0"], see: (t) => t.train.minLr },
  warmup_steps: { sets: ["training.warmup_steps=17"], see: (t) => t.train.warmupSteps },
  max_steps: { sets: ["training.max_steps=77"], base: inherit("steps"), see: (t) => t.train.steps },
  weight_decay: { sets: ["training.weight_decay=0.3"], see: (t) => t.train.weightDecay },
  beta1: { sets: ["training.beta1=0.8"], see: (t) => t.train.beta1 },
  beta2: { sets: ["training.beta2=0.9"], see: (t) => t.train.beta2 },
  grad_clip: { sets: ["training.grad_clip=0.5"], see: (t) => t.train.gradClip },
  eval_every: { sets: ["training.eval_every=13"], see: (t) => t.train.evalEvery },
  save_every: { sets: ["training.save_every=11"], see: (t) => t.train.saveEvery },
  log_every: { sets: ["training.log_every=3"], see: (t) => t.train.logEvery },
};

Deno.test("every training.* key is covered by a test of its effect", () => {
  const keys = Object.keys(DEFAULT_CONFIG.training).filter((k) => k !== "grokfast").sort();
  assert.deepEqual(keys, Object.keys(EFFECTS).sort(), "a training key without an effect test (or a test for a removed key)");
});

for (const [key, e] of Object.entries(EFFECTS)) {
  Deno.test(`training.${key} changes the trainer of phases ${TRAINING_PHASES.join(", ")}`, () => {
    const before = trainers(e.base ?? []), after = trainers([...(e.base ?? []), ...e.sets]);
    const want = Number(e.sets[0].split("=")[1]);
    after.forEach((t, i) => {
      assert.notDeepEqual(e.see(t), e.see(before[i]), `phase ${TRAINING_PHASES[i]}: training.${key} had no effect`);
      if (key !== "min_lr" || want < t.train.lr) assert.equal(e.see(t), want, `phase ${TRAINING_PHASES[i]}`);
    });
  });
}

Deno.test("training.grokfast reaches phase 1's trainer as a gradient filter", () => {
  assert.equal(grokfastFromConfig(resolveConfig({ preset: "small" }).training.grokfast), undefined);
  assert.ok(grokfastFromConfig(resolveConfig({ preset: "small", sets: ["training.grokfast.enabled=true"] }).training.grokfast));
});

Deno.test("a phase's own steps, lr and batch size win over the training section's", () => {
  const [p1] = trainers(["training.lr=0.0042", "training.batch_size=7", "training.max_steps=77"]);
  assert.deepEqual([p1.train.lr, p1.batchSize, p1.train.steps], [0.002, 16, 220]);
});

Deno.test("warmup: as set when shorter than the run, else scaled by steps / max_steps; max_steps or longer is a config error", () => {
  // small: warmup 50 of max_steps 1000, phase 2 runs 420 steps.
  assert.equal(trainers([])[1].train.steps, 420);
  assert.equal(trainers([])[1].train.warmupSteps, 50);
  // warmup 500 >= 420 steps: 420 * 500 / 1000 = 210.
  assert.equal(trainers(["training.warmup_steps=500"])[1].train.warmupSteps, 210);
  assert.throws(
    () => resolveConfig({ sets: ["training.warmup_steps=1000"] }),
    /training\.warmup_steps: 1000 is not shorter than training\.max_steps = 1000/,
  );
});

Deno.test("the cosine floor of every phase is min(training.min_lr, its peak lr), or the phase's own min_lr", () => {
  assert.equal(trainers([])[3].train.minLr, 3e-4, "phase 4's own floor");
  const ts = trainers(["training.lr=0.004", "training.min_lr=0.0025", "phases.4.min_lr=0"]);
  assert.ok(ts.some((t) => t.train.lr < 0.0025), "a phase with a peak below the floor");
  for (const t of ts) assert.equal(t.train.minLr, Math.min(0.0025, t.train.lr));
});

Deno.test("the seed preset is the documented configuration, and it reaches phase 1's trainer", () => {
  const config = resolveConfig({ preset: "seed", phases: PHASES });
  assert.deepEqual(
    [config.model.hidden_size, config.model.num_layers, config.model.num_heads, config.model.vocab_size, config.model.max_seq_len],
    [1024, 24, 16, 50257, 8192],
  );
  const { train, batchSize } = phaseTrainer({ config, phase: 1 }, config.phases["1"] as never);
  assert.deepEqual(
    [train.steps, train.lr, batchSize, train.gradAccum, train.warmupSteps, train.saveEvery, train.evalEvery],
    [100_000, 1e-4, 32, 4, 1000, 5000, 1000],
  );
});
