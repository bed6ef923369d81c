/** Math word problems: answers checked by an independent exact evaluator, GSM8K loading, answer extraction. */
import { GSM8K_DIR } from "./paths.ts";
import assert from "node:assert/strict";
import {
  calcRationale,
  DEFAULT_MATH,
  evalCalc,
  exactMatch,
  extractAnswer,
  isCorrect,
  loadGsm8k,
  MATH_MAX_STEPS,
  MATH_TEMPLATES,
  mathDataset,
  mathProblem,
  type MathTemplate,
  normalizeNumber,
  parseGsm8k,
  stepScores,
  toGsm8k,
} from "./math.ts";

/** An exact fraction n/d (d > 0). */
type Frac = [bigint, bigint];

/**
 * Evaluates an expression of integers, + - * / and parentheses exactly (recursive descent
 * over fractions), independent of the generator's own arithmetic.
 */
function evaluate(src: string): Frac {
  let i = 0;
  const peek = () => src[i];
  const gcd = (a: bigint, b: bigint): bigint => b === 0n ? (a < 0n ? -a : a) : gcd(b, a % b);
  const norm = ([n, d]: Frac): Frac => {
    if (d === 0n) throw new Error(`division by zero in ${src}`);
    if (d < 0n) [n, d] = [-n, -d];
    const g = gcd(n, d) || 1n;
    return [n / g, d / g];
  };
  const atom = (): Frac => {
    if (peek() === "(") {
      i++;
      const v = sum();
      assert.equal(src[i++], ")", `expected ) in ${src}`);
      return v;
    }
    const m = /^\d+/.exec(src.slice(i));
    assert.ok(m, `expected a number at ${i} in ${src}`);
    i += m[0].length;
    return [BigInt(m[0]), 1n];
  };
  const product = (): Frac => {
    let v = atom();
    while (peek() === "*" || peek() === "/") {
      const op = src[i++], r = atom();
      v = norm(op === "*" ? [v[0] * r[0], v[1] * r[1]] : [v[0] * r[1], v[1] * r[0]]);
    }
    return v;
  };
  const sum = (): Frac => {
    let v = product();
    while (peek() === "+" || peek() === "-") {
      const op = src[i++], r = product();
      const n = op === "+" ? v[0] * r[1] + r[0] * v[1] : v[0] * r[1] - r[0] * v[1];
      v = norm([n, v[1] * r[1]]);
    }
    return v;
  };
  const v = sum();
  assert.equal(i, src.length, `trailing text in ${src}`);
  return v;
}

/** An exact integer value of an expression, or a failure if it is not one. */
function integerValue(src: string): number {
  const [n, d] = evaluate(src);
  assert.equal(d, 1n, `${src} is not an integer`);
  return Number(n);
}

Deno.test("the independent evaluator is itself right", () => {
  assert.equal(integerValue("2+3*4"), 14);
  assert.equal(integerValue("(2+3)*4"), 20);
  assert.equal(integerValue("10-4-3"), 3);
  assert.equal(integerValue("48/2/3"), 8);
  assert.equal(integerValue("200*(100-25)/100"), 150);
  assert.deepEqual(evaluate("1/2+1/3"), [5n, 6n]);
  assert.throws(() => integerValue("7/2"), /not an integer/);
});

const WORDS: Record<string, number> = {
  twice: 2,
  half: 2,
  third: 3,
  quarter: 4,
  fifth: 5,
  sixth: 6,
  seventh: 7,
  eighth: 8,
  ninth: 9,
  tenth: 10,
};

Deno.test("every template and difficulty: answers match an independent evaluation; annotations are right; numbers come from the question", () => {
  let problems = 0;
  for (const template of MATH_TEMPLATES) {
    for (let steps = 1; steps <= MATH_MAX_STEPS; steps++) {
      for (let seed = 0; seed < 40; seed++) {
        const p = mathProblem(seed * 7919 + steps, steps, template);
        problems++;
        const where = `${template}/${steps}/${seed}: ${p.question}\n${p.rationale}`;
        assert.equal(p.steps.length, steps, where);
        assert.equal(integerValue(p.expression), p.answer, where);
        assert.ok(Number.isInteger(p.answer) && p.answer > 0, where);
        // Rationale: one line per step, each with a right `<<expr=value>>`, then `#### answer`.
        const lines = p.rationale.split("\n");
        assert.equal(lines.length, steps + 1, where);
        assert.equal(lines.at(-1), `#### ${p.answer}`, where);
        const notes = [...p.rationale.matchAll(/<<([^=<>]+)=([^<>]+)>>/g)];
        assert.equal(notes.length, steps, where);
        notes.forEach(([, lhs, rhs], k) => {
          assert.equal(integerValue(lhs), Number(rhs), `${lhs}=${rhs} in ${where}`);
          assert.deepEqual({ expr: lhs, value: Number(rhs) }, p.steps[k]);
          assert.ok(lines[k].includes(`${lhs}=<<${lhs}=${rhs}>>${rhs}`), where);
        });
        assert.equal(Number(notes.at(-1)![2]), p.answer, where);
        // Every number of the expression appears in the question, as digits or a word (twice, half, ...).
        const said = new Set([...p.question.matchAll(/\d+/g)].map((m) => Number(m[0])));
        for (const [w, k] of Object.entries(WORDS)) if (new RegExp(`\\b${w}\\b`).test(p.question)) said.add(k);
        for (const n of p.expression.match(/\d+/g)!.map(Number)) {
          if (n !== 100) assert.ok(said.has(n), `${n} of ${p.expression} is not in the question: ${where}`);
        }
        assert.ok(p.question.endsWith("?"), where);
      }
    }
  }
  assert.equal(problems, MATH_TEMPLATES.length * MATH_MAX_STEPS * 40);
});

Deno.test("mathDataset: deterministic in the seed, every step count and template drawn, values bounded", () => {
  const cfg = { ...DEFAULT_MATH, count: 600, minSteps: 2, maxSteps: 5, maxValue: 500, seed: 11 };
  const d = mathDataset(cfg);
  assert.equal(d.length, 600);
  assert.deepEqual(mathDataset(cfg), d);
  assert.notDeepEqual(mathDataset({ ...cfg, seed: 12 }).map((p) => p.question), d.map((p) => p.question));
  assert.deepEqual(mathDataset({ ...cfg, count: 10 }), d.slice(0, 10), "problem i must not depend on the count");
  assert.deepEqual(new Set(d.map((p) => p.steps.length)), new Set([2, 3, 4, 5]));
  assert.deepEqual(new Set(d.map((p) => p.template)), new Set(MATH_TEMPLATES));
  for (const p of d) {
    for (const s of p.steps) assert.ok(s.value > 0 && s.value <= 500 && Number.isInteger(s.value), `${s.expr}=${s.value}`);
    if (p.template === "ages") assert.ok(p.steps.every((s) => s.value <= 100));
    assert.equal(integerValue(p.expression), p.answer);
  }
  const only = mathDataset({ ...cfg, count: 50, templates: ["ages", "shopping"] });
  assert.ok(only.every((p) => p.template === "ages" || p.template === "shopping"));
  // A generated problem is a valid GSM8K record.
  const text = d.slice(0, 20).map((p) => JSON.stringify(toGsm8k(p))).join("\n");
  assert.deepEqual(parseGsm8k(text, "gen.jsonl").items.map((r) => r.value), d.slice(0, 20).map((p) => p.answer));
});

Deno.test("calcRationale: the annotations' expressions, one line a step, each right, then the #### answer", () => {
  for (const template of MATH_TEMPLATES) {
    for (let steps = 1; steps <= 6; steps++) {
      const p = mathProblem(steps * 31 + 5, steps, template, 100);
      const lines = calcRationale(p).split("\n");
      assert.equal(lines.length, steps + 1);
      assert.equal(lines.at(-1), `#### ${p.answer}`);
      lines.slice(0, -1).forEach((line, k) => {
        const [lhs, rhs] = line.split("=");
        assert.equal(integerValue(lhs), Number(rhs), line);
        assert.deepEqual({ expr: lhs, value: Number(rhs) }, p.steps[k]);
      });
      assert.ok(isCorrect(calcRationale(p), p.answer));
      assert.ok(calcRationale(p).length < p.rationale.length);
    }
  }
  assert.equal(calcRationale(mathProblem(3, 1, "shopping", 100)).split("\n").length, 2);
});

Deno.test("math config validation names the field and what is accepted", () => {
  const bad = (over: Partial<typeof DEFAULT_MATH>, re: RegExp) =>
    assert.throws(() => mathDataset({ ...DEFAULT_MATH, count: 1, ...over }), re);
  bad({ count: 0 }, /math.count = 0: expected an integer in 1\.\./);
  bad({ minSteps: 0 }, /math.minSteps = 0: expected an integer in 1\.\.12/);
  bad({ minSteps: 4, maxSteps: 3 }, /math.maxSteps = 3: expected an integer in 4\.\.12/);
  bad({ maxSteps: 13 }, /math.maxSteps = 13/);
  bad({ maxValue: 50 }, /math.maxValue = 50: expected an integer in 100\.\./);
  bad({ templates: [] }, /math.templates is empty: expected some of shopping, rates/);
  bad({ templates: ["poetry" as MathTemplate] }, /unknown template "poetry", expected one of shopping/);
  assert.throws(() => mathProblem(0, 2.5, "ages"), /math.steps = 2.5/);
});

Deno.test("GSM8K parsing: records, blank lines, comma answers; malformed lines name file, line and expectation", () => {
  const good = (q: string, a: string) => JSON.stringify({ question: q, answer: a });
  const text = [
    good("How many?", "2+3=<<2+3=5>>5\n#### 5"),
    "",
    good("Big?", "It is 1,000*2=<<1000*2=2000>>2,000\n#### 2,000"),
    good("Negative?", "#### -7\n"),
  ].join("\n") + "\n";
  const { items, skipped } = parseGsm8k(text, "train.jsonl");
  assert.deepEqual(items.map((r) => [r.line, r.final, r.value]), [[1, "5", 5], [3, "2000", 2000], [4, "-7", -7]]);
  assert.equal(skipped.length, 0);
  assert.equal(items[0].question, "How many?");

  const cases: [string, RegExp][] = [
    [`{"question": "q", "answer": "no marker"}`, /train\.jsonl:2: "answer" has no '#### <number>' line/],
    [`{"question": "q", "answer": "#### many"}`, /train\.jsonl:2: "answer" ends with '#### many', expected a number after '####'/],
    [`{"question": "q"`, /train\.jsonl:2: not valid JSON/],
    [`[1, 2]`, /train\.jsonl:2: expected a JSON object/],
    [`{"answer": "#### 1"}`, /train\.jsonl:2: "question" is missing or not a string/],
    [`{"question": "q", "answer": 4}`, /train\.jsonl:2: "answer" is missing or not a string/],
  ];
  for (const [line, re] of cases) assert.throws(() => parseGsm8k(`${good("a", "#### 1")}\n${line}\n`, "train.jsonl"), re);

  const mixed = [good("a", "#### 1"), "not json", good("b", "#### 2"), `{"question": "q", "answer": "x"}`, good("c", "#### 3")].join("\n");
  const r = parseGsm8k(mixed, "train.jsonl", { skipBad: true });
  assert.deepEqual(r.items.map((x) => x.value), [1, 2, 3]);
  assert.deepEqual(r.skipped.map((s) => s.line), [2, 4]);
  assert.match(r.skipped[1].error, /train\.jsonl:4: "answer" has no '#### <number>' line/);
});

const GSM8K = GSM8K_DIR;
const present = (() => {
  try {
    return Deno.statSync(`${GSM8K}/train.jsonl`).isFile && Deno.statSync(`${GSM8K}/test.jsonl`).isFile;
  } catch {
    return false;
  }
})();
if (!present) console.log(`skipping the GSM8K file test: ${GSM8K}/{train,test}.jsonl not found`);

Deno.test({
  name: "the real GSM8K files load completely and every answer is a number",
  ignore: !present,
  fn: async () => {
    for (const [name, lines] of [["train", 7473], ["test", 1319]] as const) {
      const { items, skipped } = await loadGsm8k(`${GSM8K}/${name}.jsonl`);
      assert.equal(items.length, lines, name);
      assert.equal(skipped.length, 0);
      for (const it of items) {
        assert.ok(Number.isFinite(it.value), `${name}:${it.line}: ${it.final}`);
        assert.equal(extractAnswer(it.answer), it.final, `${name}:${it.line}`);
        assert.ok(isCorrect(`So the answer is ${it.value}.`, it.answer), `${name}:${it.line}`);
      }
    }
  },
});

Deno.test("normalizeNumber: commas, signs, dollars, trailing zeros, bare decimals", () => {
  const cases: [string, string | null][] = [
    ["1,234", "1234"],
    ["$1,234.50", "1234.5"],
    ["-$5", "-5"],
    ["$-5", "-5"],
    ["+7", "7"],
    ["\u22123", "-3"],
    ["18.0", "18"],
    ["18.", "18"],
    ["0.50", "0.5"],
    [".5", "0.5"],
    ["007", "7"],
    ["-0.0", "0"],
    [" 42 ", "42"],
    ["", null],
    [".", null],
    ["-", null],
    ["1.2.3", null],
    ["12abc", null],
  ];
  for (const [text, want] of cases) assert.equal(normalizeNumber(text), want, JSON.stringify(text));
});

Deno.test("extractAnswer: the #### form first, else the last number; isCorrect and exactMatch", () => {
  const cases: [string, string | null][] = [
    ["He has 3 apples, then 5.\n#### 8", "8"],
    ["#### 8\nmore text with 99", "8"],
    ["first #### 1 then #### 2", "2"],
    ["#### none here, but 17 later; the last is 23", "23"],
    ["####-4 apples", "-4"],
    ["The total is $1,234.", "1234"],
    ["She pays -$12.50 in the end", "-12.5"],
    ["so 10-3 = 7", "7"],
    ["x was 5 and the answer is .25", "0.25"],
    ["Answer: 3.0", "3"],
    ["values 1,23", "23"],
    ["abc123 has no standalone number", null],
    ["no numbers at all", null],
  ];
  for (const [text, want] of cases) assert.equal(extractAnswer(text), want, JSON.stringify(text));
  assert.ok(isCorrect("The answer is 1,234.00", 1234));
  assert.ok(isCorrect("#### $0.50", ".5"));
  assert.ok(isCorrect("we get 5\n#### 5", "It is 2+3=<<2+3=5>>5\n#### 5"));
  assert.ok(!isCorrect("#### 5", 6));
  assert.ok(!isCorrect("-5", 5));
  assert.ok(!isCorrect("nothing", "nothing"));
  assert.deepEqual(exactMatch(["#### 1", "2", "x"], [1, "3", 0]), { correct: 1, total: 3, accuracy: 1 / 3 });
  assert.throws(() => exactMatch(["1"], []), /1 outputs but 0 gold answers/);
});

Deno.test("evalCalc and stepScores: precedence, malformed lines, expected lines matched in place", () => {
  assert.equal(evalCalc("36*75/100"), 27);
  assert.equal(evalCalc("2+3*4"), 14);
  assert.equal(evalCalc("10-2-3"), 5);
  assert.equal(evalCalc("1-2*3+4"), -1);
  assert.equal(evalCalc("5+"), null);
  assert.equal(evalCalc("a+1"), null);
  assert.deepEqual(stepScores("50-9=41\n#### 41", "50-9=41\n#### 41"), { right: 1, steps: 1, consistent: 1, lines: 1 });
  assert.deepEqual(stepScores("7*11=77\n77+22=98\n#### 98", "7*11=77\n77+22=99\n#### 99"), { right: 1, steps: 2, consistent: 1, lines: 2 });
  assert.deepEqual(stepScores("#### 3", "2*2=4\n#### 4"), { right: 0, steps: 1, consistent: 0, lines: 0 });
  // The generator's own steps all read as right and consistent: the scorer agrees with the data.
  for (const p of mathDataset({ ...DEFAULT_MATH, count: 300, maxSteps: 6, seed: 5 })) {
    const n = p.steps.length, calc = calcRationale(p);
    assert.deepEqual(stepScores(calc, calc), { right: n, steps: n, consistent: n, lines: n }, calc);
  }
});
