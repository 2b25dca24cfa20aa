// The tokens page: a token's state as words, and the mint form's input as the API's body.
import type { components } from "../api/schema";

type Token = components["schemas"]["Token"];
export type CreateToken = components["schemas"]["CreateToken"];

export type TokenState = { state: "active" } | { state: "revoked"; at: string; by: string } | { state: "expired"; at: string };

/** Revoked wins over expired; a token whose expiry has passed (at `now`, epoch ms) is expired. */
export function tokenState(t: Pick<Token, "revoked_at" | "revoked_by" | "expires_at">, now: number): TokenState {
  if (t.revoked_at) return { state: "revoked", at: t.revoked_at, by: t.revoked_by ?? "unknown" };
  if (t.expires_at && Date.parse(t.expires_at) <= now) return { state: "expired", at: t.expires_at };
  return { state: "active" };
}

/** The POST body for the form's fields; a blank expiry means "until revoked". Range checks are the API's. */
export function mintBody(name: string, role: CreateToken["role"], expiresInHours: string): CreateToken {
  const body: CreateToken = { name: name.trim(), role };
  const h = expiresInHours.trim();
  if (h !== "") body.expires_in_hours = Number(h);
  return body;
}
