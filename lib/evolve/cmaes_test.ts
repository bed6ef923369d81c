/** CMA-ES: the Jacobi eigen routine, convergence on standard test functions, determinism, bounds, resume, tell() checks. */
import assert from "node:assert/strict";
import { Rng } from "../util/rng.ts";
import { Cmaes, type CmaesOptions, jacobiEigen } from "./cmaes.ts";

type F = (x: number[]) => number;

/** Runs ask/tell until `f < target` or `maxGen` generations; returns the search and the generations used. */
function minimize(f: F, opts: CmaesOptions, target: number, maxGen: number): { es: Cmaes; gens: number } {
  const es = new Cmaes(opts);
  while (es.generation < maxGen && es.best.f >= target) {
    const xs = es.ask();
    es.tell(xs, xs.map(f));
  }
  return { es, gens: es.generation };
}

function randomSymmetric(n: number, rng: Rng): number[][] {
  const a = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i][j] = a[j][i] = 2 * rng.next() - 1;
  return a;
}

/** A random orthogonal matrix (Gram-Schmidt on normal columns). */
function randomRotation(n: number, rng: Rng): number[][] {
  const cols: number[][] = [];
  for (let j = 0; j < n; j++) {
    const v = Array.from({ length: n }, () => rng.normal());
    for (const c of cols) {
      const d = c.reduce((s, ci, i) => s + ci * v[i], 0);
      c.forEach((ci, i) => (v[i] -= d * ci));
    }
    const len = Math.hypot(...v);
    cols.push(v.map((x) => x / len));
  }
  return Array.from({ length: n }, (_, i) => cols.map((c) => c[i]));
}

const sphere: F = (x) => x.reduce((s, v) => s + v * v, 0);
const rosenbrock: F = ([x, y]) => 100 * (y - x * x) ** 2 + (1 - x) ** 2;

Deno.test("jacobiEigen reconstructs random symmetric matrices with orthonormal eigenvectors", () => {
  const rng = new Rng(7);
  for (const n of [1, 2, 5, 10]) {
    for (let trial = 0; trial < 5; trial++) {
      const a = randomSymmetric(n, rng);
      const before = JSON.stringify(a);
      const { values, vectors: V } = jacobiEigen(a);
      assert.equal(JSON.stringify(a), before, "input untouched");
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let rec = 0, dot = 0;
          for (let k = 0; k < n; k++) {
            rec += V[i][k] * values[k] * V[j][k];
            dot += V[k][i] * V[k][j];
          }
          assert.ok(Math.abs(rec - a[i][j]) < 1e-9, `n=${n}: A[${i}][${j}] = ${a[i][j]}, rebuilt ${rec}`);
          assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-9, `n=${n}: V^T V [${i}][${j}] = ${dot}`);
        }
      }
    }
  }
});

Deno.test("jacobiEigen as CMA-ES uses it: SPD C = B D^2 B^T", () => {
  const rng = new Rng(3);
  const n = 6;
  const m = randomSymmetric(n, rng);
  const c = m.map((_, i) => m.map((_, j) => m[i].reduce((s, v, k) => s + v * m[j][k], 0) + (i === j ? 0.1 : 0)));
  const { values, vectors: B } = jacobiEigen(c);
  const D = values.map(Math.sqrt);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const rec = B[i].reduce((s, b, k) => s + b * D[k] * D[k] * B[j][k], 0);
      assert.ok(Math.abs(rec - c[i][j]) < 1e-9);
    }
  }
  // Already diagonal: no rotation, exact.
  assert.deepEqual(jacobiEigen([[2, 0], [0, 3]]), { values: [2, 3], vectors: [[1, 0], [0, 1]] });
});

Deno.test("converges on the sphere (dim 10) to f < 1e-10 within 300 generations", () => {
  const { es, gens } = minimize(sphere, { mean: new Array(10).fill(3), sigma: 2, seed: 1 }, 1e-10, 300);
  console.log(`sphere dim 10, lambda ${es.lambda}: f ${es.best.f.toExponential(2)} after ${gens} generations`);
  assert.ok(es.best.f < 1e-10, `f = ${es.best.f}`);
});

Deno.test("converges on a rotated ellipsoid (dim 6, condition 1e4) to f < 1e-8", () => {
  const n = 6;
  const R = randomRotation(n, new Rng(11));
  const ellipsoid: F = (x) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const z = R[i].reduce((a, r, j) => a + r * x[j], 0);
      s += 10 ** (4 * i / (n - 1)) * z * z;
    }
    return s;
  };
  const { es, gens } = minimize(ellipsoid, { mean: new Array(n).fill(1), sigma: 0.5, seed: 2 }, 1e-8, 1000);
  console.log(`rotated ellipsoid dim 6, cond 1e4, lambda ${es.lambda}: f ${es.best.f.toExponential(2)} after ${gens} gens`);
  assert.ok(es.best.f < 1e-8, `f = ${es.best.f}`);
  // The learned covariance is ill-conditioned, roughly like the inverse Hessian (condition ~1e4).
  const { values } = jacobiEigen(es.covariance);
  const cond = Math.max(...values) / Math.min(...values);
  console.log(`  condition of C: ${cond.toExponential(2)}`);
  assert.ok(cond > 1e3, `cond(C) = ${cond}`);
});

Deno.test("converges on 2-D Rosenbrock from (-1.2, 1) to f < 1e-8", () => {
  const { es, gens } = minimize(rosenbrock, { mean: [-1.2, 1], sigma: 0.5, seed: 3 }, 1e-8, 1000);
  console.log(`rosenbrock 2-D, lambda ${es.lambda}: f ${es.best.f.toExponential(2)} after ${gens} generations`);
  assert.ok(es.best.f < 1e-8, `f = ${es.best.f}`);
  assert.ok(Math.abs(es.best.x[0] - 1) < 1e-3 && Math.abs(es.best.x[1] - 1) < 1e-3, `x = ${es.best.x}`);
});

Deno.test("a seed makes a run deterministic; different seeds differ", () => {
  const run = (seed: number) => minimize(rosenbrock, { mean: [-1.2, 1], sigma: 0.5, seed }, -1, 40).es.best;
  assert.deepEqual(run(5), run(5));
  assert.notDeepEqual(run(5), run(6));
});

Deno.test("tell() order does not matter: shuffled fitness gives the same search", () => {
  const a = new Cmaes({ mean: [1, 2, 3], sigma: 1, seed: 9 });
  const b = new Cmaes({ mean: [1, 2, 3], sigma: 1, seed: 9 });
  const rng = new Rng(1);
  for (let g = 0; g < 10; g++) {
    const xs = a.ask();
    a.tell(xs, xs.map(sphere));
    const ys = b.ask();
    assert.deepEqual(ys, xs);
    const perm = Array.from(rng.permutation(ys.length));
    b.tell(perm.map((k) => ys[k]), perm.map((k) => sphere(ys[k])));
    assert.deepEqual(b.mean, a.mean);
  }
  assert.deepEqual(b.best, a.best);
});

Deno.test("bounds: every candidate is inside, and an optimum on the bound is found", () => {
  const n = 4;
  const lower = new Array(n).fill(-1), upper = new Array(n).fill(5);
  const f: F = (x) => x.reduce((s, v) => s + (v + 2) ** 2, 0); // unconstrained optimum at -2, outside
  const es = new Cmaes({ mean: new Array(n).fill(3), sigma: 2, seed: 4, lower, upper });
  for (let g = 0; g < 200; g++) {
    const xs = es.ask();
    for (const x of xs) x.forEach((v, i) => assert.ok(v >= lower[i] && v <= upper[i], `x[${i}] = ${v}`));
    es.tell(xs, xs.map(f));
    es.mean.forEach((v, i) => assert.ok(v >= lower[i] && v <= upper[i], `mean[${i}] = ${v} left the box`));
  }
  console.log(`bounded: best x ${es.best.x.map((v) => v.toFixed(6))}, f ${es.best.f}, sigma ${es.sigma.toExponential(2)}`);
  es.best.x.forEach((v) => assert.ok(Math.abs(v + 1) < 1e-6, `best x = ${es.best.x}`));
  es.mean.forEach((v) => assert.ok(Math.abs(v + 1) < 1e-3, `mean = ${es.mean}`));
  assert.ok(Math.abs(es.best.f - n) < 1e-6);
  // A mixed box: one coordinate bounded, its optimum on the bound; the others free.
  const mixed = minimize(f, { mean: [0, 0, 0], sigma: 1, seed: 5, lower: [-1, -Infinity, -Infinity] }, 1 + 1e-9, 500);
  assert.ok(Math.abs(mixed.es.best.x[0] + 1) < 1e-6 && Math.abs(mixed.es.best.x[1] + 2) < 1e-3, `${mixed.es.best.x}`);
});

Deno.test("state()/fromState() through JSON resumes exactly", () => {
  const n = 5;
  const f: F = (x) => sphere(x) + Math.sin(3 * x[0]);
  const a = new Cmaes({ mean: new Array(n).fill(0.5), sigma: 0.3, seed: 12, lower: [-1, -Infinity, -1, -1, -1], upper: [1, 1, 1, 1, 1] });
  for (let g = 0; g < 5; g++) {
    const xs = a.ask();
    a.tell(xs, xs.map(f));
  }
  const b = Cmaes.fromState(JSON.parse(JSON.stringify(a.state())));
  assert.equal(b.generation, 5);
  assert.deepEqual(b.best, a.best);
  for (let g = 0; g < 5; g++) {
    const xa = a.ask(), xb = b.ask();
    assert.deepEqual(xb, xa);
    a.tell(xa, xa.map(f));
    b.tell(xb, xb.map(f));
    assert.deepEqual(b.mean, a.mean);
    assert.equal(b.sigma, a.sigma);
  }
  assert.deepEqual(b.state(), a.state());
  // Saved between ask() and tell(): the outstanding candidates come back.
  const asked = a.ask();
  const c = Cmaes.fromState(JSON.parse(JSON.stringify(a.state())));
  assert.deepEqual(c.ask(), asked);
  c.tell(asked, asked.map(f));
  a.tell(asked, asked.map(f));
  assert.deepEqual(c.state(), a.state());
});

Deno.test("tell() rejects wrong candidates and lengths, naming the problem", () => {
  const es = new Cmaes({ mean: [0, 0, 0], sigma: 1, seed: 1 });
  assert.throws(() => es.tell([], []), /call ask\(\) first/);
  const xs = es.ask();
  const fs = xs.map(sphere);
  assert.deepEqual(es.ask(), xs, "ask() again before tell() returns the same candidates");
  assert.throws(() => es.tell(xs.slice(1), fs.slice(1)), /expected 7 candidates \(lambda\), got 6/);
  assert.throws(() => es.tell(xs, fs.slice(1)), /7 candidates but 6 fitness values/);
  assert.throws(() => es.tell([[1, 2], ...xs.slice(1)], fs), /candidate 0 has length 2, expected 3/);
  const moved = xs.map((x) => [...x]);
  moved[2][1] += 1e-12;
  assert.throws(() => es.tell(moved, fs), /candidate 2 is not one of the candidates ask\(\) returned for generation 0/);
  assert.throws(() => es.tell([xs[0], ...xs.slice(0, -1)], fs), /candidate 1 is not one .* given twice/);
  assert.throws(() => es.tell(xs, fs.map((f, i) => (i === 4 ? NaN : f))), /fitness\[4\] is NaN/);
  assert.equal(es.generation, 0, "failed tells change nothing");
  assert.equal(es.best.f, Infinity);
  es.tell(xs, fs.map((f, i) => (i === 0 ? Infinity : f))); // a failed evaluation ranks last
  assert.equal(es.generation, 1);
  assert.throws(() => es.tell(xs, fs), /call ask\(\) first/);
  assert.throws(() => new Cmaes({ mean: [0], sigma: 0 }), /sigma must be > 0/);
  assert.throws(() => new Cmaes({ mean: [0, 0], sigma: 1, lower: [0] }), /lower has length 1, expected 2/);
  assert.throws(() => new Cmaes({ mean: [0], sigma: 1, lower: [1], upper: [0] }), /lower\[0\] = 1 > upper\[0\] = 0/);
});
