/** Loads the PyTorch reference fixture (tests/data/torch_ref) into our decoder and trainer. */
import * as tf from "@tensorflow/tfjs";
import { Decoder, REFERENCE_DECODER } from "../lib/nn/decoder.ts";
import type { HostTensor } from "../lib/nn/params.ts";
import type { TrainConfig, TrainTask } from "../lib/train/trainer.ts";

export const FIXTURE_DIR = new URL("./data/torch_ref/", import.meta.url);

/** AdamW(lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 0.01), constant lr, no clipping: the peer's set-up. */
export const REFERENCE_TRAIN: TrainConfig = {
  steps: 8,
  lr: 1e-3,
  minLr: 1e-3,
  warmupSteps: 0,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  gradClip: 0,
  gradAccum: 1,
  evalEvery: 0,
  saveEvery: 0,
  logEvery: 1,
};

export interface Fixture {
  weights: Map<string, HostTensor>;
  inputs: Int32Array; // [8, 32, 64]
  targets: Int32Array; // [8, 32, 64]
  losses: number[];
}

export async function loadFixture(): Promise<Fixture> {
  const manifest: { name: string; shape: number[]; offset: number }[] = JSON.parse(
    await Deno.readTextFile(new URL("manifest.json", FIXTURE_DIR)),
  );
  const raw = await Deno.readFile(new URL("weights.bin", FIXTURE_DIR));
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const weights = new Map<string, HostTensor>();
  for (const m of manifest) {
    const size = m.shape.reduce((a, b) => a * b, 1);
    weights.set(m.name, { shape: m.shape, data: all.slice(m.offset, m.offset + size) });
  }
  const b = await Deno.readFile(new URL("batches.bin", FIXTURE_DIR));
  const ints = new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  const half = ints.length / 2;
  const { losses } = JSON.parse(await Deno.readTextFile(new URL("ref_losses.json", FIXTURE_DIR)));
  return { weights, inputs: ints.slice(0, half), targets: ints.slice(half), losses };
}

/** The reference model loaded with the fixture's weights, and a task cycling its 8 batches. */
export function referenceTask(fx: Fixture): { model: Decoder; task: TrainTask<{ x: tf.Tensor2D; y: tf.Tensor2D }> } {
  const model = new Decoder(REFERENCE_DECODER, 0);
  model.params.load(fx.weights, { source: "tests/data/torch_ref/weights.bin" });
  const [B, T] = [32, 64];
  const per = B * T;
  const task: TrainTask<{ x: tf.Tensor2D; y: tf.Tensor2D }> = {
    params: model.params,
    tokensPerBatch: per,
    batch: (step) => {
      const i = step % 8;
      return {
        x: tf.tensor2d(fx.inputs.subarray(i * per, (i + 1) * per), [B, T], "int32"),
        y: tf.tensor2d(fx.targets.subarray(i * per, (i + 1) * per), [B, T], "int32"),
      };
    },
    loss: (b) => model.loss(b.x, b.y),
  };
  return { model, task };
}
