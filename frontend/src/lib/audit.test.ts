import { describe, expect, it } from "vitest";
import { auditParams, auditQuery } from "./audit";

describe("auditQuery", () => {
  it("keeps non-blank filters, trimmed, and an allowed limit", () => {
    expect(auditQuery(new URLSearchParams("actor=%20admin%20&kind=store.created&store_id=&run_id=%20&limit=100&x=1"))).toEqual({
      actor: "admin",
      kind: "store.created",
      limit: 100,
    });
  });
  it("falls back to 50 for a missing or unlisted limit", () => {
    expect(auditQuery(new URLSearchParams(""))).toEqual({ limit: 50 });
    expect(auditQuery(new URLSearchParams("limit=7"))).toEqual({ limit: 50 });
    expect(auditQuery(new URLSearchParams("limit=abc"))).toEqual({ limit: 50 });
  });
  it("round-trips through auditParams", () => {
    const q = { actor: "ci", run_id: "6f1c0c1e-0000-4000-8000-000000000001", limit: 200 };
    expect(auditParams(q).toString()).toBe("actor=ci&run_id=6f1c0c1e-0000-4000-8000-000000000001&limit=200");
    expect(auditQuery(auditParams(q))).toEqual(q);
    expect(auditParams({ limit: 50 }).toString()).toBe("");
  });
});
