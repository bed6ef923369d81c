/** torchDefaultInit: every decoder parameter gets PyTorch's rule, deterministically from the seed. */
import assert from "node:assert/strict";
import { initBackend } from "../backend/mod.ts";
import { Decoder, REFERENCE_DECODER } from "./decoder.ts";
import { ParamSet } from "./params.ts";
import { torchDefaultInit } from "./torch_init.ts";

const stats = (d: Float32Array) => {
  const mean = d.reduce((a, b) => a + b, 0) / d.length;
  const std = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / d.length);
  const maxAbs = d.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
  return { mean, std, maxAbs };
};

Deno.test("torchDefaultInit: PyTorch's rule for each decoder parameter, reproducible from the seed", async () => {
  await initBackend("cpu", { quiet: true });
  const model = new Decoder({ ...REFERENCE_DECODER, vocabSize: 61, dModel: 64, nLayers: 2, maxSeqLen: 4 }, 1);
  try {
    const init = torchDefaultInit(model.params, 7);
    assert.deepEqual([...init.keys()], model.params.names());
    for (const [name, t] of init) assert.deepEqual(t.shape, model.params.get(name).shape, name);

    const tok = stats(init.get("tok")!.data); // nn.Embedding: N(0, 1)
    assert(Math.abs(tok.std - 1) < 0.05 && Math.abs(tok.mean) < 0.05, `tok std ${tok.std}, mean ${tok.mean}`);
    assert(init.get("l0.ln1_g")!.data.every((x) => x === 1));
    for (const z of ["l0.ln1_b", "l1.qkv_b", "l1.proj_b", "lnf_b"]) assert(init.get(z)!.data.every((x) => x === 0), z);

    // nn.Linear: U(±1/sqrt(fanIn)) for the weight and its bias; the uniform's std is bound / sqrt(3).
    for (const [w, fanIn] of [["l0.fc1_w", 64], ["l1.fc2_w", 256], ["l0.fc1_b", 64], ["head_w", 64]] as const) {
      const s = stats(init.get(w)!.data), bound = 1 / Math.sqrt(fanIn);
      assert(s.maxAbs <= bound && s.maxAbs > 0.9 * bound, `${w}: max |x| ${s.maxAbs}, bound ${bound}`);
      if (w !== "l0.fc1_b") assert(Math.abs(s.std - bound / Math.sqrt(3)) < 0.05 * bound, `${w}: std ${s.std}`);
    }
    // Xavier-uniform for the attention's input projection [64, 192].
    const qkv = stats(init.get("l0.qkv_w")!.data), xavier = Math.sqrt(6 / (64 + 192));
    assert(qkv.maxAbs <= xavier && qkv.maxAbs > 0.9 * xavier, `qkv max |x| ${qkv.maxAbs}, bound ${xavier}`);

    assert.deepEqual(torchDefaultInit(model.params, 7).get("l1.fc1_w")!.data, init.get("l1.fc1_w")!.data);
    assert(torchDefaultInit(model.params, 8).get("l1.fc1_w")!.data.some((x, i) => x !== init.get("l1.fc1_w")!.data[i]));
  } finally {
    model.params.dispose();
  }
});

Deno.test("torchDefaultInit: a parameter with no rule is named in the error", async () => {
  await initBackend("cpu", { quiet: true });
  const p = new ParamSet(0);
  p.add("mystery", [2, 2], { kind: "const", value: 0 });
  try {
    assert.throws(() => torchDefaultInit(p, 0), /mystery/);
  } finally {
    p.dispose();
  }
});
