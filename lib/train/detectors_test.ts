/** The detectors fire on synthetic curves with their pattern and stay quiet on ones without it. */
import assert from "node:assert/strict";
import { ConvergenceDetector, GrokkingDetector } from "./detectors.ts";

/** A logistic ramp from 0 to 1 centred at `mid` with width `w`. */
const ramp = (s: number, mid: number, w: number) => 1 / (1 + Math.exp(-(s - mid) / w));

Deno.test("GrokkingDetector: memorization at ~step 300, validation crossing 0.95 much later -> grokked with the gap", () => {
  const d = new GrokkingDetector({ valThreshold: 0.95 });
  const events: string[] = [];
  for (let s = 0; s <= 5000; s += 10) {
    const e = d.update(s, ramp(s, 200, 15), 0.02 + 0.98 * ramp(s, 3000, 100));
    if (e) events.push(e.phase);
  }
  const r = d.report();
  assert.deepEqual(events, ["memorized", "grokked"]);
  assert.equal(r.phase, "grokked");
  assert.ok(r.memorizationStep! >= 250 && r.memorizationStep! <= 300, `memorization at ${r.memorizationStep}`);
  assert.ok(r.generalizationStep! >= 3250 && r.generalizationStep! <= 3350, `generalization at ${r.generalizationStep}`);
  assert.equal(r.gap, r.generalizationStep! - r.memorizationStep!);
  assert.ok(r.valAtMemorization! < 0.1);
});

Deno.test("GrokkingDetector: train and validation rising together is generalization, not grokking; flat validation stays memorized", () => {
  const together = new GrokkingDetector();
  for (let s = 0; s <= 2000; s += 10) together.update(s, ramp(s, 500, 30), ramp(s, 520, 30));
  assert.equal(together.report().phase, "generalized");
  const stuck = new GrokkingDetector();
  for (let s = 0; s <= 2000; s += 10) stuck.update(s, ramp(s, 200, 15), 0.05);
  assert.equal(stuck.report().phase, "memorized");
  assert.equal(stuck.report().generalizationStep, undefined);
  const early = new GrokkingDetector();
  for (let s = 0; s <= 100; s += 10) early.update(s, 0.3, 0.1);
  assert.equal(early.report().phase, "learning");
});

Deno.test("ConvergenceDetector: fires after `patience` updates without a smoothed improvement, not before", () => {
  const d = new ConvergenceDetector({ patience: 5, minDelta: 0.01, window: 3, mode: "min" });
  let firedAt: number | undefined;
  for (let s = 0; s < 100; s++) {
    const loss = s < 40 ? 2 - 0.04 * s : 0.4 + 0.001 * Math.sin(s); // improves, then flat
    if (d.update(s, loss) && firedAt === undefined) firedAt = s;
  }
  assert.ok(firedAt !== undefined && firedAt > 40 && firedAt <= 48, `fired at ${firedAt}`);
  assert.equal(d.convergedAt, firedAt);
  // A curve that keeps improving never converges; `max` mode follows accuracies.
  const improving = new ConvergenceDetector({ patience: 3, minDelta: 0.001, window: 2 });
  for (let s = 0; s < 200; s++) assert.equal(improving.update(s, 10 - 0.01 * s), false, `step ${s}`);
  const acc = new ConvergenceDetector({ patience: 3, minDelta: 0.01, window: 1, mode: "max" });
  const accs = [0.1, 0.3, 0.5, 0.7, 0.705, 0.708, 0.709, 0.702];
  assert.deepEqual(accs.map((a, i) => acc.update(i, a)), [false, false, false, false, false, false, true, true]);
  assert.throws(() => new ConvergenceDetector({ patience: 0 }), /convergence.patience = 0/);
});
