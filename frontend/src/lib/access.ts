// Learning the signed-in token's role (see roles.ts): GET /api/v1/tokens/current, any role.
import { api } from "./api";
import { problemFromResponse, toProblem } from "./problem";
import { accessFromCurrent, type Access } from "./roles";

export async function probeAccess(): Promise<Access> {
  try {
    const { data, error, response } = await api.GET("/api/v1/tokens/current");
    if (response.ok && data) return accessFromCurrent({ ok: true, token: data });
    return accessFromCurrent({ ok: false, problem: problemFromResponse(response, error) });
  } catch (e) {
    return accessFromCurrent({ ok: false, problem: toProblem(e) });
  }
}
