/**
 * ListOps (Nangia & Bowman, 2018): nested list operations over the digits 0-9, such as
 * `[MAX 2 9 [MIN 4 7 ] 0 ]` = 9. The value is always a single digit.
 *
 * Operations: MAX, MIN, MED (median; for an even count, the floor of the mean of the two
 * middle values, as `int(np.median(...))` in the original generator) and SM (sum mod 10).
 *
 * Text form: tokens separated by single spaces, an operation opening as `[MAX` and closing
 * as `]`, so a word tokenizer (split on spaces) and a character tokenizer both work.
 */
import { deriveSeed, Rng } from "../../lib/util/rng.ts";
import type { TextExample } from "./types.ts";

/** The operations. */
export const LISTOPS_OPS = ["MAX", "MIN", "MED", "SM"] as const;
export type ListOpsOp = typeof LISTOPS_OPS[number];

/** An expression: a digit, or an operation applied to a list of expressions. */
export type ListOpsExpr = number | ListOpsNode;
export interface ListOpsNode {
  op: ListOpsOp;
  args: ListOpsExpr[];
}

export interface ListOpsConfig {
  /** Fewest nesting levels (a digit has depth 0, `[MAX 1 2 ]` depth 1); each item draws its depth
   * uniformly in [minDepth, maxDepth]. Default 1. */
  minDepth: number;
  /** Most nesting levels, at most 20. Default 4. */
  maxDepth: number;
  /** Fewest arguments of an operation, at least 1. Default 2. */
  minArgs: number;
  /** Most arguments of an operation, at most 20. Default 5. */
  maxArgs: number;
  /** Chance that an argument (other than the one carrying the depth) is a plain digit, in [0, 1]. Default 0.5. */
  leafProb: number;
  /** Longest expression in tokens (`[OP`, digit, `]`); longer draws are redrawn. Default 100. */
  maxTokens: number;
  /** The operations to draw from. Default all four. */
  ops: readonly ListOpsOp[];
  seed: number;
}

export const DEFAULT_LISTOPS: ListOpsConfig = {
  minDepth: 1,
  maxDepth: 4,
  minArgs: 2,
  maxArgs: 5,
  leafProb: 0.5,
  maxTokens: 100,
  ops: LISTOPS_OPS,
  seed: 0,
};

/** Redraws allowed per item before an unreachable `maxTokens` is reported. */
const MAX_REDRAWS = 1000;

/** A generated expression with its value. */
export interface ListOpsItem {
  expr: ListOpsExpr;
  /** The text form. */
  text: string;
  value: number;
  tokens: number;
  /** Nesting depth. */
  difficulty: number;
}

/** Fills in defaults and validates; throws naming the bad field. */
export function listOpsConfig(partial: Partial<ListOpsConfig> = {}): ListOpsConfig {
  const cfg = { ...DEFAULT_LISTOPS, ...partial };
  validateListOpsConfig(cfg);
  return cfg;
}

/** Throws an error naming the field if `cfg` is not a usable configuration. */
export function validateListOpsConfig(cfg: ListOpsConfig): void {
  const int = (field: keyof ListOpsConfig, lo: number, hi: number) => {
    const v = cfg[field] as number;
    if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`listops.${field} = ${v}: expected an integer in [${lo}, ${hi}]`);
  };
  int("minDepth", 1, 20);
  int("maxDepth", cfg.minDepth, 20);
  int("minArgs", 1, 20);
  int("maxArgs", cfg.minArgs, 20);
  if (!(cfg.leafProb >= 0 && cfg.leafProb <= 1)) throw new Error(`listops.leafProb = ${cfg.leafProb}: expected a number in [0, 1]`);
  const least = 1 + cfg.maxDepth * (cfg.minArgs + 1);
  if (!Number.isInteger(cfg.maxTokens) || cfg.maxTokens < least) {
    throw new Error(`listops.maxTokens = ${cfg.maxTokens}: expected an integer >= ${least} (the shortest expression of depth maxDepth)`);
  }
  if (!Array.isArray(cfg.ops) || cfg.ops.length === 0 || cfg.ops.some((op) => !LISTOPS_OPS.includes(op))) {
    throw new Error(`listops.ops = ${JSON.stringify(cfg.ops)}: expected a non-empty list of ${LISTOPS_OPS.join(", ")}`);
  }
  if (!Number.isInteger(cfg.seed)) throw new Error(`listops.seed = ${cfg.seed}: expected an integer`);
}

/** One operation applied to a list of digits. */
export function applyListOp(op: ListOpsOp, values: readonly number[]): number {
  if (values.length === 0) throw new Error(`listops: ${op} of an empty list`);
  switch (op) {
    case "MAX":
      return Math.max(...values);
    case "MIN":
      return Math.min(...values);
    case "SM":
      return values.reduce((a, b) => a + b, 0) % 10;
    case "MED": {
      const s = [...values].sort((a, b) => a - b), m = s.length >> 1;
      return s.length % 2 === 1 ? s[m] : Math.floor((s[m - 1] + s[m]) / 2);
    }
  }
}

/** Value of an expression tree, recursively. */
export function evaluateListOps(expr: ListOpsExpr): number {
  return typeof expr === "number" ? expr : applyListOp(expr.op, expr.args.map(evaluateListOps));
}

/** Nesting depth (0 for a digit). */
export function listOpsDepth(expr: ListOpsExpr): number {
  return typeof expr === "number" ? 0 : 1 + Math.max(...expr.args.map(listOpsDepth));
}

/** Tokens in the text form: one per digit, two per operation. */
export function listOpsTokens(expr: ListOpsExpr): number {
  return typeof expr === "number" ? 1 : 2 + expr.args.reduce((n: number, a) => n + listOpsTokens(a), 0);
}

/** The text form, e.g. `[MAX 2 9 [MIN 4 7 ] 0 ]`. */
export function formatListOps(expr: ListOpsExpr): string {
  return typeof expr === "number" ? String(expr) : `[${expr.op} ${expr.args.map(formatListOps).join(" ")} ]`;
}

/** Splits the text form into tokens and checks each one. */
function tokenize(text: string): string[] {
  const tokens = text.trim().split(/\s+/).filter((t) => t.length > 0);
  for (const t of tokens) {
    if (!/^[0-9]$/.test(t) && t !== "]" && !(t[0] === "[" && LISTOPS_OPS.includes(t.slice(1) as ListOpsOp))) {
      throw new Error(
        `listops text: token ${JSON.stringify(t)}: expected a digit, ']' or one of ${LISTOPS_OPS.map((o) => "[" + o).join(", ")}`,
      );
    }
  }
  if (tokens.length === 0) throw new Error("listops text: empty");
  return tokens;
}

/** Reads the text form into a tree; throws on malformed text. */
export function parseListOps(text: string): ListOpsExpr {
  const tokens = tokenize(text);
  let pos = 0;
  const parse = (): ListOpsExpr => {
    const t = tokens[pos++];
    if (t === undefined) throw new Error("listops text: ends inside an operation");
    if (t === "]") throw new Error(`listops text: unexpected ']' at token ${pos - 1}`);
    if (t[0] !== "[") return Number(t);
    const node: ListOpsNode = { op: t.slice(1) as ListOpsOp, args: [] };
    while (tokens[pos] !== "]") node.args.push(parse());
    pos++;
    if (node.args.length === 0) throw new Error(`listops text: ${t} with no arguments`);
    return node;
  };
  const expr = parse();
  if (pos !== tokens.length) throw new Error(`listops text: ${tokens.length - pos} tokens after the end of the expression`);
  return expr;
}

/**
 * Value of the text form computed directly from the tokens by a stack machine (no tree):
 * an operation pushes a frame, a digit joins the top frame, `]` folds the frame into its parent.
 */
export function evaluateListOpsText(text: string): number {
  const frames: { op: ListOpsOp; values: number[] }[] = [];
  let result: number | null = null;
  for (const t of tokenize(text)) {
    if (result !== null) throw new Error("listops text: tokens after the end of the expression");
    let value: number | null = null;
    if (t[0] === "[") frames.push({ op: t.slice(1) as ListOpsOp, values: [] });
    else if (t === "]") {
      const frame = frames.pop();
      if (!frame) throw new Error("listops text: ']' without an operation");
      value = applyListOp(frame.op, frame.values);
    } else value = Number(t);
    if (value === null) continue;
    if (frames.length > 0) frames[frames.length - 1].values.push(value);
    else result = value;
  }
  if (result === null) throw new Error("listops text: ends inside an operation");
  return result;
}

/**
 * A random expression of exactly depth `depth` (one argument of each operation carries the
 * depth), or null as soon as it grows past `cfg.maxTokens` tokens.
 */
export function randomListOps(cfg: ListOpsConfig, depth: number, rng: Rng): ListOpsExpr | null {
  let left = cfg.maxTokens;
  const draw = (d: number): ListOpsExpr | null => {
    if (--left < 0) return null;
    if (d === 0) return rng.int(10);
    left--; // the closing bracket
    const k = cfg.minArgs + rng.int(cfg.maxArgs - cfg.minArgs + 1), deep = rng.int(k);
    const node: ListOpsNode = { op: cfg.ops[rng.int(cfg.ops.length)], args: [] };
    for (let i = 0; i < k; i++) {
      const arg = i === deep ? draw(d - 1) : rng.next() < cfg.leafProb ? draw(0) : draw(rng.int(d));
      if (arg === null) return null;
      node.args.push(arg);
    }
    return node;
  };
  return draw(depth);
}

/** Item `index` of the dataset described by `cfg`; a pure function of (cfg, index). */
export function generateListOps(cfg: ListOpsConfig, index: number): ListOpsItem {
  validateListOpsConfig(cfg);
  const rng = new Rng(deriveSeed(cfg.seed, `listops-${index}`));
  const depth = cfg.minDepth + rng.int(cfg.maxDepth - cfg.minDepth + 1);
  for (let attempt = 0; attempt < MAX_REDRAWS; attempt++) {
    const expr = randomListOps(cfg, depth, rng);
    if (expr !== null) {
      return { expr, text: formatListOps(expr), value: evaluateListOps(expr), tokens: listOpsTokens(expr), difficulty: depth };
    }
  }
  throw new Error(
    `listops.maxTokens = ${cfg.maxTokens}: item ${index} (depth ${depth}) stayed longer in ${MAX_REDRAWS} draws; raise it or lower maxArgs`,
  );
}

/** Items offset..offset+count-1 of the dataset. */
export function listOpsItems(cfg: ListOpsConfig, count: number, offset = 0): ListOpsItem[] {
  return Array.from({ length: count }, (_, i) => generateListOps(cfg, offset + i));
}

/** Prompt: the expression's text form; answer: its value, one digit. */
export function listOpsToText(item: ListOpsItem): TextExample {
  return { prompt: item.text, answer: String(item.value), difficulty: item.difficulty };
}
