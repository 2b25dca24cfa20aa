import { useInfiniteQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useSearchParams } from "react-router";
import { BulkOperation } from "../components/BulkOperation";
import { btn, LoadMore, PageTitle, ProblemBanner, StatusBadge, Time } from "../components/ui";
import { useAccess } from "../hooks/access";
import { api, call, type Schemas } from "../lib/api";
import { RUN_STATUSES, type RunStatus } from "../lib/live";
import { toProblem } from "../lib/problem";

const KINDS: Schemas["RunKind"][] = ["store.provision", "store.delete", "store.repair", "store.suspend", "store.resume", "store.resize", "store.backup", "store.restore", "store.scheduled_backups", "store.domains", "store.upgrade", "store.preview", "store.usage", "store.sweep", "demo", "operation"];

/** Runs, failed ones by default: the operator's work queue. */
export function RunsPage() {
  const [params, setParams] = useSearchParams();
  const status = (params.has("status") ? params.get("status") || undefined : "failed") as RunStatus | undefined;
  const kind = (params.get("kind") || undefined) as Schemas["RunKind"] | undefined;
  const { can } = useAccess();
  const bulk = can("run_operation");
  // The form belongs to the filter it was opened for: a new filter closes it.
  const filterKey = `${status ?? ""}|${kind ?? ""}`;
  const [bulkFor, setBulkFor] = useState<string | null>(null);
  const runs = useInfiniteQuery({
    queryKey: ["runs", status ?? "all", kind ?? "all"],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam, signal }) =>
      call(() => api.GET("/api/v1/runs", { params: { query: { status, kind, cursor: pageParam, limit: 25 } }, signal })),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    next.set(k, v);
    if (k === "kind" && !v) next.delete("kind");
    setParams(next);
  };
  const items = runs.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section>
      <div className="flex flex-wrap items-center gap-4">
        <PageTitle>{status === "failed" ? "Failed runs" : "Runs"}</PageTitle>
        <div className="ml-auto flex items-center gap-3 text-sm">
          <label htmlFor="run-status">Status</label>
          <select id="run-status" className="rounded-md border-0 py-1 pl-2 pr-8 ring-1 ring-inset ring-slate-300" value={status ?? ""} onChange={(e) => set("status", e.target.value)}>
            <option value="">all</option>
            {RUN_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
          <label htmlFor="run-kind">Kind</label>
          <select id="run-kind" className="rounded-md border-0 py-1 pl-2 pr-8 ring-1 ring-inset ring-slate-300" value={kind ?? ""} onChange={(e) => set("kind", e.target.value)}>
            <option value="">all</option>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
          <button type="button" className={btn.secondary} onClick={() => void runs.refetch()}>
            Refresh
          </button>
        </div>
      </div>
      {status && (
        <div className="mt-3 flex flex-wrap items-center gap-2">
          <button
            type="button"
            className={btn.secondary}
            disabled={!bulk.enabled}
            aria-describedby={bulk.reason ? "bulk-reason" : undefined}
            aria-expanded={bulkFor === filterKey}
            onClick={() => setBulkFor(bulkFor === filterKey ? null : filterKey)}
          >
            Select everything matching this filter
          </button>
          {bulk.reason && (
            <span id="bulk-reason" className="text-xs text-slate-500">
              {bulk.reason}
            </span>
          )}
        </div>
      )}
      {status && bulk.enabled && bulkFor === filterKey && (
        <BulkOperation filter={{ status, kind }} sampleRunId={kind ? items[0]?.id : undefined} onClose={() => setBulkFor(null)} />
      )}
      <ProblemBanner problem={runs.error ? toProblem(runs.error) : null} />
      <div className="mt-4 overflow-x-auto rounded-lg bg-white shadow">
        <table className="min-w-full divide-y divide-slate-200 text-sm">
          <caption className="sr-only">Runs, newest first</caption>
          <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
            <tr>
              <th scope="col" className="px-3 py-2">Run</th>
              <th scope="col" className="px-3 py-2">Status</th>
              <th scope="col" className="px-3 py-2">Store</th>
              <th scope="col" className="px-3 py-2">Created</th>
              <th scope="col" className="px-3 py-2">Error</th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100 align-top">
            {items.map((r) => (
              <tr key={r.id} data-testid="run-row">
                <td className="px-3 py-2">
                  <Link to={`/runs/${r.id}`} className="font-mono text-xs text-indigo-700 hover:underline">
                    {r.kind}
                  </Link>
                  <div className="font-mono text-[11px] text-slate-500">{r.id}</div>
                </td>
                <td className="px-3 py-2">
                  <StatusBadge status={r.status} />
                </td>
                <td className="px-3 py-2">
                  {r.store_id ? (
                    <Link to={`/stores/${r.store_id}`} className="font-mono text-xs text-indigo-700 hover:underline">
                      {r.store_id.slice(0, 8)}…
                    </Link>
                  ) : (
                    "—"
                  )}
                </td>
                <td className="px-3 py-2 whitespace-nowrap">
                  <Time at={r.created_at} />
                </td>
                <td className="px-3 py-2">
                  <p className="line-clamp-2 max-w-lg text-xs text-rose-800">{r.error ?? ""}</p>
                </td>
              </tr>
            ))}
            {!runs.isPending && items.length === 0 && (
              <tr>
                <td colSpan={5} className="px-3 py-6 text-center text-slate-500">
                  No {status ?? ""} runs.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <div className="mt-4">
        <LoadMore pages={runs} />
        {runs.isPending && <p role="status">Loading runs…</p>}
      </div>
    </section>
  );
}
