/**
 * Competence-based curriculum (Platanios et al., 2019, "Competence-based Curriculum Learning
 * for Neural Machine Translation"). Each training item has a level in [0, 1): the fraction of
 * the items of its group that are strictly easier than it (so the easiest items of every group
 * are at level 0 and each group's levels spread the same way, whatever its difficulty scale).
 * At step t the model may see the items whose level is below its competence
 *
 *   c(t) = min(1, (t (1 - c0^p) / T + c0^p)^(1/p)),
 *
 * c0 the competence at step 0, T the steps to full competence, p = 2 (the paper's square-root
 * schedule: new, harder items come in fast at first, then slower). Batches are drawn uniformly
 * from the admissible items; once c = 1 that is uniform sampling over all of them.
 */

export interface CompetenceSchedule {
  /** c0: the competence at step 0, in (0, 1]. */
  start: number;
  /** T: the step at which every item is admissible (>= 1). */
  fullAt: number;
  /** p (default 2). */
  power?: number;
}

/** c(step) of the module comment; throws on a schedule out of range. */
export function competence(step: number, s: CompetenceSchedule): number {
  const p = s.power ?? 2;
  if (!(s.start > 0 && s.start <= 1)) throw new Error(`curriculum start = ${s.start}: expected 0 < start <= 1`);
  if (!(s.fullAt >= 1)) throw new Error(`curriculum fullAt = ${s.fullAt}: expected >= 1 step`);
  const c0p = s.start ** p;
  return Math.min(1, (Math.max(0, step) * (1 - c0p) / s.fullAt + c0p) ** (1 / p));
}

/** Each item's level: the fraction of the items of its group (all items, without groups) with a strictly lower difficulty. */
export function difficultyLevels(difficulty: readonly number[], group?: readonly string[]): Float64Array {
  if (group && group.length !== difficulty.length) {
    throw new Error(`difficultyLevels: ${group.length} groups for ${difficulty.length} items`);
  }
  const out = new Float64Array(difficulty.length);
  const members = new Map<string, number[]>();
  difficulty.forEach((d, i) => {
    if (!Number.isFinite(d)) throw new Error(`difficultyLevels: item ${i} has difficulty ${d}, expected a finite number`);
    const g = group?.[i] ?? "";
    (members.get(g) ?? members.set(g, []).get(g)!).push(i);
  });
  for (const idx of members.values()) {
    const sorted = idx.map((i) => difficulty[i]).sort((a, b) => a - b);
    for (const i of idx) {
      // Items strictly easier: the first index in `sorted` whose value is >= this one.
      let lo = 0, hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sorted[mid] < difficulty[i]) lo = mid + 1;
        else hi = mid;
      }
      out[i] = lo / idx.length;
    }
  }
  return out;
}

/** How many of the levels sorted ascending are below competence c: at least 1 (the easiest item is always admissible). */
export function admissibleCount(sortedLevels: Float64Array, c: number): number {
  let lo = 0, hi = sortedLevels.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sortedLevels[mid] < c) lo = mid + 1;
    else hi = mid;
  }
  return Math.max(1, lo);
}

/** A row-level curriculum for a batch stream: each row's level and the competence at each step. */
export interface RowCurriculum {
  /** One level per training row (window), in [0, 1). */
  rowLevel: Float64Array;
  competence: (step: number) => number;
}

/** Mean item level per row, from the row each item was packed into. */
export function rowLevels(itemLevel: Float64Array, itemRow: Int32Array, rows: number): Float64Array {
  const sum = new Float64Array(rows), n = new Float64Array(rows);
  itemRow.forEach((r, i) => {
    sum[r] += itemLevel[i];
    n[r]++;
  });
  return sum.map((s, r) => (n[r] ? s / n[r] : 0));
}
