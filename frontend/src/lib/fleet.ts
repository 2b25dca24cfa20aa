// Data shaping for the fleet overview (GET /api/v1/insights/fleet, /steps, /runs): the window
// kept in the URL, the runs-per-hour series with empty hours filled in as zero, duration
// bucket labels, percentages and durations as text, and the per-step table's order.
import type { components } from "../api/schema";

type RunHour = components["schemas"]["RunHourView"];
type StepInsight = components["schemas"]["StepInsightView"];

/** The windows offered, in hours (the API takes 1–720). */
export const WINDOWS = [
  { hours: 24, label: "24 h" },
  { hours: 168, label: "7 days" },
  { hours: 720, label: "30 days" },
] as const;
export const DEFAULT_WINDOW = 24;

/** The window in `?hours=`, when it is one of WINDOWS; otherwise the default (24 h). */
export function windowHours(params: URLSearchParams): number {
  const h = Number(params.get("hours"));
  return WINDOWS.some((w) => w.hours === h) ? h : DEFAULT_WINDOW;
}

/** "24 h", "7 days", "30 days" (or "N h" for any other window). */
export function windowLabel(hours: number): string {
  return WINDOWS.find((w) => w.hours === hours)?.label ?? `${hours} h`;
}

/** How many hours one bar of the runs chart covers: 1 for a day, 6 for a week, 24 beyond. */
export function bucketHours(windowHours: number): number {
  if (windowHours <= 24) return 1;
  if (windowHours <= 168) return 6;
  return 24;
}

export interface RunBucket {
  /** The bucket's start (epoch ms, on an hour). */
  start: number;
  succeeded: number;
  failed: number;
  cancelled: number;
}

const HOUR = 3_600_000;

/**
 * Runs that ended, summed over every definition, in consecutive buckets of `size` hours from
 * the hour `since` falls in up to the hour `now` falls in. Hours the API left out (no runs)
 * are zero; an hour outside that span (clock skew) still counts, in a bucket added for it.
 */
export function runBuckets(rows: RunHour[], since: string, now: number, size: number): RunBucket[] {
  const first = Math.floor(Date.parse(since) / HOUR) * HOUR;
  let last = Math.floor(now / HOUR) * HOUR;
  let start = first;
  for (const r of rows) {
    const h = Date.parse(r.hour);
    if (h < start) start = Math.floor(h / HOUR) * HOUR;
    if (h > last) last = Math.floor(h / HOUR) * HOUR;
  }
  const span = size * HOUR;
  const n = Math.floor((last - start) / span) + 1;
  const out: RunBucket[] = Array.from({ length: n }, (_, i) => ({ start: start + i * span, succeeded: 0, failed: 0, cancelled: 0 }));
  for (const r of rows) {
    const b = out[Math.floor((Date.parse(r.hour) - start) / span)]!;
    b.succeeded += r.succeeded;
    b.failed += r.failed;
    b.cancelled += r.cancelled;
  }
  return out;
}

/** A duration in seconds as a bucket edge: "500 ms", "5 s", "2 min", "1 h". */
function edge(seconds: number): [number, string] {
  if (seconds < 1) return [seconds * 1000, "ms"];
  if (seconds < 60) return [seconds, "s"];
  if (seconds < 3600) return [seconds / 60, "min"];
  return [seconds / 3600, "h"];
}
const num = (n: number) => String(Number(n.toFixed(1)));

/** A histogram bucket's label: "1–5 s", "30 s–1 min", "≥ 1 h" (the open last bucket). */
export function bucketLabel(from: number, to?: number | null): string {
  const [f, fu] = edge(from);
  if (to === undefined || to === null) return `≥ ${num(f)} ${fu}`;
  const [t, tu] = edge(to);
  if (from === 0) return `< ${num(t)} ${tu}`;
  return fu === tu ? `${num(f)}–${num(t)} ${tu}` : `${num(f)} ${fu}–${num(t)} ${tu}`;
}

/** A rate (0–1) as a percentage: "0%", "12.5%", "100%", "< 0.1%" for a small non-zero rate. */
export function percent(rate: number): string {
  if (rate === 0) return "0%";
  if (rate < 0.001) return "< 0.1%";
  return `${Number((rate * 100).toFixed(1))}%`;
}

/** Milliseconds as text: "840 ms", "12.3 s", "4 min 05 s", "2 h 03 min"; "—" when absent. */
export function formatMs(ms: number | undefined | null): string {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number(s.toFixed(1))} s`;
  const total = Math.round(s);
  if (total < 3600) return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, "0")} s`;
  const m = Math.round(total / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/** The share of a step's time spent waiting (polls, retry backoffs); null when it took no time. */
export function waitingShare(s: Pick<StepInsight, "waiting_ms" | "working_ms">): number | null {
  const total = s.waiting_ms + s.working_ms;
  return total > 0 ? s.waiting_ms / total : null;
}

export const STEP_ORDERS = [
  { key: "failures", label: "Most failures" },
  { key: "p95", label: "Slowest (p95)" },
  { key: "waiting", label: "Most time waiting" },
  { key: "workflow", label: "Workflow order" },
] as const;
export type StepOrder = (typeof STEP_ORDERS)[number]["key"];

/**
 * The per-step rows in the chosen order. The API lists them by definition, version and step
 * order ("workflow"); ties in any other order keep that order.
 */
export function orderSteps(items: StepInsight[], order: StepOrder): StepInsight[] {
  const indexed = items.map((s, i) => ({ s, i }));
  const key = (s: StepInsight): number[] => {
    switch (order) {
      case "failures":
        return [s.failed, s.failure_rate];
      case "p95":
        return [s.p95_ms];
      case "waiting":
        return [s.waiting_ms];
      case "workflow":
        return [];
    }
  };
  indexed.sort((a, b) => {
    const ka = key(a.s);
    const kb = key(b.s);
    for (let j = 0; j < ka.length; j++) if (ka[j] !== kb[j]) return kb[j]! - ka[j]!;
    return a.i - b.i;
  });
  return indexed.map((x) => x.s);
}

/** Total runs in the buckets, per outcome. */
export function runTotals(buckets: RunBucket[]): { succeeded: number; failed: number; cancelled: number } {
  return buckets.reduce((t, b) => ({ succeeded: t.succeeded + b.succeeded, failed: t.failed + b.failed, cancelled: t.cancelled + b.cancelled }), {
    succeeded: 0,
    failed: 0,
    cancelled: 0,
  });
}
