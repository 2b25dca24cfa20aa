// A store's custom domains as the store page shows them: the domain typed into the add
// field as the API will store it, and which domain is primary (the address WordPress is told
// it lives at: the oldest custom domain, else the platform's own host).
import type { Schemas } from "./api";

/** What the add field sends: trimmed; the API lowercases and checks the rules itself. */
export function typedDomain(value: string): string {
  return value.trim();
}

/** The primary host: the oldest custom domain, else the host of the store's own URL. */
export function primaryHost(store: Pick<Schemas["Store"], "domains" | "url">): string | undefined {
  const first = store.domains[0];
  if (first) return first;
  if (!store.url) return undefined;
  try {
    return new URL(store.url).host;
  } catch {
    return undefined;
  }
}
