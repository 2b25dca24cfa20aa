import { describe, expect, it } from "vitest";
import type { Schemas } from "./api";
import { clusterPlanText, planFailure, summarisePlan, withPlanRun, withStorePlanRun, type OperationPreview, type PlannedObject } from "./clusterplan";

const obj = (kind: string, name: string, change: PlannedObject["change"], fields: string[] = []): PlannedObject => ({ kind, name, change, fields });

const STORE = "0190a000-0000-7000-8000-000000000001";
const OTHER = "0190a000-0000-7000-8000-000000000002";
const PLAN_RUN = "0190a000-0000-7000-8000-0000000000ff";

const target = (store: string, would = "start store.repair@1") => ({
  run_id: `run-${store}`,
  store_id: store,
  subject: `store:${store}`,
  kind: "store.provision" as const,
  version: 1,
  status: "succeeded" as const,
  would,
});

const pending = (): OperationPreview => ({
  matched: 2,
  targets: [target(STORE), target(OTHER)],
  cluster_plan: { run_id: PLAN_RUN, state: "pending" },
});

describe("summarisePlan", () => {
  it("counts each change, shows the changed objects in order and only counts the unchanged", () => {
    const objects = [
      obj("Secret", "credentials", "unchanged"),
      obj("NetworkPolicy", "allow-dns", "create"),
      obj("ResourceQuota", "store-quota", "update", ["/spec/hard/pods"]),
      ...Array.from({ length: 11 }, (_, i) => obj("Service", `s${i}`, "unchanged")),
    ];
    const s = summarisePlan({ objects });
    expect(s.counts).toEqual({ create: 1, update: 1, delete: 0, unchanged: 12 });
    expect(s.changed.map((o) => `${o.kind}/${o.name}`)).toEqual(["NetworkPolicy/allow-dns", "ResourceQuota/store-quota"]);
    expect(s.unchanged).toHaveLength(12);
    expect(s.label).toBe("1 to create, 1 to update, 12 unchanged");
  });
  it("says when nothing would change, and when there are no objects", () => {
    expect(summarisePlan({ objects: [obj("Secret", "credentials", "unchanged")] }).label).toBe("nothing would change (1 unchanged)");
    expect(summarisePlan({ objects: [] }).label).toBe("no objects");
    expect(summarisePlan({ objects: [obj("Namespace", "store-x", "delete")] }).label).toBe("1 to delete");
  });
});

describe("plan words", () => {
  it("names the action that would fail", () => {
    expect(planFailure("repair", "the credentials Secret is missing")).toBe("The repair would fail: the credentials Secret is missing");
  });
  it("says what each plan state means", () => {
    expect(clusterPlanText({ run_id: PLAN_RUN, state: "ready" })).toMatch(/nothing was written/);
    expect(clusterPlanText({ run_id: PLAN_RUN, state: "pending" })).toMatch(/^Cluster plan pending/);
    expect(clusterPlanText({ run_id: PLAN_RUN, state: "failed", error: "boom" })).toBe("Cluster plan failed: boom");
  });
});

describe("withPlanRun", () => {
  const run = (status: "running" | "succeeded" | "failed" | "cancelled", output?: unknown, error?: string) => ({
    id: PLAN_RUN,
    status,
    ...(output === undefined ? {} : { output }),
    ...(error === undefined ? {} : { error }),
  });
  it("puts each store's plan from the run's output into its target and makes the plan ready", () => {
    const out = withPlanRun(
      pending(),
      run("succeeded", {
        stores: [
          { store_id: OTHER, objects: [{ kind: "Namespace", name: "store-o", change: "unchanged" }], error: "its namespace is not its own" },
          { store_id: STORE, objects: [{ kind: "ResourceQuota", name: "store-quota", change: "update", fields: ["/spec/hard/pods"], note: null }], error: null },
        ],
      }),
    );
    expect(out.cluster_plan).toEqual({ run_id: PLAN_RUN, state: "ready" });
    expect(out.targets[0]!.plan).toEqual({ objects: [obj("ResourceQuota", "store-quota", "update", ["/spec/hard/pods"])] });
    expect(out.targets[1]!.plan).toEqual({ objects: [obj("Namespace", "store-o", "unchanged")], error: "its namespace is not its own" });
  });
  it("fails the plan with the run's error when the run failed or was cancelled", () => {
    expect(withPlanRun(pending(), run("failed", undefined, "step preview: forbidden")).cluster_plan).toEqual({
      run_id: PLAN_RUN,
      state: "failed",
      error: "step preview: forbidden",
    });
    expect(withPlanRun(pending(), run("cancelled")).cluster_plan?.error).toBe("the preview run is cancelled");
    expect(withPlanRun(pending(), run("succeeded", { nope: 1 })).cluster_plan?.state).toBe("failed");
  });
  it("leaves the preview as it is while the run is under way, for another run, or with no plan pending", () => {
    const p = pending();
    expect(withPlanRun(p, run("running"))).toBe(p);
    expect(withPlanRun(p, undefined)).toBe(p);
    expect(withPlanRun(p, { ...run("succeeded", { stores: [] }), id: STORE })).toBe(p);
    const ready: OperationPreview = { ...p, cluster_plan: { run_id: PLAN_RUN, state: "ready" } };
    expect(withPlanRun(ready, run("failed"))).toBe(ready);
    const none: OperationPreview = { matched: 0, targets: [] };
    expect(withPlanRun(none, run("succeeded", { stores: [] }))).toBe(none);
  });
});

describe("withStorePlanRun", () => {
  const store = { id: STORE } as Schemas["Store"];
  const answer: Schemas["StoreAction"] = { store, not_started: "dry_run", cluster_plan: { run_id: PLAN_RUN, state: "pending" } };
  it("fills a single store's pending dry run in from its run: the store's plan, the plan ready", () => {
    const out = withStorePlanRun(answer, {
      id: PLAN_RUN,
      status: "succeeded",
      output: { stores: [{ store_id: STORE, objects: [{ kind: "ResourceQuota", name: "store-quota", change: "update", fields: ["/spec/hard/pods"] }] }] },
    });
    expect(out.cluster_plan).toEqual({ run_id: PLAN_RUN, state: "ready" });
    expect(out.plan).toEqual({ objects: [obj("ResourceQuota", "store-quota", "update", ["/spec/hard/pods"])] });
    expect(out.store).toBe(store);
  });
  it("fails it with the run's error, and leaves it while the run is under way", () => {
    expect(withStorePlanRun(answer, { id: PLAN_RUN, status: "failed", error: "boom" }).cluster_plan).toEqual({ run_id: PLAN_RUN, state: "failed", error: "boom" });
    expect(withStorePlanRun(answer, { id: PLAN_RUN, status: "running" })).toBe(answer);
    expect(withStorePlanRun(answer, undefined)).toBe(answer);
  });
});
