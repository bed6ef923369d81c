/**
 * Progress for long work: step, loss, tokens/s and ETA. On a terminal one line is
 * redrawn in place; otherwise (CI, logs, notebooks) a plain line is printed every
 * `intervalMs`, plus the first and the last.
 */
export interface ProgressOptions {
  /** Milliseconds between plain lines when not on a terminal. */
  intervalMs?: number;
  /** Suppress all output. */
  quiet?: boolean;
  /** Where lines go (stderr by default, keeping stdout for results). */
  write?: (line: string, inPlace: boolean) => void;
}

export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #start = performance.now();
  readonly #interval: number;
  readonly #quiet: boolean;
  readonly #tty: boolean;
  readonly #write: (line: string, inPlace: boolean) => void;
  #lastPrint = -Infinity;
  #startStep = 0;

  constructor(label: string, total: number, opts: ProgressOptions = {}) {
    this.#label = label;
    this.#total = total;
    this.#interval = opts.intervalMs ?? 10_000;
    this.#quiet = opts.quiet ?? false;
    this.#tty = !opts.write && Deno.stderr.isTerminal();
    this.#write = opts.write ?? ((line, inPlace) => {
      const enc = new TextEncoder();
      Deno.stderr.writeSync(enc.encode(inPlace ? `\r\x1b[2K${line}` : `${line}\n`));
    });
  }

  /** Where counting starts (a resumed run starts part-way). */
  startAt(step: number): void {
    this.#startStep = step;
  }

  /** Reports that `step` of the total is done, with extra fields such as loss. */
  update(step: number, fields: Record<string, number | string> = {}, tokens?: number): void {
    if (this.#quiet) return;
    const now = performance.now();
    const last = step >= this.#total;
    if (!this.#tty && !last && step !== this.#startStep + 1 && now - this.#lastPrint < this.#interval) return;
    this.#lastPrint = now;
    const elapsed = (now - this.#start) / 1000;
    const done = step - this.#startStep;
    const rate = done > 0 ? done / elapsed : 0;
    const eta = rate > 0 ? (this.#total - step) / rate : NaN;
    const parts = [`${this.#label} ${step}/${this.#total}`];
    for (const [k, v] of Object.entries(fields)) parts.push(`${k} ${typeof v === "number" ? fmt(v) : v}`);
    if (tokens !== undefined && elapsed > 0) parts.push(`${Math.round((tokens * done) / elapsed)} tok/s`);
    parts.push(last ? `${elapsed.toFixed(1)}s` : `ETA ${formatSeconds(eta)}`);
    const line = parts.join(" | ");
    this.#write(line, this.#tty);
    if (this.#tty && last) this.#write("", false);
  }
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000 || Number.isInteger(v)) return String(Math.round(v * 100) / 100);
  return v.toPrecision(4);
}

/** `75` -> `1m15s`. */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
