// The store page's "Plan": the store's current plan, a choice of the others (labelled as the
// create form labels them), Preview (a dry run: the objects the move would change) and "Move
// to plan" behind a confirmation (a store.resize run, shown as the page's current run). The
// API refuses (409) a plan the store's usage would not fit, with the reason shown.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useState } from "react";
import { useAccess } from "../hooks/access";
import { api, call, type Schemas } from "../lib/api";
import { withStorePlanRun } from "../lib/clusterplan";
import { otherPlans, planLabel } from "../lib/plans";
import { toProblem, type ApiProblem } from "../lib/problem";
import { ClusterPlanState, TargetPlan } from "./ClusterPlan";
import { btn, ConfirmButton, input, ProblemBanner } from "./ui";

type Ask = { plan: string; dryRun: boolean };

export function ResizeStore({ store }: { store: Schemas["Store"] }) {
  const qc = useQueryClient();
  const { can, learn } = useAccess();
  const may = can("resize_store");
  const id = store.id;
  const fieldId = useId();
  const [picked, setPicked] = useState("");
  const plans = useQuery({
    queryKey: ["plans"],
    queryFn: () => call(() => api.GET("/api/v1/plans")),
    staleTime: 5 * 60_000,
  });
  const others = otherPlans(plans.data?.items, store.plan);
  const to = others.some((p) => p.name === picked) ? picked : (others[0]?.name ?? "");
  const resize = useMutation<Schemas["StoreAction"], ApiProblem, Ask>({
    mutationFn: (a) =>
      call(() => api.POST("/api/v1/stores/{id}/resize", { params: { path: { id }, query: { dry_run: a.dryRun } }, body: { plan: a.plan } })).catch(
        (e: unknown) => {
          throw toProblem(e);
        },
      ),
    onSuccess: (_, a) => {
      if (a.dryRun) return;
      for (const key of [["store", id], ["store-runs", id], ["stores"]]) void qc.invalidateQueries({ queryKey: key });
    },
    onError: learn,
  });
  const preview = resize.variables?.dryRun ? resize.data : undefined;
  // A plan still pending when the dry run answered: follow its run and fill it in when it ends.
  const planRunId = preview?.cluster_plan?.state === "pending" ? preview.cluster_plan.run_id : undefined;
  const planRun = useQuery({
    queryKey: ["run", planRunId ?? ""],
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/runs/{id}", { params: { path: { id: planRunId ?? "" } }, signal })),
    enabled: !!planRunId,
    refetchInterval: (q) => (["succeeded", "failed", "cancelled"].includes(q.state.data?.status ?? "") ? false : 2000),
  });
  const shown = preview && withStorePlanRun(preview, planRun.data);
  const why = may.enabled ? (to ? undefined : "There is no other plan to move to.") : may.reason;
  return (
    <section aria-labelledby={`${fieldId}-title`} className="space-y-2 rounded-lg bg-white p-4 shadow" data-testid="store-resize">
      <h2 id={`${fieldId}-title`} className="text-lg font-semibold">
        Plan
      </h2>
      <p className="text-sm">
        Current plan: <strong data-testid="current-plan">{store.plan}</strong>
      </p>
      {may.visible && (
        <div className="flex flex-wrap items-end gap-2">
          <div className="min-w-60 flex-1">
            <label htmlFor={fieldId} className="block text-sm font-medium text-slate-800">
              New plan
            </label>
            <select
              id={fieldId}
              className={input}
              value={to}
              disabled={others.length === 0}
              aria-describedby={`${fieldId}-hint`}
              onChange={(e) => {
                setPicked(e.target.value);
                resize.reset(); // What was previewed is what moves: another plan asks for a fresh preview.
              }}
            >
              {others.map((p) => (
                <option key={p.name} value={p.name}>
                  {planLabel(p)}
                </option>
              ))}
            </select>
          </div>
          <button type="button" className={btn.secondary} disabled={why !== undefined || resize.isPending} onClick={() => resize.mutate({ plan: to, dryRun: true })}>
            {resize.isPending && resize.variables.dryRun ? "Previewing…" : "Preview"}
          </button>
          <ConfirmButton
            label="Move to plan"
            question={`Move ${store.name} to plan ${to}?`}
            explanation="Re-applies the store's quota, LimitRange and volume sizes for the new plan and waits for its workloads (a suspended store's stay at zero)."
            confirmLabel="Move"
            reason={why}
            busy={resize.isPending && !resize.variables.dryRun}
            onConfirm={() => resize.mutate({ plan: to, dryRun: false })}
          />
          <p id={`${fieldId}-hint`} className="w-full text-xs text-slate-500">
            {plans.isError ? "The plans could not be loaded." : "Refused when the store's observed usage would not fit the plan, or a volume would shrink."}
          </p>
        </div>
      )}
      <ProblemBanner problem={resize.error} onDismiss={() => resize.reset()} />
      {shown?.cluster_plan && (
        <div className="text-xs" data-testid="resize-preview">
          <ClusterPlanState plan={shown.cluster_plan} />
          <div className="mt-2">
            <TargetPlan plan={shown.plan} action="resize" pending={shown.cluster_plan.state === "pending"} />
          </div>
        </div>
      )}
    </section>
  );
}
