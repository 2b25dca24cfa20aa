import { describe, expect, it } from "vitest";
import { ApiProblem } from "./problem";
import { accessFromCurrent, accessFromForbidden, permission, UNKNOWN_ACCESS } from "./roles";

const forbidden = (needed: string, name: string, has: string) =>
  new ApiProblem({ status: 403, title: "Forbidden", detail: `this needs the ${needed} role; token "${name}" has ${has}` });

describe("permission", () => {
  it("hides admin-only actions from lower roles and disables operator actions for viewers, with the reason", () => {
    const viewer = { role: "viewer" as const, name: "v" };
    expect(permission(viewer, "delete_store")).toMatchObject({ visible: false, enabled: false });
    expect(permission(viewer, "create_store").visible).toBe(false);
    expect(permission(viewer, "retry_run")).toEqual({
      visible: true,
      enabled: false,
      reason: "Needs the operator role; this token has viewer.",
    });
    const operator = { role: "operator" as const, name: "o" };
    expect(permission(operator, "retry_run")).toEqual({ visible: true, enabled: true });
    expect(permission(operator, "cancel_run").enabled).toBe(true);
    expect(permission(operator, "repair_store").enabled).toBe(true);
    expect(permission(operator, "rerun_run").enabled).toBe(true);
    expect(permission(operator, "run_operation").enabled).toBe(true);
    expect(permission(viewer, "run_operation")).toMatchObject({ visible: true, enabled: false });
    expect(permission(viewer, "resize_store")).toMatchObject({ visible: true, enabled: false });
    expect(permission(operator, "resize_store")).toEqual({ visible: true, enabled: true });
    expect(permission(operator, "delete_store").visible).toBe(false);
    const admin = { role: "admin" as const, name: "a" };
    for (const a of ["create_store", "delete_store", "repair_store", "retry_run", "rerun_run", "cancel_run", "run_operation"] as const) {
      expect(permission(admin, a)).toEqual({ visible: true, enabled: true });
    }
  });

  it("leaves everything enabled while the role is unknown (the API's 403 decides)", () => {
    expect(permission(UNKNOWN_ACCESS, "delete_store")).toEqual({ visible: true, enabled: true });
  });
});

describe("learning the role", () => {
  it("reads the role and name a 403 states", () => {
    expect(accessFromForbidden(forbidden("admin", "ops-bot", "operator"))).toEqual({ role: "operator", name: "ops-bot" });
    expect(accessFromForbidden(new ApiProblem({ status: 403, title: "Forbidden", detail: "no" }))).toBeNull();
    expect(accessFromForbidden(new ApiProblem({ status: 409, title: "Conflict", detail: 'token "x" has admin' }))).toBeNull();
  });

  it("takes role and name from the current token", () => {
    expect(accessFromCurrent({ ok: true, token: { name: "dev-admin", role: "admin" } })).toEqual({
      role: "admin",
      name: "dev-admin",
    });
    expect(accessFromCurrent({ ok: true, token: { name: "watcher", role: "viewer" } })).toEqual({
      role: "viewer",
      name: "watcher",
    });
  });

  it("stays unknown when the current token cannot be read (a 403 still teaches the role)", () => {
    expect(accessFromCurrent({ ok: false, problem: forbidden("admin", "watcher", "viewer") })).toEqual({
      role: "viewer",
      name: "watcher",
    });
    expect(accessFromCurrent({ ok: false, problem: new ApiProblem({ status: 0, title: "down", detail: "" }) })).toEqual(
      UNKNOWN_ACCESS,
    );
  });
});
