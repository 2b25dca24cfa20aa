import { describe, expect, it } from "vitest";
import { permission } from "./roles";
import { mintBody, tokenState } from "./tokens";

const NOW = Date.parse("2026-11-30T12:00:00Z");

describe("tokenState", () => {
  it("is active, revoked (wins) or expired", () => {
    expect(tokenState({}, NOW)).toEqual({ state: "active" });
    expect(tokenState({ expires_at: "2026-11-30T12:00:01Z" }, NOW)).toEqual({ state: "active" });
    expect(tokenState({ expires_at: "2026-11-30T12:00:00Z" }, NOW)).toEqual({ state: "expired", at: "2026-11-30T12:00:00Z" });
    expect(tokenState({ revoked_at: "2026-11-29T00:00:00Z", revoked_by: "admin", expires_at: "2026-01-01T00:00:00Z" }, NOW)).toEqual({
      state: "revoked",
      at: "2026-11-29T00:00:00Z",
      by: "admin",
    });
  });
});

describe("mintBody", () => {
  it("trims the name and leaves out a blank expiry", () => {
    expect(mintBody("  ci-bot ", "viewer", " ")).toEqual({ name: "ci-bot", role: "viewer" });
    expect(mintBody("ops", "operator", "48")).toEqual({ name: "ops", role: "operator", expires_in_hours: 48 });
  });
});

describe("manage_tokens", () => {
  it("is admin only: hidden from operators and viewers", () => {
    expect(permission({ role: "admin", name: "a" }, "manage_tokens")).toEqual({ visible: true, enabled: true });
    expect(permission({ role: "operator", name: "o" }, "manage_tokens")).toEqual({
      visible: false,
      enabled: false,
      reason: "Needs the admin role; this token has operator.",
    });
  });
});
