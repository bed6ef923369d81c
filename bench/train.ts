/**
 * `deno task bench:train`: the PyTorch reference model trained by our stack on every
 * backend (each in its own process) and by PyTorch itself (../shared/peers, Debian
 * python3-torch, OPENBLAS_NUM_THREADS=1), in one command. Prints median step times,
 * peak memory and the throughput ratio ours / PyTorch (higher is better).
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
// PyTorch first, then each backend: the same order every time.
const torchWrapper = [
  "-c",
  "import json,resource,runpy,sys; sys.argv=[sys.argv[1],'bench','--steps',sys.argv[2]]; " +
  "runpy.run_path(sys.argv[0], run_name='__main__'); " +
  "print(json.dumps({'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024}))",
  peer,
  String(steps),
];
const torchOut = await new Deno.Command("/usr/bin/python3", {
  args: torchWrapper,
  env: { OPENBLAS_NUM_THREADS: "1" },
  stdout: "piped",
  stderr: "piped",
}).output().catch((e) => ({ success: false, stdout: new Uint8Array(), stderr: new TextEncoder().encode(String(e)), code: -1 }));
const torchLines = new TextDecoder().decode(torchOut.stdout).trim().split("\n").filter((l) => l.startsWith("{"));
let torch: Row | undefined;
if (torchOut.success && torchLines.length >= 2) {
  torch = { ...JSON.parse(torchLines[0]), ...JSON.parse(torchLines[1]), impl: "torch", backend: "pytorch (2 threads)" };
  rows.push(torch!);
} else {
  console.error(
    `PyTorch peer unavailable (apt-get install -y python3-torch libopenblas0-pthread): ${
      new TextDecoder().decode(torchOut.stderr).trim().split("\n").at(-1)
    }`,
  );
}

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
console.log("\nReference GPT (V128 D128 H4 L4, T64 B32), median step time:");
console.log("impl          backend               step ms   tokens/s   peak RSS MB   ours/torch");
for (const r of rows) {
  if (r.error) {
    console.log(`${r.impl.padEnd(13)} ${String(r.backend).padEnd(20)}  error: ${r.error}`);
    continue;
  }
  const ratio = torch && r !== torch && r.step_ms ? (torch.step_ms! / r.step_ms).toFixed(3) : r === torch ? "1" : "-";
  console.log(
    `${r.impl.padEnd(13)} ${String(r.backend).padEnd(20)} ${fmt(r.step_ms).padStart(8)} ${fmt(r.tokens_per_s, 0).padStart(10)} ${
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
