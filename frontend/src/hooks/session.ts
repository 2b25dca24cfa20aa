import { useSyncExternalStore } from "react";
import { session } from "../lib/session";

export function useToken(): string | null {
  return useSyncExternalStore(session.subscribe, session.token, () => null);
}
