/**
 * A Redis for tests and benchmarks of the queue (lib/search/queue.ts): the URL in
 * AGENT_FORGE_REDIS_URL when set (.ci/run starts a server and sets it), else a `redis-server`
 * (Debian's redis-server package) started here on a free port, without persistence.
 */
import { Redis } from "ioredis";

/** True when a Redis can be had: the environment names one or redis-server is on PATH. */
export function redisAvailable(): boolean {
  if (Deno.env.get("AGENT_FORGE_REDIS_URL")) return true;
  try {
    return new Deno.Command("redis-server", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

/** The Redis to use and how to stop what was started for it (nothing, for AGENT_FORGE_REDIS_URL). */
export async function redisForRun(): Promise<{ url: string; stop: () => Promise<void> }> {
  const env = Deno.env.get("AGENT_FORGE_REDIS_URL");
  if (env) return { url: env, stop: () => Promise.resolve() };
  const port = 20000 + Math.floor(Math.random() * 20000);
  const proc = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0;; i++) {
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on("error", () => {}); // refused while the server starts
    const ok = await c.connect().then(() => c.ping()).then(() => true, () => false);
    c.disconnect();
    if (ok) break;
    if (i === 50) {
      proc.kill("SIGKILL");
      throw new Error(`redis-server on port ${port} did not answer within 5 s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.status;
    },
  };
}
