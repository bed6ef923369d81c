/** Search spaces, random and TPE sampling, and ASHA's promotions, on synthetic objectives. */
import assert from "node:assert/strict";
import { Rng } from "../util/rng.ts";
import { nextJob, resourceSpent, rungResources, type TrialRecord } from "./asha.ts";
import { type Params, parseSpace, sampleRandom, suggest } from "./space.ts";

const SPACE = parseSpace({
  "phases.2.lr": { log_uniform: [1e-4, 1e-1] },
  "phases.2.batch_size": { choice: [4, 8, 16] },
  "phases.2.max_shift": { int: [0, 3] },
  "phases.2.shift_fraction": { uniform: [0, 1] },
}, "space.json");

Deno.test("parseSpace: kinds and ranges checked, errors name the file and key", () => {
  assert.throws(() => parseSpace({ "phases.2.lr": { log_uniform: [0, 1] } }, "s.json"), /s\.json: phases\.2\.lr: log_uniform needs lo > 0/);
  assert.throws(() => parseSpace({ "phases.2.lr": { uniform: [2, 1] } }, "s.json"), /s\.json: phases\.2\.lr: range \[2,1\] has lo > hi/);
  assert.throws(() => parseSpace({ "phases.2.lr": { normal: [0, 1] } }, "s.json"), /s\.json: phases\.2\.lr/);
  assert.throws(() => parseSpace({ lr: { uniform: [0, 1] } }, "s.json"), /s\.json: lr: expected a config key path/);
  assert.throws(() => parseSpace({}, "s.json"), /names no key/);
});

Deno.test("sampleRandom: every value inside its dimension", () => {
  const rng = new Rng(1);
  for (let i = 0; i < 500; i++) {
    const p = sampleRandom(SPACE, rng);
    const lr = p["phases.2.lr"] as number;
    assert.ok(lr >= 1e-4 && lr <= 1e-1);
    assert.ok([4, 8, 16].includes(p["phases.2.batch_size"] as number));
    assert.ok(Number.isInteger(p["phases.2.max_shift"]) && (p["phases.2.max_shift"] as number) <= 3);
  }
});

Deno.test("TPE finds a narrow optimum in fewer trials than random sampling (median over seeds)", () => {
  // Score: peaked at lr = 3e-3 (log scale) and batch 8; 25 trials each.
  const score = (p: Params) =>
    -((Math.log10(p["phases.2.lr"] as number) - Math.log10(3e-3)) ** 2) - (p["phases.2.batch_size"] === 8 ? 0 : 0.5);
  const best = (tpe: boolean, seed: number) => {
    const rng = new Rng(seed);
    const hist: { params: Params; score: number }[] = [];
    for (let i = 0; i < 25; i++) {
      const p = tpe ? suggest(SPACE, hist, rng) : sampleRandom(SPACE, rng);
      hist.push({ params: p, score: score(p) });
    }
    return Math.max(...hist.map((h) => h.score));
  };
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const seeds = Array.from({ length: 15 }, (_, i) => i);
  const tpe = median(seeds.map((s) => best(true, s))), rnd = median(seeds.map((s) => best(false, s)));
  console.log(`best score after 25 trials, median over 15 seeds: TPE ${tpe.toFixed(4)}, random ${rnd.toFixed(4)}`);
  assert.ok(tpe > rnd, `TPE ${tpe} should beat random ${rnd}`);
});

Deno.test("ASHA: rungs, promotions of the top 1/eta only, and far fewer trial-steps than every trial to the end", () => {
  const o = { minResource: 10, maxResource: 90, eta: 3, maxTrials: 27 };
  assert.deepEqual(rungResources(o), [10, 30, 90]);
  // A trial's quality q in [0, 1]; its score grows with resource, and better trials stay better.
  const rng = new Rng(4);
  const trials: TrialRecord[] = [];
  const quality = new Map<number, number>();
  for (let job = nextJob(trials, o); job; job = nextJob(trials, o)) {
    if (job.kind === "new") {
      const id = trials.length;
      quality.set(id, rng.next());
      trials.push({ id, params: {}, results: [] });
      trials[id].results.push({ rung: 0, resource: job.resource, score: quality.get(id)! * Math.log(job.resource) });
    } else {
      const t = trials[job.trial];
      assert.ok(!t.results.some((r) => r.rung === job.rung), "never promoted twice to one rung");
      // Promoted only from the top 1/eta of the trials that finished the rung below so far.
      const below = trials.filter((x) => x.results.some((r) => r.rung === job.rung - 1));
      const score = (x: TrialRecord) => x.results.find((r) => r.rung === job.rung - 1)!.score;
      const rank = below.filter((x) => score(x) > score(t)).length;
      assert.ok(rank < Math.floor(below.length / o.eta), `trial ${t.id} ranked ${rank} of ${below.length}`);
      t.results.push({ rung: job.rung, resource: job.resource, score: quality.get(t.id)! * Math.log(job.resource) });
    }
  }
  const atRung = (k: number) => trials.filter((t) => t.results.some((r) => r.rung === k)).length;
  // Asynchronous: a trial is promoted as soon as it ranks in the top third of those finished so far
  // (checked above at each promotion), so a rung can hold more than synchronous halving's 9 and 3.
  const counts = [atRung(0), atRung(1), atRung(2)];
  assert.equal(counts[0], 27);
  assert.ok(counts[1] >= 9 && counts[1] < 27 && counts[2] >= 3 && counts[2] < counts[1], JSON.stringify(counts));
  const bestQ = Math.max(...quality.values());
  const bestTrial = [...quality].find(([, q]) => q === bestQ)![0];
  assert.ok(trials[bestTrial].results.some((r) => r.rung === 2), "the best trial reaches the top rung");
  const spent = resourceSpent(trials), full = o.maxTrials * o.maxResource;
  console.log(`ASHA spent ${spent} trial-steps against ${full} for every trial to the end`);
  assert.ok(spent < full / 2, `${spent} vs ${full}`);
});
