import assert from "node:assert/strict";
import { taskArithmetic } from "./p6_integration.ts";

const t = (...xs: number[]) => ({ shape: [xs.length], data: Float32Array.from(xs) });

Deno.test("task arithmetic adds the scaled sum of task vectors to the base; scale 1/k is the average", () => {
  const base = new Map([["w", t(1, 1)]]);
  const a = new Map([["w", t(3, 1)]]), b = new Map([["w", t(1, 5)]]);
  assert.deepEqual([...taskArithmetic(base, [a, b], 0.5).get("w")!.data], [2, 3]); // the average of a and b
  assert.deepEqual([...taskArithmetic(base, [a, b], 1).get("w")!.data], [3, 5]);
  assert.deepEqual([...taskArithmetic(base, [], 1).get("w")!.data], [1, 1]);
  assert.deepEqual([...base.get("w")!.data], [1, 1], "the base is not modified");
  assert.throws(() => taskArithmetic(base, [new Map([["w", t(1)]])], 1), /'w' is missing or differs in shape/);
});
