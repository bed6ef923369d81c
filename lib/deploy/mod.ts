/**
 * Deployment: exporters and the compatibility validator.
 *
 * - hf.ts: an HF-style folder (config.json, model.safetensors, tokenizer files) and its loader.
 * - onnx.ts: the decoder's forward as an ONNX graph (opset 17), checked against onnxruntime-node.
 * - tfjs_export.ts: tfjs's model.json + weights shard, written and read through tf.io.
 * - validator.ts: size budgets and operator sets of the local, cloud_api, edge and mobile targets.
 * - checks.ts: each export written and loaded back, ONNX run in onnxruntime-node.
 * - batcher.ts, server.ts: the inference server and its request batching.
 */
export * from "./hf.ts";
export * from "./onnx.ts";
export * from "./tfjs_export.ts";
export * from "./validator.ts";
export * from "./checks.ts";
export * from "./batcher.ts";
export { createServer, loadServedModel } from "./server.ts";
export type { InferenceServer, ServedModel, ServerOptions } from "./server.ts";
