import { describe, expect, it } from "vitest";
import type { components } from "../api/schema";
import { formatSpan, formatTick, shapeTimeline } from "./timeline";

type Step = components["schemas"]["StepView"];
const T0 = Date.parse("2026-11-30T10:00:00.000Z");
const at = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();
const step = (p: Partial<Step> & { name: string; position: number }): Step => ({ status: "pending", attempts: 0, polls: 0, waited_ms: 0, ...p });

describe("shapeTimeline", () => {
  it("puts finished steps on an axis from the run's start, in position order", () => {
    const t = shapeTimeline(
      {
        created_at: at(-500),
        started_at: at(0),
        finished_at: at(4000),
        steps: [
          step({ name: "b", position: 1, status: "succeeded", attempts: 1, started_at: at(1500), finished_at: at(3900) }),
          step({ name: "a", position: 0, status: "succeeded", attempts: 1, started_at: at(100), finished_at: at(1500) }),
        ],
      },
      T0 + 99_999,
    );
    expect(t.origin).toBe(T0);
    expect(t.spanMs).toBe(4000);
    expect(t.bars.map((b) => [b.name, b.kind, b.startMs, b.endMs, b.open, b.label])).toEqual([
      ["a", "succeeded", 100, 1500, false, "succeeded, 1.4 s"],
      ["b", "succeeded", 1500, 3900, false, "succeeded, 2.4 s"],
    ]);
  });

  it("shows retries, polls, a backoff and a poll wait distinctly, open bars ending now", () => {
    const now = T0 + 10_000;
    const t = shapeTimeline(
      {
        created_at: at(0),
        started_at: at(0),
        steps: [
          step({ name: "ns", position: 0, status: "succeeded", attempts: 3, started_at: at(0), finished_at: at(2000), last_error: "429" }),
          step({ name: "pods", position: 1, status: "waiting", wait_kind: "poll", attempts: 1, polls: 4, wait_reason: "pods not ready", started_at: at(2000), next_attempt_at: at(12_000) }),
          step({ name: "db", position: 2, status: "waiting", wait_kind: "backoff", attempts: 2, started_at: at(3000), last_error: "timeout", next_attempt_at: at(9000) }),
          // A transient retry is a backoff too, whatever its last error says.
          step({ name: "dns", position: 5, status: "waiting", wait_kind: "transient", attempts: 1, started_at: at(9000), next_attempt_at: at(11_000) }),
          step({ name: "wp", position: 3, status: "running", attempts: 1, started_at: at(8000) }),
          step({ name: "seed", position: 4 }),
        ],
      },
      now,
    );
    expect(t.spanMs).toBe(10_000);
    expect(t.bars.map((b) => [b.name, b.kind, b.startMs, b.endMs, b.open, b.retried, b.label])).toEqual([
      ["ns", "succeeded", 0, 2000, false, true, "succeeded, 2 s, 3 attempts (retried)"],
      ["pods", "waiting", 2000, 10_000, true, false, "waiting: pods not ready, 8 s so far, polled 4×, next attempt in 2 s"],
      ["db", "backoff", 3000, 10_000, true, true, "waiting to retry after an error, 7 s so far, 2 attempts (retried), next attempt due"],
      ["wp", "running", 8000, 10_000, true, false, "running, 2 s so far"],
      ["seed", "pending", null, null, false, false, "not started"],
      ["dns", "backoff", 9000, 10_000, true, false, "waiting to retry after a transient error, 1 s so far, next attempt in 1 s"],
    ]);
  });

  it("uses the first step's start when it precedes the run's, and has no origin before anything starts", () => {
    const early = shapeTimeline(
      { created_at: at(0), started_at: at(500), steps: [step({ name: "a", position: 0, status: "failed", attempts: 1, started_at: at(200), finished_at: at(700) })] },
      T0,
    );
    expect(early.origin).toBe(T0 + 200);
    expect(early.bars[0]).toMatchObject({ startMs: 0, endMs: 500, kind: "failed", label: "failed, 500 ms" });
    const none = shapeTimeline({ created_at: at(0), steps: [step({ name: "a", position: 0 })] }, T0 + 5000);
    expect(none).toEqual({
      origin: null,
      spanMs: 1,
      bars: [{ name: "a", position: 0, kind: "pending", startMs: null, endMs: null, open: false, attempts: 0, polls: 0, retried: false, label: "not started" }],
    });
  });

  it("ends a skipped step that has a start but no finish where it started", () => {
    const t = shapeTimeline(
      { created_at: at(0), started_at: at(0), finished_at: at(3000), steps: [step({ name: "a", position: 0, status: "skipped", attempts: 1, started_at: at(1000) })] },
      T0 + 60_000,
    );
    expect(t.bars[0]).toMatchObject({ startMs: 1000, endMs: 1000, open: false, label: "skipped, 0 ms" });
    expect(t.spanMs).toBe(3000);
  });
});

describe("formatSpan / formatTick", () => {
  it("formats offsets", () => {
    expect([0, 850, 1000, 2450, 59_940, 125_000].map(formatSpan)).toEqual(["0 ms", "850 ms", "1 s", "2.5 s", "59.9 s", "2 min 5 s"]);
    expect([0, 500, 1500].map(formatTick)).toEqual(["0 s", "500 ms", "1.5 s"]);
  });
});
