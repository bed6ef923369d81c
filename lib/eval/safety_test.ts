import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { createModel } from "../models/registry.ts";
import { cognatePresetConfig } from "../models/cognate.ts";
import { checkIds, checkPrompt, InputError, parseGridText, safetySuite } from "./safety.ts";

await initBackend("wasm");

Deno.test("checkPrompt and checkIds refuse bad input with errors naming the field", () => {
  assert.throws(() => checkPrompt("", 64, 4), (e) => e instanceof InputError && e.field === "prompt" && /is empty/.test(e.message));
  assert.throws(() => checkPrompt("x".repeat(70), 64, 4), /70 tokens \+ bos \+ 4 new tokens exceed the model's context of 64/);
  assert.deepEqual(checkPrompt("ab", 64, 4), [97, 98]);
  assert.throws(() => checkIds([0, 261], 261, 64), (e) => e instanceof InputError && e.field === "ids[1]");
  assert.deepEqual(checkIds([0, 260], 261, 64), [0, 260]);
});

Deno.test("parseGridText accepts rectangular digit rows only", () => {
  assert.deepEqual(parseGridText("12\n30\n"), [[1, 2], [3, 0]]);
  assert.equal(parseGridText("12\n3"), null);
  assert.equal(parseGridText("1a"), null);
  assert.equal(parseGridText(""), null);
});

Deno.test("the safety suite passes every case on a real model and records well-formedness", async () => {
  const model = createModel("cognate-standard", cognatePresetConfig("tiny", "standard"), 3);
  const r = await safetySuite(model, 256, { arc: ["in\n12\nout\n"], math: ["Ann has 3 apples.\n"] }, 1);
  model.dispose();
  const failed = r.cases.filter((c) => !c.passed);
  assert.deepEqual(failed, [], JSON.stringify(failed));
  assert.equal(r.score, 1);
  assert.ok(r.deterministic && r.finite_logits);
  assert.ok(r.well_formed.arc_grids >= 0 && r.well_formed.arc_grids <= 1);
  assert.ok(r.cases.length >= 15);
});
