/**
 * Test support for the inference server: a scripted model whose every next token is a pure
 * function of the text so far (so a test knows exactly what the server must answer), and the
 * tiny preset's standard cognate (a small real model) with its saved meta.
 */
import * as tf from "@tensorflow/tfjs";
import { cognatePresetConfig } from "../models/cognate.ts";
import type { SavedModel } from "../models/io.ts";
import { TOKENIZER } from "../text/tokens.ts";
import { createModel, type RegistryModel } from "../models/registry.ts";
import { ParamSet } from "../nn/params.ts";

/**
 * A model that writes `answer` after the last `marker` character of its input, then EOS: at
 * position t its logits are one-hot on answer[k] where k counts the tokens after the marker
 * (EOS once the answer is written, and byte 0 when there is no marker). Causal by construction.
 * Its saved meta declares a context of `context` tokens.
 */
export function scriptedModel(
  marker: string,
  answer: string,
  context = 128,
  vocab = TOKENIZER.vocabSize,
): { model: RegistryModel; meta: SavedModel } {
  const m = TOKENIZER.encode(marker)[0], a = TOKENIZER.encode(answer);
  const next = (prefix: ArrayLike<number>, end: number) => {
    let at = -1;
    for (let i = 0; i <= end; i++) if (prefix[i] === m) at = i;
    if (at < 0) return 0;
    const k = end - at;
    return k < a.length ? a[k] : TOKENIZER.eos;
  };
  const model: RegistryModel = {
    params: new ParamSet(0),
    loss: () => {
      throw new Error("scriptedModel: not trainable");
    },
    forward(ids: tf.Tensor2D) {
      const [B, T] = ids.shape, data = ids.dataSync();
      const out = new Float32Array(B * T * vocab);
      for (let b = 0; b < B; b++) {
        const row = data.subarray(b * T, (b + 1) * T);
        for (let t = 0; t < T; t++) out[(b * T + t) * vocab + next(row, t)] = 1;
      }
      return { logits: tf.tensor3d(out, [B, T, vocab]) }; // [B, T, V]
    },
    dispose() {},
  };
  return { model, meta: { key: "decoder", config: { vocabSize: vocab, maxSeqLen: context } } };
}

/** The tiny preset's standard cognate (untrained, seeded) and its meta, as saveModel would store it. */
export function tinyCognate(seed = 1): { model: RegistryModel; meta: SavedModel } {
  const cfg = cognatePresetConfig("tiny", "standard");
  return { model: createModel("cognate-standard", cfg, seed), meta: { key: "cognate-standard", config: { ...cfg } } };
}
