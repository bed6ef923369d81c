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
import { curriculumWindows, phaseTrainer } from "./common.ts";
import { type TextItem, windowBatches, windowsOf } from "../text/tokens.ts";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/mod.ts";
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

Deno.test("curriculumWindows + windowBatches: easy windows first, every window once competence is full, batches a pure function of the step", async () => {
  await initBackend("cpu", { quiet: true });
  // 40 items of 2 tasks, difficulty 1..4 on different scales per task; 2 items per window at seqLen 15.
  const items: TextItem[] = Array.from({ length: 40 }, (_, i) => ({
    prompt: `q${i + 10}`,
    answer: `a${i + 10}`,
    task: i % 2 ? "odd" : "even",
    difficulty: (i % 2 ? 100 : 1) * (1 + (Math.floor(i / 2) % 4)),
  }));
  const sec = { curriculum: "competence" as const, curriculum_start: 0.2, curriculum_full_at: 0.5 };
  const { windows, curriculum } = curriculumWindows(items, (xs) => windowsOf(xs, 15), sec, 100, (it) => it.task!);
  assert.ok(curriculum && windows.count === 20, `${windows.count} windows`);
  // Items of like level share windows: every window's level is one of the item levels 0, 0.25, 0.5, 0.75.
  assert.deepEqual([...new Set(curriculum.rowLevel)].sort(), [0, 0.25, 0.5, 0.75]);
  const rowsAt = (step: number) => {
    const batch = windowBatches(windows, 8, 7, curriculum)(step, 0);
    const ids = batch.ids.arraySync() as number[][];
    tf.dispose([batch.ids, batch.targets, batch.mask]);
    return ids.map((row) => {
      for (let r = 0; r < windows.count; r++) if (row.every((id, t) => windows.ids[r * 15 + t] === id)) return r;
      throw new Error("a batch row that is no window");
    });
  };
  // Step 0: competence 0.2 admits the level-0 windows only.
  assert.ok(rowsAt(0).every((r) => curriculum.rowLevel[r] === 0), "only the easiest windows at step 0");
  assert.deepEqual(rowsAt(3), rowsAt(3), "the same batch for the same step");
  // From step 50 on (full competence) every window is drawn over enough steps.
  const seen = new Set(Array.from({ length: 30 }, (_, k) => rowsAt(50 + k)).flat());
  assert.equal(seen.size, windows.count);
  // Uniform: the items' own order and no curriculum.
  const u = curriculumWindows(items, (xs) => windowsOf(xs, 15), { ...sec, curriculum: "uniform" }, 100);
  assert.equal(u.curriculum, undefined);
  assert.deepEqual(u.windows.ids, windowsOf(items, 15).ids);
});
