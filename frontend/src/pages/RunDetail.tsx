import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { StepsTable } from "../components/Steps";
import { RunTimeline } from "../components/Timeline";
import { ConfirmButton, input, LiveIndicator, PageTitle, ProblemBanner, StatusBadge, Time } from "../components/ui";
import { useAccess } from "../hooks/access";
import { useEventStream } from "../hooks/events";
import { useThrottledInvalidate } from "../hooks/refetch";
import { api, call, type Schemas } from "../lib/api";
import { applyToRun, isActive, type RunDetail } from "../lib/live";
import { carriedLabel, rerunFromChoices } from "../lib/operations";
import { toProblem, type ApiProblem } from "../lib/problem";

export function RunDetailPage() {
  const { id = "" } = useParams();
  const qc = useQueryClient();
  const invalidate = useThrottledInvalidate();
  const { can, learn } = useAccess();
  const run = useQuery({
    queryKey: ["run", id],
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/runs/{id}", { params: { path: { id } }, signal })),
  });
  const live = useEventStream(
    { storeId: run.data?.store_id, enabled: run.isSuccess },
    (e) => {
      if (e.run_id !== id) return;
      qc.setQueryData<RunDetail>(["run", id], (r) => (r ? applyToRun(r, e) : r));
      invalidate(["run", id]);
    },
    () => invalidate(["run", id]),
  );
  const action = useMutation<Schemas["RunSummary"], ApiProblem, "retry" | "cancel">({
    mutationFn: (what) =>
      call(() =>
        what === "retry"
          ? api.POST("/api/v1/runs/{id}/retry", { params: { path: { id } } })
          : api.POST("/api/v1/runs/{id}/cancel", { params: { path: { id } } }),
      ).catch((e: unknown) => {
        throw toProblem(e);
      }),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ["run", id] });
      void qc.invalidateQueries({ queryKey: ["runs"] });
    },
    onError: learn,
  });
  const navigate = useNavigate();
  const [fromStep, setFromStep] = useState("");
  const rerun = useMutation<RunDetail, ApiProblem, string>({
    mutationFn: (from) =>
      call(() => api.POST("/api/v1/runs/{id}/rerun", { params: { path: { id } }, body: from ? { from_step: from } : {} })).catch((e: unknown) => {
        throw toProblem(e);
      }),
    onSuccess: (started) => {
      void qc.invalidateQueries({ queryKey: ["runs"] });
      setFromStep("");
      navigate(`/runs/${started.id}`);
    },
    onError: learn,
  });

  if (run.isPending) return <p role="status">Loading the run…</p>;
  if (run.isError) {
    return (
      <div>
        <PageTitle>Run</PageTitle>
        <ProblemBanner problem={toProblem(run.error)} />
      </div>
    );
  }
  const r = run.data;
  const retry = can("retry_run");
  const cancel = can("cancel_run");
  const rerunAllowed = can("rerun_run");
  const choices = rerunFromChoices(r.steps);
  const carried = carriedLabel(r);
  return (
    <article className="space-y-5">
      <div className="flex flex-wrap items-center gap-3">
        <PageTitle>
          Run <span className="font-mono text-base">{r.kind}</span>
        </PageTitle>
        <StatusBadge status={r.status} testId="run-status" />
        <LiveIndicator state={live} />
        <div className="ml-auto flex flex-wrap items-center gap-2">
          <ConfirmButton
            label="Retry"
            question="Retry this run?"
            explanation="It resumes at its failed step with a fresh attempt budget; steps that succeeded are not run again."
            confirmLabel="Retry"
            disabled={r.status !== "failed"}
            reason={retry.enabled ? undefined : retry.reason}
            busy={action.isPending && action.variables === "retry"}
            onConfirm={() => action.mutate("retry")}
          />
          <ConfirmButton
            label="Rerun"
            question="Rerun this run?"
            explanation={
              <div className="space-y-3">
                <p>A new run of the same definition version and input starts; this one is kept as it is.</p>
                <div className="space-y-1">
                  <label htmlFor="rerun-from" className="block font-medium text-slate-800">
                    From step
                  </label>
                  <select id="rerun-from" className={input} value={fromStep} onChange={(e) => setFromStep(e.target.value)}>
                    <option value="">the first step (run it all again)</option>
                    {choices.map((s) => (
                      <option key={s} value={s}>
                        {s}
                      </option>
                    ))}
                  </select>
                  <p className="text-xs text-slate-600">The steps before it carry over this run's results and are not run again.</p>
                </div>
              </div>
            }
            confirmLabel="Rerun"
            disabled={isActive(r.status)}
            reason={rerunAllowed.enabled ? undefined : rerunAllowed.reason}
            busy={rerun.isPending}
            onConfirm={() => rerun.mutate(fromStep)}
          />
          <ConfirmButton
            label="Cancel run"
            tone="danger"
            question="Cancel this run?"
            explanation="It stops at its next step boundary (at once if it is queued or waiting)."
            confirmLabel="Cancel run"
            disabled={!isActive(r.status)}
            reason={cancel.enabled ? undefined : cancel.reason}
            busy={action.isPending && action.variables === "cancel"}
            onConfirm={() => action.mutate("cancel")}
          />
        </div>
      </div>
      <ProblemBanner problem={action.error} onDismiss={() => action.reset()} />
      <ProblemBanner problem={rerun.error} onDismiss={() => rerun.reset()} />
      <dl className="grid grid-cols-1 gap-x-6 gap-y-2 rounded-lg bg-white p-4 text-sm shadow sm:grid-cols-3">
        <div>
          <dt className="text-slate-500">Run id</dt>
          <dd className="font-mono text-xs">{r.id}</dd>
        </div>
        <div>
          <dt className="text-slate-500">Store</dt>
          <dd>
            {r.store_id ? (
              <Link to={`/stores/${r.store_id}`} className="font-mono text-xs text-indigo-700 hover:underline">
                {r.store_id}
              </Link>
            ) : (
              "—"
            )}
          </dd>
        </div>
        <div>
          <dt className="text-slate-500">Started by</dt>
          <dd>
            {r.created_by}
            {r.owner !== r.created_by ? ` (owner ${r.owner})` : ""}
          </dd>
        </div>
        <div>
          <dt className="text-slate-500">Lane</dt>
          <dd data-testid="run-lane">{r.lane}</dd>
        </div>
        <div>
          <dt className="text-slate-500">Created</dt>
          <dd>
            <Time at={r.created_at} />
          </dd>
        </div>
        <div>
          <dt className="text-slate-500">Started</dt>
          <dd>
            <Time at={r.started_at} />
          </dd>
        </div>
        <div>
          <dt className="text-slate-500">Finished</dt>
          <dd>
            <Time at={r.finished_at} />
          </dd>
        </div>
        {r.cancel_requested_at && (
          <div>
            <dt className="text-slate-500">Cancel requested</dt>
            <dd>
              <Time at={r.cancel_requested_at} />
            </dd>
          </div>
        )}
        {r.rerun_of && (
          <div>
            <dt className="text-slate-500">Re-run of</dt>
            <dd>
              <Link to={`/runs/${r.rerun_of}`} className="font-mono text-xs text-indigo-700 hover:underline">
                {r.rerun_of}
              </Link>
              {carried && (
                <p className="text-xs text-slate-600" data-testid="carried-steps">
                  {carried}{" "}
                  <Link to={`/runs/${r.rerun_of}`} className="font-mono text-indigo-700 hover:underline">
                    {r.rerun_of.slice(0, 8)}…
                  </Link>
                </p>
              )}
            </dd>
          </div>
        )}
      </dl>
      {r.error && (
        <pre className="whitespace-pre-wrap rounded-md bg-rose-50 p-3 text-xs text-rose-900" aria-label="Why the run failed">
          {r.error}
        </pre>
      )}
      {r.output !== undefined && r.output !== null && (
        <details className="rounded-lg bg-white p-3 text-sm shadow">
          <summary className="cursor-pointer">Run output</summary>
          <pre className="mt-2 overflow-x-auto text-xs">{JSON.stringify(r.output, null, 2)}</pre>
        </details>
      )}
      <RunTimeline run={r} />
      <StepsTable steps={r.steps} caption={`Steps of run ${r.id}`} />
    </article>
  );
}
