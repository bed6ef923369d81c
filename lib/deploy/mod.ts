/**
 * Deployment: exporters and the compatibility validator.
 *
 * - hf.ts, hf_arch.ts: the HF folder (gpt2 / gpt_neox / llama where one computes the model, else
 *   our format; tokenizer files, onnx/model.onnx with past key values) and its loader.
 * - onnx.ts: the decoder's forward as an ONNX graph (opset 17; dynamic, portable, or with past key
 *   values), checked against onnxruntime-node.
 * - tfjs_export.ts: tfjs's model.json + weights shard, written and read through tf.io.
 * - validator.ts: size budgets and operator sets of the local, cloud_api, edge and mobile targets.
 * - checks.ts: each export written and loaded back; deployment verdicts from the runtimes that ran them.
 * - batcher.ts, server.ts: the inference server and its request batching.
 */
export * from "./hf.ts";
export * from "./hf_arch.ts";
export * from "./onnx.ts";
export * from "./tfjs_export.ts";
export * from "./validator.ts";
export * from "./checks.ts";
export * from "./batcher.ts";
export { createServer, loadServedModel } from "./server.ts";
export type { InferenceServer, ServedModel, ServerOptions } from "./server.ts";
