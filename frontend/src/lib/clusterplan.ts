// The cluster plan of a repair or delete dry run, as the bulk form shows it (and of a single
// store's dry run, as the store page's resize form shows it): per target, the
// objects that would be created, updated (which fields) or deleted, the unchanged ones as a
// count, the action's failure; for the plan as a whole its state (ready, pending with the
// store.preview run that will hold it, failed). A pending plan is filled in from that run's
// output once it ends (`withPlanRun`, `withStorePlanRun`), as the API would have (ops/src/plan.rs, `attach`).
import type { Schemas } from "./api";

export type ClusterPlan = Schemas["ClusterPlan"];
export type StorePlan = Schemas["StorePlan"];
export type PlannedObject = Schemas["PlannedObject"];
export type ObjectChange = Schemas["ObjectChange"];
export type OperationPreview = Schemas["OperationPreview"];

/** The mark before an object, as `urumictl` prints it. */
export const CHANGE_MARK: Record<ObjectChange, string> = { create: "+", update: "~", delete: "-", unchanged: "=" };

export interface PlanSummary {
  counts: Record<ObjectChange, number>;
  /** The objects that would be created, updated or deleted, in the order they would be written. */
  changed: PlannedObject[];
  unchanged: PlannedObject[];
  /** "1 to create, 2 to update, 12 unchanged". */
  label: string;
}

/** A store's plan in counts and the objects worth showing (unchanged ones only counted). */
export function summarisePlan(plan: Pick<StorePlan, "objects">): PlanSummary {
  const counts: Record<ObjectChange, number> = { create: 0, update: 0, delete: 0, unchanged: 0 };
  for (const o of plan.objects) counts[o.change] += 1;
  const changed = plan.objects.filter((o) => o.change !== "unchanged");
  const unchanged = plan.objects.filter((o) => o.change === "unchanged");
  const parts = (["create", "update", "delete"] as const).filter((c) => counts[c] > 0).map((c) => `${counts[c]} to ${c}`);
  if (counts.unchanged > 0) parts.push(`${counts.unchanged} unchanged`);
  const label = changed.length === 0 && counts.unchanged > 0 ? `nothing would change (${counts.unchanged} unchanged)` : parts.join(", ") || "no objects";
  return { counts, changed, unchanged, label };
}

/** "The repair would fail: …" — a target's plan error, for the action previewed. */
export function planFailure(action: string, error: string): string {
  return `The ${action} would fail: ${error}`;
}

/** What the plan's state means, in words (a pending plan's run is linked beside it). */
export function clusterPlanText(plan: ClusterPlan): string {
  switch (plan.state) {
    case "ready":
      return "Cluster plan: what each target's writes would change, from a worker's server-side dry run (nothing was written).";
    case "pending":
      return "Cluster plan pending: no worker finished it in time; it will be shown here when its run ends.";
    case "failed":
      return `Cluster plan failed: ${plan.error ?? "the preview run failed"}`;
  }
}

/** The store a preview target is about: `store_id`, else its `store:<id>` subject. */
function storeOf(t: OperationPreview["targets"][number]): string | undefined {
  return t.store_id ?? (t.subject.startsWith("store:") ? t.subject.slice("store:".length) : undefined);
}

/** One store's plan as the store.preview run writes it (`fields`, `note` and `error` may be absent or null). */
interface RunStorePlan {
  store_id: string;
  objects: { kind: string; name: string; change: ObjectChange; fields?: string[] | null; note?: string | null }[];
  error?: string | null;
}

type PlanRun = Pick<Schemas["RunDetail"], "id" | "status" | "output" | "error">;

/**
 * A pending plan's store.preview run, once it ended: the plan's new state and, if it
 * succeeded, each store's plan by store id. `undefined` while it is under way, for another
 * run, or with no plan pending.
 */
function endedPlan(plan: ClusterPlan | undefined, run: PlanRun | undefined): { plan: ClusterPlan; stores?: Map<string, StorePlan> } | undefined {
  if (!plan || plan.state !== "pending" || !run || run.id !== plan.run_id) return undefined;
  if (run.status === "failed" || run.status === "cancelled") {
    return { plan: { ...plan, state: "failed", error: run.error ?? `the preview run is ${run.status}` } };
  }
  if (run.status !== "succeeded") return undefined;
  const stores = (run.output as { stores?: RunStorePlan[] } | null | undefined)?.stores;
  if (!Array.isArray(stores)) return { plan: { ...plan, state: "failed", error: "the preview run's output is not a plan" } };
  const byStore = new Map<string, StorePlan>();
  for (const s of stores) {
    const objects: PlannedObject[] = s.objects.map((o) => ({
      kind: o.kind,
      name: o.name,
      change: o.change,
      fields: o.fields ?? [],
      ...(o.note ? { note: o.note } : {}),
    }));
    byStore.set(s.store_id, { objects, ...(s.error ? { error: s.error } : {}) });
  }
  return { plan: { ...plan, state: "ready" }, stores: byStore };
}

/**
 * A pending preview with its store.preview run's result: once the run succeeded, each target
 * gets its store's plan and the plan is ready; once it failed or was cancelled, the plan
 * failed with the run's error. Otherwise (still under way, no plan pending) `preview` as it is.
 */
export function withPlanRun(preview: OperationPreview, run: PlanRun | undefined): OperationPreview {
  const ended = endedPlan(preview.cluster_plan, run);
  if (!ended) return preview;
  const { plan, stores } = ended;
  if (!stores) return { ...preview, cluster_plan: plan };
  const targets = preview.targets.map((t) => {
    const s = stores.get(storeOf(t) ?? "");
    return s ? { ...t, plan: s } : t;
  });
  return { ...preview, targets, cluster_plan: plan };
}

/** The same for a single store's dry run (resize, suspend, …): its answer with the run's plan. */
export function withStorePlanRun(answer: Schemas["StoreAction"], run: PlanRun | undefined): Schemas["StoreAction"] {
  const ended = endedPlan(answer.cluster_plan, run);
  if (!ended) return answer;
  const s = ended.stores?.get(answer.store.id);
  return { ...answer, cluster_plan: ended.plan, ...(s ? { plan: s } : {}) };
}
