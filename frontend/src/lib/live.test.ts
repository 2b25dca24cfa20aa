import { describe, expect, it } from "vitest";
import { applyToRun, applyToStore, applyToStorePages, storeStatusOf, type RunDetail, type Store, type StreamEvent } from "./live";

const RUN = "0190-run";
const STORE = "0190-store";
const event = (kind: string, more: Partial<StreamEvent> = {}): StreamEvent => ({
  cursor: "1-1",
  id: 1,
  kind,
  actor: "worker",
  detail: {},
  created_at: "2026-01-01T00:00:00Z",
  run_id: RUN,
  store_id: STORE,
  ...more,
});
const run: RunDetail = {
  id: RUN,
  kind: "store.provision",
  status: "queued",
  created_by: "admin",
  created_at: "2026-01-01T00:00:00Z",
  lane: "interactive",
  owner: "admin",
  carried_steps: 0,
  steps: [
    { name: "namespace", position: 0, status: "pending", attempts: 0, polls: 0, waited_ms: 0 },
    { name: "quota", position: 1, status: "pending", attempts: 0, polls: 0, waited_ms: 0 },
  ],
};
const store: Store = {
  id: STORE,
  name: "Shop",
  slug: "shop",
  engine: "woocommerce",
  plan: "starter",
  channel: "stable",
  status: "provisioning",
  domains: [],
  created_by: "admin",
  timings: { created_at: "2026-01-01T00:00:00Z" },
};

describe("applyToRun", () => {
  it("moves steps through their statuses and the run to running", () => {
    const started = applyToRun(run, event("step.started", { step: "namespace", detail: { attempt: 1, poll: false } }));
    expect(started.status).toBe("running");
    expect(started.steps[0]).toMatchObject({ status: "running", attempts: 1, started_at: "2026-01-01T00:00:00Z" });
    expect(started.steps[1]?.status).toBe("pending");
    const done = applyToRun(started, event("step.succeeded", { step: "namespace" }));
    expect(done.steps[0]).toMatchObject({ status: "succeeded", finished_at: "2026-01-01T00:00:00Z" });
    expect(applyToRun(done, event("step.waiting", { step: "quota" })).steps[1]?.status).toBe("waiting");
    expect(applyToRun(done, event("run.succeeded")).status).toBe("succeeded");
    expect(applyToRun(done, event("run.failed")).status).toBe("failed");
  });

  it("says why a step waits while it waits, and forgets it when the step goes on", () => {
    const polling = applyToRun(run, event("step.waiting", { step: "namespace", detail: { reason: "not ready" } }));
    expect(polling.steps[0]).toMatchObject({ status: "waiting", wait_kind: "poll" });
    const transient = applyToRun(run, event("step.retry_scheduled", { step: "namespace", detail: { class: "transient", attempt: 1 } }));
    expect(transient.steps[0]).toMatchObject({ status: "waiting", wait_kind: "transient" });
    const backoff = applyToRun(run, event("step.retry_scheduled", { step: "namespace", detail: { class: "failure", attempt: 1 } }));
    expect(backoff.steps[0]).toMatchObject({ status: "waiting", wait_kind: "backoff" });
    const again = applyToRun(backoff, event("step.started", { step: "namespace", detail: { attempt: 2, poll: false } }));
    expect(again.steps[0]?.status).toBe("running");
    expect(again.steps[0]).not.toHaveProperty("wait_kind");
    const claimed = applyToRun({ ...polling, status: "waiting" }, event("run.claimed", { step: "namespace", detail: {} }));
    expect(claimed.steps[0]?.status).toBe("running");
    expect(claimed.steps[0]).not.toHaveProperty("wait_kind");
  });

  it("starts the next step named by a step.succeeded (one event for both, in one commit)", () => {
    const running = applyToRun(run, event("step.started", { step: "namespace", detail: { attempt: 1, poll: false } }));
    const advanced = applyToRun(
      running,
      event("step.succeeded", { step: "namespace", detail: { duration_ms: 12, next: "quota", next_attempt: 1 } }),
    );
    expect(advanced.steps[0]?.status).toBe("succeeded");
    expect(advanced.steps[1]).toMatchObject({ status: "running", attempts: 1, started_at: "2026-01-01T00:00:00Z" });
    // Without `next` (the last step, or a cancel requested) nothing else starts.
    const last = applyToRun(running, event("step.succeeded", { step: "namespace", detail: { duration_ms: 12 } }));
    expect(last.steps[1]?.status).toBe("pending");
  });

  it("starts the first step named by run.claimed and finishes the last one named by run.succeeded", () => {
    const claimed = applyToRun(run, event("run.claimed", { step: "namespace", detail: { attempt: 1 } }));
    expect(claimed.status).toBe("running");
    expect(claimed.steps[0]).toMatchObject({ status: "running", attempts: 1 });
    const ended = applyToRun(claimed, event("run.succeeded", { step: "quota", detail: { duration_ms: 3 } }));
    expect(ended.status).toBe("succeeded");
    expect(ended.steps[1]).toMatchObject({ status: "succeeded", finished_at: "2026-01-01T00:00:00Z" });
    // A claim of a run that already ran (no step named) changes only the run.
    const again = applyToRun({ ...run, status: "waiting" }, event("run.claimed"));
    expect(again.status).toBe("running");
    expect(again.steps).toEqual(run.steps);
  });

  it("does not count a poll as an attempt", () => {
    const polled = applyToRun(run, event("step.started", { step: "namespace", detail: { attempt: 3, poll: true } }));
    expect(polled.steps[0]?.attempts).toBe(0);
  });

  it("ignores other runs' events and unknown kinds, returning the same object", () => {
    expect(applyToRun(run, event("step.started", { run_id: "other", step: "namespace" }))).toBe(run);
    expect(applyToRun(run, event("store.created"))).toBe(run);
    expect(applyToRun(run, event("step.started", { step: "no-such-step" }))).not.toBe(run); // run → running
  });
});

describe("stores", () => {
  it("reads store statuses from store.<status> events only", () => {
    expect(storeStatusOf(event("store.ready"))).toBe("ready");
    expect(storeStatusOf(event("store.created"))).toBeNull();
    expect(storeStatusOf(event("store.delete_requested"))).toBeNull();
    expect(storeStatusOf(event("step.succeeded"))).toBeNull();
  });

  it("updates the store on any page, and says when the store is on none", () => {
    expect(applyToStore(store, event("store.ready")).status).toBe("ready");
    expect(applyToStore(store, event("store.ready", { store_id: "other" }))).toBe(store);
    const pages = [{ items: [store] }, { items: [] }];
    const r = applyToStorePages(pages, event("store.failed"));
    expect(r.known).toBe(true);
    expect(r.pages[0]?.items[0]?.status).toBe("failed");
    expect(pages[0]?.items[0]?.status).toBe("provisioning"); // not mutated
    expect(applyToStorePages(pages, event("store.ready", { store_id: "new" })).known).toBe(false);
    expect(applyToStorePages(pages, event("step.started")).pages).toBe(pages);
  });
});
