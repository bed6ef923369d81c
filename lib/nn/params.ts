/** A named set of trainable tensors: what a model owns, an optimizer updates and a checkpoint stores. */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../util/rng.ts";

/** Plain host copy of one tensor: what checkpoints and exporters read and write. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** How a parameter starts: normal with a std, a constant, or given values. */
export type Init =
  | { kind: "normal"; std: number }
  | { kind: "const"; value: number }
  | { kind: "values"; data: Float32Array };

export class ParamSet {
  /** Insertion-ordered: checkpoint and optimizer order follow creation order. */
  readonly vars = new Map<string, tf.Variable>();
  readonly #rng: Rng;

  constructor(seed: number) {
    this.#rng = new Rng(seed);
  }

  /** Creates parameter `name` of `shape` (initialised from the set's seeded generator). */
  add(name: string, shape: number[], init: Init): tf.Variable {
    if (this.vars.has(name)) throw new Error(`parameter '${name}' defined twice`);
    const size = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (init.kind === "normal") data = this.#rng.normals(size, init.std);
    else if (init.kind === "const") data = new Float32Array(size).fill(init.value);
    else {
      if (init.data.length !== size) {
        throw new Error(`parameter '${name}': ${init.data.length} values for shape [${shape}]`);
      }
      data = init.data;
    }
    const v = tf.variable(tf.tensor(data, shape, "float32"), true, `${name}_${crypto.randomUUID().slice(0, 8)}`);
    this.vars.set(name, v);
    return v;
  }

  /** The parameter called `name`; throws naming it when absent. */
  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`no parameter '${name}'`);
    return v;
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  names(): string[] {
    return [...this.vars.keys()];
  }

  /** Total number of scalars. */
  count(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  /** Copies every parameter to host memory (async: works on WebGPU too). */
  async toHost(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [name, v] of this.vars) {
      out.set(name, { shape: v.shape.slice(), data: (await v.data()) as Float32Array });
    }
    return out;
  }

  /**
   * Overwrites parameters from host tensors. Every parameter must be present with its
   * exact shape, unless `partial` is set; the error names the parameter.
   */
  load(tensors: Map<string, HostTensor>, opts: { partial?: boolean; source?: string } = {}): void {
    const src = opts.source ? `${opts.source}: ` : "";
    for (const [name, v] of this.vars) {
      const t = tensors.get(name);
      if (!t) {
        if (opts.partial) continue;
        throw new Error(`${src}missing parameter '${name}'`);
      }
      if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
        throw new Error(`${src}parameter '${name}' has shape [${t.shape}], expected [${v.shape}]`);
      }
      v.assign(tf.tensor(t.data, t.shape, "float32"));
    }
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}
