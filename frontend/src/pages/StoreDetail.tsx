import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "react-router";
import { Backups } from "../components/Backups";
import { ResizeStore } from "../components/ResizeStore";
import { StepsTable } from "../components/Steps";
import { StoreDomains } from "../components/StoreDomains";
import { TestOrder } from "../components/TestOrder";
import { StoreUsage } from "../components/Usage";
import { ConfirmButton, LiveIndicator, LoadMore, PageTitle, ProblemBanner, StatusBadge, Time } from "../components/ui";
import { useAccess } from "../hooks/access";
import { useEventStream } from "../hooks/events";
import { useThrottledInvalidate } from "../hooks/refetch";
import { api, call, type Schemas } from "../lib/api";
import { applyToRun, applyToStore, type RunDetail, type Store } from "../lib/live";
import { toProblem, type ApiProblem } from "../lib/problem";

export function StoreDetailPage() {
  const { id = "" } = useParams();
  const qc = useQueryClient();
  const invalidate = useThrottledInvalidate();
  const { can, learn } = useAccess();

  const store = useQuery({
    queryKey: ["store", id],
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/stores/{id}", { params: { path: { id } }, signal })),
  });
  const runId = store.data?.current_run?.id;
  const run = useQuery({
    queryKey: ["run", runId],
    enabled: runId !== undefined,
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/runs/{id}", { params: { path: { id: runId! } }, signal })),
  });
  const runs = useInfiniteQuery({
    queryKey: ["store-runs", id],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam, signal }) =>
      call(() => api.GET("/api/v1/stores/{id}/runs", { params: { path: { id }, query: { cursor: pageParam, limit: 25 } }, signal })),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const storeRuns = runs.data?.pages.flatMap((p) => p.items) ?? [];

  const live = useEventStream(
    { storeId: id, enabled: store.isSuccess },
    (e) => {
      qc.setQueryData<Store>(["store", id], (s) => (s ? applyToStore(s, e) : s));
      if (runId) qc.setQueryData<RunDetail>(["run", runId], (r) => (r ? applyToRun(r, e) : r));
      // The patches show the change now; the refetch brings attempts, durations, outputs,
      // and a new current run (a deletion or repair started elsewhere).
      invalidate(["store", id], ["run", runId], ["store-runs", id]);
    },
    () => invalidate(["store", id], ["run", runId], ["store-runs", id]),
  );

  const action = useMutation<Schemas["StoreAction"], ApiProblem, "delete" | "repair" | "suspend" | "resume" | "upgrade">({
    mutationFn: (what) =>
      call(() =>
        what === "delete"
          ? api.DELETE("/api/v1/stores/{id}", { params: { path: { id } } })
          : what === "upgrade"
            ? api.POST("/api/v1/stores/{id}/upgrade", { params: { path: { id } }, body: {} })
            : api.POST(`/api/v1/stores/{id}/${what}`, { params: { path: { id } } }),
      ).catch((e: unknown) => {
        throw toProblem(e);
      }),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ["store", id] });
      void qc.invalidateQueries({ queryKey: ["store-runs", id] });
      void qc.invalidateQueries({ queryKey: ["stores"] });
    },
    onError: learn,
  });

  if (store.isPending) return <p role="status">Loading the store…</p>;
  if (store.isError) {
    return (
      <div>
        <PageTitle>Store</PageTitle>
        <ProblemBanner problem={toProblem(store.error)} />
        <Link to="/stores" className="text-indigo-700 hover:underline">
          Back to stores
        </Link>
      </div>
    );
  }
  const s = store.data;
  const del = can("delete_store");
  const repair = can("repair_store");
  const suspend = can("suspend_store");
  const upgrade = can("upgrade_store");
  const sleeping = s.status === "suspended";
  const gone = s.status === "deleted" || s.status === "deleting";
  const r = run.data;
  return (
    <article className="space-y-6">
      <div className="flex flex-wrap items-center gap-3">
        <PageTitle>{s.name}</PageTitle>
        <StatusBadge status={s.status} testId="store-detail-status" />
        <LiveIndicator state={live} />
        <div className="ml-auto flex flex-wrap items-center gap-2">
          {repair.visible && (
            <ConfirmButton
              label="Repair"
              question={`Repair ${s.name}?`}
              explanation="Re-applies the store's desired state in the cluster; the run reports which objects were missing or had drifted."
              confirmLabel="Repair"
              disabled={gone}
              reason={repair.enabled ? undefined : repair.reason}
              busy={action.isPending && action.variables === "repair"}
              onConfirm={() => action.mutate("repair")}
            />
          )}
          {suspend.visible && (s.status === "ready" || sleeping) && (
            <ConfirmButton
              label={sleeping ? "Resume" : "Suspend"}
              question={`${sleeping ? "Resume" : "Suspend"} ${s.name}?`}
              explanation={
                sleeping
                  ? "Starts the store's workloads again; it is ready once its storefront answers."
                  : "Scales the store to zero: shoppers see a 'suspended' page. Its database, files and settings are kept."
              }
              confirmLabel={sleeping ? "Resume" : "Suspend"}
              reason={suspend.enabled ? undefined : suspend.reason}
              busy={action.isPending && (action.variables === "suspend" || action.variables === "resume")}
              onConfirm={() => action.mutate(sleeping ? "resume" : "suspend")}
            />
          )}
          {upgrade.visible && s.status === "ready" && (
            <ConfirmButton
              label="Upgrade"
              question={`Upgrade ${s.name} to the ${s.channel} channel's current release?`}
              explanation="Backs the store up, then moves it to the channel's images and WooCommerce version and updates its database. If anything fails, the old images and the backup are restored automatically and the run says why."
              confirmLabel="Upgrade"
              reason={upgrade.enabled ? undefined : upgrade.reason}
              busy={action.isPending && action.variables === "upgrade"}
              onConfirm={() => action.mutate("upgrade")}
            />
          )}
          {del.visible && (
            <ConfirmButton
              label="Delete store"
              tone="danger"
              question={`Delete ${s.name}?`}
              explanation={
                <>
                  Deletes namespace <code>store-{s.slug}</code> with the shop's database and files. This cannot be undone.
                </>
              }
              confirmLabel="Delete"
              disabled={gone}
              reason={del.enabled ? undefined : del.reason}
              busy={action.isPending && action.variables === "delete"}
              onConfirm={() => action.mutate("delete")}
            />
          )}
        </div>
      </div>
      <ProblemBanner problem={action.error} onDismiss={() => action.reset()} />

      <dl className="grid grid-cols-1 gap-x-6 gap-y-2 rounded-lg bg-white p-4 text-sm shadow sm:grid-cols-3">
        <div>
          <dt className="text-slate-500">Storefront</dt>
          <dd>
            {s.url ? (
              <a className="text-indigo-700 hover:underline" href={s.url} target="_blank" rel="noopener noreferrer" data-testid="store-url">
                {s.url}
              </a>
            ) : (
              "not yet"
            )}
          </dd>
        </div>
        <div>
          <dt className="text-slate-500">Namespace</dt>
          <dd className="font-mono text-xs">store-{s.slug}</dd>
        </div>
        <div>
          <dt className="text-slate-500">Engine · plan</dt>
          <dd data-testid="store-plan">
            {s.engine} · {s.plan}
          </dd>
        </div>
        <div>
          <dt className="text-slate-500">Channel · release</dt>
          <dd data-testid="store-release">
            {s.channel} · {s.version ?? "unrecorded"}
          </dd>
        </div>
        <div>
          <dt className="text-slate-500">Created</dt>
          <dd>
            <Time at={s.timings.created_at} /> by {s.created_by}
          </dd>
        </div>
        <div>
          <dt className="text-slate-500">Ready</dt>
          <dd>
            <Time at={s.timings.ready_at} />
            {s.timings.seconds_to_ready !== undefined && ` (${s.timings.seconds_to_ready.toFixed(1)} s after the request)`}
          </dd>
        </div>
        <div>
          <dt className="text-slate-500">Deleted</dt>
          <dd>
            <Time at={s.timings.deleted_at} />
          </dd>
        </div>
      </dl>

      <section aria-labelledby="run-title" className="space-y-3">
        <div className="flex flex-wrap items-center gap-3">
          <h2 id="run-title" className="text-lg font-semibold">
            Current run
          </h2>
          {r && (
            <>
              <span className="font-mono text-xs">{r.kind}</span>
              <StatusBadge status={r.status} testId="run-status" />
              <Link to={`/runs/${r.id}`} className="text-sm text-indigo-700 hover:underline">
                Run details
              </Link>
            </>
          )}
        </div>
        {!runId && <p className="text-sm text-slate-600">No run yet.</p>}
        <ProblemBanner problem={run.error ? toProblem(run.error) : null} />
        {r?.error && (
          <pre className="whitespace-pre-wrap rounded-md bg-rose-50 p-3 text-xs text-rose-900" aria-label="Why the run failed">
            {r.error}
          </pre>
        )}
        {r && <StepsTable steps={r.steps} caption={`Steps of run ${r.id}`} />}
      </section>

      <StoreDomains store={s} />

      <StoreUsage id={id} />

      {(s.status === "ready" || sleeping) && <ResizeStore store={s} />}

      {!gone && <Backups store={s} />}

      <section aria-labelledby="order-title" className="space-y-2 rounded-lg bg-white p-4 shadow">
        <h2 id="order-title" className="text-lg font-semibold">
          Place a test order
        </h2>
        <TestOrder store={s} />
      </section>

      {storeRuns.length > 0 && (
        <section aria-labelledby="runs-title" className="space-y-2">
          <h2 id="runs-title" className="text-lg font-semibold">
            All runs of this store
          </h2>
          <ul className="divide-y divide-slate-100 rounded-lg bg-white text-sm shadow">
            {storeRuns.map((x) => (
              <li key={x.id} className="flex items-center gap-3 px-3 py-2">
                <Link to={`/runs/${x.id}`} className="font-mono text-xs text-indigo-700 hover:underline">
                  {x.kind}
                </Link>
                <StatusBadge status={x.status} />
                <span className="text-slate-500">
                  <Time at={x.created_at} /> by {x.created_by}
                </span>
              </li>
            ))}
          </ul>
          <LoadMore pages={runs} />
        </section>
      )}
    </article>
  );
}
