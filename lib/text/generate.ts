/** Logits of any registry model and batched greedy decoding with the pipeline's tokenizer. */
import * as tf from "@tensorflow/tfjs";
import type { RegistryModel } from "../models/registry.ts";
import { TOKENIZER } from "./tokens.ts";

/** The logits of a registry model (forward or async infer). ids [B, T] -> [B, T, V]. */
export async function logitsOf(model: RegistryModel, ids: tf.Tensor2D): Promise<tf.Tensor3D> {
  if (model.forward) return tf.tidy(() => model.forward!(ids).logits);
  if (model.infer) {
    const out = await model.infer(ids);
    return out.logits;
  }
  throw new Error("logitsOf: the model has neither forward nor infer");
}

/**
 * Greedy decoding of each prompt (bos + prompt), batched: up to `maxNew` tokens or EOS.
 * Returns the generated text of each prompt (without the prompt). Rows are right-padded;
 * a causal model's position t never sees later positions, so padding does not change them.
 */
export async function generateGreedy(model: RegistryModel, prompts: readonly string[], maxNew: number, batchSize = 32): Promise<string[]> {
  const out: string[] = [];
  for (let b0 = 0; b0 < prompts.length; b0 += batchSize) {
    const rows = prompts.slice(b0, b0 + batchSize).map((p) => [TOKENIZER.bos, ...TOKENIZER.encode(p)]);
    const start = rows.map((r) => r.length);
    const done = rows.map(() => false);
    for (let k = 0; k < maxNew && done.some((d) => !d); k++) {
      const T = Math.max(...rows.map((r) => r.length));
      const flat = new Int32Array(rows.length * T).fill(TOKENIZER.pad);
      rows.forEach((r, i) => flat.set(r, i * T));
      const ids = tf.tensor2d(flat, [rows.length, T], "int32");
      const logits = await logitsOf(model, ids); // [n, T, V]
      // Only the tokenizer's ids can be generated (the model's vocabulary may be rounded up past them).
      const next = tf.tidy(() => tf.argMax(logits.slice([0, 0, 0], [-1, -1, TOKENIZER.vocabSize]), -1)); // [n, T]
      const data = await next.data();
      tf.dispose([ids, logits, next]);
      rows.forEach((r, i) => {
        if (done[i]) return;
        const tok = data[i * T + r.length - 1];
        if (tok === TOKENIZER.eos) done[i] = true;
        else r.push(tok);
      });
    }
    rows.forEach((r, i) => out.push(TOKENIZER.decode(r.slice(start[i]))));
  }
  return out;
}
