/**
 * Merge recipes: a base model plus specialists fine-tuned from it, combined through their task
 * vectors tau_k = theta_k - theta_base, with one coefficient per specialist and per layer group.
 *
 * - `task_arithmetic` (Ilharco et al., 2023): theta = base + sum_k w_kg tau_k.
 * - `ties` (Yadav et al., 2023, "TIES-Merging"): trim each tau_k to its `density` largest
 *   magnitudes (per tensor), elect each entry's sign as the sign of sum_k w_kg tau_k (trimmed),
 *   and add the mean of the weighted entries that agree with it (a disjoint mean: entries of other
 *   signs, and zeros, do not count).
 * - `dare` (Yu et al., 2024, "Language Models are Super Mario"): drop each entry of tau_k with
 *   probability 1 - density, rescale the kept ones by 1 / density, then add as task arithmetic.
 *
 * Layer groups (`groupOf`): `embed` (token, previous-token and position tables), `l<i>` (block i's parameters),
 * `head` (final norm and output head), and `other` (any extra module, e.g. a memory). The weights
 * are searched per group (breed.ts); density and the DARE seed are part of the recipe.
 */
import type { HostTensor } from "../nn/params.ts";
import { deriveSeed, Rng } from "../util/rng.ts";

/** How task vectors are combined. */
export type MergeMethod = "task_arithmetic" | "ties" | "dare";
export const MERGE_METHODS: readonly MergeMethod[] = ["task_arithmetic", "ties", "dare"];

/** A merge: method, per-specialist per-group coefficients, and the method's own settings. */
export interface MergeRecipe {
  method: MergeMethod;
  /** Layer groups, in the order of each `weights[k]`. */
  groups: string[];
  /** weights[k][g]: specialist k's coefficient in group g. */
  weights: number[][];
  /** ties: fraction of each task vector's entries kept by magnitude; dare: fraction kept at random. Unused by task_arithmetic. */
  density: number;
  /** dare: seed of the drop masks. */
  seed: number;
}

/** The layer group of a parameter name (see the module comment). */
export function groupOf(name: string): string {
  if (name === "tok" || name === "pos" || /^prev\d+_tok$/.test(name)) return "embed";
  const m = /^l(\d+)\./.exec(name);
  if (m) return `l${m[1]}`;
  if (name.startsWith("lnf") || name === "head_w") return "head";
  return "other";
}

/** The groups of a parameter set, in a stable order: embed, l0, l1, ..., head, other. */
export function parameterGroups(names: Iterable<string>): string[] {
  const seen = new Set<string>();
  for (const n of names) seen.add(groupOf(n));
  const layer = (g: string) => (g.startsWith("l") && /^l\d+$/.test(g) ? Number(g.slice(1)) : NaN);
  const rank = (g: string) => (g === "embed" ? -1 : g === "head" ? 1e6 : g === "other" ? 1e6 + 1 : layer(g));
  return [...seen].sort((a, b) => rank(a) - rank(b));
}

/** A recipe with every coefficient equal to `w` (task arithmetic's plain scale). */
export function uniformRecipe(method: MergeMethod, groups: string[], specialists: number, w: number, density = 1, seed = 0): MergeRecipe {
  return { method, groups, weights: Array.from({ length: specialists }, () => groups.map(() => w)), density, seed };
}

/** The magnitude at or above which `density` of `v`'s entries lie (the trim threshold; 0 keeps everything). */
export function trimThreshold(v: Float32Array, density: number): number {
  if (density >= 1 || v.length === 0) return 0;
  const keep = Math.max(1, Math.round(density * v.length));
  const mags = Float32Array.from(v, Math.abs).sort();
  return mags[v.length - keep];
}

function checkRecipe(r: MergeRecipe, specialists: number): void {
  if (!MERGE_METHODS.includes(r.method)) throw new Error(`merge recipe: method '${r.method}', expected one of ${MERGE_METHODS.join(", ")}`);
  if (r.weights.length !== specialists) throw new Error(`merge recipe: ${r.weights.length} weight rows for ${specialists} specialists`);
  for (const row of r.weights) {
    if (row.length !== r.groups.length) {
      throw new Error(`merge recipe: a weight row has ${row.length} entries for ${r.groups.length} groups`);
    }
  }
  if (r.method !== "task_arithmetic" && !(r.density > 0 && r.density <= 1)) {
    throw new Error(`merge recipe: density = ${r.density}, expected in (0, 1]`);
  }
}

/** Applies `recipe` to `base` and the specialists' parameters (same names and shapes); returns new tensors. */
export function applyRecipe(
  base: Map<string, HostTensor>,
  specialists: Map<string, HostTensor>[],
  recipe: MergeRecipe,
): Map<string, HostTensor> {
  checkRecipe(recipe, specialists.length);
  const groupIndex = new Map(recipe.groups.map((g, i) => [g, i]));
  const out = new Map<string, HostTensor>();
  for (const [name, b] of base) {
    const g = groupIndex.get(groupOf(name));
    if (g === undefined) {
      throw new Error(`merge recipe: parameter '${name}' is in group '${groupOf(name)}', which the recipe does not name`);
    }
    const taus = specialists.map((s, k) => {
      const t = s.get(name);
      if (!t || t.data.length !== b.data.length) throw new Error(`merge: specialist ${k} has no parameter '${name}' of base's shape`);
      const tau = new Float32Array(b.data.length);
      for (let i = 0; i < tau.length; i++) tau[i] = t.data[i] - b.data[i];
      return tau;
    });
    const w = recipe.weights.map((row) => row[g]);
    const data = new Float32Array(b.data);
    if (recipe.method === "task_arithmetic") {
      taus.forEach((tau, k) => {
        for (let i = 0; i < data.length; i++) data[i] += w[k] * tau[i];
      });
    } else if (recipe.method === "dare") {
      taus.forEach((tau, k) => {
        const rng = new Rng(deriveSeed(recipe.seed, `dare/${k}/${name}`));
        const scale = w[k] / recipe.density;
        for (let i = 0; i < data.length; i++) if (rng.next() < recipe.density) data[i] += scale * tau[i];
      });
    } else {
      // TIES: trim, elect sign, disjoint mean of the weighted entries that agree.
      const trimmed = taus.map((tau) => {
        const th = trimThreshold(tau, recipe.density);
        return th > 0 ? tau.map((x) => (Math.abs(x) >= th ? x : 0)) : tau;
      });
      for (let i = 0; i < data.length; i++) {
        let total = 0;
        for (let k = 0; k < trimmed.length; k++) total += w[k] * trimmed[k][i];
        const sign = Math.sign(total);
        if (sign === 0) continue;
        let sum = 0, n = 0;
        for (let k = 0; k < trimmed.length; k++) {
          const x = w[k] * trimmed[k][i];
          if (x !== 0 && Math.sign(x) === sign) [sum, n] = [sum + x, n + 1];
        }
        data[i] += sum / n;
      }
    }
    out.set(name, { shape: b.shape.slice(), data });
  }
  return out;
}
