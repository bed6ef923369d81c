/**
 * Checkpoints: `<dir>/step-000120/{model.safetensors, optimizer.safetensors, meta.json}`
 * plus `<dir>/latest.json` naming the newest. A checkpoint folder is written under a
 * temporary name and renamed into place, and `latest.json` is replaced atomically, so a
 * killed run always leaves the previous checkpoint intact.
 */
import { join } from "node:path";
import type { HostTensor, ParamSet } from "../nn/params.ts";
import { faultPoint } from "../util/fault.ts";
import { exists, readJson, writeJsonAtomic, writing } from "../util/fs.ts";
import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
import type { AdamW } from "./optim.ts";

/** What `meta.json` holds beside the tensors. */
export interface CheckpointMeta {
  format: "agent-forge-checkpoint/1";
  /** Optimizer steps completed. */
  step: number;
  /** The resolved config the run was started with. */
  config: unknown;
  /** Optimizer scalars (the moments live in optimizer.safetensors). */
  optimizer: { kind: "adamw"; t: number; beta1: number; beta2: number; eps: number; weightDecay: number };
  /** Where the data stream stands: batches are a function of the step, so this is enough to resume. */
  dataPosition: { step: number };
  /** Anything else the caller wants back on resume (e.g. loss history, filter state scalars). */
  extra?: Record<string, unknown>;
  savedAt: string;
}

export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  model: Map<string, HostTensor>;
  optimizer: Map<string, HostTensor>;
  /** A persistent gradient filter's state (GrokFast), when one was saved. */
  gradFilter?: Map<string, HostTensor>;
  /** The weight EMA (lib/train/ema.ts), when training keeps one. */
  ema?: Map<string, HostTensor>;
  path: string;
}

const stepDir = (step: number) => `step-${String(step).padStart(6, "0")}`;

/** Saves params and optimizer state at `step`; keeps the newest `keep` checkpoints. */
export async function saveCheckpoint(
  dir: string,
  step: number,
  params: ParamSet,
  opt: AdamW,
  config: unknown,
  opts: { keep?: number; extra?: Record<string, unknown>; gradFilter?: Map<string, HostTensor>; ema?: Map<string, HostTensor> } = {},
): Promise<string> {
  const final = join(dir, stepDir(step));
  const tmp = join(dir, `.tmp-${stepDir(step)}-${crypto.randomUUID().slice(0, 8)}`);
  const meta: CheckpointMeta = {
    format: "agent-forge-checkpoint/1",
    step,
    config,
    optimizer: { kind: "adamw", t: opt.t, ...pick(opt.opts) },
    dataPosition: { step },
    extra: opts.extra,
    savedAt: new Date().toISOString(),
  };
  // Everything goes into a temp folder renamed into place: a kill or a failed write leaves the older checkpoints as they were.
  await writing(tmp, async () => {
    await Deno.mkdir(tmp, { recursive: true });
    await Deno.writeFile(join(tmp, "model.safetensors"), encodeSafetensors(await params.toHost(), { step: String(step) }));
    const optimizer = encodeSafetensors(await opt.stateToHost());
    faultPoint("checkpoint", () => Deno.writeFileSync(join(tmp, "optimizer.safetensors"), optimizer.subarray(0, optimizer.length >> 1)));
    await Deno.writeFile(join(tmp, "optimizer.safetensors"), optimizer);
    if (opts.gradFilter) await Deno.writeFile(join(tmp, "gradfilter.safetensors"), encodeSafetensors(opts.gradFilter));
    if (opts.ema) await Deno.writeFile(join(tmp, "ema.safetensors"), encodeSafetensors(opts.ema));
    await Deno.writeTextFile(join(tmp, "meta.json"), JSON.stringify(meta, null, 2));
    if (await exists(final)) await Deno.remove(final, { recursive: true });
    await Deno.rename(tmp, final);
  });
  await writeJsonAtomic(join(dir, "latest.json"), { step, path: stepDir(step) });
  await prune(dir, opts.keep ?? 2);
  return final;
}

function pick(o: AdamW["opts"]) {
  return { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay };
}

async function prune(dir: string, keep: number): Promise<void> {
  const steps: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory && /^step-\d+$/.test(e.name)) steps.push(e.name);
    // Leftovers of a write that was killed half-way.
    else if (e.isDirectory && e.name.startsWith(".tmp-")) await Deno.remove(join(dir, e.name), { recursive: true });
  }
  steps.sort();
  for (const name of steps.slice(0, Math.max(0, steps.length - keep))) await Deno.remove(join(dir, name), { recursive: true });
}

/** True when `dir` holds at least one complete checkpoint. */
export function hasCheckpoint(dir: string): Promise<boolean> {
  return exists(join(dir, "latest.json"));
}

/** Loads the newest checkpoint under `dir`, or undefined when there is none. */
export async function loadLatestCheckpoint(dir: string): Promise<LoadedCheckpoint | undefined> {
  const latest = join(dir, "latest.json");
  if (!(await exists(latest))) return undefined;
  const { path } = await readJson<{ path: string }>(latest);
  return loadCheckpoint(join(dir, path));
}

/** Loads one checkpoint folder; errors name the file. */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const meta = await readJson<CheckpointMeta>(join(path, "meta.json"));
  if (meta.format !== "agent-forge-checkpoint/1") {
    throw new Error(`${join(path, "meta.json")}: format = ${meta.format}, expected agent-forge-checkpoint/1`);
  }
  const read = async (name: string) => {
    const file = join(path, name);
    return decodeSafetensors(await Deno.readFile(file), file).tensors;
  };
  const gradFilter = (await exists(join(path, "gradfilter.safetensors"))) ? await read("gradfilter.safetensors") : undefined;
  const ema = (await exists(join(path, "ema.safetensors"))) ? await read("ema.safetensors") : undefined;
  return { meta, model: await read("model.safetensors"), optimizer: await read("optimizer.safetensors"), gradFilter, ema, path };
}
