/**
 * Successive halving, asynchronous (ASHA; Li et al., 2020, "A System for Massively Parallel
 * Hyperparameter Tuning"): trials start at the smallest resource (training steps), and a trial
 * goes up a rung, to eta times the resource, once it is in the top 1 / eta of the trials that
 * finished that rung so far. A weak trial is never run longer, so the search spends far fewer
 * trial-steps than running every trial to the largest resource.
 *
 * `nextJob` is a pure function of what finished: a promotion when one is due (highest rung
 * first, best trial first), else a new trial at the bottom rung while the trial budget lasts,
 * else nothing (the search is over).
 *
 * With jobs in flight (parallel workers), `issued(trial, rung)` says which promotions were already
 * handed out though their results are not known yet, so none is handed out twice; trials in flight
 * count toward `maxTrials` by being in `trials` with no result yet.
 */
import type { Params } from "./space.ts";

export interface AshaOptions {
  /** Resource of the bottom rung (e.g. training steps). */
  minResource: number;
  /** The largest resource; the top rung. */
  maxResource: number;
  /** Promotion fraction 1 / eta and resource growth eta per rung (default 3 in the paper). */
  eta: number;
  /** Trials started in all. */
  maxTrials: number;
}

/** One trial: its parameters and its score at every rung it ran (higher is better). */
export interface TrialRecord {
  id: number;
  params: Params;
  /** score: the search's objective; heldout: the phase's reported metric at that rung, when recorded; job: the job's number (lib/search/run.ts). */
  results: { rung: number; resource: number; score: number; heldout?: number; seconds?: number; job?: number }[];
}

export type Job = { kind: "new"; rung: 0; resource: number } | { kind: "promote"; trial: number; rung: number; resource: number };

/** The rungs' resources: minResource * eta^k, the last one maxResource. */
export function rungResources(o: AshaOptions): number[] {
  if (!(o.minResource > 0 && o.maxResource >= o.minResource)) {
    throw new Error(`asha: resources ${o.minResource}..${o.maxResource}: expected 0 < min <= max`);
  }
  if (!(o.eta >= 2)) throw new Error(`asha: eta = ${o.eta}, expected >= 2`);
  const out: number[] = [];
  for (let r = o.minResource; r < o.maxResource; r *= o.eta) out.push(Math.round(r));
  out.push(o.maxResource);
  return out;
}

/** The next job given the finished results (see the module comment), or null when the search is over. */
export function nextJob(
  trials: readonly TrialRecord[],
  o: AshaOptions,
  issued: (trial: number, rung: number) => boolean = () => false,
): Job | null {
  const res = rungResources(o);
  for (let k = res.length - 2; k >= 0; k--) {
    const at = trials.filter((t) => t.results.some((r) => r.rung === k));
    const top = Math.floor(at.length / o.eta);
    if (top === 0) continue;
    const scoreAt = (t: TrialRecord) => t.results.find((r) => r.rung === k)!.score;
    const best = [...at].sort((a, b) => scoreAt(b) - scoreAt(a)).slice(0, top);
    const due = best.find((t) => !t.results.some((r) => r.rung === k + 1) && !issued(t.id, k + 1) && Number.isFinite(scoreAt(t)));
    if (due) return { kind: "promote", trial: due.id, rung: k + 1, resource: res[k + 1] };
  }
  if (trials.length < o.maxTrials) return { kind: "new", rung: 0, resource: res[0] };
  return null;
}

/** Resource spent: the sum over every rung run of its resource. */
export function resourceSpent(trials: readonly TrialRecord[]): number {
  return trials.reduce((a, t) => a + t.results.reduce((b, r) => b + r.resource, 0), 0);
}

/** A trial's score at its highest rung (the comparable number), with that rung. */
export function topResult(t: TrialRecord): TrialRecord["results"][number] | undefined {
  return t.results.reduce<TrialRecord["results"][number] | undefined>((a, r) => (!a || r.rung > a.rung ? r : a), undefined);
}
