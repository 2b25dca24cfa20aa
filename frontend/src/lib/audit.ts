// The audit page's filters live in the URL (?actor=&kind=&store_id=&run_id=&limit=), so a
// filtered view can be linked; this turns them into GET /api/v1/audit's query.
export const AUDIT_FILTERS = ["actor", "kind", "store_id", "run_id"] as const;
export type AuditFilter = (typeof AUDIT_FILTERS)[number];
export const AUDIT_LIMITS = [25, 50, 100, 200] as const;
export const DEFAULT_AUDIT_LIMIT = 50;

export interface AuditQuery {
  actor?: string;
  kind?: string;
  store_id?: string;
  run_id?: string;
  limit: number;
}

/** The API query for these search params: blank filters dropped, values trimmed, limit one of AUDIT_LIMITS. */
export function auditQuery(params: URLSearchParams): AuditQuery {
  const q: AuditQuery = { limit: DEFAULT_AUDIT_LIMIT };
  for (const f of AUDIT_FILTERS) {
    const v = params.get(f)?.trim();
    if (v) q[f] = v;
  }
  const limit = Number(params.get("limit"));
  if ((AUDIT_LIMITS as readonly number[]).includes(limit)) q.limit = limit;
  return q;
}

/** Search params for a query (the inverse of auditQuery; the default limit is left out). */
export function auditParams(q: AuditQuery): URLSearchParams {
  const p = new URLSearchParams();
  for (const f of AUDIT_FILTERS) if (q[f]) p.set(f, q[f]!);
  if (q.limit !== DEFAULT_AUDIT_LIMIT) p.set("limit", String(q.limit));
  return p;
}
