/** Small numeric helpers for reports. */

/** Rounds for result.json (keeps files readable; numbers stay exact enough to compare). */
export function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Mean of the last `n` values (NaN for none). */
export function tailMean(xs: readonly number[], n = 5): number {
  const t = xs.slice(-n);
  return t.length ? t.reduce((a, b) => a + b, 0) / t.length : NaN;
}

/** Mean of `ys` grouped by `xs`, sorted by x. */
export function groupMeans(xs: readonly number[], ys: readonly number[]): { x: number[]; mean: number[]; count: number[] } {
  const groups = new Map<number, number[]>();
  xs.forEach((x, i) => groups.set(x, [...(groups.get(x) ?? []), ys[i]]));
  const keys = [...groups.keys()].sort((a, b) => a - b);
  return {
    x: keys,
    mean: keys.map((k) => groups.get(k)!.reduce((a, b) => a + b, 0) / groups.get(k)!.length),
    count: keys.map((k) => groups.get(k)!.length),
  };
}
