import { describe, expect, it } from "vitest";
import type { components } from "../api/schema";
import { bucketHours, bucketLabel, formatMs, orderSteps, percent, runBuckets, runTotals, waitingShare, windowHours, windowLabel } from "./fleet";

type StepInsight = components["schemas"]["StepInsightView"];
const H = 3_600_000;
const T = Date.parse("2026-11-30T10:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();

describe("the window in the URL", () => {
  it("takes 24, 168 or 720 and falls back to 24 for anything else", () => {
    expect(windowHours(new URLSearchParams("hours=168"))).toBe(168);
    expect(windowHours(new URLSearchParams("hours=720"))).toBe(720);
    expect(windowHours(new URLSearchParams("hours=24"))).toBe(24);
    expect(windowHours(new URLSearchParams(""))).toBe(24);
    expect(windowHours(new URLSearchParams("hours=5"))).toBe(24);
    expect(windowHours(new URLSearchParams("hours=abc"))).toBe(24);
    expect(windowLabel(168)).toBe("7 days");
    expect(windowLabel(5)).toBe("5 h");
  });
  it("uses hourly bars for a day, 6-hour bars for a week, daily bars for a month", () => {
    expect([bucketHours(24), bucketHours(168), bucketHours(720)]).toEqual([1, 6, 24]);
  });
});

describe("runBuckets", () => {
  it("sums definitions per hour and fills the hours without runs with zero", () => {
    const since = iso(T - 3 * H + 20 * 60_000); // 07:20
    const rows = [
      { hour: iso(T - 3 * H), definition: "store.provision", succeeded: 2, failed: 1, cancelled: 0 },
      { hour: iso(T - 3 * H), definition: "store.delete", succeeded: 1, failed: 0, cancelled: 1 },
      { hour: iso(T - H), definition: "store.provision", succeeded: 0, failed: 0, cancelled: 3 },
    ];
    const b = runBuckets(rows, since, T + 20 * 60_000, 1);
    expect(b).toEqual([
      { start: T - 3 * H, succeeded: 3, failed: 1, cancelled: 1 },
      { start: T - 2 * H, succeeded: 0, failed: 0, cancelled: 0 },
      { start: T - H, succeeded: 0, failed: 0, cancelled: 3 },
      { start: T, succeeded: 0, failed: 0, cancelled: 0 },
    ]);
    expect(runTotals(b)).toEqual({ succeeded: 3, failed: 1, cancelled: 4 });
  });
  it("groups hours into bigger buckets", () => {
    const rows = [
      { hour: iso(T), definition: "a", succeeded: 1, failed: 0, cancelled: 0 },
      { hour: iso(T + 5 * H), definition: "a", succeeded: 2, failed: 0, cancelled: 0 },
      { hour: iso(T + 6 * H), definition: "a", succeeded: 4, failed: 1, cancelled: 0 },
    ];
    const b = runBuckets(rows, iso(T), T + 11 * H, 6);
    expect(b.map((x) => [x.start - T, x.succeeded, x.failed])).toEqual([
      [0, 3, 0],
      [6 * H, 4, 1],
    ]);
  });
  it("an empty window is all zeros, one bucket per hour", () => {
    const b = runBuckets([], iso(T - 24 * H), T, 1);
    expect(b.length).toBe(25);
    expect(runTotals(b)).toEqual({ succeeded: 0, failed: 0, cancelled: 0 });
  });
  it("keeps an hour after `now` (clock skew) instead of dropping it", () => {
    const b = runBuckets([{ hour: iso(T + 2 * H), definition: "a", succeeded: 1, failed: 0, cancelled: 0 }], iso(T), T, 1);
    expect(b.map((x) => x.succeeded)).toEqual([0, 0, 1]);
  });
});

describe("labels", () => {
  it("names histogram buckets", () => {
    expect(bucketLabel(1, 5)).toBe("1–5 s");
    expect(bucketLabel(30, 60)).toBe("30 s–1 min");
    expect(bucketLabel(60, 120)).toBe("1–2 min");
    expect(bucketLabel(0, 1)).toBe("< 1 s");
    expect(bucketLabel(3600)).toBe("≥ 1 h");
    expect(bucketLabel(0.5, 1)).toBe("500 ms–1 s");
  });
  it("formats rates as percentages", () => {
    expect(percent(0)).toBe("0%");
    expect(percent(0.125)).toBe("12.5%");
    expect(percent(1)).toBe("100%");
    expect(percent(1 / 3)).toBe("33.3%");
    expect(percent(0.0004)).toBe("< 0.1%");
  });
  it("formats durations", () => {
    expect(formatMs(840.4)).toBe("840 ms");
    expect(formatMs(12_340)).toBe("12.3 s");
    expect(formatMs(245_000)).toBe("4 min 05 s");
    expect(formatMs(7_380_000)).toBe("2 h 03 min");
    expect(formatMs(undefined)).toBe("—");
  });
});

const step = (p: Partial<StepInsight> & { step: string }): StepInsight => ({
  definition: "store.provision",
  version: 1,
  count: 10,
  failed: 0,
  failure_rate: 0,
  p50_ms: 0,
  p95_ms: 0,
  p99_ms: 0,
  exact: true,
  retries: 0,
  polls: 0,
  waiting_ms: 0,
  working_ms: 0,
  errors: [],
  ...p,
});

describe("steps", () => {
  const items = [
    step({ step: "a", failed: 1, failure_rate: 0.1, p95_ms: 50, waiting_ms: 5 }),
    step({ step: "b", failed: 3, failure_rate: 0.3, p95_ms: 10, waiting_ms: 0 }),
    step({ step: "c", failed: 1, failure_rate: 0.5, count: 2, p95_ms: 900, waiting_ms: 40 }),
    step({ step: "d", failed: 0, p95_ms: 50 }),
  ];
  it("orders by failures, then failure rate, then workflow order", () => {
    expect(orderSteps(items, "failures").map((s) => s.step)).toEqual(["b", "c", "a", "d"]);
    expect(orderSteps(items, "p95").map((s) => s.step)).toEqual(["c", "a", "d", "b"]);
    expect(orderSteps(items, "waiting").map((s) => s.step)).toEqual(["c", "a", "b", "d"]);
    expect(orderSteps(items, "workflow").map((s) => s.step)).toEqual(["a", "b", "c", "d"]);
  });
  it("computes the waiting share", () => {
    expect(waitingShare({ waiting_ms: 300, working_ms: 100 })).toBe(0.75);
    expect(waitingShare({ waiting_ms: 0, working_ms: 0 })).toBeNull();
  });
});
