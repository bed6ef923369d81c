/**
 * Compression to a size target with measured retention: the model's matrices go through the
 * compression pipeline (lib/compress/pipeline.ts) to fit `targetBytes` on disk, the file is
 * written and loaded back, and the reconstructed model is scored with the same evaluation as
 * the dense one, so retention is a measured ratio, as is the size.
 */
import { compressedLayers, type CompressionOption, compressToTarget, loadCompressed, STANDARD_OPTIONS } from "../compress/pipeline.ts";
import { measureInference } from "../compress/inference.ts";
import type { DecoderConfig } from "../nn/decoder.ts";
import { createModel, type RegistryModel } from "../models/registry.ts";
import { round } from "../util/numbers.ts";
import type { SavedModel } from "../models/io.ts";
import { writeAtomic } from "../util/fs.ts";
import { deriveSeed } from "../util/rng.ts";

type StageScores = Record<string, { metric: string; value: number }>;

export interface CompressModelOptions {
  targetBytes: number;
  /** Which compressors the planner may use: any of bitnet, seedlm, vptq. */
  methods: string[];
  /** Where the compressed file goes. */
  file: string;
  /** Scores a model (the same suite for dense and compressed). */
  evaluate(model: RegistryModel): Promise<StageScores>;
  seed: number;
}

/** Compresses `model` to the target and reports sizes, the per-matrix plan, retention and speed. */
export async function compressModel(model: RegistryModel, meta: SavedModel, o: CompressModelOptions): Promise<Record<string, unknown>> {
  const options: CompressionOption[] = [];
  for (const m of o.methods) {
    const opts = STANDARD_OPTIONS[m as keyof typeof STANDARD_OPTIONS];
    if (!opts) throw new Error(`compression.methods: '${m}' is not one of ${Object.keys(STANDARD_OPTIONS).join(", ")}`);
    options.push(...opts);
  }
  const dense = await model.params.toHost();
  const denseBytes = [...dense.values()].reduce((a, t) => a + t.data.length * 4, 0);
  const t0 = performance.now();
  const { plan, file, fits } = compressToTarget(dense, { targetBytes: o.targetBytes, options });
  const compressSeconds = (performance.now() - t0) / 1000;
  await writeAtomic(o.file, file);
  const onDisk = (await Deno.stat(o.file)).size;
  const restored = loadCompressed(await Deno.readFile(o.file), o.file);
  const small = createModel(meta.key, meta.config, 0);
  small.params.load(restored, { source: o.file });

  const before = await o.evaluate(model);
  const after = await o.evaluate(small);
  const ids = Object.keys(before);
  const mean = (s: StageScores) => ids.reduce((a, id) => a + s[id].value, 0) / Math.max(1, ids.length);
  const retention = mean(before) > 0 ? mean(after) / mean(before) : mean(after) >= mean(before) ? 1 : 0;
  small.dispose();
  // Forward speed of the compressed layers against dense on one batch: through the WGSL kernels on
  // WebGPU, on reconstructed weights elsewhere (lib/compress/inference.ts).
  const speed = await measureInference(meta.config as unknown as DecoderConfig, dense, compressedLayers(plan), {
    batch: 4,
    seqLen: Math.min(64, Number(meta.config.maxSeqLen)),
    reps: 5,
    seed: deriveSeed(o.seed, "speed"),
  });
  const methods: Record<string, number> = {};
  for (const e of plan.entries) methods[e.chosen.label] = (methods[e.chosen.label] ?? 0) + 1;
  return {
    target_bytes: o.targetBytes,
    dense_bytes: denseBytes,
    file_bytes: onDisk,
    ratio: round(denseBytes / onDisk, 2),
    fits,
    methods_chosen: methods,
    compress_seconds: round(compressSeconds, 1),
    stage_metrics_dense: Object.fromEntries(ids.map((id) => [id, before[id].value])),
    stage_metrics_compressed: Object.fromEntries(ids.map((id) => [id, after[id].value])),
    retention: round(retention),
    inference: {
      backend: speed.backend,
      mode: speed.mode,
      forward_ms_dense: round(speed.denseMs, 2),
      forward_ms_compressed: round(speed.compressedMs, 2),
      speedup: round(speed.speedup, 3),
      max_logit_shift: round(speed.maxLogitShift, 5),
    },
  };
}
