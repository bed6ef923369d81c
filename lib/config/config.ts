/**
 * The pipeline's one resolved config: defaults <- preset <- JSON file <- `--set` overrides.
 * Unknown keys, wrong types and bad values are `ConfigError`s naming the key and what is
 * accepted (the CLI turns them into exit code 2). Keys are snake_case, as in the
 * documented configuration; each phase contributes its own `phases.<id>` section.
 */
import type { GrokfastSection, TrainingSection } from "../train/config.ts";
import { MODEL_PRESET_PATCHES, MODEL_SECTION, type ModelSection } from "../models/section.ts";

export type { ModelSection };

export type Preset = "tiny" | "small" | "seed";
export const PRESETS: readonly Preset[] = ["tiny", "small", "seed"];

/** `training`: see lib/train/config.ts, which turns it and a phase's run into a trainer config. */
export type { GrokfastSection, TrainingSection };

export interface PipelineConfig {
  run: {
    /** Base seed; every phase and model derives its own from it. */
    seed: number;
    /** `auto` picks WebGPU (real adapter), else wasm, else cpu. */
    backend: "auto" | "webgpu" | "wasm" | "cpu";
    /** The preset this config was built from (informational). */
    preset: Preset;
  };
  model: ModelSection;
  training: TrainingSection;
  /** Per-phase sections, keyed by phase number; each registered phase brings its defaults. */
  phases: Record<string, Record<string, unknown>>;
  compression: {
    /** Size the phase-7 compression pipeline aims for. */
    target_size_mb: number;
    methods: string[];
  };
  pipeline: {
    /** Where phase wall-time baselines are kept (relative to the working directory). */
    baseline_file: string;
    /** Warn when a phase runs longer than this multiple of its baseline. */
    slow_factor: number;
  };
}

/** The `small` preset: the default, real learning in well under an hour on 2 CPU cores. */
export const DEFAULT_CONFIG: PipelineConfig = {
  run: { seed: 1337, backend: "auto", preset: "small" },
  model: { ...MODEL_SECTION },

  training: {
    batch_size: 32,
    grad_accum: 1,
    lr: 1e-3,
    min_lr: 1e-4,
    warmup_steps: 50,
    max_steps: 1000,
    weight_decay: 0.01,
    beta1: 0.9,
    beta2: 0.95,
    grad_clip: 1,
    eval_every: 100,
    save_every: 100,
    log_every: 10,
    grokfast: { enabled: false, kind: "ema", alpha: 0.98, lambda: 2, window: 100, warmup: 0 },
  },
  phases: {},
  // SeedLM's exhaustive 2^16-seed search costs minutes per million weights on a CPU: the seed preset adds it.
  compression: { target_size_mb: 1, methods: ["bitnet", "vptq"] },
  pipeline: { baseline_file: "runs/baselines.json", slow_factor: 1.5 },
};

/** A deep-partial override of the config. */
export type ConfigPatch = { [k: string]: unknown };

/** Preset overrides on top of DEFAULT_CONFIG (`small` is the defaults themselves). */
export const PRESET_PATCHES: Record<Preset, ConfigPatch> = {
  tiny: {
    run: { preset: "tiny" },
    model: MODEL_PRESET_PATCHES.tiny,
    training: { batch_size: 16, max_steps: 60, warmup_steps: 5, eval_every: 20, save_every: 20, log_every: 5 },
    compression: { target_size_mb: 0.25 },
  },
  small: {},
  // The documented configuration, meant for a GPU.
  seed: {
    run: { preset: "seed" },
    model: MODEL_PRESET_PATCHES.seed,
    training: {
      lr: 1e-4,
      min_lr: 1e-5,
      batch_size: 32,
      grad_accum: 4,
      warmup_steps: 1000,
      max_steps: 100_000,
      save_every: 5000,
      eval_every: 1000,
      log_every: 100,
    },
    compression: { target_size_mb: 100, methods: ["bitnet", "seedlm", "vptq"] },
  },
};

/** A bad key, type or value; `key` is the dotted path. */
export class ConfigError extends Error {
  constructor(readonly key: string, message: string) {
    super(`config: ${key}: ${message}`);
  }
}

/** A constraint on one value beyond its type. */
export interface Rule {
  oneOf?: readonly (string | number)[];
  min?: number;
  /** Strictly greater than. */
  above?: number;
  max?: number;
  int?: boolean;
}

const RULES: Record<string, Rule> = {
  "run.seed": { int: true, min: 0 },
  "run.backend": { oneOf: ["auto", "webgpu", "wasm", "cpu"] },
  "run.preset": { oneOf: PRESETS },
  "model.vocab_size": { int: true, min: 2 },
  "model.hidden_size": { int: true, min: 1 },
  "model.num_layers": { int: true, min: 1 },
  "model.num_heads": { int: true, min: 1 },
  "model.mlp_ratio": { above: 0 },
  "model.max_seq_len": { int: true, min: 1 },
  "model.norm": { oneOf: ["layernorm", "rmsnorm"] },
  "model.positions": { oneOf: ["learned", "rope"] },
  "model.mlp": { oneOf: ["gelu", "swiglu"] },
  "model.init_std": { above: 0 },
  "model.rope_base": { above: 1 },
  "training.batch_size": { int: true, min: 1 },
  "training.grad_accum": { int: true, min: 1 },
  "training.lr": { above: 0 },
  "training.min_lr": { min: 0 },
  "training.warmup_steps": { int: true, min: 0 },
  "training.max_steps": { int: true, min: 1 },
  "training.weight_decay": { min: 0 },
  "training.beta1": { min: 0, max: 0.999999 },
  "training.beta2": { min: 0, max: 0.999999 },
  "training.grad_clip": { min: 0 },
  "training.eval_every": { int: true, min: 0 },
  "training.save_every": { int: true, min: 0 },
  "training.log_every": { int: true, min: 1 },
  "training.grokfast.kind": { oneOf: ["ema", "ma"] },
  "training.grokfast.alpha": { min: 0, max: 0.9999 },
  "training.grokfast.window": { int: true, min: 1 },
  "training.grokfast.warmup": { int: true, min: 0 },
  "compression.target_size_mb": { above: 0 },
  "pipeline.slow_factor": { above: 1 },
};

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function kind(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (v === null) return "null";
  return typeof v;
}

function describe(v: unknown): string {
  return typeof v === "string" ? `'${v}'` : JSON.stringify(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Deep copy of a JSON-like value. */
export function clone<T>(v: T): T {
  return structuredClone(v);
}

/**
 * Merges `patch` into `base` (in place), checking every key against `schema`: unknown
 * keys and type mismatches throw ConfigError with the dotted path.
 */
export function mergeChecked(base: Record<string, unknown>, patch: unknown, schema: Record<string, unknown>, path = ""): void {
  if (!isObject(patch)) throw new ConfigError(path || "(root)", `expected an object, got ${kind(patch)}`);
  for (const [k, v] of Object.entries(patch)) {
    const key = path ? `${path}.${k}` : k;
    if (!(k in schema)) {
      const known = Object.keys(schema);
      throw new ConfigError(key, `unknown key; accepted keys here: ${known.length ? known.join(", ") : "(none)"}`);
    }
    const want = schema[k];
    if (isObject(want)) {
      if (!isObject(v)) throw new ConfigError(key, `expected an object, got ${kind(v)} ${describe(v)}`);
      if (!isObject(base[k])) base[k] = {};
      mergeChecked(base[k] as Record<string, unknown>, v, want, key);
    } else {
      if (kind(v) !== kind(want)) throw new ConfigError(key, `expected a ${kind(want)}, got ${kind(v)} ${describe(v)}`);
      if (Array.isArray(want) && want.length && Array.isArray(v)) {
        v.forEach((item, i) => {
          if (kind(item) !== kind(want[0])) throw new ConfigError(`${key}[${i}]`, `expected a ${kind(want[0])}, got ${describe(item)}`);
        });
      }
      base[k] = clone(v);
    }
  }
}

/** Checks every value against the rules; throws ConfigError naming the first bad one. */
export function checkRules(cfg: Record<string, unknown>, rules: Record<string, Rule> = RULES, path = ""): void {
  for (const [k, v] of Object.entries(cfg)) {
    const key = path ? `${path}.${k}` : k;
    if (isObject(v)) {
      checkRules(v, rules, key);
      continue;
    }
    const r = rules[key];
    if (!r) continue;
    if (r.oneOf && !r.oneOf.includes(v as string | number)) {
      throw new ConfigError(key, `${describe(v)} is not accepted; expected one of ${r.oneOf.join(", ")}`);
    }
    if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new ConfigError(key, `expected a finite number, got ${v}`);
      if (r.int && !Number.isInteger(v)) throw new ConfigError(key, `expected an integer, got ${v}`);
      if (r.min !== undefined && v < r.min) throw new ConfigError(key, `expected >= ${r.min}, got ${v}`);
      if (r.above !== undefined && v <= r.above) throw new ConfigError(key, `expected > ${r.above}, got ${v}`);
      if (r.max !== undefined && v > r.max) throw new ConfigError(key, `expected <= ${r.max}, got ${v}`);
    }
  }
}

/** Cross-field checks the per-key rules cannot express. */
function checkConsistency(cfg: PipelineConfig): void {
  if (cfg.model.hidden_size % cfg.model.num_heads !== 0) {
    throw new ConfigError("model.num_heads", `hidden_size ${cfg.model.hidden_size} must divide by num_heads ${cfg.model.num_heads}`);
  }
  if (cfg.training.warmup_steps >= cfg.training.max_steps) {
    throw new ConfigError(
      "training.warmup_steps",
      `${cfg.training.warmup_steps} is not shorter than training.max_steps = ${cfg.training.max_steps}`,
    );
  }
  if (cfg.training.min_lr > cfg.training.lr) {
    throw new ConfigError("training.min_lr", `${cfg.training.min_lr} exceeds training.lr ${cfg.training.lr}`);
  }
}

/**
 * Parses one `--set key.path=value`: the value is read as the type the key has in the
 * schema (number, boolean, string; JSON for arrays and objects).
 */
export function parseSet(assignment: string, schema: Record<string, unknown>): ConfigPatch {
  const eq = assignment.indexOf("=");
  if (eq <= 0) throw new ConfigError(assignment, "--set expects key.path=value");
  const key = assignment.slice(0, eq).trim();
  const raw = assignment.slice(eq + 1).trim();
  const parts = key.split(".");
  let node: unknown = schema;
  for (let i = 0; i < parts.length; i++) {
    if (!isObject(node) || !(parts[i] in node)) {
      const at = parts.slice(0, i + 1).join(".");
      const known = isObject(node) ? Object.keys(node) : [];
      throw new ConfigError(at, `unknown key; accepted keys here: ${known.length ? known.join(", ") : "(none)"}`);
    }
    node = node[parts[i]];
  }
  let value: unknown;
  switch (kind(node)) {
    case "number":
      value = Number(raw);
      if (raw === "" || Number.isNaN(value)) throw new ConfigError(key, `expected a number, got '${raw}'`);
      break;
    case "boolean":
      if (raw !== "true" && raw !== "false") throw new ConfigError(key, `expected true or false, got '${raw}'`);
      value = raw === "true";
      break;
    case "string":
      value = raw;
      break;
    default:
      try {
        value = JSON.parse(raw) as Json;
      } catch {
        throw new ConfigError(key, `expected JSON (${kind(node)}), got '${raw}'`);
      }
  }
  const patch: ConfigPatch = {};
  let cur = patch;
  parts.forEach((p, i) => {
    if (i === parts.length - 1) cur[p] = value;
    else cur = (cur[p] = {}) as ConfigPatch;
  });
  return patch;
}

/** Phase-contributed config: defaults and per-preset overrides for `phases.<id>`. */
export interface PhaseConfigSource {
  id: number;
  defaults: Record<string, unknown>;
  /** Constraints on this phase's keys (by key within its section). */
  rules?: Record<string, Rule>;
  presets?: Partial<Record<Preset, Record<string, unknown>>>;
}

/** The global rules plus every phase's, keyed by full dotted path. */
function rulesFor(phases: readonly PhaseConfigSource[]): Record<string, Rule> {
  const all = { ...RULES };
  for (const p of phases) for (const [k, r] of Object.entries(p.rules ?? {})) all[`phases.${p.id}.${k}`] = r;
  return all;
}

/** The schema (shape + default types) for a set of phases: DEFAULT_CONFIG with their sections. */
export function schemaFor(phases: readonly PhaseConfigSource[]): PipelineConfig {
  const schema = clone(DEFAULT_CONFIG);
  for (const p of phases) schema.phases[String(p.id)] = clone(p.defaults);
  return schema;
}

export interface ResolveOptions {
  preset?: Preset;
  /** A config file's parsed contents and its path (for messages). */
  file?: { path: string; data: unknown };
  /** `--set` assignments, applied in order. */
  sets?: string[];
  /** The registered phases, whose sections join the config. */
  phases?: readonly PhaseConfigSource[];
}

/** Builds, checks and returns the fully resolved config. */
export function resolveConfig(opts: ResolveOptions = {}): PipelineConfig {
  const preset = opts.preset ?? "small";
  if (!PRESETS.includes(preset)) throw new ConfigError("--preset", `'${preset}' is not a preset; expected one of ${PRESETS.join(", ")}`);
  const phases = opts.phases ?? [];
  const schema = schemaFor(phases) as unknown as Record<string, unknown>;
  const cfg = clone(schema);
  mergeChecked(cfg, PRESET_PATCHES[preset], schema);
  for (const p of phases) {
    const patch = p.presets?.[preset];
    if (patch) mergeChecked(cfg, { phases: { [String(p.id)]: patch } }, schema);
  }
  if (opts.file) {
    try {
      mergeChecked(cfg, opts.file.data, schema);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(`${opts.file.path}: ${e.key}`, e.message.replace(/^config: [^:]+: /, ""));
      throw e;
    }
  }
  for (const s of opts.sets ?? []) mergeChecked(cfg, parseSet(s, schema), schema);
  checkRules(cfg, rulesFor(phases));
  checkConsistency(cfg as unknown as PipelineConfig);
  return cfg as unknown as PipelineConfig;
}

/**
 * Re-checks a config read back from a run directory against the current schema (a run
 * made by another version may not fit).
 */
export function checkResolved(data: unknown, phases: readonly PhaseConfigSource[], source: string): PipelineConfig {
  const schema = schemaFor(phases) as unknown as Record<string, unknown>;
  const cfg = clone(schema);
  try {
    mergeChecked(cfg, data, schema);
    checkRules(cfg, rulesFor(phases));
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${source}: ${e.key}`, e.message.replace(/^config: [^:]+: /, ""));
    throw e;
  }
  return cfg as unknown as PipelineConfig;
}
