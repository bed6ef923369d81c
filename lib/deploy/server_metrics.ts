/**
 * The inference server's Prometheus metrics (prom-client), one registry per server so that
 * several servers in one process (tests) keep their own counts:
 *
 * - `af_http_requests_total{endpoint, status}`: finished requests by route and status code
 *   (unknown paths count under endpoint `other`).
 * - `af_http_request_duration_seconds{endpoint}`: request latency histogram.
 * - `af_http_requests_in_flight{endpoint}`: requests being handled now.
 * - `af_batch_rows`: rows per forward step (the batch size the model ran) histogram.
 * - `af_step_duration_seconds`: seconds per forward step histogram.
 * - `af_queue_rows`: rows waiting for a place in the batch.
 * - `af_prompt_tokens_total`, `af_generated_tokens_total`: tokens read and written.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** The routes counted by name; anything else is `other`. */
export const ENDPOINTS = ["/v1/completions", "/v1/tasks/arc", "/v1/tasks/math", "/v1/models", "/healthz", "/metrics"] as const;

/** Latency buckets in seconds (1 ms .. 60 s). */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The server's metrics. */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "af_http_requests_total",
    help: "HTTP requests finished, by endpoint and status code",
    labelNames: ["endpoint", "status"] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: "af_http_request_duration_seconds",
    help: "HTTP request latency in seconds, by endpoint",
    labelNames: ["endpoint"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: "af_http_requests_in_flight",
    help: "HTTP requests being handled now, by endpoint",
    labelNames: ["endpoint"] as const,
    registers: [this.registry],
  });
  readonly batchRows = new Histogram({
    name: "af_batch_rows",
    help: "Rows per batched forward step",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  readonly stepSeconds = new Histogram({
    name: "af_step_duration_seconds",
    help: "Seconds per batched forward step",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly queue = new Gauge({ name: "af_queue_rows", help: "Rows waiting for a place in the batch", registers: [this.registry] });
  readonly promptTokens = new Counter({
    name: "af_prompt_tokens_total",
    help: "Prompt tokens read (BOS excluded)",
    registers: [this.registry],
  });
  readonly generatedTokens = new Counter({
    name: "af_generated_tokens_total",
    help: "Tokens generated (EOS excluded)",
    registers: [this.registry],
  });

  /** The endpoint label of a path. */
  static endpointOf(path: string): string {
    return (ENDPOINTS as readonly string[]).includes(path) ? path : "other";
  }

  /** Marks a request started; the returned function records its end with the status code. */
  start(endpoint: string): (status: number) => void {
    const t0 = performance.now();
    this.inFlight.inc({ endpoint });
    return (status) => {
      this.inFlight.dec({ endpoint });
      this.requests.inc({ endpoint, status: String(status) });
      this.latency.observe({ endpoint }, (performance.now() - t0) / 1000);
    };
  }

  /** The Prometheus text exposition. */
  async text(): Promise<string> {
    return await this.registry.metrics();
  }

  /** The exposition's content type. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

/** One sample of a Prometheus text exposition: its value for `name` with exactly `labels` (0 when absent). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(",");
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? "").split(",").filter(Boolean).sort().join(",");
    if (got === want) return Number(m[3]);
  }
  return 0;
}
