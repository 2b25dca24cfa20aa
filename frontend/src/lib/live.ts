// Applying the event stream to what the dashboard has fetched: a store's status from
// `store.<status>`, a run's and its steps' statuses from `run.*` / `step.*`. The patches make
// changes show at once; the dashboard also refetches (throttled) for the fields events do not
// carry (attempts, durations, outputs).
import type { components } from "../api/schema";

type S = components["schemas"];
export type Store = S["Store"];
export type StoreStatus = S["StoreStatus"];
export type StorePage = S["StorePage"];
export type RunDetail = S["RunDetail"];
export type RunSummary = S["RunSummary"];
export type RunStatus = S["RunStatus"];
export type StepStatus = S["StepStatus"];
export type WaitKind = S["WaitKind"];
export type StreamEvent = S["StreamEvent"];

export const STORE_STATUSES: readonly StoreStatus[] = ["provisioning", "ready", "failed", "suspended", "deleting", "deleted"];
export const RUN_STATUSES: readonly RunStatus[] = ["queued", "running", "waiting", "succeeded", "failed", "cancelled"];

/** `store.ready` → `ready`; other `store.*` kinds (`store.created`, …) are not statuses. */
export function storeStatusOf(e: Pick<StreamEvent, "kind">): StoreStatus | null {
  if (!e.kind.startsWith("store.")) return null;
  const s = e.kind.slice("store.".length);
  return (STORE_STATUSES as readonly string[]).includes(s) ? (s as StoreStatus) : null;
}

const STEP_STATUS: Record<string, StepStatus> = {
  "step.started": "running",
  "step.succeeded": "succeeded",
  "step.failed": "failed",
  "step.waiting": "waiting",
  "step.retry_scheduled": "waiting",
};

const RUN_STATUS: Record<string, RunStatus> = {
  "run.claimed": "running",
  "run.released": "waiting",
  "run.retried": "queued",
  "run.succeeded": "succeeded",
  "run.failed": "failed",
  "run.cancelled": "cancelled",
};

/** Whether the event is about this run. */
export function concernsRun(run: Pick<RunDetail, "id">, e: StreamEvent): boolean {
  return e.run_id === run.id;
}

function attemptOf(detail: unknown): number | undefined {
  if (typeof detail !== "object" || detail === null) return undefined;
  const d = detail as { attempt?: unknown; poll?: unknown };
  return d.poll !== true && typeof d.attempt === "number" ? d.attempt : undefined;
}

/**
 * A step started in the commit of another change, named by that change's one event: a
 * `step.succeeded` names the next step (`next`, `next_attempt`), a `run.claimed` the fresh
 * run's first step (`step`, `attempt`).
 */
function startedWith(e: StreamEvent): { step: string; attempt: number | undefined } | undefined {
  if (typeof e.detail !== "object" || e.detail === null) return undefined;
  if (e.kind === "step.succeeded") {
    const d = e.detail as { next?: unknown; next_attempt?: unknown };
    if (typeof d.next !== "string") return undefined;
    return { step: d.next, attempt: typeof d.next_attempt === "number" ? d.next_attempt : undefined };
  }
  if (e.kind === "run.claimed" && e.step) {
    const d = e.detail as { attempt?: unknown };
    return { step: e.step, attempt: typeof d.attempt === "number" ? d.attempt : undefined };
  }
  return undefined;
}

/** Why a step the event sets waiting waits: a readiness poll, or a retry after an error. */
function waitKindOf(e: StreamEvent): WaitKind | undefined {
  if (e.kind === "step.waiting") return "poll";
  if (e.kind !== "step.retry_scheduled") return undefined;
  const d = (typeof e.detail === "object" && e.detail !== null ? e.detail : {}) as { class?: unknown };
  return d.class === "transient" ? "transient" : "backoff";
}

/** The run's steps with `name` marked running (attempt counted); `undefined` if unchanged. */
function startStep(steps: RunDetail["steps"], name: string, attempt: number | undefined, at: string) {
  const i = steps.findIndex((s) => s.name === name);
  const s = steps[i];
  if (!s || s.status === "running") return undefined;
  const attempts = attempt !== undefined && attempt > s.attempts ? { attempts: attempt } : {};
  const out = [...steps];
  const { wait_kind: _was, ...rest } = s;
  out[i] = { ...rest, ...attempts, started_at: s.started_at ?? at, status: "running" };
  return out;
}

/** The run with the event's status change applied (the same object when nothing changed). */
export function applyToRun(run: RunDetail, e: StreamEvent): RunDetail {
  if (!concernsRun(run, e)) return run;
  const stepStatus = STEP_STATUS[e.kind];
  if (stepStatus && e.step) {
    let changed = false;
    const steps = run.steps.map((s) => {
      if (s.name !== e.step || s.status === stepStatus) return s;
      changed = true;
      const started = stepStatus === "running" && !s.started_at ? { started_at: e.created_at } : {};
      const attempt = e.kind === "step.started" ? attemptOf(e.detail) : undefined;
      const attempts = attempt !== undefined && attempt > s.attempts ? { attempts: attempt } : {};
      const finished = stepStatus === "succeeded" || stepStatus === "failed" ? { finished_at: e.created_at } : {};
      // `wait_kind` is said while the step waits, and only then.
      const { wait_kind: _was, ...rest } = s;
      const waitKind = waitKindOf(e);
      return { ...rest, ...started, ...finished, ...attempts, ...(waitKind ? { wait_kind: waitKind } : {}), status: stepStatus };
    });
    const next = startedWith(e);
    const advanced = next ? startStep(steps, next.step, next.attempt, e.created_at) : undefined;
    const runStatus: RunStatus = run.status === "queued" || run.status === "waiting" ? "running" : run.status;
    if (!changed && !advanced && runStatus === run.status) return run;
    return { ...run, status: runStatus, steps: advanced ?? steps };
  }
  const runStatus = RUN_STATUS[e.kind];
  // run.claimed names the first step it started; run.succeeded the last step, done with it.
  let steps = run.steps;
  const first = startedWith(e);
  if (first) steps = startStep(steps, first.step, first.attempt, e.created_at) ?? steps;
  if (e.kind === "run.succeeded" && e.step) {
    steps = steps.map((s) =>
      s.name === e.step && s.status !== "succeeded"
        ? { ...s, status: "succeeded" as StepStatus, finished_at: e.created_at }
        : s,
    );
  }
  if (steps === run.steps && (!runStatus || run.status === runStatus)) return run;
  return { ...run, status: runStatus ?? run.status, steps };
}

/** The store with a `store.<status>` event applied. */
export function applyToStore(store: Store, e: StreamEvent): Store {
  const status = storeStatusOf(e);
  if (!status || e.store_id !== store.id || store.status === status) return store;
  return { ...store, status };
}

/**
 * Pages of stores with the event applied; `known` is false when the event names a store not
 * on any page (a store created elsewhere: refetch the list).
 */
export function applyToStorePages(pages: StorePage[], e: StreamEvent): { pages: StorePage[]; known: boolean } {
  if (!e.store_id || !storeStatusOf(e)) return { pages, known: true };
  let known = false;
  const next = pages.map((p) => {
    let changed = false;
    const items = p.items.map((s) => {
      if (s.id !== e.store_id) return s;
      known = true;
      const t = applyToStore(s, e);
      if (t !== s) changed = true;
      return t;
    });
    return changed ? { ...p, items } : p;
  });
  return { pages: next, known };
}

/** A run that is still going (its steps can still change). */
export function isActive(status: RunStatus): boolean {
  return status === "queued" || status === "running" || status === "waiting";
}
