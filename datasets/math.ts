/**
 * Math text reasoning (phase 4): generated multi-step arithmetic word problems with
 * GSM8K-style rationales, a loader for the GSM8K JSONL files, and answer extraction with
 * exact-match scoring.
 *
 * A generated problem is a short story about one running quantity (money, toys, stickers,
 * an age, a distance, a price) changed by a chain of events. Each event costs one or two
 * steps; a step is one rationale line with a calculator annotation `<<a op b=c>>`, as in
 * GSM8K (Cobbe et al., 2021). The solution ends with `#### <answer>`. All numbers are
 * positive integers: divisions and percentages are only drawn where they come out exact.
 */
import { deriveSeed, Rng } from "../lib/util/rng.ts";

// ---------------------------------------------------------------------------------------
// Generated word problems
// ---------------------------------------------------------------------------------------

/** The story templates. */
export const MATH_TEMPLATES = ["shopping", "rates", "sharing", "ages", "distances", "percentages"] as const;
export type MathTemplate = typeof MATH_TEMPLATES[number];

/** Most steps a problem may have (the ages template needs one person per step). */
export const MATH_MAX_STEPS = 12;

export interface MathConfig {
  /** Problems to generate (1000). */
  count: number;
  /** Fewest steps (annotated rationale lines) per problem (1). */
  minSteps: number;
  /** Most steps, at most MATH_MAX_STEPS (12); each problem draws its count uniformly in [minSteps, maxSteps]. */
  maxSteps: number;
  /** Templates to draw from, uniformly (all of MATH_TEMPLATES). */
  templates: readonly MathTemplate[];
  /** Largest number allowed anywhere in a problem, >= 100 (10000); ages stay <= 100 regardless. */
  maxValue: number;
  seed: number;
}

export const DEFAULT_MATH: MathConfig = { count: 1000, minSteps: 1, maxSteps: 8, templates: MATH_TEMPLATES, maxValue: 10000, seed: 0 };

/** One step of a solution: `expr` (integers joined by + - * /, left to right with the usual precedence) equals `value`. */
export interface MathStep {
  expr: string;
  value: number;
}

export interface MathProblem {
  question: string;
  /** GSM8K-style solution: one line per step with a `<<expr=value>>` annotation, then `#### <answer>`. */
  rationale: string;
  answer: number;
  /** The whole computation as one parenthesized expression over the question's numbers; evaluates to `answer`. */
  expression: string;
  /** The steps in rationale order; the last one's value is the answer. */
  steps: MathStep[];
  template: MathTemplate;
  seed: number;
}

/** How the running quantity can change; the engine picks the numbers, a template the words. */
type EventKind = "add" | "sub" | "mul" | "div" | "addProduct" | "subProduct" | "pctOf" | "pctDown" | "pctUp";

/** An event with its numbers chosen: its steps, the new value, and how it extends the expression. */
interface Event {
  kind: EventKind;
  nums: number[];
  steps: MathStep[];
  value: number;
  wrap: (expr: string) => string;
}

const PERCENTS = [5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 80, 90];

/** Uniform integer in [lo, hi]. */
function between(rng: Rng, lo: number, hi: number): number {
  return lo + rng.int(hi - lo + 1);
}

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

function range(lo: number, hi: number): number[] {
  return Array.from({ length: Math.max(0, hi - lo + 1) }, (_, i) => lo + i);
}

function step(expr: string, value: number): MathStep {
  return { expr, value };
}

/** Draws the numbers of event `kind` applied to value `v`, or null when it cannot stay integral, positive and <= max. */
function planEvent(kind: EventKind, v: number, max: number, rng: Rng): Event | null {
  switch (kind) {
    case "add": {
      const hi = Math.min(Math.max(10, Math.floor(v / 2)), max - v);
      if (hi < 2) return null;
      const k = between(rng, 2, hi);
      return { kind, nums: [k], steps: [step(`${v}+${k}`, v + k)], value: v + k, wrap: (e) => `(${e}+${k})` };
    }
    case "sub": {
      if (v < 2) return null;
      const k = between(rng, 1, Math.max(1, Math.floor(v * 0.6)));
      return { kind, nums: [k], steps: [step(`${v}-${k}`, v - k)], value: v - k, wrap: (e) => `(${e}-${k})` };
    }
    case "mul": {
      const ks = range(2, 5).filter((k) => v * k <= max);
      if (ks.length === 0) return null;
      const k = pick(rng, ks);
      return { kind, nums: [k], steps: [step(`${v}*${k}`, v * k)], value: v * k, wrap: (e) => `(${e}*${k})` };
    }
    case "div": {
      const ks = range(2, 10).filter((k) => v % k === 0 && v / k >= 2);
      if (ks.length === 0) return null;
      const k = pick(rng, ks);
      return { kind, nums: [k], steps: [step(`${v}/${k}`, v / k)], value: v / k, wrap: (e) => `(${e}/${k})` };
    }
    case "addProduct": {
      const a = between(rng, 2, 9), b = between(rng, 2, 20), p = a * b;
      if (v + p > max) return null;
      const steps = [step(`${a}*${b}`, p), step(`${v}+${p}`, v + p)];
      return { kind, nums: [a, b], steps, value: v + p, wrap: (e) => `(${e}+${a}*${b})` };
    }
    case "subProduct": {
      const as = range(2, 9).filter((a) => Math.floor((v - 1) / a) >= 2);
      if (as.length === 0) return null;
      const a = pick(rng, as), b = between(rng, 2, Math.min(20, Math.floor((v - 1) / a))), p = a * b;
      const steps = [step(`${a}*${b}`, p), step(`${v}-${p}`, v - p)];
      return { kind, nums: [a, b], steps, value: v - p, wrap: (e) => `(${e}-${a}*${b})` };
    }
    case "pctOf":
    case "pctDown":
    case "pctUp": {
      const ps = PERCENTS.filter((p) => (v * p) % 100 === 0 && (kind !== "pctUp" || v + (v * p) / 100 <= max));
      if (ps.length === 0) return null;
      const p = pick(rng, ps), d = (v * p) / 100;
      const part = step(`${v}*${p}/100`, d);
      if (kind === "pctOf") return { kind, nums: [p], steps: [part], value: d, wrap: (e) => `(${e}*${p}/100)` };
      if (kind === "pctDown") {
        return { kind, nums: [p], steps: [part, step(`${v}-${d}`, v - d)], value: v - d, wrap: (e) => `(${e}*(100-${p})/100)` };
      }
      return { kind, nums: [p], steps: [part, step(`${v}+${d}`, v + d)], value: v + d, wrap: (e) => `(${e}*(100+${p})/100)` };
    }
  }
}

interface Person {
  name: string;
  he: string;
  him: string;
  his: string;
  self: string;
}

const SHE = { he: "she", him: "her", his: "her", self: "herself" };
const HE = { he: "he", him: "him", his: "his", self: "himself" };
const PEOPLE: Person[] = [
  ..."Mia Ava Emma Lena Zoe Nora Ruth Ines Maya Priya Aisha Chloe Sofia Hana Olga".split(" ").map((name) => ({ name, ...SHE })),
  ..."Liam Noah Omar Ravi Kenji Tom Leo Ivan Diego Sam Eli Hugo Malik Finn Jonas".split(" ").map((name) => ({ name, ...HE })),
];

/** The people and props of one story, drawn once from the problem's generator. */
interface Story {
  rng: Rng;
  /** The main character. */
  hero: Person;
  /** Everyone else, distinct from the hero and each other, in order of appearance. */
  cast: Person[];
  /** Index of the next unused cast member. */
  next: number;
  /** The person the story talks about last (the ages template moves it along). */
  last: Person;
  /** A countable noun for the quantity (toys, stickers, ...), chosen by the template. */
  things: string;
}

/** A template's words for one event: a question sentence and one rationale line per step. */
interface Said {
  text: string;
  lines: ((calc: string) => string)[];
}

interface Theme {
  /** Range of the opening number. */
  start: [number, number];
  /** Hard cap on every value (ages). */
  cap?: number;
  /** Nouns for `story.things`. */
  things?: string[];
  open: (s: Story, v: number) => string;
  /** Opening as a product of two numbers (one step). */
  openProduct?: (s: Story, a: number, b: number) => Said;
  events: Partial<Record<EventKind, (s: Story, nums: number[]) => Said>>;
  ask: (s: Story) => string;
}

const cap = (s: string) => s[0].toUpperCase() + s.slice(1);
const times = (k: number) => k === 2 ? "twice" : `${k} times`;
const FRACTIONS: Record<number, string> = {
  2: "half",
  3: "a third",
  4: "a quarter",
  5: "a fifth",
  6: "a sixth",
  7: "a seventh",
  8: "an eighth",
  9: "a ninth",
  10: "a tenth",
};
const ITEMS = ["a book", "a lamp", "a scarf", "a board game", "a plant", "a backpack", "a kite", "a teapot"];
const GOODS = ["notebooks", "pens", "apples", "candles", "mugs", "socks"];

/** The next cast member, who becomes `last`. */
function newcomer(s: Story): Person {
  s.last = s.cast[s.next++];
  return s.last;
}

const THEMES: Record<MathTemplate, Theme> = {
  shopping: {
    start: [20, 400],
    open: (s, v) => `${s.hero.name} has $${v}.`,
    openProduct: (s, a, b) => ({
      text: `${s.hero.name} saves $${b} a week for ${a} weeks.`,
      lines: [(c) => `${s.hero.name} saves ${c} dollars.`],
    }),
    events: {
      add: (s, [k]) => ({
        text: `${cap(s.hero.his)} aunt gives ${s.hero.him} $${k}.`,
        lines: [(c) => `After the gift ${s.hero.he} has ${c} dollars.`],
      }),
      sub: (s, [k]) => {
        const item = pick(s.rng, ITEMS);
        return {
          text: `${cap(s.hero.he)} spends $${k} on ${item}.`,
          lines: [(c) => `After buying ${item} ${s.hero.he} has ${c} dollars left.`],
        };
      },
      mul: (s, [k]) => ({
        text: `${cap(s.hero.he)} sells ${s.hero.his} old bike and ends up with ${times(k)} as much money as before.`,
        lines: [(c) => `${cap(s.hero.he)} now has ${c} dollars.`],
      }),
      div: (s, [k]) => ({
        text: `${cap(s.hero.he)} splits ${s.hero.his} money equally into ${k} envelopes and takes one envelope to the mall.`,
        lines: [(c) => `One envelope holds ${c} dollars.`],
      }),
      addProduct: (s, [a, b]) => ({
        text: `${cap(s.hero.he)} babysits for ${a} hours at $${b} an hour.`,
        lines: [(c) => `Babysitting earns ${s.hero.him} ${c} dollars.`, (c) => `${cap(s.hero.he)} then has ${c} dollars.`],
      }),
      subProduct: (s, [a, b]) => {
        const goods = pick(s.rng, GOODS);
        return {
          text: `${cap(s.hero.he)} buys ${a} ${goods} for $${b} each.`,
          lines: [(c) => `The ${goods} cost ${c} dollars.`, (c) => `${cap(s.hero.he)} has ${c} dollars left.`],
        };
      },
      pctDown: (s, [p]) => {
        const item = pick(s.rng, ITEMS);
        return {
          text: `${cap(s.hero.he)} spends ${p}% of ${s.hero.his} money on ${item}.`,
          lines: [(c) => `${cap(item)} costs ${c} dollars.`, (c) => `${cap(s.hero.he)} has ${c} dollars left.`],
        };
      },
      pctUp: (s, [p]) => ({
        text: `${cap(s.hero.his)} bank adds ${p}% interest to ${s.hero.his} money.`,
        lines: [(c) => `The interest is ${c} dollars.`, (c) => `${cap(s.hero.he)} now has ${c} dollars.`],
      }),
    },
    ask: (s) => `How many dollars does ${s.hero.name} have now?`,
  },
  rates: {
    start: [50, 900],
    things: ["toys", "bottles", "bricks", "chairs", "jars"],
    open: (s, v) => `A factory has already made ${v} ${s.things} this month.`,
    openProduct: (s, a, b) => ({
      text: `A machine makes ${b} ${s.things} an hour and runs for ${a} hours.`,
      lines: [(c) => `The machine makes ${c} ${s.things}.`],
    }),
    events: {
      add: (s, [k]) => ({ text: `Workers finish ${k} more ${s.things} by hand.`, lines: [(c) => `That makes ${c} ${s.things}.`] }),
      sub: (s, [k]) => ({ text: `${k} of the ${s.things} are damaged and thrown away.`, lines: [(c) => `That leaves ${c} ${s.things}.`] }),
      mul: (s, [k]) => ({
        text: `A second plant copies the work, so the total becomes ${times(k)} as large.`,
        lines: [(c) => `The total is ${c} ${s.things}.`],
      }),
      div: (s, [k]) => ({
        text: `The ${s.things} are packed equally into ${k} trucks, and the story follows one truck.`,
        lines: [(c) => `One truck carries ${c} ${s.things}.`],
      }),
      addProduct: (s, [a, b]) => ({
        text: `Then ${a} more machines run for an hour, each making ${b} ${s.things}.`,
        lines: [(c) => `The extra machines make ${c} ${s.things}.`, (c) => `In all there are ${c} ${s.things}.`],
      }),
      subProduct: (s, [a, b]) => ({
        text: `${a} shops each buy ${b} of the ${s.things}.`,
        lines: [(c) => `The shops buy ${c} ${s.things}.`, (c) => `That leaves ${c} ${s.things}.`],
      }),
      pctOf: (s, [p]) => ({
        text: `Only ${p}% of the ${s.things} pass inspection; the rest are recycled.`,
        lines: [(c) => `The ones that pass number ${c}.`],
      }),
      pctDown: (s, [p]) => ({
        text: `${p}% of the ${s.things} fail inspection and are removed.`,
        lines: [(c) => `The failures are ${c} ${s.things}.`, (c) => `That leaves ${c} ${s.things}.`],
      }),
      pctUp: (s, [p]) => ({
        text: `Overtime raises the count by ${p}%.`,
        lines: [(c) => `Overtime adds ${c} ${s.things}.`, (c) => `Now there are ${c} ${s.things}.`],
      }),
    },
    ask: (s) => `How many ${s.things} are there at the end?`,
  },
  sharing: {
    start: [10, 200],
    things: ["stickers", "marbles", "cards", "shells", "beads"],
    open: (s, v) => `${s.hero.name} has ${v} ${s.things}.`,
    openProduct: (s, a, b) => ({
      text: `${s.hero.name} buys ${a} packs of ${s.things} with ${b} ${s.things} in each pack.`,
      lines: [(c) => `${s.hero.name} has ${c} ${s.things}.`],
    }),
    events: {
      add: (s, [k]) => ({
        text: `${newcomer(s).name} gives ${s.hero.him} ${k} more ${s.things}.`,
        lines: [(c) => `${cap(s.hero.he)} then has ${c} ${s.things}.`],
      }),
      sub: (s, [k]) => ({
        text: `${cap(s.hero.he)} gives ${k} ${s.things} to ${newcomer(s).name}.`,
        lines: [(c) => `${cap(s.hero.he)} keeps ${c} ${s.things}.`],
      }),
      mul: (s, [k]) => ({
        text: `By trading, ${s.hero.he} ends up with ${times(k)} as many ${s.things} as before.`,
        lines: [(c) => `${cap(s.hero.he)} now has ${c} ${s.things}.`],
      }),
      div: (s, [k]) => ({
        text: `${
          cap(s.hero.he)
        } shares ${s.hero.his} ${s.things} equally among ${k} children, ${s.hero.self} included, and keeps one share.`,
        lines: [(c) => `Each share is ${c} ${s.things}.`],
      }),
      addProduct: (s, [a, b]) => ({
        text: `${cap(s.hero.he)} wins ${a} games and gets ${b} ${s.things} for each win.`,
        lines: [(c) => `${cap(s.hero.he)} wins ${c} ${s.things}.`, (c) => `${cap(s.hero.he)} now has ${c} ${s.things}.`],
      }),
      subProduct: (s, [a, b]) => ({
        text: `${cap(s.hero.he)} gives ${a} classmates ${b} ${s.things} each.`,
        lines: [(c) => `${cap(s.hero.he)} gives away ${c} ${s.things}.`, (c) => `${cap(s.hero.he)} has ${c} ${s.things} left.`],
      }),
      pctDown: (s, [p]) => ({
        text: `${cap(s.hero.he)} gives ${p}% of ${s.hero.his} ${s.things} to ${newcomer(s).name}.`,
        lines: [(c) => `${cap(s.hero.he)} gives away ${c} ${s.things}.`, (c) => `${cap(s.hero.he)} keeps ${c} ${s.things}.`],
      }),
    },
    ask: (s) => `How many ${s.things} does ${s.hero.name} have at the end?`,
  },
  ages: {
    start: [4, 40],
    cap: 100,
    open: (s, v) => `${s.hero.name} is ${v} years old.`,
    events: {
      add: (s, [k]) => {
        const prev = s.last.name, p = newcomer(s).name;
        return { text: `${p} is ${k} years older than ${prev}.`, lines: [(c) => `${p} is ${c} years old.`] };
      },
      sub: (s, [k]) => {
        const prev = s.last.name, p = newcomer(s).name;
        return { text: `${p} is ${k} years younger than ${prev}.`, lines: [(c) => `${p} is ${c} years old.`] };
      },
      mul: (s, [k]) => {
        const prev = s.last.name, p = newcomer(s).name;
        return { text: `${p} is ${times(k)} as old as ${prev}.`, lines: [(c) => `${p} is ${c} years old.`] };
      },
      div: (s, [k]) => {
        const prev = s.last.name, p = newcomer(s).name;
        return { text: `${p} is ${FRACTIONS[k]} as old as ${prev}.`, lines: [(c) => `${p} is ${c} years old.`] };
      },
    },
    ask: (s) => `How old is ${s.last.name}?`,
  },
  distances: {
    start: [20, 300],
    open: (s, v) => `${s.hero.name} plans to cycle ${v} km.`,
    openProduct: (s, a, b) => ({
      text: `${s.hero.name} plans to cycle ${b} km a day for ${a} days.`,
      lines: [(c) => `The plan is ${c} km.`],
    }),
    events: {
      add: (s, [k]) => ({ text: `${cap(s.hero.he)} adds a ${k} km ride to the plan.`, lines: [(c) => `The plan grows to ${c} km.`] }),
      sub: (_s, [k]) => ({ text: `Rain cancels ${k} km of riding.`, lines: [(c) => `That leaves ${c} km.`] }),
      mul: (s, [k]) => ({
        text: `${cap(s.hero.his)} coach asks ${s.hero.him} to ride ${times(k)} that distance instead.`,
        lines: [(c) => `${cap(s.hero.he)} now has to ride ${c} km.`],
      }),
      div: (s, [k]) => ({
        text: `${cap(s.hero.he)} gets sick and manages only ${FRACTIONS[k]} of the plan.`,
        lines: [(c) => `${cap(s.hero.he)} rides ${c} km.`],
      }),
      addProduct: (s, [a, b]) => ({
        text: `${cap(s.hero.he)} also joins ${a} group rides of ${b} km each.`,
        lines: [(c) => `The group rides add ${c} km.`, (c) => `The total is ${c} km.`],
      }),
      subProduct: (s, [a, b]) => ({
        text: `${cap(s.hero.he)} skips ${a} rides of ${b} km each.`,
        lines: [(c) => `The skipped rides are ${c} km.`, (c) => `That leaves ${c} km.`],
      }),
      pctOf: (s, [p]) => ({
        text: `${cap(s.hero.he)} completes only ${p}% of that distance.`,
        lines: [(c) => `${cap(s.hero.he)} completes ${c} km.`],
      }),
      pctDown: (_s, [p]) => ({
        text: `Road works shorten the route by ${p}%.`,
        lines: [(c) => `The cut is ${c} km.`, (c) => `The route is now ${c} km.`],
      }),
      pctUp: (s, [p]) => ({
        text: `${cap(s.hero.he)} makes the route ${p}% longer.`,
        lines: [(c) => `The extra distance is ${c} km.`, (c) => `The route is now ${c} km.`],
      }),
    },
    ask: (s) => `How many kilometers does ${s.hero.name} end up cycling?`,
  },
  percentages: {
    start: [20, 800],
    things: ["jacket", "bicycle", "tent", "guitar", "printer", "camera"],
    open: (s, v) => `A ${s.things} costs $${v}, and ${s.hero.name} wants to buy it.`,
    openProduct: (s, a, b) => ({
      text: `A ${s.things} costs $${b}, and ${s.hero.name} wants to buy ${a} of them.`,
      lines: [(c) => `Together they cost ${c} dollars.`],
    }),
    events: {
      add: (_s, [k]) => ({ text: `Shipping adds $${k}.`, lines: [(c) => `The cost becomes ${c} dollars.`] }),
      sub: (s, [k]) => ({ text: `${s.hero.name} uses a $${k} coupon.`, lines: [(c) => `The cost drops to ${c} dollars.`] }),
      mul: (s, [k]) => ({
        text: `${s.hero.name} then decides to buy ${times(k)} as much.`,
        lines: [(c) => `That costs ${c} dollars.`],
      }),
      div: (s, [k]) => ({
        text: `${s.hero.name} splits the cost equally among ${k} people, ${s.hero.self} included.`,
        lines: [(c) => `${cap(s.hero.his)} share is ${c} dollars.`],
      }),
      pctOf: (s, [p]) => ({
        text: `A member card lets ${s.hero.him} pay only ${p}% of that.`,
        lines: [(c) => `${cap(s.hero.he)} pays ${c} dollars.`],
      }),
      pctDown: (_s, [p]) => ({
        text: `The store takes ${p}% off.`,
        lines: [(c) => `The discount is ${c} dollars.`, (c) => `The price is now ${c} dollars.`],
      }),
      pctUp: (_s, [p]) => ({
        text: `Tax adds ${p}%.`,
        lines: [(c) => `The tax is ${c} dollars.`, (c) => `With tax it costs ${c} dollars.`],
      }),
    },
    ask: (s) => `How many dollars does ${s.hero.name} pay?`,
  },
};

/** A step as GSM8K writes it: `48/2=<<48/2=24>>24`. */
function annotate(st: MathStep): string {
  return `${st.expr}=<<${st.expr}=${st.value}>>${st.value}`;
}

function checkInt(field: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`math.${field} = ${v}: expected an integer in ${lo}..${hi}`);
}

function checkTemplate(t: string): void {
  if (!(MATH_TEMPLATES as readonly string[]).includes(t)) {
    throw new Error(`math.templates: unknown template "${t}", expected one of ${MATH_TEMPLATES.join(", ")}`);
  }
}

/** One problem with exactly `steps` steps from `template`; deterministic in the seed. */
export function mathProblem(seed: number, steps: number, template: MathTemplate, maxValue = DEFAULT_MATH.maxValue): MathProblem {
  checkInt("steps", steps, 1, MATH_MAX_STEPS);
  checkTemplate(template);
  checkInt("maxValue", maxValue, 100, Number.MAX_SAFE_INTEGER);
  const theme = THEMES[template], rng = new Rng(seed), max = Math.min(maxValue, theme.cap ?? Infinity);
  const order = rng.permutation(PEOPLE.length), hero = PEOPLE[order[0]];
  const story: Story = {
    rng,
    hero,
    cast: Array.from(order.subarray(1), (i) => PEOPLE[i]),
    next: 0,
    last: hero,
    things: pick(rng, theme.things ?? [""]),
  };
  const sentences: string[] = [], lines: string[] = [], all: MathStep[] = [];
  let value: number, expression: string, left = steps;
  if (theme.openProduct && rng.next() < 0.5) {
    const a = between(rng, 2, 9), b = between(rng, 2, Math.min(25, Math.floor(max / a)));
    const st = step(`${a}*${b}`, a * b), said = theme.openProduct(story, a, b);
    sentences.push(said.text);
    lines.push(said.lines[0](annotate(st)));
    all.push(st);
    [value, expression, left] = [a * b, `(${a}*${b})`, left - 1];
  } else {
    value = between(rng, theme.start[0], Math.min(theme.start[1], max));
    expression = `${value}`;
    sentences.push(theme.open(story, value));
  }
  const kinds = Object.keys(theme.events) as EventKind[];
  while (left > 0) {
    let event: Event | null = null;
    for (const i of rng.permutation(kinds.length)) {
      const e = planEvent(kinds[i], value, max, rng);
      if (e && e.steps.length <= left) {
        event = e;
        break;
      }
    }
    // add or sub always fits: max >= 100, so either value + 2 <= max or value >= 2.
    if (!event) throw new Error(`math: no event fits value ${value} in template ${template}`);
    const said = theme.events[event.kind]!(story, event.nums);
    sentences.push(said.text);
    event.steps.forEach((st, i) => lines.push(said.lines[i](annotate(st))));
    all.push(...event.steps);
    [value, expression, left] = [event.value, event.wrap(expression), left - event.steps.length];
  }
  sentences.push(theme.ask(story));
  return {
    question: sentences.join(" "),
    rationale: `${lines.join("\n")}\n#### ${value}`,
    answer: value,
    expression,
    steps: all,
    template,
    seed,
  };
}

/** `count` problems, problem i from its own seed derived from (seed, i): the same i gives the same problem whatever the count. */
export function mathDataset(cfg: MathConfig): MathProblem[] {
  checkInt("count", cfg.count, 1, 10_000_000);
  checkInt("minSteps", cfg.minSteps, 1, MATH_MAX_STEPS);
  checkInt("maxSteps", cfg.maxSteps, cfg.minSteps, MATH_MAX_STEPS);
  checkInt("maxValue", cfg.maxValue, 100, Number.MAX_SAFE_INTEGER);
  if (cfg.templates.length === 0) throw new Error(`math.templates is empty: expected some of ${MATH_TEMPLATES.join(", ")}`);
  cfg.templates.forEach(checkTemplate);
  return Array.from({ length: cfg.count }, (_, i) => {
    const seed = deriveSeed(cfg.seed, `math-${i}`), rng = new Rng(seed);
    const steps = between(rng, cfg.minSteps, cfg.maxSteps), template = pick(rng, cfg.templates);
    return mathProblem(deriveSeed(seed, "story"), steps, template, cfg.maxValue);
  });
}

/** A problem as a GSM8K record: the answer text is the rationale ending in `#### <answer>`. */
export function toGsm8k(p: MathProblem): { question: string; answer: string } {
  return { question: p.question, answer: p.rationale };
}

/**
 * The rationale in calculator form: one `expr=value` line per step (the content of GSM8K's
 * `<<expr=value>>` annotations, without the words), then `#### <answer>`. About a quarter of
 * the full rationale's length, for byte-level models with short contexts.
 */
export function calcRationale(p: MathProblem): string {
  return `${p.steps.map((s) => `${s.expr}=${s.value}`).join("\n")}\n#### ${p.answer}`;
}

// ---------------------------------------------------------------------------------------
// GSM8K JSONL
// ---------------------------------------------------------------------------------------

export interface Gsm8kItem {
  question: string;
  /** The full answer text: rationale lines, then `#### <number>`. */
  answer: string;
  /** The number after `####`, normalized (`1,234` -> `1234`). */
  final: string;
  /** `final` as a number. */
  value: number;
  /** 1-based line of the record in its file. */
  line: number;
}

export interface Gsm8kLoad {
  items: Gsm8kItem[];
  /** Malformed lines passed over (only with `skipBad`), with the error each would have thrown. */
  skipped: { line: number; error: string }[];
}

export interface Gsm8kOptions {
  /** Skip malformed lines and report them in `skipped`, instead of throwing at the first (false). */
  skipBad?: boolean;
}

/** The record on one line, or an error message saying what was expected. */
function parseGsm8kLine(text: string): Omit<Gsm8kItem, "line"> | string {
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch (e) {
    return `not valid JSON (${(e as Error).message})`;
  }
  if (typeof rec !== "object" || rec === null || Array.isArray(rec)) return `expected a JSON object {"question": string, "answer": string}`;
  const { question, answer } = rec as Record<string, unknown>;
  if (typeof question !== "string") return `"question" is missing or not a string`;
  if (typeof answer !== "string") return `"answer" is missing or not a string`;
  const last = answer.trimEnd().split("\n").at(-1)!.trim();
  if (!last.startsWith("####")) return `"answer" has no '#### <number>' line at its end`;
  const final = normalizeNumber(last.slice(4));
  if (final === null) return `"answer" ends with '${last}', expected a number after '####'`;
  return { question, answer, final, value: Number(final) };
}

/**
 * Parses GSM8K JSONL text (one `{"question", "answer"}` object a line; blank lines are
 * ignored). Errors read `<file>:<line>: <what was expected>`.
 */
export function parseGsm8k(text: string, file: string, opts: Gsm8kOptions = {}): Gsm8kLoad {
  const items: Gsm8kItem[] = [], skipped: Gsm8kLoad["skipped"] = [];
  text.split("\n").forEach((raw, i) => {
    if (raw.trim() === "") return;
    const r = parseGsm8kLine(raw);
    if (typeof r !== "string") return void items.push({ ...r, line: i + 1 });
    const error = `${file}:${i + 1}: ${r}`;
    if (!opts.skipBad) throw new Error(error);
    skipped.push({ line: i + 1, error });
  });
  return { items, skipped };
}

/** Reads and parses a GSM8K JSONL file (see parseGsm8k). */
export async function loadGsm8k(path: string, opts: Gsm8kOptions = {}): Promise<Gsm8kLoad> {
  return parseGsm8k(await Deno.readTextFile(path), path, opts);
}

// ---------------------------------------------------------------------------------------
// Answer extraction and scoring
// ---------------------------------------------------------------------------------------

/**
 * A number as written in text: optional sign and/or `$`, digits with optional thousands
 * commas, optional decimals; not preceded by a letter, digit or dot.
 */
const NUMBER =
  /(?<![\w.])(?:[-+\u2212]\$?|\$[-+\u2212]?)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?<![\w.])(?:[-+\u2212]\$?|\$[-+\u2212]?)?\.\d+/g;

/** A number right at the start of a text, after optional spaces (as after `####`). */
const LEADING_NUMBER = new RegExp(`^[ \\t]*(${NUMBER.source})`);

/**
 * The canonical form of a written number, or null: drops `$`, commas, spaces and a `+`,
 * leading zeros and trailing fraction zeros, so `$1,234.50` -> `1234.5`, `.5` -> `0.5`,
 * `18.0` -> `18`, `-0` -> `0`.
 */
export function normalizeNumber(text: string): string | null {
  const s = text.replace(/\u2212/g, "-").replace(/[$,\s]/g, "");
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m || (m[2] === "" && !m[3])) return null;
  const int = m[2].replace(/^0+/, "") || "0", frac = (m[3] ?? "").replace(/0+$/, "");
  const body = frac ? `${int}.${frac}` : int;
  return m[1] === "-" && body !== "0" ? `-${body}` : body;
}

/** The final answer in a model's output, normalized: the number right after the last `####`, else the last number in the text; null if none. */
export function extractAnswer(output: string): string | null {
  const mark = output.lastIndexOf("####");
  const marked = mark >= 0 ? LEADING_NUMBER.exec(output.slice(mark + 4)) : null;
  if (marked) return normalizeNumber(marked[1]);
  const all = output.match(NUMBER);
  return all ? normalizeNumber(all.at(-1)!) : null;
}

/** Whether the output's extracted answer equals the gold one (a number, a written number, or a GSM8K answer text). */
export function isCorrect(output: string, gold: string | number): boolean {
  const want = typeof gold === "number" ? normalizeNumber(String(gold)) : normalizeNumber(gold) ?? extractAnswer(gold);
  const got = extractAnswer(output);
  return want !== null && got === want;
}

/** Exact-match accuracy of outputs against gold answers (same length). */
export function exactMatch(
  outputs: readonly string[],
  golds: readonly (string | number)[],
): { correct: number; total: number; accuracy: number } {
  if (outputs.length !== golds.length) throw new Error(`exactMatch: ${outputs.length} outputs but ${golds.length} gold answers`);
  const correct = outputs.filter((o, i) => isCorrect(o, golds[i])).length;
  return { correct, total: outputs.length, accuracy: outputs.length ? correct / outputs.length : 0 };
}

// ---------------------------------------------------------------------------------------
// Step-level scoring of calc rationales
// ---------------------------------------------------------------------------------------

/** The value of `a op b op c ...` over integers with * and / before + and -, or null when the text is not such an expression. */
export function evalCalc(expr: string): number | null {
  if (!/^\d+([-+*/]\d+)*$/.test(expr)) return null;
  let sum = 0, sign = 1, term = NaN, op = "";
  for (const tok of expr.match(/\d+|[-+*/]/g)!) {
    if (/\d/.test(tok)) term = op === "*" ? term * Number(tok) : op === "/" ? term / Number(tok) : Number(tok);
    else if (tok === "*" || tok === "/") op = tok;
    else [sum, sign, op] = [sum + sign * term, tok === "+" ? 1 : -1, ""];
  }
  return sum + sign * term;
}

/**
 * Step-level reading of one greedy output against the expected calc rationale: how many
 * expected step lines it reproduces at their place, and how many of its own `expr=value`
 * lines are arithmetically right (whatever their operands).
 */
export function stepScores(output: string, expected: string): { right: number; steps: number; consistent: number; lines: number } {
  const want = expected.split("\n").slice(0, -1), got = output.split("\n");
  const right = want.filter((line, i) => got[i] === line).length;
  const calc = got.map((l) => /^([\d+\-*/]+)=(\d+)$/.exec(l)).filter((x) => x !== null);
  const consistent = calc.filter((x) => Math.abs((evalCalc(x[1]) ?? NaN) - Number(x[2])) < 1e-9).length;
  return { right, steps: want.length, consistent, lines: calc.length };
}
