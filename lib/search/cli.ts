/**
 * `deno task search --space FILE --run DIR --phase N [options]`: a hyper-parameter search of
 * phase N over the config keys of FILE (lib/search/space.ts), each trial run on a copy of DIR
 * (a run directory whose phases before N completed), ASHA over `--resource-key`; writes
 * OUT/search.json, OUT/trials/ and OUT/report.html (table, parallel coordinates, ASHA rungs).
 * Run it again with the same options to resume a killed search.
 *
 * Options: --resource-key KEY (default phases.N.steps)  --min-resource N  --max-resource N
 *          (default: DIR's value of the resource key)  --eta N (default 3)  --trials N (default 9)
 *          --sampler tpe|random (default tpe)  --metric PATH (default: the phase's stage metric)
 *          --objective validation|result (default validation: the stage's evaluation at another seed
 *          than the held-out set; result: the metric of result.json, which the report shows)
 *          --seed N  --out DIR (default: DIR-search-pN)  --backend B
 *          --parallel N (jobs in flight, default 1; part of the search, since job n is decided on
 *          the results of jobs 0..n-N)  --redis URL (run jobs on workers, `deno task worker --redis
 *          URL`, over BullMQ; OUT must be at the same path on every worker)  --queue NAME
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { parseBackend } from "../backend/mod.ts";
import { readJson, writeAtomic } from "../util/fs.ts";
import { searchReport } from "./report.ts";
import { queueExecutor } from "./queue.ts";
import { type Executor, runSearch, searchSummary } from "./run.ts";
import { parseSpace } from "./space.ts";

function objectiveFlag(v: string | undefined): "validation" | "result" | undefined {
  if (v === undefined || v === "validation" || v === "result") return v;
  throw new Error(`--objective ${v}: expected validation or result`);
}

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      space: { type: "string" },
      run: { type: "string" },
      phase: { type: "string" },
      "resource-key": { type: "string" },
      "min-resource": { type: "string" },
      "max-resource": { type: "string" },
      eta: { type: "string", default: "3" },
      trials: { type: "string", default: "9" },
      sampler: { type: "string", default: "tpe" },
      metric: { type: "string" },
      objective: { type: "string" },
      seed: { type: "string", default: "0" },
      out: { type: "string" },
      backend: { type: "string" },
      parallel: { type: "string", default: "1" },
      redis: { type: "string" },
      queue: { type: "string" },
    },
  });
  for (const k of ["space", "run", "phase"] as const) {
    if (!values[k]) {
      console.error(`search: --${k} is required (--space FILE --run DIR --phase N)`);
      return 2;
    }
  }
  const int = (flag: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${flag} ${v}: expected an integer >= ${min}`);
    return n;
  };
  const phase = int("phase", values.phase, 1);
  const resourceKey = values["resource-key"] ?? `phases.${phase}.steps`;
  const base = await readJson<Record<string, unknown>>(join(values.run!, "config.json"));
  const current = resourceKey.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], base);
  const max = values["max-resource"] ? int("max-resource", values["max-resource"], 1) : Number(current);
  if (!Number.isInteger(max) || max < 1) {
    throw new Error(`--max-resource: ${resourceKey} in ${values.run}/config.json is ${current}; give --max-resource`);
  }
  const eta = int("eta", values.eta, 2);
  const min = values["min-resource"] ? int("min-resource", values["min-resource"], 1) : Math.max(1, Math.round(max / eta / eta));
  if (values.sampler !== "tpe" && values.sampler !== "random") throw new Error(`--sampler ${values.sampler}: expected tpe or random`);
  const out = values.out ?? `${values.run!.replace(/\/$/, "")}-search-p${phase}`;
  const parallel = int("parallel", values.parallel, 1);
  let executor: Executor | undefined;
  if (values.redis) {
    executor = await queueExecutor({ url: values.redis, queue: values.queue });
    console.log(
      `search: jobs go to workers on ${values.redis} (${parallel} in flight); start them with deno task worker --redis ${values.redis}`,
    );
  } else if (values.queue) throw new Error("--queue needs --redis URL");
  const state = await runSearch({
    baseRun: values.run!,
    phase,
    metric: values.metric,
    objective: objectiveFlag(values.objective),
    space: parseSpace(await readJson(values.space!), values.space!),
    resourceKey,
    asha: { minResource: min, maxResource: max, eta, maxTrials: int("trials", values.trials, 1) },
    sampler: values.sampler,
    seed: int("seed", values.seed, 0),
    out,
    parallel,
    executor,
    backend: values.backend ? parseBackend(values.backend, "--backend") : undefined,
  }).finally(() => executor?.close?.());
  await writeAtomic(join(out, "report.html"), await searchReport(state));
  const s = searchSummary(state);
  const held = (v: number | undefined) => (state.objective === "validation" ? ` (held-out ${v})` : "");
  console.log(
    `search: ${state.trials.length} trials, ${state.jobs} rungs; ${state.objective} ${state.metric}: default ${s.baseline}${
      held(s.baselineHeldout)
    }; best ${
      s.best ? `${s.best.score}${held(s.best.heldout)} (trial ${s.best.id}, rung ${s.best.rung}, ${JSON.stringify(s.best.params)})` : "none"
    }; trial-steps ${s.spent} against ${s.everyTrialToTheEnd} for every trial to the end; report ${join(out, "report.html")}`,
  );
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`search: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
