/**
 * The pipeline's one resolved config: defaults <- preset <- JSON file <- `--set` overrides.
 * Every section is declared once, as a zod schema that holds its type, its defaults and its
 * validation, by the layer that owns it: `model` (lib/models/section.ts), `training`
 * (lib/train/config.ts), each phase's `phases.<id>` (its PhaseSpec's `section`), and `run`,
 * `compression` and `pipeline` here. Unknown keys, wrong types and bad values are
 * `ConfigError`s naming the key and what is accepted (the CLI turns them into exit code 2).
 * Keys are snake_case, as in the documented configuration.
 */
import { z } from "zod";
import { MODEL_PRESET_PATCHES, ModelSection } from "../models/section.ts";
import { GrokfastSection, TrainingSection } from "../train/config.ts";

export { GrokfastSection, ModelSection, TrainingSection };

export type Preset = "tiny" | "small" | "seed";
export const PRESETS: readonly Preset[] = ["tiny", "small", "seed"];

/** `run`: what the run is. */
export const RunSection = z.strictObject({
  seed: z.number().int().min(0).default(1337), // base seed; every phase and model derives its own from it
  backend: z.enum(["auto", "webgpu", "wasm", "cpu"]).default("auto"), // auto: WebGPU on a real adapter, else wasm, else cpu
  preset: z.enum(PRESETS).default("small"), // the preset this config was built from (informational)
});

/** `compression`: phase 7's size target. */
export const CompressionSection = z.strictObject({
  target_size_mb: z.number().gt(0).default(1), // size the phase-7 compression pipeline aims for
  // SeedLM's exhaustive 2^16-seed search costs minutes per million weights on a CPU: the seed preset adds it.
  methods: z.array(z.string()).default(["bitnet", "vptq"]),
});

/** `pipeline`: how the controller watches phase times. */
export const PipelineSection = z.strictObject({
  baseline_file: z.string().default("runs/baselines.json"), // where phase wall-time baselines are kept (relative to the working directory)
  slow_factor: z.number().gt(1).default(1.5), // warn when a phase runs longer than this multiple of its baseline
});

/** A phase's section: a zod object whose every field has a default. */
// deno-lint-ignore no-explicit-any
export type SectionSchema = z.ZodObject<any>;

/** The whole config's schema for a set of registered phases (their sections under `phases`). */
export function schemaFor(phases: readonly PhaseConfigSource[]) {
  return z.strictObject({
    run: RunSection.prefault({}),
    model: ModelSection.prefault({}),
    training: TrainingSection.prefault({}),
    phases: z.strictObject(Object.fromEntries(phases.map((p) => [String(p.id), p.section.prefault({})]))).prefault({}),
    compression: CompressionSection.prefault({}),
    pipeline: PipelineSection.prefault({}),
  });
}

/** The resolved config: every core section typed; `phases.<id>` are read through each phase's own section schema. */
export type PipelineConfig = Omit<z.infer<ReturnType<typeof schemaFor>>, "phases"> & {
  phases: Record<string, Record<string, unknown>>;
};

/** The `small` preset with no phase registered: the defaults of every core section. */
export const DEFAULT_CONFIG: PipelineConfig = schemaFor([]).parse({});

/** A deep-partial override of the config. */
export type ConfigPatch = { [k: string]: unknown };

/** Preset overrides on top of the defaults (`small` is the defaults themselves). */
const PRESET_PATCHES: Record<Preset, ConfigPatch> = {
  tiny: {
    run: { preset: "tiny" },
    model: MODEL_PRESET_PATCHES.tiny,
    // max_steps: the longest run of a tiny phase (phase 3's grokking); it only matters to phases whose steps are 0.
    training: { batch_size: 16, max_steps: 200, warmup_steps: 5, eval_every: 20, save_every: 20, log_every: 5 },
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

// ---------------------------------------------------------------------------------------------
// Errors in the config's own words

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

/** `a.b[0].c` for a zod issue path. */
function dotted(path: readonly PropertyKey[]): string {
  return path.reduce<string>((s, p) => typeof p === "number" ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p), "");
}

/** The value at `path` in `data` (undefined where it is missing). */
function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>((v, p) => (v as Record<PropertyKey, unknown> | undefined)?.[p], data);
}

/** The object schema at `path` in `schema` (through defaults), for the keys it accepts. */
function objectAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodObject | undefined {
  let node: z.ZodType | undefined = unwrap(schema);
  for (const p of path) {
    node = node instanceof z.ZodObject ? unwrap(node.shape[String(p)]) : undefined;
  }
  return node instanceof z.ZodObject ? node : undefined;
}

/** The schema under `.default()` / `.prefault()` / `.optional()`. */
function unwrap(s: z.ZodType | undefined): z.ZodType | undefined {
  while (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
  return s;
}

/** The first issue of a failed parse as a ConfigError naming the key, the value and what is accepted. */
function issueError(issue: z.core.$ZodIssue, data: unknown, schema: z.ZodType): ConfigError {
  const key = dotted(issue.path);
  const v = valueAt(data, issue.path);
  switch (issue.code) {
    case "unrecognized_keys": {
      const at = key ? `${key}.${issue.keys[0]}` : issue.keys[0];
      const known = Object.keys(objectAt(schema, issue.path)?.shape ?? {});
      return new ConfigError(at, `unknown key; accepted keys here: ${known.length ? known.join(", ") : "(none)"}`);
    }
    case "invalid_type":
      if (issue.expected === "int") return new ConfigError(key, `expected an integer, got ${describe(v)}`);
      if (typeof v === "number" && !Number.isFinite(v)) return new ConfigError(key, `expected a finite number, got ${v}`);
      return new ConfigError(
        key,
        `expected ${/^[aeiou]/.test(issue.expected) ? "an" : "a"} ${issue.expected}, got ${kind(v)} ${describe(v)}`,
      );
    case "invalid_value":
      return new ConfigError(key, `${describe(v)} is not accepted; expected one of ${issue.values.join(", ")}`);
    case "too_small":
      return new ConfigError(key, `expected ${issue.inclusive ? ">=" : ">"} ${issue.minimum}, got ${describe(v)}`);
    case "too_big":
      return new ConfigError(key, `expected ${issue.inclusive ? "<=" : "<"} ${issue.maximum}, got ${describe(v)}`);
    default:
      return new ConfigError(key || "(root)", issue.message);
  }
}

/** Parses `data` with `schema`, throwing the first problem as a ConfigError (prefixed with `source` when given). */
function parseChecked<S extends z.ZodType>(schema: S, data: unknown, source?: string): z.infer<S> {
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const e = issueError(r.error.issues[0], data, schema);
  throw source ? new ConfigError(`${source}: ${e.key}`, e.message.replace(/^config: [^:]+: /, "")) : e;
}

/** Deep copy of a JSON-like value. */
export function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Merges `patch` into `base` (in place): objects key by key, anything else replaced. */
function mergeInto(base: Record<string, unknown>, patch: unknown, path = ""): void {
  if (!isObject(patch)) throw new ConfigError(path || "(root)", `expected an object, got ${kind(patch)}`);
  for (const [k, v] of Object.entries(patch)) {
    if (isObject(v) && (isObject(base[k]) || base[k] === undefined)) {
      if (base[k] === undefined) base[k] = {};
      mergeInto(base[k] as Record<string, unknown>, v, path ? `${path}.${k}` : k);
    } else base[k] = clone(v);
  }
}

/** Cross-field checks a single key's schema cannot express. */
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
 * Parses one `--set key.path=value`: the value is read as the type the key has in the schema
 * (number, boolean, string or one of an enum's strings; JSON for arrays and objects).
 */
export function parseSet(assignment: string, schema: z.ZodType): ConfigPatch {
  const eq = assignment.indexOf("=");
  if (eq <= 0) throw new ConfigError(assignment, "--set expects key.path=value");
  const key = assignment.slice(0, eq).trim();
  const raw = assignment.slice(eq + 1).trim();
  const parts = key.split(".");
  let node: z.ZodType | undefined = unwrap(schema);
  for (let i = 0; i < parts.length; i++) {
    const obj = node instanceof z.ZodObject ? node : undefined;
    if (!obj || !(parts[i] in obj.shape)) {
      const known = obj ? Object.keys(obj.shape) : [];
      throw new ConfigError(
        parts.slice(0, i + 1).join("."),
        `unknown key; accepted keys here: ${known.length ? known.join(", ") : "(none)"}`,
      );
    }
    node = unwrap(obj.shape[parts[i]]);
  }
  let value: unknown;
  if (node instanceof z.ZodNumber) {
    value = Number(raw);
    if (raw === "" || Number.isNaN(value)) throw new ConfigError(key, `expected a number, got '${raw}'`);
  } else if (node instanceof z.ZodBoolean) {
    if (raw !== "true" && raw !== "false") throw new ConfigError(key, `expected true or false, got '${raw}'`);
    value = raw === "true";
  } else if (node instanceof z.ZodString || node instanceof z.ZodEnum) {
    value = raw;
  } else {
    try {
      value = JSON.parse(raw);
    } catch {
      throw new ConfigError(key, `expected JSON (${node instanceof z.ZodArray ? "array" : "object"}), got '${raw}'`);
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

// ---------------------------------------------------------------------------------------------
// Resolution

/** Phase-contributed config: the section schema and per-preset overrides for `phases.<id>`. */
export interface PhaseConfigSource {
  id: number;
  /** The section: type, defaults and validation in one zod object. */
  section: SectionSchema;
  presets?: Partial<Record<Preset, Record<string, unknown>>>;
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

/** Builds, checks and returns the fully resolved config; each layer is checked as it is applied, so an error names its source. */
export function resolveConfig(opts: ResolveOptions = {}): PipelineConfig {
  const preset = opts.preset ?? "small";
  if (!PRESETS.includes(preset)) throw new ConfigError("--preset", `'${preset}' is not a preset; expected one of ${PRESETS.join(", ")}`);
  const phases = opts.phases ?? [];
  const schema = schemaFor(phases);
  const raw: Record<string, unknown> = {};
  mergeInto(raw, PRESET_PATCHES[preset]);
  for (const p of phases) {
    const patch = p.presets?.[preset];
    if (patch) mergeInto(raw, { phases: { [String(p.id)]: patch } });
  }
  parseChecked(schema, raw, `preset ${preset}`);
  if (opts.file) {
    if (!isObject(opts.file.data)) throw new ConfigError(opts.file.path, `expected an object, got ${kind(opts.file.data)}`);
    mergeInto(raw, opts.file.data);
    parseChecked(schema, raw, opts.file.path);
  }
  for (const s of opts.sets ?? []) mergeInto(raw, parseSet(s, schema));
  const cfg: PipelineConfig = parseChecked(schema, raw);
  checkConsistency(cfg);
  return cfg;
}

/**
 * Re-checks a config read back from a run directory against the current schema (a run
 * made by another version may not fit).
 */
export function checkResolved(data: unknown, phases: readonly PhaseConfigSource[], source: string): PipelineConfig {
  return parseChecked(schemaFor(phases), data, source);
}

/**
 * Phase `id`'s section of a resolved config (`ctx.phaseConfig`) read through its schema: typed,
 * with defaults for keys a stored config lacks; a bad value is a ConfigError naming `phases.<id>.<key>`.
 */
export function sectionOf<S extends SectionSchema>(section: S, data: Record<string, unknown>, id: number): z.infer<S> {
  try {
    return parseChecked(section, data);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`phases.${id}.${e.key}`, e.message.replace(/^config: [^:]+: /, ""));
    throw e;
  }
}
