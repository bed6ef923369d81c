/**
 * PyTorch's default initialisation for the decoder's parameters (`lib/nn/decoder.ts` names),
 * the init of the Grokfast paper's code. Its larger scale (embeddings N(0, 1) against the
 * registry's N(0, 0.02)) is what makes a small model memorize modular arithmetic first and
 * generalize much later: the grokking regime that bench/grokfast.ts and phase 3 reproduce.
 *
 * - embeddings (`tok`, `pos`): N(0, 1), as nn.Embedding;
 * - norm gains 1, norm biases 0;
 * - attention input projection (`qkv_w`): Xavier-uniform, bias 0; output bias (`proj_b`) 0,
 *   as nn.MultiheadAttention;
 * - every other `*_w` [fanIn, fanOut]: U(±1/sqrt(fanIn)), its `*_b` the same bound, as nn.Linear.
 */
import type { HostTensor, ParamSet } from "./params.ts";
import { Rng } from "../util/rng.ts";

/** New values for every parameter of `params` (load them with `params.load`); throws naming a parameter with no rule. */
export function torchDefaultInit(params: ParamSet, seed: number): Map<string, HostTensor> {
  const rng = new Rng(seed);
  const out = new Map<string, HostTensor>();
  const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * bound);
  for (const [name, v] of params.vars) {
    const shape = v.shape.slice();
    const n = shape.reduce((a, b) => a * b, 1);
    const leaf = name.split(".").at(-1)!;
    let data: Float32Array;
    if (name === "tok" || name === "pos") data = rng.normals(n);
    else if (leaf.endsWith("_g")) data = new Float32Array(n).fill(1);
    else if (leaf.startsWith("ln") || leaf === "qkv_b" || leaf === "proj_b") data = new Float32Array(n);
    else if (leaf === "qkv_w") data = uniform(n, Math.sqrt(6 / (shape[0] + shape[1])));
    else if (leaf.endsWith("_w")) data = uniform(n, 1 / Math.sqrt(shape[0]));
    else if (leaf.endsWith("_b")) {
      const w = params.vars.get(name.replace(/_b$/, "_w"));
      if (!w) throw new Error(`torchDefaultInit: bias ${name} has no weight ${name.replace(/_b$/, "_w")} to take its fan-in from`);
      data = uniform(n, 1 / Math.sqrt(w.shape[0]));
    } else throw new Error(`torchDefaultInit: no rule for parameter ${name}`);
    out.set(name, { shape, data });
  }
  return out;
}
