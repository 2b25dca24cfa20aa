import { useQueryClient, type QueryKey } from "@tanstack/react-query";
import { useCallback, useEffect, useRef } from "react";

/**
 * `schedule(keys)` invalidates those queries at most once per `ms` (trailing), so a burst of
 * events costs one refetch.
 */
export function useThrottledInvalidate(ms = 400): (...keys: QueryKey[]) => void {
  const qc = useQueryClient();
  const pending = useRef(new Map<string, QueryKey>());
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  return useCallback(
    (...keys: QueryKey[]) => {
      for (const k of keys) pending.current.set(JSON.stringify(k), k);
      if (timer.current) return;
      timer.current = setTimeout(() => {
        timer.current = null;
        const ks = [...pending.current.values()];
        pending.current.clear();
        for (const k of ks) void qc.invalidateQueries({ queryKey: k });
      }, ms);
    },
    [qc, ms],
  );
}
