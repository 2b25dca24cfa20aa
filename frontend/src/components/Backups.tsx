// The store page's "Backups": the store's backups (newest first) with size and checksum,
// "Back up now", and a restore from any complete one — each behind a confirmation, each a
// run whose progress the page's current-run section shows.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, call, type Schemas } from "../lib/api";
import { formatBytes } from "../lib/usage";
import { toProblem, type ApiProblem } from "../lib/problem";
import { useAccess } from "../hooks/access";
import { ConfirmButton, ProblemBanner, StatusBadge, Time } from "./ui";

type Ask = { what: "backup" } | { what: "restore"; backup: string };

export function Backups({ store }: { store: Schemas["Store"] }) {
  const qc = useQueryClient();
  const { can, learn } = useAccess();
  const id = store.id;
  const list = useQuery({
    queryKey: ["store-backups", id],
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/stores/{id}/backups", { params: { path: { id } }, signal })),
    refetchInterval: 15_000,
  });
  const act = useMutation<Schemas["StoreAction"], ApiProblem, Ask>({
    mutationFn: (a) =>
      call(() =>
        a.what === "backup"
          ? api.POST("/api/v1/stores/{id}/backups", { params: { path: { id } } })
          : api.POST("/api/v1/stores/{id}/restore", { params: { path: { id } }, body: { backup_id: a.backup } }),
      ).catch((e: unknown) => {
        throw toProblem(e);
      }),
    onSuccess: () => {
      for (const key of [["store", id], ["store-runs", id], ["store-backups", id]]) void qc.invalidateQueries({ queryKey: key });
    },
    onError: learn,
  });
  const may = can("backup_store");
  const ready = store.status === "ready";
  const notReady = ready ? undefined : "Only a ready store can be backed up or restored.";
  const items = list.data?.items ?? [];
  return (
    <section aria-labelledby="backups-title" className="space-y-2 rounded-lg bg-white p-4 shadow" data-testid="store-backups">
      <div className="flex flex-wrap items-center gap-3">
        <h2 id="backups-title" className="text-lg font-semibold">
          Backups
        </h2>
        {may.visible && (
          <span className="ml-auto">
            <ConfirmButton
              label="Back up now"
              tone="secondary"
              question={`Back up ${store.name}?`}
              explanation="Dumps the database and archives the uploads; the plan's retention then prunes the oldest backups."
              confirmLabel="Back up"
              reason={may.enabled ? notReady : may.reason}
              busy={act.isPending && act.variables?.what === "backup"}
              onConfirm={() => act.mutate({ what: "backup" })}
            />
          </span>
        )}
      </div>
      <ProblemBanner problem={act.error ?? (list.error ? toProblem(list.error) : null)} onDismiss={() => act.reset()} />
      {list.isSuccess && items.length === 0 && <p className="text-sm text-slate-600">No backups yet.</p>}
      {items.length > 0 && (
        <table className="w-full text-left text-sm">
          <caption className="sr-only">Backups of {store.name}, newest first</caption>
          <thead className="text-slate-500">
            <tr>
              <th scope="col">Taken</th>
              <th scope="col">Status</th>
              <th scope="col">Why</th>
              <th scope="col">Size</th>
              <th scope="col">SHA-256</th>
              <th scope="col">
                <span className="sr-only">Restore</span>
              </th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {items.map((b) => (
              <tr key={b.id} data-testid="backup-row" data-status={b.status}>
                <td>
                  <Time at={b.created_at} />
                </td>
                <td>
                  <StatusBadge status={b.status} />
                </td>
                <td>{b.reason.replace("_", "-")}</td>
                <td>{b.size_bytes === undefined ? "—" : formatBytes(b.size_bytes)}</td>
                <td className="font-mono text-xs" title={b.sha256}>
                  {b.sha256 ? `${b.sha256.slice(0, 12)}…` : "—"}
                </td>
                <td className="text-right">
                  {may.visible && b.status === "complete" && (
                    <ConfirmButton
                      label="Restore"
                      tone="danger"
                      question={`Restore ${store.name} from this backup?`}
                      explanation="The storefront goes offline while the database and uploads are replaced with the backup's; orders since the backup are lost."
                      confirmLabel="Restore"
                      reason={may.enabled ? notReady : may.reason}
                      busy={act.isPending && act.variables?.what === "restore" && act.variables.backup === b.id}
                      onConfirm={() => act.mutate({ what: "restore", backup: b.id })}
                    />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
