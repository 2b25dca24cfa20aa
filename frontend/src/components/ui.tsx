// Small shared pieces: status badges (text, not colour alone), problem banners, times,
// a confirm-first button on the native <dialog> (focus trapped, Escape cancels).
import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import { describeProblem, type ApiProblem } from "../lib/problem";
import type { StreamState } from "../lib/sse";

const TONE: Record<string, string> = {
  ready: "bg-emerald-100 text-emerald-900 ring-emerald-600/30",
  succeeded: "bg-emerald-100 text-emerald-900 ring-emerald-600/30",
  provisioning: "bg-sky-100 text-sky-900 ring-sky-600/30",
  running: "bg-sky-100 text-sky-900 ring-sky-600/30",
  queued: "bg-slate-100 text-slate-800 ring-slate-500/30",
  pending: "bg-slate-100 text-slate-800 ring-slate-500/30",
  waiting: "bg-amber-100 text-amber-900 ring-amber-600/30",
  deleting: "bg-amber-100 text-amber-900 ring-amber-600/30",
  suspended: "bg-violet-100 text-violet-900 ring-violet-600/30",
  failed: "bg-rose-100 text-rose-900 ring-rose-600/30",
  cancelled: "bg-slate-200 text-slate-800 ring-slate-500/30",
  deleted: "bg-slate-200 text-slate-700 ring-slate-500/30",
  skipped: "bg-slate-200 text-slate-700 ring-slate-500/30",
  complete: "bg-emerald-100 text-emerald-900 ring-emerald-600/30",
  pruned: "bg-slate-200 text-slate-700 ring-slate-500/30",
  paused: "bg-amber-100 text-amber-900 ring-amber-600/30",
  awaiting_approval: "bg-amber-100 text-amber-900 ring-amber-600/30",
  stopped: "bg-rose-100 text-rose-900 ring-rose-600/30",
};

export function StatusBadge({ status, testId }: { status: string; testId?: string }) {
  return (
    <span
      data-testid={testId}
      data-status={status}
      className={`inline-flex items-center rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset ${TONE[status] ?? TONE.pending}`}
    >
      {status.replace(/_/g, " ")}
    </span>
  );
}

export function ProblemBanner({ problem, onDismiss }: { problem: ApiProblem | null | undefined; onDismiss?: () => void }) {
  if (!problem) return null;
  return (
    <div role="alert" className="my-3 flex items-start gap-3 rounded-md border border-rose-300 bg-rose-50 p-3 text-sm text-rose-900">
      <p className="flex-1">
        <span className="font-semibold">{problem.status ? `${problem.status} ` : ""}</span>
        {describeProblem(problem)}
      </p>
      {onDismiss && (
        <button type="button" className="text-rose-900 underline" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

export function Time({ at }: { at: string | undefined | null }) {
  if (!at) return <span className="text-slate-400">—</span>;
  const d = new Date(at);
  return (
    <time dateTime={at} title={d.toISOString()}>
      {d.toLocaleString()}
    </time>
  );
}

export function duration(ms: number | undefined | null): string {
  if (ms === undefined || ms === null) return "—";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function LiveIndicator({ state }: { state: StreamState }) {
  const text =
    state.state === "open"
      ? "Live"
      : state.state === "connecting"
        ? "Connecting…"
        : state.state === "reconnecting"
          ? `Reconnecting in ${Math.round(state.inMs / 1000)} s${state.problem ? ` (${state.problem.title})` : ""}`
          : `Live updates stopped: ${describeProblemShort(state.problem)}`;
  const dot = state.state === "open" ? "bg-emerald-500" : state.state === "stopped" ? "bg-rose-500" : "bg-amber-500";
  return (
    <p className="flex items-center gap-2 text-xs text-slate-600" role="status" aria-live="polite" data-testid="live" data-state={state.state}>
      <span aria-hidden="true" className={`inline-block h-2 w-2 rounded-full ${dot}`} />
      {text}
    </p>
  );
}

function describeProblemShort(p: ApiProblem): string {
  return p.detail ? `${p.status} ${p.detail}` : `${p.status} ${p.title}`;
}

export const btn = {
  primary:
    "inline-flex items-center rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 disabled:cursor-not-allowed disabled:opacity-50",
  secondary:
    "inline-flex items-center rounded-md bg-white px-3 py-1.5 text-sm font-medium text-slate-900 ring-1 ring-inset ring-slate-300 hover:bg-slate-50 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 disabled:cursor-not-allowed disabled:opacity-50",
  danger:
    "inline-flex items-center rounded-md bg-rose-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-rose-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-rose-600 disabled:cursor-not-allowed disabled:opacity-50",
};

export const input =
  "block w-full rounded-md border-0 px-2 py-1.5 text-sm text-slate-900 ring-1 ring-inset ring-slate-300 placeholder:text-slate-400 focus:ring-2 focus:ring-inset focus:ring-indigo-600 aria-[invalid=true]:ring-rose-500";

/**
 * A button that asks first. `reason` (from role gating) disables it and is read out as its
 * description.
 */
export function ConfirmButton(props: {
  label: string;
  question: string;
  explanation?: ReactNode;
  confirmLabel: string;
  tone?: "danger" | "secondary";
  disabled?: boolean;
  reason?: string | undefined;
  busy?: boolean;
  onConfirm: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [open, setOpen] = useState(false);
  const titleId = useId();
  const reasonId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  const disabled = props.disabled || props.busy || props.reason !== undefined;
  return (
    <>
      <button
        type="button"
        className={props.tone === "danger" ? btn.danger : btn.secondary}
        disabled={disabled}
        aria-describedby={props.reason ? reasonId : undefined}
        onClick={() => setOpen(true)}
      >
        {props.busy ? `${props.label}…` : props.label}
      </button>
      {props.reason && (
        <span id={reasonId} className="text-xs text-slate-500">
          {props.reason}
        </span>
      )}
      <dialog
        ref={ref}
        aria-labelledby={titleId}
        onClose={() => setOpen(false)}
        className="m-auto max-w-md rounded-lg p-5 shadow-xl backdrop:bg-slate-900/40"
      >
        <h2 id={titleId} className="text-base font-semibold">
          {props.question}
        </h2>
        {props.explanation && <div className="mt-2 text-sm text-slate-600">{props.explanation}</div>}
        <div className="mt-4 flex justify-end gap-2">
          <button type="button" className={btn.secondary} onClick={() => setOpen(false)} autoFocus>
            Cancel
          </button>
          <button
            type="button"
            className={props.tone === "danger" ? btn.danger : btn.primary}
            onClick={() => {
              setOpen(false);
              props.onConfirm();
            }}
          >
            {props.confirmLabel}
          </button>
        </div>
      </dialog>
    </>
  );
}

export function Field({ label, id, error, hint, children }: { label: string; id: string; error?: string | undefined; hint?: string; children: ReactNode }) {
  return (
    <div className="space-y-1">
      <label htmlFor={id} className="block text-sm font-medium text-slate-800">
        {label}
      </label>
      {children}
      {hint && !error && (
        <p id={`${id}-hint`} className="text-xs text-slate-500">
          {hint}
        </p>
      )}
      {error && (
        <p id={`${id}-error`} className="text-xs text-rose-700">
          {error}
        </p>
      )}
    </div>
  );
}

/** A page heading that takes focus when the page opens (screen readers hear where they are). */
export function PageTitle({ children }: { children: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1} className="text-xl font-semibold outline-none">
      {children}
    </h1>
  );
}

/** A keyset list's "Load more" button, shown while the list has another page. */
export function LoadMore({ pages }: { pages: { hasNextPage: boolean; isFetchingNextPage: boolean; fetchNextPage: () => Promise<unknown> } }) {
  if (!pages.hasNextPage) return null;
  return (
    <button type="button" className={btn.secondary} onClick={() => void pages.fetchNextPage()} disabled={pages.isFetchingNextPage}>
      {pages.isFetchingNextPage ? "Loading…" : "Load more"}
    </button>
  );
}
