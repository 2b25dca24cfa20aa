// A repair or delete dry run's cluster plan: its state above the preview table, and per target
// the objects that would change (create / update with its fields / delete, the unchanged ones
// folded into a count) or the failure the action would meet.
import { Link } from "react-router";
import { CHANGE_MARK, clusterPlanText, planFailure, summarisePlan, type ClusterPlan, type ObjectChange, type PlannedObject, type StorePlan } from "../lib/clusterplan";

const CHANGE_TONE: Record<ObjectChange, string> = {
  create: "bg-emerald-100 text-emerald-900 ring-emerald-600/30",
  update: "bg-amber-100 text-amber-900 ring-amber-600/30",
  delete: "bg-rose-100 text-rose-900 ring-rose-600/30",
  unchanged: "bg-slate-100 text-slate-800 ring-slate-500/30",
};

/** The plan as a whole: ready, pending (with its run), or failed (with the error). */
export function ClusterPlanState({ plan }: { plan: ClusterPlan }) {
  const tone = plan.state === "failed" ? "border-rose-300 bg-rose-50 text-rose-900" : plan.state === "pending" ? "border-amber-300 bg-amber-50 text-amber-900" : "border-slate-200 bg-slate-50 text-slate-800";
  return (
    <p className={`mt-2 rounded-md border p-2 text-sm ${tone}`} data-testid="cluster-plan" data-state={plan.state}>
      {clusterPlanText(plan)}{" "}
      {plan.state !== "ready" && (
        <Link to={`/runs/${plan.run_id}`} className="font-medium underline">
          Open the preview run
        </Link>
      )}
    </p>
  );
}

function ObjectLine({ o }: { o: PlannedObject }) {
  return (
    <li>
      <span className={`mr-1 inline-flex rounded px-1.5 font-medium ring-1 ring-inset ${CHANGE_TONE[o.change]}`}>
        {CHANGE_MARK[o.change]} {o.change}
      </span>
      <span className="font-mono">
        {o.kind}/{o.name}
      </span>
      {o.fields.length > 0 && <span className="block break-all pl-4 font-mono text-slate-700">{o.fields.join(", ")}</span>}
      {o.note && <span className="ml-1 text-slate-600">({o.note})</span>}
    </li>
  );
}

/** One target's plan: its failure first, the objects that would change, the unchanged as a count. */
export function TargetPlan({ plan, action, pending }: { plan: StorePlan | undefined; action: string; pending: boolean }) {
  if (!plan) return <span className="text-slate-600">{pending ? "pending" : "—"}</span>;
  const s = summarisePlan(plan);
  return (
    <div role="group" aria-label={s.label} className="space-y-1" data-testid="target-plan">
      {plan.error && <p className="rounded bg-rose-50 px-2 py-1 font-semibold text-rose-900 ring-1 ring-rose-300">{planFailure(action, plan.error)}</p>}
      {s.changed.length > 0 ? (
        <ul className="space-y-0.5">
          {s.changed.map((o) => (
            <ObjectLine key={`${o.kind}/${o.name}`} o={o} />
          ))}
        </ul>
      ) : (
        !plan.error && <p>Nothing would change.</p>
      )}
      {s.unchanged.length > 0 && (
        <details>
          <summary className="cursor-pointer text-slate-700">{s.counts.unchanged} unchanged</summary>
          <ul className="mt-1 space-y-0.5">
            {s.unchanged.map((o) => (
              <ObjectLine key={`${o.kind}/${o.name}`} o={o} />
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}
