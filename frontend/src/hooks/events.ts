// The live event stream as a React hook: one fetch-based SSE connection while mounted,
// resumed with Last-Event-ID after a drop; `onOpen` runs on each (re)connection so the caller
// refetches what may have changed while it was away.
import { useEffect, useRef, useState } from "react";
import type { StreamEvent } from "../lib/live";
import { session } from "../lib/session";
import { UNAUTHORIZED_MESSAGE } from "../lib/api";
import { followEvents, type StreamState } from "../lib/sse";

export function useEventStream(
  opts: { storeId?: string | undefined; enabled?: boolean },
  onEvent: (e: StreamEvent) => void,
  onOpen?: () => void,
): StreamState {
  const [state, setState] = useState<StreamState>({ state: "connecting" });
  const handlers = useRef({ onEvent, onOpen });
  handlers.current = { onEvent, onOpen };
  const enabled = opts.enabled ?? true;
  useEffect(() => {
    if (!enabled) return;
    const ctl = new AbortController();
    const q = opts.storeId ? `?store_id=${encodeURIComponent(opts.storeId)}` : "";
    void followEvents<StreamEvent>({
      url: `${globalThis.location.origin}/api/v1/events${q}`,
      token: session.token,
      signal: ctl.signal,
      onEvent: (e) => handlers.current.onEvent(e),
      onOpen: () => handlers.current.onOpen?.(),
      onState: setState,
      onUnauthorized: () => session.signOut(UNAUTHORIZED_MESSAGE),
    });
    return () => ctl.abort();
  }, [opts.storeId, enabled]);
  return state;
}
