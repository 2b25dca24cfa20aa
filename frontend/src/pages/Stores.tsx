import { useInfiniteQuery, useQueryClient, type InfiniteData } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import { btn, LiveIndicator, LoadMore, PageTitle, ProblemBanner, StatusBadge, Time } from "../components/ui";
import { useAccess } from "../hooks/access";
import { useEventStream } from "../hooks/events";
import { useThrottledInvalidate } from "../hooks/refetch";
import { api, call } from "../lib/api";
import { applyToStorePages, STORE_STATUSES, storeStatusOf, type StorePage, type StoreStatus } from "../lib/live";
import { toProblem } from "../lib/problem";

const PAGE = 25;

export function StoresPage() {
  const [params, setParams] = useSearchParams();
  const status = (params.get("status") || undefined) as StoreStatus | undefined;
  const qc = useQueryClient();
  const invalidate = useThrottledInvalidate();
  const { can } = useAccess();

  const stores = useInfiniteQuery({
    queryKey: ["stores", status ?? "all"],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam, signal }) =>
      call(() =>
        api.GET("/api/v1/stores", { params: { query: { status, cursor: pageParam, limit: PAGE } }, signal }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });

  const live = useEventStream(
    {},
    (e) => {
      if (!storeStatusOf(e)) return;
      let known = false;
      qc.setQueriesData<InfiniteData<StorePage>>({ queryKey: ["stores"] }, (data) => {
        if (!data) return data;
        const r = applyToStorePages(data.pages, e);
        known ||= r.known;
        return r.pages === data.pages ? data : { ...data, pages: r.pages };
      });
      // A store this page has not seen, or one that may have left the filter: ask again.
      if (!known || status) invalidate(["stores"]);
    },
    () => invalidate(["stores"]),
  );

  const items = stores.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section aria-labelledby="stores-title">
      <div className="flex flex-wrap items-center gap-4">
        <PageTitle>
          <span id="stores-title">Stores</span>
        </PageTitle>
        <LiveIndicator state={live} />
        <div className="ml-auto flex items-center gap-3">
          <label htmlFor="status-filter" className="text-sm">
            Status
          </label>
          <select
            id="status-filter"
            className="rounded-md border-0 py-1 pl-2 pr-8 text-sm ring-1 ring-inset ring-slate-300"
            value={status ?? ""}
            onChange={(e) => setParams(e.target.value ? { status: e.target.value } : {})}
          >
            <option value="">all</option>
            {STORE_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
          {can("create_store").visible && (
            <Link to="/stores/new" className={btn.primary}>
              Create store
            </Link>
          )}
        </div>
      </div>
      <ProblemBanner problem={stores.error ? toProblem(stores.error) : null} />
      <div className="mt-4 overflow-x-auto rounded-lg bg-white shadow">
        <table className="min-w-full divide-y divide-slate-200 text-sm">
          <caption className="sr-only">Stores, newest first{status ? `, status ${status}` : ""}</caption>
          <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
            <tr>
              <th scope="col" className="px-3 py-2">Name</th>
              <th scope="col" className="px-3 py-2">Status</th>
              <th scope="col" className="px-3 py-2">Plan</th>
              <th scope="col" className="px-3 py-2">Storefront</th>
              <th scope="col" className="px-3 py-2">Created</th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {items.map((s) => (
              <tr key={s.id} data-testid="store-row" data-store-id={s.id}>
                <td className="px-3 py-2">
                  <Link className="font-medium text-indigo-700 hover:underline" to={`/stores/${s.id}`}>
                    {s.name}
                  </Link>
                  <div className="text-xs text-slate-500">{s.slug}</div>
                </td>
                <td className="px-3 py-2">
                  <StatusBadge status={s.status} testId="store-status" />
                </td>
                <td className="px-3 py-2">{s.plan}</td>
                <td className="px-3 py-2">
                  {s.url && s.status === "ready" ? (
                    <a className="text-indigo-700 hover:underline" href={s.url} target="_blank" rel="noopener noreferrer">
                      {s.url}
                    </a>
                  ) : (
                    <span className="text-slate-400">—</span>
                  )}
                </td>
                <td className="px-3 py-2">
                  <Time at={s.timings.created_at} />
                </td>
              </tr>
            ))}
            {!stores.isPending && items.length === 0 && (
              <tr>
                <td colSpan={5} className="px-3 py-6 text-center text-slate-500">
                  No stores{status ? ` with status ${status}` : ""} yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <div className="mt-4 flex items-center gap-3">
        <LoadMore pages={stores} />
        {stores.isPending && <p role="status">Loading stores…</p>}
      </div>
    </section>
  );
}
