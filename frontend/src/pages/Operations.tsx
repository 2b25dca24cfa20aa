// Bulk operations: the list, and one operation's page — its state and reason, a progress bar
// with the counts, the controls its state allows (operators), its targets (state filter,
// Load more) with links to their runs and stores and to the parent run. Both poll every
// second while an operation is under way (its parent run acts every 0.5 s).
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { btn, ConfirmButton, LoadMore, PageTitle, ProblemBanner, StatusBadge, Time } from "../components/ui";
import { useAccess } from "../hooks/access";
import { api, call } from "../lib/api";
import {
  controlsFor,
  isFinal,
  progressSummary,
  progressView,
  selectorLabel,
  TARGET_STATES,
  type Control,
  type Operation,
  type OperationProgress,
  type TargetState,
} from "../lib/operations";
import { toProblem, type ApiProblem } from "../lib/problem";

const POLL_MS = 1000;

const BAR: Record<TargetState, string> = {
  succeeded: "bg-emerald-500",
  failed: "bg-rose-500",
  skipped: "bg-slate-400",
  running: "bg-sky-500",
  pending: "bg-slate-200",
};

function ProgressBar({ progress, label }: { progress: OperationProgress; label: string }) {
  const v = progressView(progress);
  return (
    <div>
      <div
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={v.donePercent}
        aria-valuetext={progressSummary(progress)}
        className="flex h-3 w-full overflow-hidden rounded-full bg-slate-100 ring-1 ring-inset ring-slate-300"
        data-testid="progress-bar"
        data-done={v.done}
      >
        {v.segments.map((s) => (
          <div key={s.state} className={BAR[s.state]} style={{ width: `${s.percent}%` }} title={`${s.state}: ${s.count}`} />
        ))}
      </div>
      <p className="mt-1 text-xs text-slate-600">{progressSummary(progress)}</p>
    </div>
  );
}

function Counts({ progress }: { progress: OperationProgress }) {
  const keys = ["matched", "pending", "running", "succeeded", "failed", "skipped"] as const;
  return (
    <dl className="grid grid-cols-3 gap-2 text-sm sm:grid-cols-6" data-testid="progress">
      {keys.map((k) => (
        <div key={k} className="rounded-md bg-slate-50 px-3 py-2" data-testid={`count-${k}`} data-count={progress[k]}>
          <dt className="text-xs text-slate-600">{k}</dt>
          <dd className="text-lg font-semibold">{progress[k]}</dd>
        </div>
      ))}
    </dl>
  );
}

const CONTROL_TEXT: Record<Control, { label: string; question: string; explanation: string; tone?: "danger" }> = {
  pause: { label: "Pause", question: "Pause this operation?", explanation: "No target starts until it is resumed; started ones run to their end." },
  resume: { label: "Resume", question: "Resume this operation?", explanation: "Its pending targets start again, up to its concurrency." },
  approve: { label: "Approve", question: "Approve the rest?", explanation: "The canary succeeded; the rest of the targets go." },
  cancel: {
    label: "Cancel operation",
    question: "Cancel this operation?",
    explanation: "Its pending targets are skipped; started ones run to their end.",
    tone: "danger",
  },
};

export function OperationPage() {
  const { id = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const state = (params.get("state") || undefined) as TargetState | undefined;
  const qc = useQueryClient();
  const { can, learn } = useAccess();
  const op = useQuery({
    queryKey: ["operation", id],
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/operations/{id}", { params: { path: { id } }, signal })),
    refetchInterval: (q) => (q.state.data && isFinal(q.state.data.state) ? false : POLL_MS),
  });
  const live = op.data !== undefined && !isFinal(op.data.state);
  const targets = useInfiniteQuery({
    queryKey: ["operation-targets", id, state ?? "all"],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam, signal }) =>
      call(() =>
        api.GET("/api/v1/operations/{id}/targets", {
          params: { path: { id }, query: { state, cursor: pageParam, limit: 50 } },
          signal,
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    refetchInterval: live ? POLL_MS : false,
  });
  // Once it ends, one more fetch of the targets: they show their final states.
  const ended = op.data !== undefined && isFinal(op.data.state);
  useEffect(() => {
    if (ended) void qc.invalidateQueries({ queryKey: ["operation-targets", id] });
  }, [ended, id, qc]);
  const steer = useMutation<Operation, ApiProblem, Control>({
    mutationFn: (c) =>
      call(() => {
        const p = { params: { path: { id } } };
        switch (c) {
          case "pause":
            return api.POST("/api/v1/operations/{id}/pause", p);
          case "resume":
            return api.POST("/api/v1/operations/{id}/resume", p);
          case "approve":
            return api.POST("/api/v1/operations/{id}/approve", p);
          case "cancel":
            return api.POST("/api/v1/operations/{id}/cancel", p);
        }
      }).catch((e: unknown) => {
        throw toProblem(e);
      }),
    onSuccess: (o) => {
      qc.setQueryData(["operation", id], o);
      void qc.invalidateQueries({ queryKey: ["operation-targets", id] });
      void qc.invalidateQueries({ queryKey: ["operations"] });
    },
    onError: learn,
  });

  if (op.isPending) return <p role="status">Loading the operation…</p>;
  if (op.isError) {
    return (
      <div>
        <PageTitle>Operation</PageTitle>
        <ProblemBanner problem={toProblem(op.error)} />
      </div>
    );
  }
  const o = op.data;
  const allowed = can("run_operation");
  const controls = allowed.enabled ? controlsFor(o.state) : [];
  const items = targets.data?.pages.flatMap((p) => p.items) ?? [];
  const selector = selectorLabel(o.selector);
  return (
    <article className="space-y-5">
      <div className="flex flex-wrap items-center gap-3">
        <PageTitle>
          Operation <span className="font-mono text-base">{o.action}</span>
        </PageTitle>
        <StatusBadge status={o.state} testId="operation-state" />
        <p className="text-xs text-slate-600" role="status" aria-live="polite">
          {live ? "Updating every second" : "Ended"}
        </p>
        <div className="ml-auto flex flex-wrap items-center gap-2">
          {controls.map((c) => {
            const t = CONTROL_TEXT[c];
            return (
              <ConfirmButton
                key={c}
                label={t.label}
                question={t.question}
                explanation={t.explanation}
                confirmLabel={t.label}
                tone={t.tone}
                busy={steer.isPending && steer.variables === c}
                onConfirm={() => steer.mutate(c)}
              />
            );
          })}
          {!allowed.enabled && !isFinal(o.state) && <span className="text-xs text-slate-600">{allowed.reason}</span>}
        </div>
      </div>
      <ProblemBanner problem={steer.error} onDismiss={() => steer.reset()} />
      {o.reason && (
        <p className="rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-900" data-testid="operation-reason">
          {o.reason}
        </p>
      )}
      <section aria-labelledby="progress-title" className="space-y-3 rounded-lg bg-white p-4 shadow">
        <h2 id="progress-title" className="text-base font-semibold">
          Progress
        </h2>
        <ProgressBar progress={o.progress} label="Targets done" />
        <Counts progress={o.progress} />
      </section>
      <dl className="grid grid-cols-1 gap-x-6 gap-y-2 rounded-lg bg-white p-4 text-sm shadow sm:grid-cols-3">
        <div>
          <dt className="text-slate-600">Operation id</dt>
          <dd className="font-mono text-xs">{o.id}</dd>
        </div>
        <div>
          <dt className="text-slate-600">Parent run</dt>
          <dd>
            <Link to={`/runs/${o.run_id}`} className="font-mono text-xs text-indigo-700 hover:underline" data-testid="parent-run">
              {o.run_id}
            </Link>
          </dd>
        </div>
        <div>
          <dt className="text-slate-600">Selector</dt>
          <dd className="font-mono text-xs">{selector || "—"}</dd>
        </div>
        {o.from_step && (
          <div>
            <dt className="text-slate-600">From step</dt>
            <dd className="font-mono text-xs">{o.from_step}</dd>
          </div>
        )}
        <div>
          <dt className="text-slate-600">Max concurrency</dt>
          <dd>{o.max_concurrency}</dd>
        </div>
        <div>
          <dt className="text-slate-600">Canary</dt>
          <dd>{o.canary ? `first ${o.canary.size}, then ${o.canary.then}${o.canary.passed ? " (passed)" : ""}` : "—"}</dd>
        </div>
        <div>
          <dt className="text-slate-600">Failures tolerated</dt>
          <dd>{o.max_failures ?? "no limit"}</dd>
        </div>
        <div>
          <dt className="text-slate-600">Started by</dt>
          <dd>
            {o.created_by}
            {o.owner !== o.created_by ? ` (owner ${o.owner})` : ""}
          </dd>
        </div>
        <div>
          <dt className="text-slate-600">Created</dt>
          <dd>
            <Time at={o.created_at} />
          </dd>
        </div>
        <div>
          <dt className="text-slate-600">Finished</dt>
          <dd>
            <Time at={o.finished_at} />
          </dd>
        </div>
      </dl>
      <section aria-labelledby="targets-title">
        <div className="flex flex-wrap items-center gap-3">
          <h2 id="targets-title" className="text-base font-semibold">
            Targets
          </h2>
          <div className="ml-auto flex items-center gap-2 text-sm">
            <label htmlFor="target-state">State</label>
            <select
              id="target-state"
              className="rounded-md border-0 py-1 pl-2 pr-8 ring-1 ring-inset ring-slate-300"
              value={state ?? ""}
              onChange={(e) => {
                const next = new URLSearchParams(params);
                if (e.target.value) next.set("state", e.target.value);
                else next.delete("state");
                setParams(next);
              }}
            >
              <option value="">all</option>
              {TARGET_STATES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </div>
        </div>
        <ProblemBanner problem={targets.error ? toProblem(targets.error) : null} />
        <div className="mt-2 overflow-x-auto rounded-lg bg-white shadow">
          <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="targets">
            <caption className="sr-only">The operation's targets, in the order they start</caption>
            <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
              <tr>
                <th scope="col" className="px-3 py-2">#</th>
                <th scope="col" className="px-3 py-2">Target run</th>
                <th scope="col" className="px-3 py-2">State</th>
                <th scope="col" className="px-3 py-2">Run started</th>
                <th scope="col" className="px-3 py-2">Store</th>
                <th scope="col" className="px-3 py-2">Reason</th>
                <th scope="col" className="px-3 py-2">Updated</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100 align-top">
              {items.map((t) => (
                <tr key={t.position} data-testid="target-row" data-state={t.state} data-run-id={t.run_id}>
                  <td className="px-3 py-2 text-slate-600">{t.position + 1}</td>
                  <td className="px-3 py-2">
                    <Link to={`/runs/${t.run_id}`} className="font-mono text-xs text-indigo-700 hover:underline">
                      {t.run_id.slice(0, 8)}…
                    </Link>
                    <div className="font-mono text-[11px] text-slate-500">{t.subject}</div>
                  </td>
                  <td className="px-3 py-2">
                    <StatusBadge status={t.state} />
                  </td>
                  <td className="px-3 py-2">
                    {t.child_run_id ? (
                      <Link to={`/runs/${t.child_run_id}`} className="font-mono text-xs text-indigo-700 hover:underline" data-testid="child-run">
                        {t.child_run_id === t.run_id ? "same run" : `${t.child_run_id.slice(0, 8)}…`}
                      </Link>
                    ) : (
                      "—"
                    )}
                  </td>
                  <td className="px-3 py-2">
                    {t.store_id ? (
                      <Link to={`/stores/${t.store_id}`} className="font-mono text-xs text-indigo-700 hover:underline">
                        {t.store_id.slice(0, 8)}…
                      </Link>
                    ) : (
                      "—"
                    )}
                  </td>
                  <td className="px-3 py-2">
                    <p className="max-w-md text-xs text-slate-700">{t.reason ?? ""}</p>
                  </td>
                  <td className="px-3 py-2 whitespace-nowrap">
                    <Time at={t.updated_at} />
                  </td>
                </tr>
              ))}
              {!targets.isPending && items.length === 0 && (
                <tr>
                  <td colSpan={7} className="px-3 py-6 text-center text-slate-600">
                    No {state ?? ""} targets.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
        <div className="mt-4">
          <LoadMore pages={targets} />
          {targets.isPending && <p role="status">Loading targets…</p>}
        </div>
      </section>
    </article>
  );
}

/** Operations, newest first. */
export function OperationsPage() {
  const ops = useInfiniteQuery({
    queryKey: ["operations"],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam, signal }) => call(() => api.GET("/api/v1/operations", { params: { query: { cursor: pageParam, limit: 25 } }, signal })),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    refetchInterval: (q) => (q.state.data?.pages.some((p) => p.items.some((o) => !isFinal(o.state))) ? POLL_MS * 2 : false),
  });
  const items = ops.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section>
      <div className="flex flex-wrap items-center gap-4">
        <PageTitle>Operations</PageTitle>
        <p className="text-sm text-slate-600">
          Start one from the{" "}
          <Link to="/runs?status=failed" className="text-indigo-700 underline">
            failed runs
          </Link>{" "}
          page.
        </p>
        <button type="button" className={`${btn.secondary} ml-auto`} onClick={() => void ops.refetch()}>
          Refresh
        </button>
      </div>
      <ProblemBanner problem={ops.error ? toProblem(ops.error) : null} />
      <div className="mt-4 overflow-x-auto rounded-lg bg-white shadow">
        <table className="min-w-full divide-y divide-slate-200 text-sm">
          <caption className="sr-only">Operations, newest first</caption>
          <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
            <tr>
              <th scope="col" className="px-3 py-2">Operation</th>
              <th scope="col" className="px-3 py-2">State</th>
              <th scope="col" className="px-3 py-2">Progress</th>
              <th scope="col" className="px-3 py-2">Started by</th>
              <th scope="col" className="px-3 py-2">Created</th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100 align-top">
            {items.map((o) => (
              <tr key={o.id} data-testid="operation-row" data-operation-id={o.id} data-state={o.state}>
                <td className="px-3 py-2">
                  <Link to={`/operations/${o.id}`} className="font-mono text-xs text-indigo-700 hover:underline">
                    {o.action}
                    {o.from_step ? ` from ${o.from_step}` : ""}
                  </Link>
                  <div className="font-mono text-[11px] text-slate-500">{o.id}</div>
                </td>
                <td className="px-3 py-2">
                  <StatusBadge status={o.state} />
                  {o.reason && <p className="mt-1 max-w-xs text-xs text-slate-600">{o.reason}</p>}
                </td>
                <td className="px-3 py-2 min-w-48">
                  <ProgressBar progress={o.progress} label={`Targets done of operation ${o.id}`} />
                </td>
                <td className="px-3 py-2">{o.created_by}</td>
                <td className="px-3 py-2 whitespace-nowrap">
                  <Time at={o.created_at} />
                </td>
              </tr>
            ))}
            {!ops.isPending && items.length === 0 && (
              <tr>
                <td colSpan={5} className="px-3 py-6 text-center text-slate-600">
                  No operations yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <div className="mt-4">
        <LoadMore pages={ops} />
        {ops.isPending && <p role="status">Loading operations…</p>}
      </div>
    </section>
  );
}
