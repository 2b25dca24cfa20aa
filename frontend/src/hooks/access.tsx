// The signed-in token's role for the whole app: probed once per token, corrected by any 403
// an action gets (the 403's detail names the role).
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { createContext, useCallback, useContext, type ReactNode } from "react";
import { probeAccess } from "../lib/access";
import type { ApiProblem } from "../lib/problem";
import { accessFromForbidden, permission, UNKNOWN_ACCESS, type Access, type Action, type Permission } from "../lib/roles";
import { useToken } from "./session";

const ACCESS_KEY = ["access"] as const;

interface AccessContext {
  access: Access;
  /** The probe has answered (its answer may still be "unknown" if it failed). */
  settled: boolean;
  /** Call with any problem an action got: a 403 teaches the role. */
  learn: (p: ApiProblem) => void;
  can: (a: Action) => Permission;
}

const Ctx = createContext<AccessContext>({
  access: UNKNOWN_ACCESS,
  settled: false,
  learn: () => {},
  can: (a) => permission(UNKNOWN_ACCESS, a),
});

export function AccessProvider({ children }: { children: ReactNode }) {
  const token = useToken();
  const qc = useQueryClient();
  // The cache is cleared whenever the session changes (App), so one key serves every token.
  const key = ACCESS_KEY;
  const { data } = useQuery({
    queryKey: key,
    queryFn: () => probeAccess(),
    enabled: token !== null,
    staleTime: Infinity,
  });
  const access = data ?? UNKNOWN_ACCESS;
  const learn = useCallback(
    (p: ApiProblem) => {
      const a = accessFromForbidden(p);
      if (a) qc.setQueryData(key, a);
    },
    [qc, key],
  );
  const can = useCallback((a: Action) => permission(access, a), [access]);
  return <Ctx.Provider value={{ access, settled: data !== undefined, learn, can }}>{children}</Ctx.Provider>;
}

export function useAccess(): AccessContext {
  return useContext(Ctx);
}
