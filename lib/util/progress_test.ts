/** Progress: plain periodic lines off a terminal, with step, fields, tokens/s and ETA. */
import assert from "node:assert/strict";
import { formatSeconds, Progress } from "./progress.ts";

Deno.test("off a terminal, progress prints the first step, then at most every interval, and the last", () => {
  const lines: string[] = [];
  const p = new Progress("train", 100, { intervalMs: 60_000, write: (l, inPlace) => (assert.equal(inPlace, false), lines.push(l)) });
  for (let s = 1; s <= 100; s++) p.update(s, { loss: 1 / s }, 512);
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^train 1\/100 \| loss 1 \| \d+ tok\/s \| ETA /);
  assert.match(lines[1], /^train 100\/100 \| loss 0\.01000 \| \d+ tok\/s \| [\d.]+s$/);
});

Deno.test("formatSeconds", () => {
  assert.equal(formatSeconds(42), "42s");
  assert.equal(formatSeconds(75), "1m15s");
  assert.equal(formatSeconds(3 * 3600 + 120), "3h02m");
  assert.equal(formatSeconds(NaN), "?");
});
