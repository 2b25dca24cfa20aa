// A run's timeline: one bar per step on a shared time axis (SVG drawn with @visx, labelled for
// screen readers). Each bar has a visible text label (status, duration, retries, polls, what
// it waits for), so waits and retries never depend on colour alone.
import { AxisBottom } from "@visx/axis";
import { Group } from "@visx/group";
import { scaleLinear } from "@visx/scale";
import { useId } from "react";
import type { Schemas } from "../lib/api";
import { formatTick, shapeTimeline, type BarKind } from "../lib/timeline";

const FILL: Record<BarKind, string> = {
  succeeded: "#059669",
  failed: "#e11d48",
  running: "#0284c7",
  waiting: "url(#tl-hatch-wait)",
  backoff: "url(#tl-hatch-backoff)",
  pending: "none",
  skipped: "#94a3b8",
};

const WIDTH = 860;
const NAMES = 190;
const RIGHT = 20;
const ROW = 40;
const TOP = 8;
const AXIS = 36;

export function RunTimeline({ run, now = Date.now() }: { run: Schemas["RunDetail"]; now?: number }) {
  const t = shapeTimeline(run, now);
  const titleId = useId();
  const descId = useId();
  const height = TOP + t.bars.length * ROW + AXIS;
  const x = scaleLinear<number>({ domain: [0, t.spanMs], range: [0, WIDTH - NAMES - RIGHT], nice: false });
  return (
    <figure className="rounded-lg bg-white p-3 shadow" data-testid="timeline">
      <figcaption id={titleId} className="text-sm font-medium text-slate-800">
        Timeline: {t.bars.length} steps{t.origin !== null ? ", from the run's start" : ", none started yet"}
      </figcaption>
      {/* Focusable so the keyboard can scroll it on narrow screens. */}
      <div className="overflow-x-auto" role="region" tabIndex={0} aria-label="Timeline chart">
        <svg viewBox={`0 0 ${WIDTH} ${height}`} width="100%" style={{ minWidth: 640 }} role="img" aria-labelledby={titleId} aria-describedby={descId}>
          <desc id={descId}>{t.bars.map((b) => `${b.name}: ${b.label}`).join(". ")}</desc>
          <defs>
            <pattern id="tl-hatch-wait" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
              <rect width="6" height="6" fill="#fde68a" />
              <line x1="0" y1="0" x2="0" y2="6" stroke="#b45309" strokeWidth="2" />
            </pattern>
            <pattern id="tl-hatch-backoff" width="6" height="6" patternUnits="userSpaceOnUse">
              <rect width="6" height="6" fill="#fecdd3" />
              <path d="M0 0L6 6M6 0L0 6" stroke="#be123c" strokeWidth="1.2" />
            </pattern>
          </defs>
          {t.bars.map((b, i) => {
            const y = TOP + i * ROW;
            const started = b.startMs !== null && b.endMs !== null;
            const x0 = started ? x(b.startMs!) : 0;
            const w = started ? Math.max(2, x(b.endMs!) - x0) : 0;
            return (
              <g key={b.name} data-testid="timeline-bar" data-step={b.name} data-kind={b.kind} data-attempts={b.attempts} aria-hidden="true">
                <text x={NAMES - 8} y={y + 13} textAnchor="end" fontSize="12" fontFamily="ui-monospace, monospace" fill="#0f172a">
                  {b.name}
                </text>
                <Group left={NAMES}>
                  <line x1={0} x2={WIDTH - NAMES - RIGHT} y1={y + 9} y2={y + 9} stroke="#e2e8f0" />
                  {started && (
                    <rect
                      x={x0}
                      y={y + 2}
                      width={w}
                      height={14}
                      rx={2}
                      fill={FILL[b.kind]}
                      stroke={b.kind === "backoff" || b.kind === "waiting" ? "#78350f" : "none"}
                      strokeDasharray={b.kind === "backoff" ? "3 2" : undefined}
                    />
                  )}
                  <text x={Math.min(x0, WIDTH - NAMES - RIGHT - 300)} y={y + 31} fontSize="11" fill="#334155">
                    {b.retried ? "↻ " : ""}
                    {b.label}
                  </text>
                </Group>
              </g>
            );
          })}
          <AxisBottom
            top={TOP + t.bars.length * ROW}
            left={NAMES}
            scale={x}
            numTicks={6}
            tickFormat={(v) => formatTick(Number(v))}
            stroke="#475569"
            tickStroke="#475569"
            tickLabelProps={{ fill: "#334155", fontSize: 11, textAnchor: "middle" }}
          />
        </svg>
      </div>
      <p className="mt-1 text-xs text-slate-600">
        Bars: solid = ran (green succeeded, red failed, blue running); hatched = waiting for readiness; cross-hatched with a dashed edge = waiting to
        retry after an error; ↻ = retried. Each bar's label says the same in words.
      </p>
    </figure>
  );
}
