// Learning the signed-in token's role (see roles.ts) with one call the API already has.
import { api } from "./api";
import { problemFromResponse, toProblem } from "./problem";
import { accessFromTokenProbe, type Access } from "./roles";

export async function probeAccess(token: string): Promise<Access> {
  try {
    const { data, error, response } = await api.GET("/api/v1/tokens");
    if (response.ok && data) return accessFromTokenProbe(token, { ok: true, items: data.items });
    return accessFromTokenProbe(token, { ok: false, problem: problemFromResponse(response, error) });
  } catch (e) {
    return accessFromTokenProbe(token, { ok: false, problem: toProblem(e) });
  }
}
