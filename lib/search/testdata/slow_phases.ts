/**
 * A phase registry for the queue tests (workers load it with `--phases`): phase 1 does nothing;
 * phase 2 "trains" for `steps` steps of 20 ms, checkpointing its step to its folder every 5, and
 * continues from that checkpoint when resumed. Its score depends on lr and steps only, so a
 * resumed trial scores what an uninterrupted one does. When AF_SEARCH_ATTEMPTS names a file, each
 * attempt appends one line: the trial's folder, the process and the step it started from.
 */
import { basename, join } from "node:path";
import { z } from "zod";
import { check, type PhaseContext, type PhaseSpec } from "../../phases/spec.ts";

/** Phase 1 of the search tests: it does nothing. */
export const NOTHING: PhaseSpec = {
  id: 1,
  name: "one",
  title: "nothing",
  section: z.strictObject({}),
  run: () => Promise.resolve({ metrics: { ok: 1 } }),
  validate: () => [],
};

/** The search tests' phase-2 score: rises with steps, peaks at lr = 10^-2.5, rounded to 6 decimals. */
export function fakeScore(steps: number, lr: number): number {
  const score = (1 - Math.exp(-steps / 30)) * Math.exp(-((Math.log10(lr) + 2.5) ** 2));
  return Math.round(score * 1e6) / 1e6;
}

export const PHASES: PhaseSpec[] = [
  NOTHING,
  {
    id: 2,
    name: "two",
    title: "a slow score of lr and steps",
    section: z.strictObject({ steps: z.number().int().default(90), lr: z.number().default(0.1) }),
    async run(ctx: PhaseContext) {
      const c = ctx.phaseConfig as { steps: number; lr: number };
      const ckpt = join(ctx.dir, "ckpt.json");
      await Deno.mkdir(ctx.dir, { recursive: true });
      let from = 0;
      if (ctx.resume) from = await Deno.readTextFile(ckpt).then((t) => JSON.parse(t).step as number, () => 0);
      const attempts = Deno.env.get("AF_SEARCH_ATTEMPTS");
      if (attempts) {
        await Deno.writeTextFile(attempts, JSON.stringify({ trial: basename(ctx.runDir), pid: Deno.pid, from }) + "\n", { append: true });
      }
      for (let step = from + 1; step <= c.steps; step++) {
        await new Promise((r) => setTimeout(r, 20));
        if (step % 5 === 0) {
          await Deno.writeTextFile(`${ckpt}.tmp`, JSON.stringify({ step }));
          await Deno.rename(`${ckpt}.tmp`, ckpt);
        }
      }
      return { metrics: { score: fakeScore(c.steps, c.lr) } };
    },
    validate: (out) => [check("score", out.metrics.score as number, -1)],
  },
];
