// Every failure the dashboard shows is an ApiProblem: the API's application/problem+json
// document when there is one (status, title, detail, field errors, Retry-After), otherwise
// a problem made up from what is known (the status alone, or "the API could not be reached").
import type { components } from "../api/schema";

export type ProblemDocument = components["schemas"]["Problem"];
export type FieldError = components["schemas"]["FieldError"];

export class ApiProblem extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly type: string;
  readonly errors: FieldError[];
  /** Seconds, from a 429's Retry-After header. */
  readonly retryAfter: number | undefined;

  constructor(p: {
    status: number;
    title: string;
    detail: string;
    type?: string;
    errors?: FieldError[];
    retryAfter?: number | undefined;
  }) {
    super(p.detail ? `${p.title}: ${p.detail}` : p.title);
    this.name = "ApiProblem";
    this.status = p.status;
    this.title = p.title;
    this.detail = p.detail;
    this.type = p.type ?? "about:blank";
    this.errors = p.errors ?? [];
    this.retryAfter = p.retryAfter;
  }

  /** Field errors keyed by field name (`/name` → `name`), for inline messages. */
  get fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.errors) {
      const key = e.field.replace(/^\/+/, "").split("/")[0] ?? "";
      out[key] = out[key] ? `${out[key]}; ${e.message}` : e.message;
    }
    return out;
  }
}

const TITLES: Record<number, string> = {
  0: "The API could not be reached",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  413: "Payload Too Large",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

function isProblemDocument(body: unknown): body is ProblemDocument {
  if (typeof body !== "object" || body === null) return false;
  const b = body as Record<string, unknown>;
  return typeof b.title === "string" && typeof b.status === "number";
}

function retryAfterOf(response: Response | undefined): number | undefined {
  const v = response?.headers.get("retry-after");
  if (!v || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v.trim());
}

/**
 * The problem an error response stands for. `body` is what openapi-fetch parsed (JSON when
 * it was JSON, else the text); a body that is not a problem document keeps only the status.
 */
export function problemFromResponse(response: Response, body: unknown): ApiProblem {
  const retryAfter = retryAfterOf(response);
  if (isProblemDocument(body)) {
    return new ApiProblem({
      status: response.status,
      title: body.title,
      detail: typeof body.detail === "string" ? body.detail : "",
      type: typeof body.type === "string" ? body.type : undefined,
      errors: Array.isArray(body.errors)
        ? body.errors.filter(
            (e): e is FieldError =>
              typeof e === "object" && e !== null && typeof e.field === "string" && typeof e.message === "string",
          )
        : [],
      retryAfter,
    });
  }
  const status = response.status;
  return new ApiProblem({
    status,
    title: TITLES[status] ?? (response.statusText || `HTTP ${status}`),
    detail: status >= 500 ? "The API answered with an error; see its log." : "",
    retryAfter,
  });
}

/** Any thrown value as an ApiProblem (network failures become status 0). */
export function toProblem(error: unknown): ApiProblem {
  if (error instanceof ApiProblem) return error;
  if (error instanceof DOMException && error.name === "AbortError") {
    return new ApiProblem({ status: 0, title: "Request cancelled", detail: "" });
  }
  return new ApiProblem({
    status: 0,
    title: TITLES[0]!,
    detail: error instanceof Error ? error.message : String(error),
  });
}

/** What to show for a problem: the API's detail, and a hint for the statuses that need one. */
export function describeProblem(p: ApiProblem): string {
  const base = p.detail ? `${p.title}: ${p.detail}` : p.title;
  if (p.status === 429 && p.retryAfter !== undefined) return `${base} (retry in ${p.retryAfter} s)`;
  if (p.status === 0) return `${base}. Is urumi-api running?`;
  return base;
}
