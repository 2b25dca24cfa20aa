// Bulk operations as the dashboard shows and starts them: the progress bar's shares, which
// controls an operation's state allows (as urumi_ops' Control::applies says), the
// CreateOperation body built from the runs page's filter and the bulk form, and the words
// for a rerun's carried-over steps.
import type { Schemas } from "./api";

export type Operation = Schemas["Operation"];
export type OperationState = Schemas["OperationState"];
export type OperationAction = Schemas["OperationAction"];
export type OperationProgress = Schemas["OperationProgress"];
export type OperationTarget = Schemas["OperationTarget"];
export type TargetState = Schemas["TargetState"];
export type CreateOperation = Schemas["CreateOperation"];
export type RunStatus = Schemas["RunStatus"];
export type RunKind = Schemas["RunKind"];

export const OPERATION_STATES: readonly OperationState[] = ["running", "paused", "awaiting_approval", "succeeded", "stopped", "cancelled"];
export const TARGET_STATES: readonly TargetState[] = ["pending", "running", "succeeded", "failed", "skipped"];

/** The actions the runs page offers (delete, admin-only, is left to the API and CLI). */
export const BULK_ACTIONS: readonly OperationAction[] = ["retry", "rerun", "cancel", "repair", "suspend", "resume", "backup", "resize", "upgrade"];

/** An operation in one of these states changes no more. */
export function isFinal(state: OperationState): boolean {
  return state === "succeeded" || state === "stopped" || state === "cancelled";
}

export type Control = "pause" | "resume" | "approve" | "cancel";

/** The states each control applies to (ops/src/service.rs, `Control::applies`). */
const APPLIES: Record<Control, readonly OperationState[]> = {
  pause: ["running", "awaiting_approval"],
  resume: ["paused"],
  approve: ["awaiting_approval"],
  cancel: ["running", "paused", "awaiting_approval"],
};

/** The controls that apply to an operation in `state`, in the order they are shown. */
export function controlsFor(state: OperationState): Control[] {
  return (["approve", "resume", "pause", "cancel"] as const).filter((c) => APPLIES[c].includes(state));
}

/** A share of the matched targets, in percent (0 when nothing matched). */
function pct(n: number, matched: number): number {
  if (matched <= 0) return 0;
  return Math.min(100, Math.max(0, (n / matched) * 100));
}

export interface ProgressView {
  /** Targets acted on to the end: succeeded, failed or skipped. */
  done: number;
  /** `done` out of `matched`, in whole percent, rounded down (100 only when all are done). */
  donePercent: number;
  /** Each part of the bar, in percent of `matched`, in the order drawn. */
  segments: { state: TargetState; count: number; percent: number }[];
}

/** The progress bar: one segment per target state that has targets, and the share done. */
export function progressView(p: OperationProgress): ProgressView {
  const done = p.succeeded + p.failed + p.skipped;
  const order: TargetState[] = ["succeeded", "failed", "skipped", "running", "pending"];
  const segments = order
    .map((state) => ({ state, count: p[state], percent: pct(p[state], p.matched) }))
    .filter((s) => s.count > 0);
  const donePercent = p.matched <= 0 ? 0 : Math.floor(pct(done, p.matched));
  return { done, donePercent, segments };
}

/** The runs page's filter, as it is in the URL. */
export interface RunsFilter {
  status?: RunStatus | undefined;
  kind?: RunKind | undefined;
}

/** What the bulk form holds (numbers as typed). */
export interface BulkForm {
  action: OperationAction;
  /** For rerun, with a kind in the filter: the step to rerun from ("" for the first). */
  fromStep: string;
  /** For resize: the plan every matched store moves to ("" until chosen). */
  toPlan: string;
  /** For upgrade: the release channel ("" for each store's own). */
  channel: string;
  maxConcurrency: string;
  canary: boolean;
  canaryCount: string;
  canaryThen: Schemas["CanaryThen"];
  budget: boolean;
  budgetCount: string;
}

export const DEFAULT_BULK_FORM: BulkForm = {
  action: "retry",
  fromStep: "",
  toPlan: "",
  channel: "",
  maxConcurrency: "10",
  canary: false,
  canaryCount: "1",
  canaryThen: "pause",
  budget: false,
  budgetCount: "0",
};

/** A whole number from a form field, or undefined when it is not one (or out of range). */
function whole(v: string, min: number, max: number): number | undefined {
  const t = v.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return n >= min && n <= max ? n : undefined;
}

export type BuiltOperation = { ok: true; body: CreateOperation } | { ok: false; errors: Partial<Record<keyof BulkForm | "selector", string>> };

/**
 * The CreateOperation body for "everything matching this filter": the filter's status and
 * kind as the selector (a status is required: an empty selector would match every run),
 * the form's action, concurrency, canary and failure budget. Field errors name the form's
 * fields.
 */
export function buildCreateOperation(filter: RunsFilter, form: BulkForm, dryRun: boolean): BuiltOperation {
  const errors: Partial<Record<keyof BulkForm | "selector", string>> = {};
  if (!filter.status) errors.selector = "Filter the runs by status first: the operation acts on every run the filter matches.";
  const maxConcurrency = whole(form.maxConcurrency, 1, 10_000);
  if (maxConcurrency === undefined) errors.maxConcurrency = "A whole number from 1 to 10,000.";
  const canaryCount = form.canary ? whole(form.canaryCount, 1, 10_000) : undefined;
  if (form.canary && canaryCount === undefined) errors.canaryCount = "A whole number from 1 to 10,000.";
  const budgetCount = form.budget ? whole(form.budgetCount, 0, 1_000_000) : undefined;
  if (form.budget && budgetCount === undefined) errors.budgetCount = "A whole number, 0 or more.";
  const fromStep = form.action === "rerun" ? form.fromStep.trim() : "";
  if (fromStep && !filter.kind) errors.fromStep = "Rerunning from a step needs a kind in the filter.";
  const toPlan = form.action === "resize" ? form.toPlan.trim() : "";
  if (form.action === "resize" && !toPlan) errors.toPlan = "Choose the plan the stores move to.";
  const channel = form.action === "upgrade" ? form.channel.trim() : "";
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  const body: CreateOperation = {
    action: form.action,
    selector: {
      ...(filter.status ? { status: filter.status } : {}),
      ...(filter.kind ? { kind: filter.kind } : {}),
      all: false,
    },
    max_concurrency: maxConcurrency!,
    dry_run: dryRun,
  };
  if (fromStep) body.from_step = fromStep;
  if (toPlan) body.plan = toPlan;
  if (channel) body.channel = channel;
  if (form.canary) body.canary = { count: canaryCount!, then: form.canaryThen };
  if (form.budget) body.failure_budget = { count: budgetCount! };
  return { ok: true, body };
}

/** Where a bulk form field's API error (`/max_concurrency`, `/canary`, …) is shown. */
export const API_FIELD: Record<string, keyof BulkForm | "selector"> = {
  action: "action",
  from_step: "fromStep",
  plan: "toPlan",
  channel: "channel",
  max_concurrency: "maxConcurrency",
  canary: "canaryCount",
  failure_budget: "budgetCount",
  selector: "selector",
};

/** The API's field errors (keyed by its field names) keyed by the form's fields. */
export function formErrors(apiFields: Record<string, string>): Partial<Record<keyof BulkForm | "selector", string>> {
  const out: Partial<Record<keyof BulkForm | "selector", string>> = {};
  for (const [k, v] of Object.entries(apiFields)) {
    const f = API_FIELD[k];
    if (f) out[f] = out[f] ? `${out[f]}; ${v}` : v;
  }
  return out;
}

/** "Retry every failed store.provision run" — what the form is about to do, in words. */
export function describeSelection(filter: RunsFilter, action: OperationAction): string {
  const verb = action.charAt(0).toUpperCase() + action.slice(1);
  const what = [filter.status, filter.kind].filter(Boolean).join(" ");
  return `${verb} every ${what || "matching"} run (each subject's newest)`;
}

/** "2 steps carried over from" / "1 step carried over from" (a rerun from a step), or null. */
export function carriedLabel(run: Pick<Schemas["RunDetail"], "carried_steps" | "rerun_of">): string | null {
  if (!run.rerun_of || run.carried_steps <= 0) return null;
  return `${run.carried_steps} ${run.carried_steps === 1 ? "step" : "steps"} carried over from`;
}

/** The steps a run may be rerun from: every step after the first whose earlier steps all succeeded. */
export function rerunFromChoices(steps: Pick<Schemas["StepView"], "name" | "position" | "status">[]): string[] {
  const ordered = [...steps].sort((a, b) => a.position - b.position);
  const out: string[] = [];
  for (let i = 1; i < ordered.length; i++) {
    if (ordered[i - 1]!.status !== "succeeded") break;
    out.push(ordered[i]!.name);
  }
  return out;
}

/**
 * "status=failed kind=store.provision": the fields a selector sets (`all` only when true). The
 * API sends unset `status` and `kind` as null, the others not at all: both are left out.
 */
export function selectorLabel(selector: Schemas["OperationSelector"]): string {
  return Object.entries(selector)
    .filter(([k, v]) => v !== undefined && v !== null && !(k === "all" && v === false))
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : String(v)}`)
    .join(" ");
}

/** "3 of 5 done (60%)". */
export function progressSummary(p: OperationProgress): string {
  const v = progressView(p);
  return `${v.done} of ${p.matched} done (${v.donePercent}%)`;
}
