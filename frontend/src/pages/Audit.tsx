import { useInfiniteQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router";
import { btn, input, LoadMore, PageTitle, ProblemBanner, Time } from "../components/ui";
import { useAccess } from "../hooks/access";
import { api, call } from "../lib/api";
import { AUDIT_LIMITS, auditParams, auditQuery, type AuditQuery } from "../lib/audit";
import { toProblem } from "../lib/problem";

const FIELDS: { key: "actor" | "kind" | "store_id" | "run_id"; label: string; placeholder: string }[] = [
  { key: "actor", label: "Actor", placeholder: "a token's name, a worker id, system" },
  { key: "kind", label: "Kind", placeholder: "e.g. store.created, step.failed" },
  { key: "store_id", label: "Store id", placeholder: "uuid" },
  { key: "run_id", label: "Run id", placeholder: "uuid" },
];

function Filters({ query, onApply }: { query: AuditQuery; onApply: (q: AuditQuery) => void }) {
  const [draft, setDraft] = useState<AuditQuery>(query);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    onApply(draft);
  };
  return (
    <form onSubmit={submit} className="mt-4 grid grid-cols-1 gap-3 rounded-lg bg-white p-4 shadow sm:grid-cols-3 lg:grid-cols-6" aria-label="Audit filters">
      {FIELDS.map((f) => (
        <div key={f.key} className="space-y-1">
          <label htmlFor={`audit-${f.key}`} className="block text-sm font-medium text-slate-800">
            {f.label}
          </label>
          <input
            id={`audit-${f.key}`}
            className={input}
            placeholder={f.placeholder}
            value={draft[f.key] ?? ""}
            onChange={(e) => setDraft({ ...draft, [f.key]: e.target.value })}
          />
        </div>
      ))}
      <div className="space-y-1">
        <label htmlFor="audit-limit" className="block text-sm font-medium text-slate-800">
          Page size
        </label>
        <select id="audit-limit" className={input} value={draft.limit} onChange={(e) => setDraft({ ...draft, limit: Number(e.target.value) })}>
          {AUDIT_LIMITS.map((l) => (
            <option key={l} value={l}>
              {l}
            </option>
          ))}
        </select>
      </div>
      <div className="flex items-end gap-2">
        <button type="submit" className={btn.primary}>
          Apply
        </button>
        <button type="button" className={btn.secondary} onClick={() => onApply({ limit: draft.limit })}>
          Clear
        </button>
      </div>
    </form>
  );
}

function Detail({ value }: { value: unknown }) {
  if (value === undefined || value === null || (typeof value === "object" && Object.keys(value).length === 0)) {
    return <span className="text-slate-500">—</span>;
  }
  return (
    <details>
      <summary className="cursor-pointer text-indigo-700">detail</summary>
      <pre className="mt-1 max-w-md overflow-x-auto whitespace-pre-wrap rounded bg-slate-50 p-2 text-xs">{JSON.stringify(value, null, 2)}</pre>
    </details>
  );
}

/** The audit log, newest first, filtered by actor, kind, store and run; keyset "Load more". Any role. */
export function AuditPage() {
  const [params, setParams] = useSearchParams();
  const { learn } = useAccess();
  const query = auditQuery(params);
  const audit = useInfiniteQuery({
    queryKey: ["audit", query],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam, signal }) =>
      call(() => api.GET("/api/v1/audit", { params: { query: { ...query, cursor: pageParam } }, signal })).catch((e: unknown) => {
        const p = toProblem(e);
        learn(p);
        throw p;
      }),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = audit.data?.pages.flatMap((p) => p.items) ?? [];
  const filtered = Object.keys(query).length > 1;
  return (
    <section>
      <div className="flex flex-wrap items-center gap-4">
        <PageTitle>Audit log</PageTitle>
        <p className="text-sm text-slate-600">Newest first: operators' actions and every run, step and store transition.</p>
        <button type="button" className={`${btn.secondary} ml-auto`} onClick={() => void audit.refetch()}>
          Refresh
        </button>
      </div>
      <Filters key={params.toString()} query={query} onApply={(q) => setParams(auditParams(q))} />
      <ProblemBanner problem={audit.error ? toProblem(audit.error) : null} />
      <div className="mt-4 overflow-x-auto rounded-lg bg-white shadow">
        <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="audit">
          <caption className="sr-only">Audit entries, newest first</caption>
          <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
            <tr>
              <th scope="col" className="px-3 py-2">When</th>
              <th scope="col" className="px-3 py-2">Kind</th>
              <th scope="col" className="px-3 py-2">Actor</th>
              <th scope="col" className="px-3 py-2">Store</th>
              <th scope="col" className="px-3 py-2">Run / step</th>
              <th scope="col" className="px-3 py-2">Detail</th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100 align-top">
            {items.map((a) => (
              <tr key={a.id} data-testid="audit-row" data-kind={a.kind} data-store-id={a.store_id ?? ""} data-actor={a.actor}>
                <td className="px-3 py-2 whitespace-nowrap">
                  <Time at={a.created_at} />
                </td>
                <td className="px-3 py-2 font-mono text-xs">{a.kind}</td>
                <td className="px-3 py-2">{a.actor}</td>
                <td className="px-3 py-2">
                  {a.store_id ? (
                    <Link to={`/stores/${a.store_id}`} className="font-mono text-xs text-indigo-700 hover:underline" aria-label={`Store ${a.store_id}`}>
                      {a.store_id.slice(0, 8)}…
                    </Link>
                  ) : (
                    "—"
                  )}
                </td>
                <td className="px-3 py-2">
                  {a.run_id ? (
                    <Link to={`/runs/${a.run_id}`} className="font-mono text-xs text-indigo-700 hover:underline" aria-label={`Run ${a.run_id}`}>
                      {a.run_id.slice(0, 8)}…
                    </Link>
                  ) : (
                    "—"
                  )}
                  {a.step && <div className="font-mono text-xs text-slate-600">{a.step}</div>}
                </td>
                <td className="px-3 py-2">
                  <Detail value={a.detail} />
                </td>
              </tr>
            ))}
            {!audit.isPending && !audit.isError && items.length === 0 && (
              <tr>
                <td colSpan={6} className="px-3 py-6 text-center text-slate-600">
                  {filtered ? "No entries match these filters." : "The audit log is empty."}
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <div className="mt-4 flex items-center gap-3">
        <LoadMore pages={audit} />
        {audit.isPending && <p role="status">Loading the audit log…</p>}
        {!audit.isPending && <p className="text-xs text-slate-600" data-testid="audit-count">{items.length} entries shown{audit.hasNextPage ? "; more older ones" : ""}</p>}
      </div>
    </section>
  );
}
