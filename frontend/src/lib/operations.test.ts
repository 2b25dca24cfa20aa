import { describe, expect, it } from "vitest";
import {
  buildCreateOperation,
  carriedLabel,
  controlsFor,
  DEFAULT_BULK_FORM,
  describeSelection,
  formErrors,
  isFinal,
  OPERATION_STATES,
  progressSummary,
  progressView,
  rerunFromChoices,
  selectorLabel,
} from "./operations";

const progress = (p: Partial<Record<"matched" | "pending" | "running" | "succeeded" | "failed" | "skipped", number>>) => ({
  matched: 0,
  pending: 0,
  running: 0,
  succeeded: 0,
  failed: 0,
  skipped: 0,
  ...p,
});

describe("progress", () => {
  it("draws one segment per state with targets, in percent of the matched", () => {
    const v = progressView(progress({ matched: 8, succeeded: 4, failed: 1, skipped: 1, running: 2 }));
    expect(v.done).toBe(6);
    expect(v.donePercent).toBe(75);
    expect(v.segments).toEqual([
      { state: "succeeded", count: 4, percent: 50 },
      { state: "failed", count: 1, percent: 12.5 },
      { state: "skipped", count: 1, percent: 12.5 },
      { state: "running", count: 2, percent: 25 },
    ]);
  });
  it("rounds the share done down: 100% only when every target is done", () => {
    expect(progressView(progress({ matched: 3, succeeded: 2, running: 1 })).donePercent).toBe(66);
    expect(progressView(progress({ matched: 1000, succeeded: 999, pending: 1 })).donePercent).toBe(99);
    expect(progressView(progress({ matched: 3, succeeded: 3 })).donePercent).toBe(100);
  });
  it("shows nothing done (not NaN) when nothing matched", () => {
    const v = progressView(progress({}));
    expect(v).toEqual({ done: 0, donePercent: 0, segments: [] });
    expect(progressSummary(progress({}))).toBe("0 of 0 done (0%)");
    expect(progressSummary(progress({ matched: 4, succeeded: 1, failed: 1, pending: 2 }))).toBe("2 of 4 done (50%)");
  });
});

describe("controls", () => {
  it("offers each control only in the states the API accepts it in", () => {
    expect(controlsFor("running")).toEqual(["pause", "cancel"]);
    expect(controlsFor("paused")).toEqual(["resume", "cancel"]);
    expect(controlsFor("awaiting_approval")).toEqual(["approve", "pause", "cancel"]);
    for (const s of ["succeeded", "stopped", "cancelled"] as const) {
      expect(controlsFor(s)).toEqual([]);
      expect(isFinal(s)).toBe(true);
    }
  });
  it("calls only the ended states final (they stop the polling)", () => {
    expect(OPERATION_STATES.filter((s) => !isFinal(s))).toEqual(["running", "paused", "awaiting_approval"]);
  });
});

describe("the CreateOperation body", () => {
  it("selects the filter's status and kind and defaults to a retry, 10 at a time", () => {
    expect(buildCreateOperation({ status: "failed" }, DEFAULT_BULK_FORM, true)).toEqual({
      ok: true,
      body: { action: "retry", selector: { status: "failed", all: false }, max_concurrency: 10, dry_run: true },
    });
    const r = buildCreateOperation({ status: "failed", kind: "store.provision" }, DEFAULT_BULK_FORM, false);
    expect(r.ok && r.body.selector).toEqual({ status: "failed", kind: "store.provision", all: false });
    expect(r.ok && r.body.dry_run).toBe(false);
  });
  it("adds the canary, the failure budget and a rerun's step", () => {
    const r = buildCreateOperation(
      { status: "failed", kind: "store.provision" },
      { ...DEFAULT_BULK_FORM, action: "rerun", fromStep: "setup", maxConcurrency: " 3 ", canary: true, canaryCount: "2", canaryThen: "continue", budget: true, budgetCount: "0" },
      true,
    );
    expect(r).toEqual({
      ok: true,
      body: {
        action: "rerun",
        from_step: "setup",
        selector: { status: "failed", kind: "store.provision", all: false },
        max_concurrency: 3,
        canary: { count: 2, then: "continue" },
        failure_budget: { count: 0 },
        dry_run: true,
      },
    });
  });
  it("drops the step for other actions and the unticked canary and budget's numbers", () => {
    const r = buildCreateOperation(
      { status: "failed", kind: "store.provision" },
      { ...DEFAULT_BULK_FORM, action: "repair", fromStep: "setup", canaryCount: "x", budgetCount: "y" },
      true,
    );
    expect(r.ok && r.body).toEqual({ action: "repair", selector: { status: "failed", kind: "store.provision", all: false }, max_concurrency: 10, dry_run: true });
  });
  it("refuses what the API would: no status, bad numbers, a step without a kind", () => {
    const r = buildCreateOperation(
      {},
      { ...DEFAULT_BULK_FORM, action: "rerun", fromStep: "setup", maxConcurrency: "0", canary: true, canaryCount: "1.5", budget: true, budgetCount: "-1" },
      true,
    );
    expect(r.ok).toBe(false);
    expect(!r.ok && Object.keys(r.errors).sort()).toEqual(["budgetCount", "canaryCount", "fromStep", "maxConcurrency", "selector"]);
    expect(buildCreateOperation({ status: "failed" }, { ...DEFAULT_BULK_FORM, maxConcurrency: "10001" }, true).ok).toBe(false);
  });
  it("sends a resize's plan and an upgrade's channel, and only for those actions", () => {
    const filter = { status: "succeeded", kind: "store.provision" } as const;
    const resize = buildCreateOperation(filter, { ...DEFAULT_BULK_FORM, action: "resize", toPlan: " business ", channel: "edge" }, true);
    expect(resize.ok && resize.body.plan).toBe("business");
    expect(resize.ok && resize.body.channel).toBeUndefined();
    const own = buildCreateOperation(filter, { ...DEFAULT_BULK_FORM, action: "upgrade", toPlan: "business" }, true);
    expect(own.ok && [own.body.plan, own.body.channel]).toEqual([undefined, undefined]);
    const edge = buildCreateOperation(filter, { ...DEFAULT_BULK_FORM, action: "upgrade", channel: "edge" }, false);
    expect(edge.ok && edge.body.channel).toBe("edge");
    const none = buildCreateOperation(filter, { ...DEFAULT_BULK_FORM, action: "resize" }, true);
    expect(!none.ok && Object.keys(none.errors)).toEqual(["toPlan"]);
    expect(formErrors({ plan: "unknown plan", channel: "unknown channel" })).toEqual({ toPlan: "unknown plan", channel: "unknown channel" });
  });
  it("puts the API's field errors next to the form's fields", () => {
    expect(formErrors({ max_concurrency: "too many", canary: "give exactly one of count or percent", other: "x" })).toEqual({
      maxConcurrency: "too many",
      canaryCount: "give exactly one of count or percent",
    });
  });
  it("says what it is about to do", () => {
    expect(describeSelection({ status: "failed", kind: "store.provision" }, "retry")).toBe("Retry every failed store.provision run (each subject's newest)");
    expect(describeSelection({ status: "failed" }, "cancel")).toBe("Cancel every failed run (each subject's newest)");
  });
});

describe("the selector shown", () => {
  it("names the fields set, leaving out nulls and all=false", () => {
    const nulls = { status: "failed", kind: null, all: false } as unknown as Parameters<typeof selectorLabel>[0];
    expect(selectorLabel(nulls)).toBe("status=failed");
    expect(selectorLabel({ kind: "store.provision", store_ids: ["a", "b"], all: true })).toBe("kind=store.provision store_ids=a,b all=true");
    expect(selectorLabel({ all: false })).toBe("");
  });
});

describe("reruns", () => {
  it("says how many steps were carried over, only for a rerun from a step", () => {
    expect(carriedLabel({ carried_steps: 2, rerun_of: "r1" })).toBe("2 steps carried over from");
    expect(carriedLabel({ carried_steps: 1, rerun_of: "r1" })).toBe("1 step carried over from");
    expect(carriedLabel({ carried_steps: 0, rerun_of: "r1" })).toBeNull();
    expect(carriedLabel({ carried_steps: 0 })).toBeNull();
  });
  it("offers the steps whose earlier steps all succeeded", () => {
    const steps = [
      { name: "c", position: 2, status: "failed" as const },
      { name: "a", position: 0, status: "succeeded" as const },
      { name: "b", position: 1, status: "succeeded" as const },
      { name: "d", position: 3, status: "pending" as const },
    ];
    expect(rerunFromChoices(steps)).toEqual(["b", "c"]);
    expect(rerunFromChoices([])).toEqual([]);
  });
});
