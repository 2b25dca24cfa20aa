// A run's timeline: its steps as bars on one time axis, shaped from the run detail response
// (each step's started_at / finished_at). Times are milliseconds from the origin (the run's
// start, or its first step's start if that is earlier). A waiting step says why
// (`wait_kind`): a readiness poll is drawn as waiting, a retry backoff or a transient retry
// as a backoff.
import type { components } from "../api/schema";

type Step = components["schemas"]["StepView"];
type Run = Pick<components["schemas"]["RunDetail"], "created_at" | "started_at" | "finished_at" | "steps">;

/** How a bar is drawn; each has a text label too, never colour alone. */
export type BarKind = "succeeded" | "failed" | "running" | "waiting" | "backoff" | "pending" | "skipped";

export interface TimelineBar {
  name: string;
  position: number;
  kind: BarKind;
  /** ms from the origin; null when the step never started. */
  startMs: number | null;
  /** ms from the origin; a step still running or waiting ends at `now`. */
  endMs: number | null;
  /** Still going: its end is `now`, not a finished_at. */
  open: boolean;
  attempts: number;
  polls: number;
  /** Executed more than once. */
  retried: boolean;
  /** The bar's text: status, duration, retries, polls, what it waits for. */
  label: string;
}

export interface Timeline {
  /** Epoch ms of time 0, or null when nothing has started. */
  origin: number | null;
  /** The axis' length in ms (at least 1). */
  spanMs: number;
  bars: TimelineBar[];
}

function ms(at: string | undefined | null): number | null {
  if (!at) return null;
  const t = Date.parse(at);
  return Number.isNaN(t) ? null : t;
}

/** "850 ms", "2.5 s", "3 min 5 s". */
export function formatSpan(d: number): string {
  if (d < 1000) return `${Math.round(d)} ms`;
  const s = d / 1000;
  if (s < 60) return `${Number(s.toFixed(1))} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/** A tick's label: its offset from the origin ("0 s", "1.5 s", "2 min 0 s"). */
export function formatTick(offsetMs: number): string {
  return offsetMs === 0 ? "0 s" : formatSpan(offsetMs);
}

function kindOf(s: Step): BarKind {
  if (s.status === "waiting") return s.wait_kind === "poll" ? "waiting" : "backoff";
  return s.status;
}

function labelOf(s: Step, kind: BarKind, start: number | null, end: number | null, open: boolean, now: number): string {
  const parts: string[] = [];
  if (kind === "backoff") parts.push(s.wait_kind === "transient" ? "waiting to retry after a transient error" : "waiting to retry after an error");
  else if (kind === "waiting") parts.push(s.wait_reason ? `waiting: ${s.wait_reason}` : "waiting");
  else if (kind === "pending") parts.push("not started");
  else parts.push(s.status);
  if (start !== null && end !== null) parts.push(open ? `${formatSpan(end - start)} so far` : formatSpan(end - start));
  if (s.attempts > 1) parts.push(`${s.attempts} attempts (retried)`);
  if (s.polls > 0) parts.push(`polled ${s.polls}×`);
  const next = ms(s.next_attempt_at);
  if ((kind === "waiting" || kind === "backoff") && next !== null) {
    parts.push(next > now ? `next attempt in ${formatSpan(next - now)}` : "next attempt due");
  }
  return parts.join(", ");
}

/** The run's steps, in order, as bars on one axis. `now` (epoch ms) ends the open bars. */
export function shapeTimeline(run: Run, now: number): Timeline {
  const steps = [...run.steps].sort((a, b) => a.position - b.position);
  const starts = steps.map((s) => ms(s.started_at)).filter((t): t is number => t !== null);
  const runStart = ms(run.started_at);
  const candidates = runStart === null ? starts : [runStart, ...starts];
  const origin = candidates.length ? Math.min(...candidates) : null;
  const runEnd = ms(run.finished_at);
  let last = 0;
  const bars = steps.map((s): TimelineBar => {
    const kind = kindOf(s);
    const started = ms(s.started_at);
    const finished = ms(s.finished_at);
    const open = started !== null && finished === null && (kind === "running" || kind === "waiting" || kind === "backoff");
    let startMs: number | null = null;
    let endMs: number | null = null;
    if (started !== null && origin !== null) {
      startMs = started - origin;
      // A step that stopped without a finished_at (cancelled, skipped) ends where it started.
      endMs = Math.max(startMs, (finished ?? (open ? now : started)) - origin);
      last = Math.max(last, endMs);
    }
    return {
      name: s.name,
      position: s.position,
      kind,
      startMs,
      endMs,
      open,
      attempts: s.attempts,
      polls: s.polls,
      retried: s.attempts > 1,
      label: labelOf(s, kind, startMs, endMs, open, now),
    };
  });
  if (origin !== null && runEnd !== null) last = Math.max(last, runEnd - origin);
  return { origin, spanMs: Math.max(1, last), bars };
}
