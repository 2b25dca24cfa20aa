// The signed-in token, kept in sessionStorage (gone when the tab closes; never logged), and
// why the last session ended, so the sign-in page can say it.
const KEY = "urumi.token";
const REASON = "urumi.signout-reason";

type Listener = () => void;
const listeners = new Set<Listener>();

function storage(): Storage | null {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

export const session = {
  token(): string | null {
    return storage()?.getItem(KEY) ?? null;
  },
  signIn(token: string): void {
    storage()?.setItem(KEY, token.trim());
    storage()?.removeItem(REASON);
    emit();
  },
  /** Ends the session; `reason` is shown on the sign-in page. */
  signOut(reason?: string): void {
    const s = storage();
    if (!s) return;
    const had = s.getItem(KEY) !== null;
    s.removeItem(KEY);
    if (reason) s.setItem(REASON, reason);
    else s.removeItem(REASON);
    if (had || reason) emit();
  },
  reason(): string | null {
    return storage()?.getItem(REASON) ?? null;
  },
  subscribe(l: Listener): () => void {
    listeners.add(l);
    return () => listeners.delete(l);
  },
};

function emit() {
  for (const l of listeners) l();
}
