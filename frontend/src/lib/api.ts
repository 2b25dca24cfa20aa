// The typed API client, generated from api/openapi.json (src/api/schema.d.ts, `npm run gen`):
// every path, parameter and body below is checked against the committed spec. The
// middleware adds the bearer token and ends the session on a 401.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "../api/schema";
import { ApiProblem, problemFromResponse, toProblem } from "./problem";
import { session } from "./session";

export type Schemas = components["schemas"];

export const UNAUTHORIZED_MESSAGE =
  "The API did not accept your token (401): it is unknown, revoked or mistyped. Sign in with a valid token.";

const auth: Middleware = {
  onRequest({ request }) {
    const token = session.token();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
  onResponse({ response }) {
    if (response.status === 401 && session.token()) session.signOut(UNAUTHORIZED_MESSAGE);
    return response;
  },
};

/** Same origin: the API serves the dashboard (or Vite's dev server proxies /api to it). */
export const api = createClient<paths>({ baseUrl: globalThis.location?.origin ?? "" });
api.use(auth);

/**
 * The data of an openapi-fetch result, or the ApiProblem its error stands for.
 * Use: `unwrap(await api.GET("/api/v1/stores/{id}", { params: { path: { id } } }))`.
 */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.response.ok && result.data !== undefined) return result.data;
  if (result.response.ok) {
    throw new ApiProblem({ status: result.response.status, title: "Empty answer", detail: "" });
  }
  throw problemFromResponse(result.response, result.error);
}

/** Runs an API call; network failures become ApiProblems too. */
export async function call<T>(
  f: () => Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result;
  try {
    result = await f();
  } catch (e) {
    throw toProblem(e);
  }
  return unwrap(result);
}

/** A fresh Idempotency-Key for one create submission. */
export function idempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}
