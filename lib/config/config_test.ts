/** Config resolution: presets, files, --set, and errors that name the key. */
import assert from "node:assert/strict";
import { z } from "zod";
import { ConfigError, DEFAULT_CONFIG, parseSet, PRESETS, resolveConfig, schemaFor } from "./config.ts";

const section = z.strictObject({ steps: z.number().int().min(1).default(10), tasks: z.array(z.string()).default(["a"]) });
const phases = [{ id: 3, section, presets: { tiny: { steps: 2 } } }];

Deno.test("presets resolve and validate; seed is the documented configuration", () => {
  for (const p of PRESETS) assert.equal(resolveConfig({ preset: p }).run.preset, p);
  const seed = resolveConfig({ preset: "seed" });
  assert.deepEqual(
    [seed.model.hidden_size, seed.model.num_layers, seed.model.num_heads, seed.model.vocab_size, seed.model.max_seq_len],
    [1024, 24, 16, 50257, 8192],
  );
  assert.deepEqual(
    [seed.training.lr, seed.training.batch_size, seed.training.grad_accum, seed.training.warmup_steps, seed.training.max_steps],
    [1e-4, 32, 4, 1000, 100_000],
  );
  assert.deepEqual([seed.training.save_every, seed.training.eval_every, seed.compression.target_size_mb], [5000, 1000, 100]);
  assert.deepEqual(resolveConfig().model, DEFAULT_CONFIG.model, "small is the default");
});

Deno.test("phase sections: defaults, preset overrides, file and --set in that order", () => {
  assert.equal(resolveConfig({ phases }).phases["3"].steps, 10);
  assert.equal(resolveConfig({ phases, preset: "tiny" }).phases["3"].steps, 2);
  const file = { path: "x.json", data: { phases: { "3": { steps: 5 } }, training: { lr: 0.5 } } };
  const cfg = resolveConfig({ phases, preset: "tiny", file, sets: ["phases.3.steps=7", 'phases.3.tasks=["b","c"]'] });
  assert.equal(cfg.phases["3"].steps, 7);
  assert.deepEqual(cfg.phases["3"].tasks, ["b", "c"]);
  assert.equal(cfg.training.lr, 0.5);
});

Deno.test("errors name the key and what is accepted", () => {
  const bad: [() => unknown, RegExp][] = [
    [() => resolveConfig({ sets: ["model.hidden=3"] }), /model\.hidden: unknown key; accepted keys here: vocab_size, hidden_size/],
    [() => resolveConfig({ sets: ["training.bias=true"] }), /training\.bias: unknown key/],
    [() => resolveConfig({ sets: ["model.bias=yes"] }), /model\.bias: expected true or false, got 'yes'/],
    [() => resolveConfig({ sets: ["training.max_steps=2.5"] }), /training\.max_steps: expected an integer, got 2\.5/],
    [() => resolveConfig({ sets: ["run.backend=tpu"] }), /run\.backend: 'tpu' is not accepted; expected one of auto, webgpu, wasm, cpu/],
    [() => resolveConfig({ sets: ["model.num_heads=3"] }), /model\.num_heads: hidden_size 128 must divide by num_heads 3/],
    [
      () => resolveConfig({ file: { path: "c.json", data: { model: { vocab_size: "big" } } } }),
      /c\.json: model\.vocab_size: expected a number, got string 'big'/,
    ],
    [
      () => resolveConfig({ file: { path: "c.json", data: { phases: { "4": {} } } } }),
      /c\.json: phases\.4: unknown key; accepted keys here: \(none\)/,
    ],
    [() => resolveConfig({ phases, sets: ["phases.3.steps=0"] }), /phases\.3\.steps: expected >= 1, got 0/],
    [() => resolveConfig({ phases, sets: ["phases.3.tasks=[1]"] }), /phases\.3\.tasks\[0\]: expected a string/],
    [
      () => resolveConfig({ sets: ["training.grokfast.kind=fft"] }),
      /training\.grokfast\.kind: 'fft' is not accepted; expected one of ema, ma/,
    ],
    [() => resolveConfig({ sets: ["training.lr=0"] }), /training\.lr: expected > 0, got 0/],
    [
      () => resolveConfig({ file: { path: "c.json", data: { training: { grokfast: { window: 0 } } } } }),
      /c\.json: training\.grokfast\.window: expected >= 1, got 0/,
    ],
    [() => parseSet("novalue", schemaFor([])), /--set expects key\.path=value/],
  ];
  for (const [f, re] of bad) assert.throws(f, (e: unknown) => e instanceof ConfigError && re.test(e.message), re.source);
});
