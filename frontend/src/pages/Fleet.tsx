import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useSearchParams } from "react-router";
import { DurationHistogram, RunsOverTime, StoresByStatus } from "../components/FleetCharts";
import { FleetUsage } from "../components/Usage";
import { btn, PageTitle, ProblemBanner } from "../components/ui";
import { useAccess } from "../hooks/access";
import { api, call, type Schemas } from "../lib/api";
import { bucketHours, formatMs, orderSteps, percent, runBuckets, runTotals, STEP_ORDERS, waitingShare, windowHours, windowLabel, WINDOWS, type StepOrder } from "../lib/fleet";
import { toProblem } from "../lib/problem";

const PROVISION = "store.provision";

function Loading({ what }: { what: string }) {
  return (
    <p role="status" className="rounded-lg bg-white p-4 text-sm text-slate-600 shadow">
      Loading {what}…
    </p>
  );
}

function Empty({ children, testId }: { children: string; testId: string }) {
  return (
    <p className="rounded-lg bg-white p-4 text-sm text-slate-600 shadow" data-testid={testId}>
      {children}
    </p>
  );
}

function StepsTable({ items }: { items: Schemas["StepInsightView"][] }) {
  const [order, setOrder] = useState<StepOrder>("failures");
  const rows = orderSteps(items, order);
  return (
    <div className="rounded-lg bg-white shadow">
      <div className="flex flex-wrap items-center gap-3 p-3">
        <label htmlFor="step-order" className="text-sm">
          Order by
        </label>
        <select id="step-order" className="rounded-md px-2 py-1 text-sm ring-1 ring-slate-300" value={order} onChange={(e) => setOrder(e.target.value as StepOrder)}>
          {STEP_ORDERS.map((o) => (
            <option key={o.key} value={o.key}>
              {o.label}
            </option>
          ))}
        </select>
      </div>
      <div className="overflow-x-auto" role="region" tabIndex={0} aria-label="Steps table">
        <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="step-insights">
          <caption className="sr-only">Per step: how many ended and failed, durations, retries, polls, waiting against working, the top error</caption>
          <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
            <tr>
              <th scope="col" className="px-3 py-2">Workflow / step</th>
              <th scope="col" className="px-3 py-2 text-right">Ended</th>
              <th scope="col" className="px-3 py-2 text-right">Failed</th>
              <th scope="col" className="px-3 py-2 text-right">p50 / p95 / p99</th>
              <th scope="col" className="px-3 py-2 text-right">Retries</th>
              <th scope="col" className="px-3 py-2 text-right">Polls</th>
              <th scope="col" className="px-3 py-2">Waiting vs working</th>
              <th scope="col" className="px-3 py-2">Top error</th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100 align-top">
            {rows.map((s) => {
              const share = waitingShare(s);
              const top = s.errors[0];
              return (
                <tr key={`${s.definition}/${s.version}/${s.step}`} data-testid="step-insight-row" data-definition={s.definition} data-step={s.step} data-count={s.count} data-failed={s.failed}>
                  <td className="px-3 py-2">
                    <div className="font-mono text-xs">{s.step}</div>
                    <div className="text-xs text-slate-600">
                      {s.definition} v{s.version}
                    </div>
                  </td>
                  <td className="px-3 py-2 text-right tabular-nums">{s.count}</td>
                  <td className="px-3 py-2 text-right tabular-nums">
                    {s.failed} ({percent(s.failure_rate)})
                  </td>
                  <td className="px-3 py-2 text-right whitespace-nowrap tabular-nums">
                    {formatMs(s.p50_ms)} / {formatMs(s.p95_ms)} / {formatMs(s.p99_ms)}
                  </td>
                  <td className="px-3 py-2 text-right tabular-nums">{s.retries}</td>
                  <td className="px-3 py-2 text-right tabular-nums">{s.polls}</td>
                  <td className="px-3 py-2 whitespace-nowrap">
                    {share === null ? (
                      "no time recorded"
                    ) : (
                      <span className="flex items-center gap-2">
                        <span aria-hidden="true" className="inline-flex h-2.5 w-20 overflow-hidden rounded bg-emerald-600">
                          <span className="h-full bg-amber-400" style={{ width: `${share * 100}%` }} />
                        </span>
                        {percent(share)} waiting, {percent(1 - share)} working
                      </span>
                    )}
                  </td>
                  <td className="max-w-xs px-3 py-2 text-xs break-words">{top ? `${top.error} (${top.steps}×)` : "—"}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </div>
  );
}

/** The fleet at a glance over a window kept in the URL (?hours=24|168|720). Any role. */
export function FleetPage() {
  const [params, setParams] = useSearchParams();
  const hours = windowHours(params);
  const { learn } = useAccess();
  const guard = (e: unknown): never => {
    const p = toProblem(e);
    learn(p);
    throw p;
  };
  const fleet = useQuery({
    queryKey: ["insights", "fleet", hours],
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/insights/fleet", { params: { query: { hours } }, signal })).catch(guard),
  });
  const runs = useQuery({
    queryKey: ["insights", "runs", PROVISION, hours],
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/insights/runs", { params: { query: { definition: PROVISION, hours } }, signal })).catch(guard),
  });
  const steps = useQuery({
    queryKey: ["insights", "steps", hours],
    queryFn: ({ signal }) => call(() => api.GET("/api/v1/insights/steps", { params: { query: { hours } }, signal })).catch(guard),
  });
  const label = windowLabel(hours);
  const size = bucketHours(hours);
  const buckets = fleet.data ? runBuckets(fleet.data.runs_per_hour, fleet.data.since, Date.now(), size) : [];
  const totals = runTotals(buckets);
  const r = runs.data;
  return (
    <section data-testid="fleet" data-hours={hours}>
      <div className="flex flex-wrap items-center gap-4">
        <PageTitle>Fleet overview</PageTitle>
        <div role="group" aria-label="Window" className="flex gap-1">
          {WINDOWS.map((w) => (
            <button
              key={w.hours}
              type="button"
              aria-pressed={w.hours === hours}
              className={w.hours === hours ? btn.primary : btn.secondary}
              onClick={() => setParams(w.hours === 24 ? {} : { hours: String(w.hours) })}
            >
              {w.label}
            </button>
          ))}
        </div>
        <button
          type="button"
          className={`${btn.secondary} ml-auto`}
          onClick={() => {
            void fleet.refetch();
            void runs.refetch();
            void steps.refetch();
          }}
        >
          Refresh
        </button>
      </div>
      <p className="mt-1 text-sm text-slate-600">Runs that finished in the last {label}; store counts are as of now.</p>

      <h2 className="mt-6 mb-2 text-lg font-semibold">Stores</h2>
      <ProblemBanner problem={fleet.error ? toProblem(fleet.error) : null} />
      {fleet.isPending && <Loading what="the fleet" />}
      {fleet.data &&
        (fleet.data.stores.every((s) => s.count === 0) ? (
          <Empty testId="stores-empty">No stores yet: there is nothing to count.</Empty>
        ) : (
          <StoresByStatus stores={fleet.data.stores} />
        ))}

      <h2 className="mt-6 mb-2 text-lg font-semibold">Quota usage across the fleet</h2>
      {fleet.data &&
        (fleet.data.usage.length === 0 ? (
          <Empty testId="usage-empty">No quota observed yet — the worker reads them every few minutes.</Empty>
        ) : (
          <FleetUsage usage={fleet.data.usage} />
        ))}

      <h2 className="mt-6 mb-2 text-lg font-semibold">Provisioning time</h2>
      <ProblemBanner problem={runs.error ? toProblem(runs.error) : null} />
      {runs.isPending && <Loading what="provisioning times" />}
      {r && (
        <>
          <p className="mb-2 text-sm" data-testid="provision-summary" data-succeeded={r.succeeded} data-failed={r.failed} data-cancelled={r.cancelled}>
            {r.succeeded} succeeded, {r.failed} failed, {r.cancelled} cancelled {PROVISION} runs in the last {label}.
            {r.succeeded > 0 && (
              <>
                {" "}
                From request to ready: <strong>p50 {formatMs(r.p50_ms)}</strong>, <strong>p95 {formatMs(r.p95_ms)}</strong>, <strong>p99 {formatMs(r.p99_ms)}</strong>.
              </>
            )}
          </p>
          {r.succeeded === 0 ? (
            <Empty testId="provision-empty">{`No store was provisioned in the last ${label} yet: no durations to show.`}</Empty>
          ) : (
            <DurationHistogram runs={r} definition={PROVISION} />
          )}
        </>
      )}

      <h2 className="mt-6 mb-2 text-lg font-semibold">Runs over time</h2>
      {fleet.isPending && <Loading what="runs" />}
      {fleet.isError && <p className="text-sm text-slate-600">Not loaded: see the error under Stores.</p>}
      {fleet.data &&
        (totals.succeeded + totals.failed + totals.cancelled === 0 ? (
          <Empty testId="runs-empty">{`No run ended in the last ${label} yet.`}</Empty>
        ) : (
          <>
            <p className="mb-2 text-sm" data-testid="runs-summary">
              {totals.succeeded} succeeded, {totals.failed} failed, {totals.cancelled} cancelled (every workflow).
            </p>
            <RunsOverTime buckets={buckets} size={size} hours={hours} />
          </>
        ))}

      <h2 className="mt-6 mb-2 text-lg font-semibold">Steps: failures and where time goes</h2>
      <ProblemBanner problem={steps.error ? toProblem(steps.error) : null} />
      {steps.isPending && <Loading what="steps" />}
      {steps.data &&
        (steps.data.items.length === 0 ? (
          <Empty testId="steps-empty">{`No run finished in the last ${label} yet, so no step to report.`}</Empty>
        ) : (
          <StepsTable items={steps.data.items} />
        ))}
      <p className="mt-4 text-xs text-slate-600">
        Failed runs can be retried from <Link to="/runs" className="text-indigo-700 underline">Runs</Link>.
      </p>
    </section>
  );
}
