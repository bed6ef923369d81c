/**
 * `deno task bench:train`: the PyTorch reference model trained by our stack on every
 * backend (each in its own process) and by PyTorch itself (../shared/peers, Debian
 * python3-torch) at every thread setting a user could pick on this machine (torch threads x
 * OpenBLAS threads: 1 and 2 on 2 cores), in one command. Prints median step times, peak memory
 * and the throughput ratio against PyTorch's fastest setting (higher is better), and the
 * threads our own backends used (wasm: one JS thread, matmuls on OpenBLAS's threads).
 *
 * Options: --backends wasm,cpu,webgpu  --steps N (wasm and PyTorch; cpu and webgpu run
 * fewer, being slow)  --profile (per-kernel profile of one wasm step)  --json FILE
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    backends: { type: "string", default: "wasm,cpu,webgpu" },
    steps: { type: "string", default: "10" },
    profile: { type: "boolean", default: false },
    json: { type: "string" },
  },
});
const steps = Number(values.steps);
const root = fileURLToPath(new URL("..", import.meta.url));
const peer = fileURLToPath(new URL("../../shared/peers/torch_gpt_ref.py", import.meta.url));

interface Row {
  impl: string;
  backend?: string;
  step_ms?: number;
  peak_rss_mb?: number;
  tokens_per_s?: number;
  loss_last?: number;
  error?: string;
  profile?: { kernel: string; ms: number; calls: number }[];
}

async function runJson(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Row> {
  const out = await new Deno.Command(cmd, { args, env, cwd: root, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n");
  const last = text.findLast((l) => l.startsWith("{"));
  if (!out.success || !last) {
    return { impl: "?", error: new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ") || `exit ${out.code}` };
  }
  return JSON.parse(last);
}

const rows: Row[] = [];
// PyTorch first, at every thread setting a user of this machine could pick (torch's intra-op
// threads x OpenBLAS threads), then each backend of ours: the same order every time. The ratio
// is taken against PyTorch's fastest setting.
const cores = navigator.hardwareConcurrency;
const threadChoices = [...new Set([1, Math.min(2, cores), cores])];
const torchRows: Row[] = [];
let torchMissing = "";
for (const torchThreads of threadChoices) {
  for (const blasThreads of threadChoices) {
    const torchWrapper = [
      "-c",
      "import json,resource,runpy,sys; sys.argv=[sys.argv[1],'bench','--steps',sys.argv[2],'--threads',sys.argv[3]]; " +
      "runpy.run_path(sys.argv[0], run_name='__main__'); " +
      "print(json.dumps({'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024}))",
      peer,
      String(steps),
      String(torchThreads),
    ];
    console.error(`running PyTorch (torch threads ${torchThreads}, OpenBLAS threads ${blasThreads})...`);
    const torchOut = await new Deno.Command("/usr/bin/python3", {
      args: torchWrapper,
      env: { OPENBLAS_NUM_THREADS: String(blasThreads), OMP_NUM_THREADS: String(torchThreads) },
      stdout: "piped",
      stderr: "piped",
    }).output().catch((e) => ({ success: false, stdout: new Uint8Array(), stderr: new TextEncoder().encode(String(e)), code: -1 }));
    const torchLines = new TextDecoder().decode(torchOut.stdout).trim().split("\n").filter((l) => l.startsWith("{"));
    if (torchOut.success && torchLines.length >= 2) {
      const backend = `pytorch ${torchThreads}t / blas ${blasThreads}t`;
      torchRows.push({ ...JSON.parse(torchLines[0]), ...JSON.parse(torchLines[1]), impl: "torch", backend });
    } else {
      torchMissing = new TextDecoder().decode(torchOut.stderr).trim().split("\n").at(-1) ?? "";
    }
  }
}
rows.push(...torchRows);
const torch = torchRows.reduce<Row | undefined>((best, r) => (!best || (r.step_ms ?? Infinity) < best.step_ms! ? r : best), undefined);
if (!torch) console.error(`PyTorch peer unavailable (apt-get install -y python3-torch libopenblas0-pthread): ${torchMissing}`);

const fewer: Record<string, number> = { cpu: 3, webgpu: 2 };
for (const b of values.backends!.split(",")) {
  const n = Math.min(steps, fewer[b] ?? steps);
  console.error(`running ${b} (${n} timed steps)...`);
  const args = ["run", "-A", "bench/train_worker.ts", b, String(n)];
  if (values.profile && b === "wasm") args.push("--profile");
  const r = await runJson(Deno.execPath(), args);
  rows.push({ ...r, backend: r.backend ?? b });
}

const fmt = (v: number | undefined, d = 1) => (v === undefined ? "-" : v.toFixed(d));
console.log("\nReference GPT (V128 D128 H4 L4, T64 B32), median step time; ratio = PyTorch's fastest step / ours:");
console.log("impl          backend                          step ms   tokens/s   peak RSS MB   torch best/x");
for (const r of rows) {
  if (r.error) {
    console.log(`${r.impl.padEnd(13)} ${String(r.backend).padEnd(31)}  error: ${r.error}`);
    continue;
  }
  const ratio = torch && r.step_ms ? (torch.step_ms! / r.step_ms).toFixed(3) : "-";
  console.log(
    `${r.impl.padEnd(13)} ${String(r.backend).padEnd(31)} ${fmt(r.step_ms).padStart(8)} ${fmt(r.tokens_per_s, 0).padStart(10)} ${
      fmt(r.peak_rss_mb).padStart(13)
    } ${ratio.padStart(12)}`,
  );
}
const prof = rows.find((r) => r.profile)?.profile;
if (prof) {
  console.log("\nwasm per-kernel profile of one forward+backward (top 15):");
  for (const p of prof) console.log(`${p.ms.toFixed(1).padStart(9)} ms ${String(p.calls).padStart(4)}x  ${p.kernel}`);
}
if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(rows, null, 2));
