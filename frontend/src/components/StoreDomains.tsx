// The store page's custom domains: the list (the primary one marked), an add field and a
// remove button per domain; each change starts a store.domains run (its progress shows as
// the store's current run).
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useId, useState } from "react";
import { useAccess } from "../hooks/access";
import { api, call, type Schemas } from "../lib/api";
import { primaryHost, typedDomain } from "../lib/domains";
import { toProblem, type ApiProblem } from "../lib/problem";
import { ProblemBanner, btn, input } from "./ui";

type Change = { add: string } | { remove: string };

export function StoreDomains({ store }: { store: Schemas["Store"] }) {
  const qc = useQueryClient();
  const { can, learn } = useAccess();
  const manage = can("manage_domains");
  const [typed, setTyped] = useState("");
  const fieldId = useId();
  const change = useMutation<Schemas["StoreAction"], ApiProblem, Change>({
    mutationFn: (c) =>
      call(() =>
        "add" in c
          ? api.POST("/api/v1/stores/{id}/domains", { params: { path: { id: store.id } }, body: { domain: c.add } })
          : api.DELETE("/api/v1/stores/{id}/domains/{domain}", { params: { path: { id: store.id, domain: c.remove } } }),
      ).catch((e: unknown) => {
        throw toProblem(e);
      }),
    onSuccess: (_, c) => {
      if ("add" in c) setTyped("");
      void qc.invalidateQueries({ queryKey: ["store", store.id] });
      void qc.invalidateQueries({ queryKey: ["store-runs", store.id] });
    },
    onError: learn,
  });
  const domains = store.domains;
  const primary = primaryHost(store);
  const ready = store.status === "ready";
  const why = manage.enabled ? (ready ? undefined : "Domains change only on a ready store.") : manage.reason;
  return (
    <section aria-labelledby={`${fieldId}-title`} className="space-y-2 rounded-lg bg-white p-4 shadow">
      <h2 id={`${fieldId}-title`} className="text-lg font-semibold">
        Custom domains
      </h2>
      {domains.length === 0 ? (
        <p className="text-sm text-slate-600">None: the store answers at its platform address only.</p>
      ) : (
        <ul className="divide-y divide-slate-100 text-sm">
          {domains.map((d) => (
            <li key={d} className="flex items-center gap-3 py-1.5">
              <span className="font-mono text-xs">{d}</span>
              {d === primary && <span className="text-xs text-slate-500">primary</span>}
              {manage.visible && (
                <button
                  type="button"
                  className={`${btn.secondary} ml-auto`}
                  aria-label={`Remove domain ${d}`}
                  disabled={why !== undefined || change.isPending}
                  onClick={() => change.mutate({ remove: d })}
                >
                  Remove
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {manage.visible && (
        <form
          className="flex flex-wrap items-end gap-2"
          onSubmit={(e) => {
            e.preventDefault();
            const domain = typedDomain(typed);
            if (domain) change.mutate({ add: domain });
          }}
        >
          <div className="min-w-60 flex-1">
            <label htmlFor={fieldId} className="block text-sm font-medium text-slate-800">
              Add a domain
            </label>
            <input
              id={fieldId}
              className={input}
              placeholder="shop.example.com"
              value={typed}
              onChange={(e) => setTyped(e.target.value)}
              aria-describedby={`${fieldId}-hint`}
            />
          </div>
          <button type="submit" className={btn.primary} disabled={why !== undefined || change.isPending || !typedDomain(typed)}>
            {change.isPending ? "Applying…" : "Add domain"}
          </button>
          <p id={`${fieldId}-hint`} className="w-full text-xs text-slate-500">
            {why ?? "Point the domain's DNS (a CNAME) at the platform's ingress first; its certificate is issued once it resolves."}
          </p>
        </form>
      )}
      <ProblemBanner problem={change.error} onDismiss={() => change.reset()} />
    </section>
  );
}
