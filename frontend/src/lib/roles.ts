// What the signed-in token may do. GET /api/v1/tokens/current answers any role with the
// token's name and role; a 403 also says "this needs the <role> role; token "<name>" has
// <role>" (used to correct a role changed meanwhile). Until a role is known, actions stay
// enabled and the API's 403 is shown when it comes.
import type { components } from "../api/schema";
import type { ApiProblem } from "./problem";

export type Role = components["schemas"]["Role"];

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export interface Access {
  /** The token's role, once known. */
  role: Role | null;
  /** The token's name (the actor the audit log records), once known. */
  name: string | null;
}

export const UNKNOWN_ACCESS: Access = { role: null, name: null };

export type Action =
  | "create_store"
  | "delete_store"
  | "repair_store"
  | "suspend_store"
  | "backup_store"
  | "manage_domains"
  | "upgrade_store"
  | "resize_store"
  | "retry_run"
  | "rerun_run"
  | "cancel_run"
  | "run_operation"
  | "manage_tokens";

/** The least role each action needs (shared/design/api.md, README's API table). */
export const NEEDS: Record<Action, Role> = {
  create_store: "admin",
  delete_store: "admin",
  repair_store: "operator",
  /** Suspend or resume a store. */
  suspend_store: "operator",
  /** Back a store up, or restore it from one of its backups. */
  backup_store: "operator",
  /** Add or remove a store's custom domain. */
  manage_domains: "operator",
  /** Upgrade a store to its channel's current release. */
  upgrade_store: "operator",
  /** Move a store to another plan. */
  resize_store: "operator",
  retry_run: "operator",
  rerun_run: "operator",
  cancel_run: "operator",
  /** Start, pause, resume, approve or cancel a bulk operation (one that deletes needs admin). */
  run_operation: "operator",
  manage_tokens: "admin",
};

export interface Permission {
  /** Show the control at all. */
  visible: boolean;
  /** Let it be used. */
  enabled: boolean;
  /** Why it is disabled, for the control's description. */
  reason?: string;
}

export function atLeast(role: Role, needed: Role): boolean {
  return RANK[role] >= RANK[needed];
}

/**
 * Admin-only controls are hidden from lower roles; operator controls are shown disabled to
 * viewers, with the reason. Unknown roles get enabled controls (the API decides).
 */
export function permission(access: Access, action: Action): Permission {
  const needed = NEEDS[action];
  if (access.role === null || atLeast(access.role, needed)) return { visible: true, enabled: true };
  const reason = `Needs the ${needed} role; this token has ${access.role}.`;
  if (needed === "admin") return { visible: false, enabled: false, reason };
  return { visible: true, enabled: false, reason };
}

const FORBIDDEN = /needs the (viewer|operator|admin) role; token "((?:[^"\\]|\\.)*)" has (viewer|operator|admin)/;

/** The caller's role and name as a 403's detail states them, if it does. */
export function accessFromForbidden(p: ApiProblem): Access | null {
  if (p.status !== 403) return null;
  const m = FORBIDDEN.exec(p.detail);
  if (!m) return null;
  return { role: m[3] as Role, name: m[2]!.replace(/\\(.)/g, "$1") };
}

/** What GET /api/v1/tokens/current tells about the caller; anything but 200 → unknown. */
export function accessFromCurrent(
  result: { ok: true; token: { name: string; role: Role } } | { ok: false; problem: ApiProblem },
): Access {
  if (result.ok) return { role: result.token.role, name: result.token.name };
  return accessFromForbidden(result.problem) ?? UNKNOWN_ACCESS;
}
