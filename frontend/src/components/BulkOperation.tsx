// "Select everything matching this filter" on the runs page: the action, its concurrency,
// canary and failure budget; Preview (a dry run: how many runs match and what would happen
// to the first ones), then Start (the operation is created and its page opens).
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { useAccess } from "../hooks/access";
import { api, call, type Schemas } from "../lib/api";
import {
  BULK_ACTIONS,
  buildCreateOperation,
  DEFAULT_BULK_FORM,
  describeSelection,
  formErrors,
  type BulkForm,
  type CreateOperation,
  type RunsFilter,
} from "../lib/operations";
import { withPlanRun } from "../lib/clusterplan";
import { planLabel } from "../lib/plans";
import { toProblem, type ApiProblem } from "../lib/problem";
import { ClusterPlanState, TargetPlan } from "./ClusterPlan";
import { btn, Field, input, ProblemBanner, StatusBadge } from "./ui";

const ACTION_HELP: Record<string, string> = {
  retry: "Resume each failed run at its failed step.",
  rerun: "Start a new run of the same definition and input (from a step, when you pick one).",
  cancel: "Cancel each queued, running or waiting run.",
  repair: "Re-apply each run's store's desired state. Preview shows what it would change in the cluster.",
  suspend: "Suspend each run's store (ready ones; workloads to zero, data kept). Preview shows what it would change.",
  resume: "Resume each run's suspended store. Preview shows what it would change.",
  backup: "Back each run's store up (ready ones; database dump and uploads). Preview shows what it would write.",
  resize: "Move each run's store to another plan (ready or suspended ones whose usage fits it). Preview shows what it would change.",
  upgrade: "Upgrade each run's store onto a channel's current release, rolled back by itself on failure. Preview shows what it would change.",
};

/** The bulk form, for the runs page's filter; `sampleRunId` (a run of the filter's kind) names the steps. */
export function BulkOperation({ filter, sampleRunId, onClose }: { filter: RunsFilter; sampleRunId: string | undefined; onClose: () => void }) {
  const [form, setForm] = useState<BulkForm>(DEFAULT_BULK_FORM);
  const [clientErrors, setClientErrors] = useState<ReturnType<typeof formErrors>>({});
  const navigate = useNavigate();
  const { learn } = useAccess();
  const sample = useQuery({
    queryKey: ["run", sampleRunId ?? ""],
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/runs/{id}", { params: { path: { id: sampleRunId ?? "" } }, signal })),
    enabled: form.action === "rerun" && !!filter.kind && !!sampleRunId,
  });
  const plans = useQuery({
    queryKey: ["plans"],
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/plans", { signal })),
    enabled: form.action === "resize",
  });
  const channels = useQuery({
    queryKey: ["channels"],
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/channels", { signal })),
    enabled: form.action === "upgrade",
  });
  const steps = [...(sample.data?.steps ?? [])].sort((a, b) => a.position - b.position).map((s) => s.name);

  const send = (body: CreateOperation) =>
    call(() => api.POST("/api/v1/operations", { body })).catch((e: unknown) => {
      throw toProblem(e);
    });
  const preview = useMutation<Schemas["OperationCreated"], ApiProblem, CreateOperation>({ mutationFn: send, onError: learn });
  const start = useMutation<Schemas["OperationCreated"], ApiProblem, CreateOperation>({
    mutationFn: send,
    onSuccess: (created) => {
      if (created.operation) navigate(`/operations/${created.operation.id}`);
    },
    onError: learn,
  });

  const set = <K extends keyof BulkForm>(k: K, v: BulkForm[K]) => {
    setForm((f) => ({ ...f, [k]: v }));
    // What was previewed is what starts: any change asks for a fresh preview.
    preview.reset();
    start.reset();
  };
  const build = (dryRun: boolean) => {
    const built = buildCreateOperation(filter, form, dryRun);
    setClientErrors(built.ok ? {} : built.errors);
    return built.ok ? built.body : null;
  };
  function onPreview(e: FormEvent) {
    e.preventDefault();
    start.reset();
    const body = build(true);
    if (body) preview.mutate(body);
  }
  function onStart() {
    const body = build(false);
    if (body) start.mutate(body);
  }

  const problem = start.error ?? preview.error;
  const errors = { ...formErrors(problem?.fieldErrors ?? {}), ...clientErrors };
  const described = (id: string, key: keyof typeof errors, hint: boolean) => (errors[key] ? `${id}-error` : hint ? `${id}-hint` : undefined);
  const previewed = preview.data?.preview;
  // A plan still pending when the dry run answered: follow its run and fill it in when it ends.
  const planRunId = previewed?.cluster_plan?.state === "pending" ? previewed.cluster_plan.run_id : undefined;
  const planRun = useQuery({
    queryKey: ["run", planRunId ?? ""],
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/runs/{id}", { params: { path: { id: planRunId ?? "" } }, signal })),
    enabled: !!planRunId,
    refetchInterval: (q) => (["succeeded", "failed", "cancelled"].includes(q.state.data?.status ?? "") ? false : 2000),
  });
  const shown = previewed && withPlanRun(previewed, planRun.data);
  const action = preview.variables?.action ?? form.action;
  return (
    <section aria-labelledby="bulk-title" className="mt-4 rounded-lg bg-white p-5 shadow" data-testid="bulk-form">
      <div className="flex items-start gap-3">
        <div>
          <h2 id="bulk-title" className="text-base font-semibold">
            Act on everything matching this filter
          </h2>
          <p className="mt-1 text-sm text-slate-600">{describeSelection(filter, form.action)}.</p>
        </div>
        <button type="button" className={`${btn.secondary} ml-auto`} onClick={onClose}>
          Close
        </button>
      </div>
      {errors.selector && (
        <p role="alert" className="mt-3 text-sm text-rose-700">
          {errors.selector}
        </p>
      )}
      <form className="mt-4 grid grid-cols-1 gap-4 sm:grid-cols-2" onSubmit={onPreview} noValidate>
        <Field label="Action" id="bulk-action" hint={ACTION_HELP[form.action]} error={errors.action}>
          <select
            id="bulk-action"
            className={input}
            value={form.action}
            aria-describedby={described("bulk-action", "action", true)}
            onChange={(e) => set("action", e.target.value as BulkForm["action"])}
          >
            {BULK_ACTIONS.map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </Field>
        {form.action === "rerun" && filter.kind && (
          <Field label="Rerun from step" id="bulk-from-step" error={errors.fromStep} hint="The steps before it carry over each run's results.">
            <select
              id="bulk-from-step"
              className={input}
              value={form.fromStep}
              aria-invalid={errors.fromStep ? true : undefined}
              aria-describedby={described("bulk-from-step", "fromStep", true)}
              onChange={(e) => set("fromStep", e.target.value)}
            >
              <option value="">the first step</option>
              {steps.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </Field>
        )}
        {form.action === "resize" && (
          <Field label="Move to plan" id="bulk-to-plan" error={errors.toPlan} hint="The plan every matched store moves to.">
            <select
              id="bulk-to-plan"
              className={input}
              value={form.toPlan}
              aria-invalid={errors.toPlan ? true : undefined}
              aria-describedby={described("bulk-to-plan", "toPlan", true)}
              onChange={(e) => set("toPlan", e.target.value)}
            >
              <option value="">choose a plan</option>
              {(plans.data?.items ?? []).map((p) => (
                <option key={p.name} value={p.name}>
                  {planLabel(p)}
                </option>
              ))}
            </select>
          </Field>
        )}
        {form.action === "upgrade" && (
          <Field label="Channel" id="bulk-channel" error={errors.channel} hint="Each store's own channel unless you pick one.">
            <select
              id="bulk-channel"
              className={input}
              value={form.channel}
              aria-invalid={errors.channel ? true : undefined}
              aria-describedby={described("bulk-channel", "channel", true)}
              onChange={(e) => set("channel", e.target.value)}
            >
              <option value="">each store's own channel</option>
              {(channels.data?.items ?? []).map((c) => (
                <option key={c.name} value={c.name}>
                  {c.name} ({c.version})
                </option>
              ))}
            </select>
          </Field>
        )}
        <Field label="Max concurrency" id="bulk-concurrency" error={errors.maxConcurrency} hint="Targets under way at once (1 to 10,000).">
          <input
            id="bulk-concurrency"
            className={input}
            inputMode="numeric"
            value={form.maxConcurrency}
            aria-invalid={errors.maxConcurrency ? true : undefined}
            aria-describedby={described("bulk-concurrency", "maxConcurrency", true)}
            onChange={(e) => set("maxConcurrency", e.target.value)}
          />
        </Field>
        <fieldset className="space-y-2 rounded-md p-3 ring-1 ring-slate-200">
          <legend className="px-1 text-sm font-medium text-slate-800">Canary</legend>
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" checked={form.canary} onChange={(e) => set("canary", e.target.checked)} />
            Act on a few targets first; any failure among them stops the operation
          </label>
          {form.canary && (
            <div className="grid grid-cols-2 gap-3">
              <Field label="Canary targets" id="bulk-canary-count" error={errors.canaryCount}>
                <input
                  id="bulk-canary-count"
                  className={input}
                  inputMode="numeric"
                  value={form.canaryCount}
                  aria-invalid={errors.canaryCount ? true : undefined}
                  aria-describedby={described("bulk-canary-count", "canaryCount", false)}
                  onChange={(e) => set("canaryCount", e.target.value)}
                />
              </Field>
              <Field label="Then" id="bulk-canary-then">
                <select id="bulk-canary-then" className={input} value={form.canaryThen} onChange={(e) => set("canaryThen", e.target.value as BulkForm["canaryThen"])}>
                  <option value="pause">pause for approval</option>
                  <option value="continue">continue by itself</option>
                </select>
              </Field>
            </div>
          )}
        </fieldset>
        <fieldset className="space-y-2 rounded-md p-3 ring-1 ring-slate-200">
          <legend className="px-1 text-sm font-medium text-slate-800">Failure budget</legend>
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" checked={form.budget} onChange={(e) => set("budget", e.target.checked)} />
            Stop by itself once more targets than this failed
          </label>
          {form.budget && (
            <Field label="Failures tolerated" id="bulk-budget" error={errors.budgetCount}>
              <input
                id="bulk-budget"
                className={input}
                inputMode="numeric"
                value={form.budgetCount}
                aria-invalid={errors.budgetCount ? true : undefined}
                aria-describedby={described("bulk-budget", "budgetCount", false)}
                onChange={(e) => set("budgetCount", e.target.value)}
              />
            </Field>
          )}
        </fieldset>
        <div className="flex flex-wrap items-center gap-2 sm:col-span-2">
          <button type="submit" className={btn.secondary} disabled={preview.isPending} aria-busy={preview.isPending}>
            {preview.isPending ? "Previewing…" : "Preview"}
          </button>
          <button
            type="button"
            className={btn.primary}
            disabled={!shown || shown.matched === 0 || start.isPending}
            aria-busy={start.isPending}
            aria-describedby="bulk-start-hint"
            onClick={onStart}
          >
            {start.isPending ? "Starting…" : "Start"}
          </button>
          <span id="bulk-start-hint" className="text-xs text-slate-600">
            {shown ? (shown.matched === 0 ? "Nothing to act on." : "Starts what the preview shows.") : "Preview first: Start acts on what the preview shows."}
          </span>
        </div>
      </form>
      <ProblemBanner problem={problem} />
      {shown && (
        <div className="mt-4" data-testid="bulk-preview">
          <p role="status" className="text-sm">
            <span className="font-semibold" data-testid="preview-matched" data-matched={shown.matched}>
              {shown.matched} {shown.matched === 1 ? "run matches" : "runs match"}
            </span>
            {shown.matched > shown.targets.length && <span className="text-slate-600"> (the first {shown.targets.length} below)</span>}.
          </p>
          {shown.cluster_plan && <ClusterPlanState plan={shown.cluster_plan} />}
          {shown.targets.length > 0 && (
            <div className="mt-2 overflow-x-auto rounded-md ring-1 ring-slate-200">
              <table className="min-w-full divide-y divide-slate-200 text-sm">
                <caption className="sr-only">What the operation would do to the first targets</caption>
                <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
                  <tr>
                    <th scope="col" className="px-3 py-2">Run</th>
                    <th scope="col" className="px-3 py-2">Status</th>
                    <th scope="col" className="px-3 py-2">Failed step</th>
                    <th scope="col" className="px-3 py-2">Would</th>
                    {shown.cluster_plan && (
                      <th scope="col" className="px-3 py-2">
                        Cluster plan
                      </th>
                    )}
                  </tr>
                </thead>
                <tbody className="divide-y divide-slate-100 align-top">
                  {shown.targets.map((t) => (
                    <tr key={t.run_id} data-testid="preview-row">
                      <td className="px-3 py-2">
                        <Link to={`/runs/${t.run_id}`} className="font-mono text-xs text-indigo-700 hover:underline">
                          {t.kind}@{t.version}
                        </Link>
                        <div className="font-mono text-[11px] text-slate-500">{t.subject}</div>
                      </td>
                      <td className="px-3 py-2">
                        <StatusBadge status={t.status} />
                      </td>
                      <td className="px-3 py-2 font-mono text-xs">{t.failed_step ?? "—"}</td>
                      <td className={`px-3 py-2 text-xs ${t.would.startsWith("skip:") ? "text-amber-800" : "text-slate-800"}`}>{t.would}</td>
                      {shown.cluster_plan && (
                        <td className="px-3 py-2 text-xs">
                          <TargetPlan plan={t.plan} action={action} pending={shown.cluster_plan.state === "pending" && !t.would.startsWith("skip:")} />
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
      )}
    </section>
  );
}
