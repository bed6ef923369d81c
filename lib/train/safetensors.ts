/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON
 * header `{name: {dtype, shape, data_offsets}, __metadata__?: {str: str}}`, then the raw
 * little-endian tensor bytes. Only F32 is written; F32 and I32 are read.
 */
import type { HostTensor } from "../nn/params.ts";

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Serialises named f32 tensors (in the map's order) with optional string metadata. */
export function encodeSafetensors(tensors: Map<string, HostTensor>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, Entry | Record<string, string>> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) throw new Error(`safetensors: '${name}' has ${t.data.length} values for shape [${t.shape}]`);
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + size * 4] };
    offset += size * 4;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8); // data starts 8-byte aligned
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    const dv = new DataView(out.buffer, pos, t.data.length * 4);
    for (let i = 0; i < t.data.length; i++) dv.setFloat32(i * 4, t.data[i], true);
    pos += t.data.length * 4;
  }
  return out;
}

/** Parses a safetensors buffer; `source` names the file in errors. I32 tensors are converted to f32. */
export function decodeSafetensors(
  bytes: Uint8Array,
  source = "safetensors",
): { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new Error(`${source}: too short for a safetensors file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (8 + n > bytes.length) throw new Error(`${source}: header length ${n} exceeds file size ${bytes.length}`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`${source}: header is not JSON (${(e as Error).message})`);
  }
  const base = 8 + n;
  const tensors = new Map<string, HostTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as Entry;
    const [start, end] = e.data_offsets ?? [];
    const size = (e.shape ?? []).reduce((a, b) => a * b, 1);
    if (e.dtype !== "F32" && e.dtype !== "I32") throw new Error(`${source}: ${name}.dtype = ${e.dtype}, expected F32 or I32`);
    if (end - start !== size * 4 || base + end > bytes.length) {
      throw new Error(`${source}: ${name}.data_offsets [${start}, ${end}] do not fit shape [${e.shape}] in the file`);
    }
    const dv = new DataView(bytes.buffer, bytes.byteOffset + base + start, size * 4);
    const data = new Float32Array(size);
    if (e.dtype === "F32") { for (let i = 0; i < size; i++) data[i] = dv.getFloat32(i * 4, true); }
    else for (let i = 0; i < size; i++) data[i] = dv.getInt32(i * 4, true);
    tensors.set(name, { shape: e.shape, data });
  }
  return { tensors, metadata };
}
