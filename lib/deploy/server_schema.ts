/**
 * What the inference server accepts, and the errors it answers with. Bodies are read with a
 * size limit (413), parsed as JSON (400 when not), then checked against zod schemas; the first
 * problem becomes the message, naming its field (`prompt`, `train[0].input`, ...).
 *
 * Status codes: 400 when the body does not have the documented shape (invalid JSON, not an
 * object, a missing field, a wrong type, an unknown field (except in ARC tasks, which ignore
 * fields they do not read), a value outside its documented range); 422 when it has the shape
 * but cannot be served (max_tokens above the server's limit, prompt + max_tokens beyond the
 * model's context, an ARC grid that is ragged, empty, over 30 per side or has colours outside
 * the integers 0..9); 413 for a body over the size limit.
 * Error bodies follow OpenAI's: `{ error: { message, type, param, code } }`.
 */
import { z } from "zod";
import type { Grid } from "../../datasets/arc/types.ts";

/** An error with its HTTP status, the field it concerns and a short code. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
}

/** The JSON error response of an HttpError. */
export function errorResponse(e: HttpError, headers: Record<string, string> = {}): Response {
  const type = e.status >= 500 ? "server_error" : "invalid_request_error";
  return Response.json({ error: { message: e.message, type, param: e.param, code: e.code } }, { status: e.status, headers });
}

/** Most prompts in one completion request. */
export const MAX_PROMPTS = 64;
/** Most stop strings (as OpenAI). */
export const MAX_STOPS = 4;
/** Most test inputs in one ARC request. */
export const MAX_ARC_TESTS = 8;
/** Most demonstration pairs in one ARC request. */
export const MAX_ARC_TRAIN = 16;
/** Largest ARC grid side. */
export const MAX_GRID_SIDE = 30;

/** Reads a request body as JSON, at most `maxBytes` bytes; the parsed value must be an object. */
export async function readJson(req: Request, maxBytes: number): Promise<Record<string, unknown>> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) {
    throw new HttpError(413, `request body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`, null, "body_too_large");
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    for await (const chunk of req.body) {
      size += chunk.length;
      if (size > maxBytes) throw new HttpError(413, `request body exceeds the limit of ${maxBytes} bytes`, null, "body_too_large");
      chunks.push(chunk);
    }
  }
  const bytes = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  const text = new TextDecoder().decode(bytes);
  if (!text.trim()) throw new HttpError(400, "request body is empty; expected a JSON object", null, "invalid_json");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `request body is not valid JSON: ${(e as Error).message}`, null, "invalid_json");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, `request body: expected a JSON object, got ${kindOf(value)}`, null, "invalid_type");
  }
  return value as Record<string, unknown>;
}

/** A JSON value for messages: numbers, booleans and null as written; otherwise its kind. */
function kindOf(v: unknown): string {
  if (v === null || typeof v === "number" || typeof v === "boolean") return String(v);
  return Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : `a ${typeof v}`;
}

/** `a.b[0].c` from a zod path. */
function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i ? `.${String(p)}` : String(p))).join("");
}

function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let v = body;
  for (const p of path) v = v && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  return v;
}

/** Checks `body` against `schema`; the first problem throws a 400 naming its field. */
export function parseBody<S extends z.ZodType>(schema: S, body: Record<string, unknown>): z.infer<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = pathText(issue.path);
  if (issue.code === "unrecognized_keys") {
    const known = Object.keys((schemaAt(schema, issue.path) as z.ZodObject | undefined)?.shape ?? {});
    const field = issue.keys.map((k) => (where ? `${where}.${k}` : k));
    const list = field.map((f) => `'${f}'`).join(", ");
    throw new HttpError(
      400,
      `unknown field${field.length > 1 ? "s" : ""} ${list}; accepted: ${known.join(", ")}`,
      field[0],
      "unknown_field",
    );
  }
  // zod's own messages start "Invalid input"; the schemas below mostly give their own ("expected ...").
  const own = !/^Invalid input/.test(issue.message);
  const expected = own ? issue.message : issue.code === "invalid_type" ? `expected ${issue.expected}` : "";
  const v = valueAt(body, issue.path);
  if (v === undefined) {
    throw new HttpError(400, `missing required field '${where}'${expected ? ` (${expected})` : ""}`, where, "missing_field");
  }
  if (issue.code === "invalid_type") throw new HttpError(400, `${where}: ${expected}, got ${kindOf(v)}`, where, "invalid_type");
  const message = issue.message.replace(/^Invalid input: /, "");
  throw new HttpError(400, `${where || "request body"}: ${message}`, where || null, "invalid_value");
}

/** The object schema at `path` inside `schema` (for listing accepted keys), when it is one. */
function schemaAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  const bare = (t: z.ZodType | undefined) => {
    while (t instanceof z.ZodOptional || t instanceof z.ZodNullable || t instanceof z.ZodDefault) t = t.unwrap() as z.ZodType;
    return t;
  };
  let s = bare(schema);
  for (const p of path) {
    if (s instanceof z.ZodArray && typeof p === "number") s = bare(s.element as z.ZodType);
    else if (s instanceof z.ZodObject) s = bare((s.shape as Record<string, z.ZodType>)[String(p)]);
    else return undefined;
  }
  return s;
}

const optionalModel = z.string({ error: "expected a string (the served model's id)" }).optional();
const maxTokens = z.int({ error: "expected an integer >= 1" }).min(1, { error: "expected an integer >= 1" }).optional();

const PROMPT_ERROR = `expected a string or a non-empty array of at most ${MAX_PROMPTS} strings`;
const STOP_ERROR = `expected a non-empty string or an array of at most ${MAX_STOPS} non-empty strings`;

/** `POST /v1/completions`: OpenAI's fields that this server implements (others are unknown fields). */
export const CompletionSchema = z.strictObject({
  model: optionalModel,
  prompt: z.union([z.string(), z.array(z.string()).min(1, { error: PROMPT_ERROR }).max(MAX_PROMPTS, { error: PROMPT_ERROR })], {
    error: PROMPT_ERROR,
  }),
  max_tokens: maxTokens,
  temperature: z.number({ error: "expected a number from 0 to 2" }).min(0, { error: "expected a number from 0 to 2" }).max(2, {
    error: "expected a number from 0 to 2",
  }).optional(),
  seed: z.int({ error: "expected an integer" }).optional(),
  stop: z.union([
    z.string().min(1, { error: STOP_ERROR }),
    z.array(z.string().min(1, { error: STOP_ERROR })).max(MAX_STOPS, { error: STOP_ERROR }),
  ], {
    error: STOP_ERROR,
  }).nullable().optional(),
  n: z.literal(1, { error: "only n = 1 is supported" }).optional(),
  /** Answer as server-sent events (OpenAI's streaming format) rather than one JSON body. Default false. */
  stream: z.boolean({ error: "expected true or false" }).default(false),
  /** With stream: `include_usage` adds a last chunk with `choices: []` and the usage. Only with stream = true. */
  stream_options: z.strictObject({ include_usage: z.boolean({ error: "expected true or false" }).optional() }, {
    error: "expected an object {include_usage?: boolean}",
  }).nullable().optional(),
  top_p: z.literal(1, { error: "only top_p = 1 is supported" }).optional(),
  user: z.string().optional(),
});

/** A grid's shape for the schema: rows of numbers. Its content rules are checked by `gridProblem` (422). */
const GridShape = z.array(
  z.array(z.number({ error: "expected a number (a colour 0..9)" }), { error: "expected a row (an array of colours 0..9)" }),
  {
    error: "expected a grid (an array of rows of colours 0..9)",
  },
);

/**
 * `POST /v1/tasks/arc`: an ARC task as in the ARC-AGI JSON files (test outputs optional; when given, each prediction says if it
 * matches), and `constrained`. Reads `model`, `train[].input`, `train[].output`, `test[].input`, `test[].output` and `constrained`;
 * other fields, at the top (a task's `name` or `id`, as some published files carry) or inside a pair, are ignored, as
 * datasets/arc/loader.ts ignores them. The fields it reads are checked as strictly as ever.
 */
export const ArcSchema = z.object({
  model: optionalModel,
  train: z.array(z.object({ input: GridShape, output: GridShape }), { error: "expected an array of {input, output} pairs" })
    .min(1, { error: "expected at least one demonstration pair" }).max(MAX_ARC_TRAIN, { error: `expected at most ${MAX_ARC_TRAIN} pairs` }),
  test: z.array(z.object({ input: GridShape, output: GridShape.optional() }), { error: "expected an array of {input} objects" })
    .min(1, { error: "expected at least one test input" }).max(MAX_ARC_TESTS, { error: `expected at most ${MAX_ARC_TESTS} test inputs` }),
  /** Decode within the grid grammar (phase 2's default) rather than only check the output against it. Default true. */
  constrained: z.boolean({ error: "expected true or false" }).optional(),
});
export type ArcBody = z.infer<typeof ArcSchema>;

/** `POST /v1/tasks/math`: a word problem. */
export const MathSchema = z.strictObject({
  model: optionalModel,
  question: z.string({ error: "expected a string (the word problem)" }).min(1, { error: "expected a non-empty string" }),
  max_tokens: maxTokens,
});

/** What is wrong with a grid (ragged, empty, over 30 per side, colours not integers 0..9), or null. */
export function gridProblem(g: readonly (readonly number[])[]): string | null {
  if (g.length === 0) return "has no rows; expected 1 to 30";
  if (g.length > MAX_GRID_SIDE) return `has ${g.length} rows; expected at most ${MAX_GRID_SIDE}`;
  const w = g[0].length;
  if (w === 0) return "row 0 is empty; expected 1 to 30 cells";
  if (w > MAX_GRID_SIDE) return `row 0 has ${w} cells; expected at most ${MAX_GRID_SIDE}`;
  for (let r = 0; r < g.length; r++) {
    if (g[r].length !== w) return `row ${r} has ${g[r].length} cells but row 0 has ${w} (rows must be the same length)`;
    for (let c = 0; c < w; c++) {
      const v = g[r][c];
      if (!Number.isInteger(v) || v < 0 || v > 9) return `cell [${r}][${c}] is ${v}; colours are integers 0..9`;
    }
  }
  return null;
}

/** Checks every grid of an ARC body; the first invalid one throws a 422 naming it. */
export function checkArcGrids(body: ArcBody): void {
  const grids: [string, Grid | undefined][] = [
    ...body.train.flatMap((p, i): [string, Grid][] => [[`train[${i}].input`, p.input], [`train[${i}].output`, p.output]]),
    ...body.test.flatMap((p, i): [string, Grid | undefined][] => [[`test[${i}].input`, p.input], [`test[${i}].output`, p.output]]),
  ];
  for (const [where, g] of grids) {
    const problem = g && gridProblem(g);
    if (problem) throw new HttpError(422, `${where}: invalid grid: ${problem}`, where, "invalid_grid");
  }
}
