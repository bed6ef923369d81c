/** Modular arithmetic: every equation once, answers right, deterministic split without leakage. */
import assert from "node:assert/strict";
import { epochBatch, equationKeys, MODULAR_OPS, modularDataset, type ModularOp, powMod } from "./modular.ts";

Deno.test("x * y mod 97: 97 x 96 equations, half for training, answers checked independently, no leakage", () => {
  const d = modularDataset({ p: 97, op: "mul", trainFraction: 0.5, seed: 0 });
  assert.equal(d.train.size + d.val.size, 97 * 96);
  assert.equal(d.train.size, Math.floor(97 * 96 * 0.5));
  assert.equal(d.vocabSize, 99);
  for (const split of [d.train, d.val]) {
    for (let i = 0; i < split.size; i++) {
      const [x, op, y, eq] = split.inputs.subarray(i * 4, i * 4 + 4);
      assert.equal(op, d.opToken);
      assert.equal(eq, d.eqToken);
      assert.ok(y >= 1 && y < 97 && x >= 0 && x < 97);
      assert.equal(split.targets[i], Number((BigInt(x) * BigInt(y)) % 97n));
    }
  }
  const train = equationKeys(d.train), val = equationKeys(d.val);
  assert.equal(train.size, d.train.size, "duplicate equations in train");
  for (const k of val) assert.ok(!train.has(k), `validation equation ${k} is also in train`);
  // Deterministic in the seed, different across seeds.
  assert.deepEqual(modularDataset({ p: 97, op: "mul", trainFraction: 0.5, seed: 0 }).train.inputs, d.train.inputs);
  assert.notDeepEqual(modularDataset({ p: 97, op: "mul", trainFraction: 0.5, seed: 1 }).train.inputs, d.train.inputs);
});

Deno.test("every operation agrees with a direct evaluation; division inverts multiplication", () => {
  const p = 11;
  const direct: Record<ModularOp, (x: number, y: number) => number> = {
    add: (x, y) => (x + y) % p,
    sub: (x, y) => (x - y + p) % p,
    mul: (x, y) => (x * y) % p,
    div: (x, y) => [...Array(p).keys()].find((z) => (z * y) % p === x)!,
    sq_sum: (x, y) => (x ** 2 + y ** 2) % p,
    quad: (x, y) => (x ** 2 + x * y + y ** 2) % p,
    cubic: (x, y) => (x ** 3 + x * y) % p,
  };
  for (const op of Object.keys(MODULAR_OPS) as ModularOp[]) {
    const d = modularDataset({ p, op, trainFraction: 0.3, seed: 4 });
    for (const split of [d.train, d.val]) {
      for (let i = 0; i < split.size; i++) {
        const [x, , y] = split.inputs.subarray(i * 4, i * 4 + 3);
        assert.equal(split.targets[i], direct[op](x, y), `${op}: ${x}, ${y}`);
      }
    }
  }
  assert.equal(powMod(3, 4, 7), 81 % 7);
  assert.throws(() => modularDataset({ p: 12, op: "div", trainFraction: 0.5, seed: 0 }), /modular.p = 12: division needs a prime/);
  assert.throws(() => modularDataset({ p: 7, op: "pow" as ModularOp, trainFraction: 0.5, seed: 0 }), /modular.op = pow/);
  assert.throws(() => modularDataset({ p: 7, op: "add", trainFraction: 1, seed: 0 }), /trainFraction = 1/);
});

Deno.test("epoch batches cover the training split once per epoch, reshuffled, and are a pure function of the step", () => {
  const d = modularDataset({ p: 13, op: "add", trainFraction: 0.5, seed: 0 }); // 84 train equations
  const perEpoch = Math.ceil(d.train.size / 20);
  const seen = (epoch: number) => {
    const rows: string[] = [];
    for (let k = 0; k < perEpoch; k++) {
      const b = epochBatch(d.train, 20, epoch * perEpoch + k, 9);
      for (let i = 0; i < b.size; i++) rows.push(`${b.inputs.subarray(i * 4, i * 4 + 4).join(",")}=${b.targets[i]}`);
    }
    return rows;
  };
  const e0 = seen(0), e1 = seen(1);
  assert.equal(e0.length, d.train.size);
  assert.equal(new Set(e0).size, d.train.size);
  assert.deepEqual([...e0].sort(), [...e1].sort());
  assert.notDeepEqual(e0, e1, "epochs are not reshuffled");
  assert.deepEqual(epochBatch(d.train, 20, 7, 9), epochBatch(d.train, 20, 7, 9));
});
