// The fleet overview's charts (SVG drawn with @visx scales and axes). Each is one
// role="img" whose accessible name says what it shows and whose description lists its data;
// every bar carries its number as visible text, and the runs chart tells outcomes apart by
// pattern and legend words as well as colour.
import { AxisBottom, AxisLeft } from "@visx/axis";
import { Group } from "@visx/group";
import { scaleBand, scaleLinear } from "@visx/scale";
import { useId, type ReactNode } from "react";
import type { Schemas } from "../lib/api";
import { bucketLabel, windowLabel, type RunBucket } from "../lib/fleet";

const WIDTH = 860;

/** A chart's frame: caption (its name), a keyboard-scrollable region, the SVG with its description. */
function Chart(props: { title: string; desc: string; height: number; testId: string; children: ReactNode; note?: ReactNode; data?: Record<string, string> }) {
  const titleId = useId();
  const descId = useId();
  return (
    <figure className="rounded-lg bg-white p-3 shadow" data-testid={props.testId} {...props.data}>
      <figcaption id={titleId} className="text-sm font-medium text-slate-800">
        {props.title}
      </figcaption>
      <div className="overflow-x-auto" role="region" tabIndex={0} aria-label={`${props.title} (chart)`}>
        <svg viewBox={`0 0 ${WIDTH} ${props.height}`} width="100%" style={{ minWidth: 560 }} role="img" aria-labelledby={titleId} aria-describedby={descId}>
          <desc id={descId}>{props.desc}</desc>
          {props.children}
        </svg>
      </div>
      {props.note && <div className="mt-1 text-xs text-slate-600">{props.note}</div>}
    </figure>
  );
}

const STATUS_FILL: Record<string, string> = {
  ready: "#059669",
  provisioning: "#0284c7",
  failed: "#e11d48",
  deleting: "#d97706",
  deleted: "#64748b",
};

/** Stores by status: one horizontal bar per status, its count written after it. */
export function StoresByStatus({ stores }: { stores: Schemas["StatusCount"][] }) {
  const NAMES = 120;
  const ROW = 30;
  const height = stores.length * ROW + 10;
  const max = Math.max(1, ...stores.map((s) => s.count));
  const x = scaleLinear<number>({ domain: [0, max], range: [0, WIDTH - NAMES - 80] });
  const total = stores.reduce((n, s) => n + s.count, 0);
  return (
    <Chart
      testId="chart-stores"
      title={`Stores by status (${total} in all)`}
      desc={stores.map((s) => `${s.status}: ${s.count}`).join(", ")}
      height={height}
    >
      {stores.map((s, i) => {
        const y = 5 + i * ROW;
        return (
          <g key={s.status} data-testid="status-bar" data-status={s.status} data-count={s.count} aria-hidden="true">
            <text x={NAMES - 8} y={y + 15} textAnchor="end" fontSize="13" fill="#0f172a">
              {s.status}
            </text>
            <rect x={NAMES} y={y + 3} width={s.count > 0 ? Math.max(2, x(s.count)) : 0} height={18} rx={2} fill={STATUS_FILL[s.status] ?? "#64748b"} />
            <text x={NAMES + (s.count > 0 ? Math.max(2, x(s.count)) : 0) + 6} y={y + 16} fontSize="13" fontWeight="600" fill="#0f172a">
              {s.count}
            </text>
          </g>
        );
      })}
    </Chart>
  );
}

/** The successes' durations, one vertical bar per bucket with its run count above it. */
export function DurationHistogram({ runs, definition }: { runs: Schemas["RunInsights"]; definition: string }) {
  const LEFT = 40;
  const TOP = 18;
  const PLOT = 170;
  const height = TOP + PLOT + 40;
  const buckets = runs.histogram.map((b) => ({ ...b, label: bucketLabel(b.from_seconds, b.to_seconds) }));
  const x = scaleBand<string>({ domain: buckets.map((b) => b.label), range: [0, WIDTH - LEFT - 10], padding: 0.2 });
  const max = Math.max(1, ...buckets.map((b) => b.runs));
  const y = scaleLinear<number>({ domain: [0, max], range: [PLOT, 0], nice: true });
  return (
    <Chart
      testId="chart-provision-histogram"
      data={{ "data-succeeded": String(runs.succeeded) }}
      title={`How long ${definition} took: ${runs.succeeded} successful ${runs.succeeded === 1 ? "run" : "runs"} by duration`}
      desc={buckets.map((b) => `${b.label}: ${b.runs} ${b.runs === 1 ? "run" : "runs"}`).join(", ")}
      height={height}
    >
      <Group left={LEFT} top={TOP}>
        {buckets.map((b) => {
          const bx = x(b.label) ?? 0;
          const top = y(b.runs);
          return (
            <g key={b.label} data-testid="hist-bar" data-label={b.label} data-runs={b.runs} aria-hidden="true">
              <rect x={bx} y={top} width={x.bandwidth()} height={PLOT - top} fill="#4f46e5" />
              <text x={bx + x.bandwidth() / 2} y={top - 4} textAnchor="middle" fontSize="12" fontWeight="600" fill="#0f172a">
                {b.runs}
              </text>
            </g>
          );
        })}
        <AxisLeft scale={y} numTicks={Math.min(4, max)} tickFormat={(v) => String(v)} stroke="#475569" tickStroke="#475569" tickLabelProps={{ fill: "#334155", fontSize: 11 }} />
        <AxisBottom top={PLOT} scale={x} stroke="#475569" tickStroke="#475569" tickLabelProps={{ fill: "#334155", fontSize: 11, textAnchor: "middle" }} />
      </Group>
    </Chart>
  );
}

const OUTCOMES = [
  { key: "succeeded", fill: "#059669", label: "succeeded (solid)" },
  { key: "failed", fill: "url(#fleet-hatch-failed)", label: "failed (hatched)" },
  { key: "cancelled", fill: "url(#fleet-dots-cancelled)", label: "cancelled (dotted)" },
] as const;

/** Runs that ended per bucket of hours, stacked succeeded / failed / cancelled, total above. */
export function RunsOverTime({ buckets, size, hours }: { buckets: RunBucket[]; size: number; hours: number }) {
  const LEFT = 40;
  const TOP = 18;
  const PLOT = 170;
  const height = TOP + PLOT + 44;
  const x = scaleBand<number>({ domain: buckets.map((b) => b.start), range: [0, WIDTH - LEFT - 10], padding: 0.15 });
  const total = (b: RunBucket) => b.succeeded + b.failed + b.cancelled;
  const max = Math.max(1, ...buckets.map(total));
  const y = scaleLinear<number>({ domain: [0, max], range: [PLOT, 0], nice: true });
  const unit = size === 1 ? "hour" : size === 24 ? "day" : `${size} hours`;
  const fmt = (ms: number) => {
    const d = new Date(ms);
    return size >= 24 ? d.toLocaleDateString(undefined, { month: "short", day: "numeric" }) : d.toLocaleString(undefined, size === 1 ? { hour: "2-digit", minute: "2-digit" } : { month: "short", day: "numeric", hour: "2-digit" });
  };
  const busy = buckets.filter((b) => total(b) > 0);
  const desc =
    (busy.length === 0 ? "No runs ended in this window." : busy.map((b) => `${fmt(b.start)}: ${b.succeeded} succeeded, ${b.failed} failed, ${b.cancelled} cancelled`).join("; ")) +
    (busy.length > 0 && busy.length < buckets.length ? `; the other ${buckets.length - busy.length} ${size === 1 ? "hours" : "periods"}: none` : "");
  const every = Math.ceil(buckets.length / (size === 6 ? 6 : 12));
  return (
    <Chart
      testId="chart-runs"
      title={`Runs ended per ${unit} over the last ${windowLabel(hours)}, every workflow`}
      desc={desc}
      height={height}
      note={
        <ul className="flex flex-wrap gap-4" aria-label="Legend">
          {OUTCOMES.map((o) => (
            <li key={o.key} className="flex items-center gap-1">
              <svg width="14" height="14" aria-hidden="true">
                <rect width="14" height="14" fill={o.fill} stroke="#334155" strokeWidth="1" />
              </svg>
              {o.label}
            </li>
          ))}
          <li>The number above a bar is its total.</li>
        </ul>
      }
    >
      <defs>
        <pattern id="fleet-hatch-failed" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
          <rect width="6" height="6" fill="#fecdd3" />
          <line x1="0" y1="0" x2="0" y2="6" stroke="#be123c" strokeWidth="3" />
        </pattern>
        <pattern id="fleet-dots-cancelled" width="5" height="5" patternUnits="userSpaceOnUse">
          <rect width="5" height="5" fill="#e2e8f0" />
          <circle cx="2.5" cy="2.5" r="1.3" fill="#475569" />
        </pattern>
      </defs>
      <Group left={LEFT} top={TOP}>
        {buckets.map((b) => {
          const bx = x(b.start) ?? 0;
          let base = PLOT;
          return (
            <g key={b.start} data-testid="runs-bar" data-start={new Date(b.start).toISOString()} data-succeeded={b.succeeded} data-failed={b.failed} data-cancelled={b.cancelled} aria-hidden="true">
              {OUTCOMES.map((o) => {
                const n = b[o.key];
                if (n === 0) return null;
                const h = PLOT - y(n);
                base -= h;
                return <rect key={o.key} x={bx} y={base} width={x.bandwidth()} height={h} fill={o.fill} stroke="#334155" strokeWidth="0.5" />;
              })}
              {total(b) > 0 && (
                <text x={bx + x.bandwidth() / 2} y={y(total(b)) - 4} textAnchor="middle" fontSize="11" fontWeight="600" fill="#0f172a">
                  {total(b)}
                </text>
              )}
            </g>
          );
        })}
        <AxisLeft scale={y} numTicks={Math.min(4, max)} tickFormat={(v) => String(v)} stroke="#475569" tickStroke="#475569" tickLabelProps={{ fill: "#334155", fontSize: 11 }} />
        <AxisBottom
          top={PLOT}
          scale={x}
          tickValues={buckets.filter((_, i) => i % every === 0).map((b) => b.start)}
          tickFormat={(v) => fmt(Number(v))}
          stroke="#475569"
          tickStroke="#475569"
          tickLabelProps={{ fill: "#334155", fontSize: 11, textAnchor: "middle" }}
        />
      </Group>
    </Chart>
  );
}
