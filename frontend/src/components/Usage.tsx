// Resource usage against quotas: a bar per resource (role="meter", its level in words as well
// as colour), the store page's section and the fleet page's table.
import { useQuery } from "@tanstack/react-query";
import { api, call, type Schemas } from "../lib/api";
import { toProblem } from "../lib/problem";
import { formatAmount, level, LEVEL_TEXT, orderResources, usagePercent } from "../lib/usage";
import { ProblemBanner, Time } from "./ui";

const FILL = { ok: "bg-emerald-600", high: "bg-amber-500", over: "bg-rose-600" };
const TEXT = { ok: "", high: "font-medium text-amber-800", over: "font-medium text-rose-700" };

/** One resource's bar and percentage; a dash when the fraction is unknown. */
function Bar({ name, fraction, text }: { name: string; fraction?: number; text: string }) {
  if (fraction === undefined) return <span className="text-slate-500">—</span>;
  const l = level(fraction);
  const said = usagePercent(fraction) + (LEVEL_TEXT[l] && ` — ${LEVEL_TEXT[l]}`);
  return (
    <span className="flex items-center gap-2">
      <span
        role="meter"
        aria-label={name}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.min(100, Math.round(fraction * 100))}
        aria-valuetext={`${text}, ${said}`}
        className="h-2.5 w-32 shrink-0 overflow-hidden rounded bg-slate-200"
      >
        <span className={`block h-full ${FILL[l]}`} style={{ width: `${Math.min(100, fraction * 100)}%` }} />
      </span>
      <span className={`whitespace-nowrap ${TEXT[l]}`} data-testid="usage-percent">
        {said}
      </span>
    </span>
  );
}

/** The store page's "Resource usage": its quota's resources as last observed by a worker. */
export function StoreUsage({ id }: { id: string }) {
  const usage = useQuery({
    queryKey: ["store-usage", id],
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/stores/{id}/usage", { params: { path: { id } }, signal })),
    refetchInterval: 60_000,
  });
  const u = usage.data;
  return (
    <section aria-labelledby="usage-title" className="space-y-2 rounded-lg bg-white p-4 shadow" data-testid="store-usage">
      <h2 id="usage-title" className="text-lg font-semibold">
        Resource usage
      </h2>
      <ProblemBanner problem={usage.error ? toProblem(usage.error) : null} />
      {u && !u.observed_at && <p className="text-sm text-slate-600" data-testid="usage-empty">Not observed yet — the worker reads quotas every few minutes.</p>}
      {u?.observed_at && (
        <>
          <p className="text-sm text-slate-600">
            As of <Time at={u.observed_at} />, against the store's quota.
          </p>
          <ul className="space-y-1 text-sm">
            {orderResources(u.resources).map((r) => (
              <li key={r.name} className="grid grid-cols-1 gap-x-4 sm:grid-cols-3" data-testid="usage-row" data-name={r.name}>
                <span className="font-mono text-xs">{r.name}</span>
                <span className="tabular-nums" data-testid="usage-amount">{`${r.used} / ${r.hard}`}</span>
                <Bar name={r.name} fraction={r.fraction} text={`${r.used} of ${r.hard}`} />
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

/** The fleet page's quota usage: per resource, the live stores' use and quota summed. */
export function FleetUsage({ usage }: { usage: Schemas["FleetResource"][] }) {
  return (
    <div className="overflow-x-auto rounded-lg bg-white shadow" role="region" tabIndex={0} aria-label="Quota usage table">
      <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="fleet-usage">
        <caption className="sr-only">Per quota resource: the live stores' use and quota summed, and how many stores</caption>
        <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
          <tr>
            <th scope="col" className="px-3 py-2">Resource</th>
            <th scope="col" className="px-3 py-2 text-right">Used / quota</th>
            <th scope="col" className="px-3 py-2">Use</th>
            <th scope="col" className="px-3 py-2 text-right">Stores</th>
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">
          {orderResources(usage).map((r) => {
            const text = `${formatAmount(r.name, r.used)} / ${formatAmount(r.name, r.hard)}`;
            return (
              <tr key={r.name} data-testid="fleet-usage-row" data-name={r.name} data-used={r.used} data-hard={r.hard} data-stores={r.stores}>
                <td className="px-3 py-2 font-mono text-xs">{r.name}</td>
                <td className="px-3 py-2 text-right whitespace-nowrap tabular-nums" data-testid="usage-amount">{text}</td>
                <td className="px-3 py-2">
                  <Bar name={r.name} fraction={r.hard > 0 ? r.used / r.hard : undefined} text={text} />
                </td>
                <td className="px-3 py-2 text-right tabular-nums">{r.stores}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
