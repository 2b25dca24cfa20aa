import type { Schemas } from "../lib/api";
import { duration, StatusBadge, Time } from "./ui";

type Step = Schemas["StepView"];

function Output({ value }: { value: unknown }) {
  if (value === undefined || value === null) return <span className="text-slate-400">—</span>;
  return (
    <details>
      <summary className="cursor-pointer whitespace-nowrap text-indigo-700">output</summary>
      <pre className="mt-1 max-w-md overflow-x-auto whitespace-pre-wrap rounded bg-slate-50 p-2 text-xs">{JSON.stringify(value, null, 2)}</pre>
    </details>
  );
}

/** A run's steps in order: status, attempts, polls (with the last wait reason), times, last error, output. */
export function StepsTable({ steps, caption }: { steps: Step[]; caption: string }) {
  const ordered = [...steps].sort((a, b) => a.position - b.position);
  return (
    <div className="overflow-x-auto rounded-lg bg-white shadow">
      <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="steps">
        <caption className="sr-only">{caption}</caption>
        <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
          <tr>
            <th scope="col" className="px-3 py-2">#</th>
            <th scope="col" className="px-3 py-2">Step</th>
            <th scope="col" className="px-3 py-2">Status</th>
            <th scope="col" className="px-3 py-2">Attempts</th>
            <th scope="col" className="px-3 py-2">Polls</th>
            <th scope="col" className="px-3 py-2">Started</th>
            <th scope="col" className="px-3 py-2">Duration</th>
            <th scope="col" className="px-3 py-2">Last error / next attempt</th>
            <th scope="col" className="px-3 py-2">Output</th>
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100 align-top">
          {ordered.map((s) => (
            <tr key={s.name} data-testid="step-row" data-step={s.name} data-status={s.status}>
              <td className="px-3 py-2 text-slate-500">{s.position + 1}</td>
              <th scope="row" className="px-3 py-2 text-left font-mono text-xs font-medium">
                {s.name}
              </th>
              <td className="px-3 py-2">
                <StatusBadge status={s.status} />
              </td>
              <td className="px-3 py-2">{s.attempts}</td>
              <td className="px-3 py-2">
                {s.polls}
                {s.wait_reason && s.polls > 0 && <p className="max-w-xs text-xs text-slate-600">{s.wait_reason}</p>}
              </td>
              <td className="px-3 py-2 whitespace-nowrap">
                <Time at={s.started_at} />
              </td>
              <td className="px-3 py-2 whitespace-nowrap">{duration(s.duration_ms)}</td>
              <td className="px-3 py-2">
                {s.last_error && <pre className="max-w-md whitespace-pre-wrap break-words text-xs text-rose-800">{s.last_error}</pre>}
                {s.next_attempt_at && s.status === "waiting" && (
                  <p className="text-xs text-slate-600">
                    next: <Time at={s.next_attempt_at} />
                  </p>
                )}
                {!s.last_error && !(s.next_attempt_at && s.status === "waiting") && <span className="text-slate-400">—</span>}
              </td>
              <td className="px-3 py-2">
                <Output value={s.output} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
