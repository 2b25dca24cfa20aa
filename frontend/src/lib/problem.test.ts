import { describe, expect, it } from "vitest";
import { ApiProblem, describeProblem, problemFromResponse, toProblem } from "./problem";

const res = (status: number, headers: Record<string, string> = {}) => new Response(null, { status, headers });

describe("problemFromResponse", () => {
  it("keeps the API's problem document: title, detail, type and field errors by name", () => {
    const p = problemFromResponse(res(422), {
      type: "about:blank",
      title: "Unprocessable Entity",
      status: 422,
      detail: 'unknown plan "gold"; known plans: starter',
      errors: [
        { field: "/plan", message: 'unknown plan "gold"' },
        { field: "/name", message: "too short" },
        { field: "/name", message: "starts with a digit" },
        { nonsense: true },
      ],
    });
    expect(p).toBeInstanceOf(ApiProblem);
    expect(p.status).toBe(422);
    expect(p.detail).toContain("known plans: starter");
    expect(p.fieldErrors).toEqual({ plan: 'unknown plan "gold"', name: "too short; starts with a digit" });
    expect(describeProblem(p)).toBe('Unprocessable Entity: unknown plan "gold"; known plans: starter');
  });

  it("reads Retry-After on a 429 and says when to retry", () => {
    const p = problemFromResponse(res(429, { "retry-after": "7" }), {
      title: "Too Many Requests",
      status: 429,
      detail: "create rate exceeded",
      errors: [],
    });
    expect(p.retryAfter).toBe(7);
    expect(describeProblem(p)).toBe("Too Many Requests: create rate exceeded (retry in 7 s)");
  });

  it("makes up a problem from the status when the body is not a problem document", () => {
    const p = problemFromResponse(res(502), "<html>Bad Gateway</html>");
    expect(p.status).toBe(502);
    expect(p.title).toBe("HTTP 502");
    expect(p.errors).toEqual([]);
    expect(problemFromResponse(res(404), undefined).title).toBe("Not Found");
    expect(problemFromResponse(res(500), { message: "x" }).detail).toMatch(/log/);
  });
});

describe("toProblem", () => {
  it("turns network failures into status 0 and keeps ApiProblems as they are", () => {
    const net = toProblem(new TypeError("Failed to fetch"));
    expect(net.status).toBe(0);
    expect(describeProblem(net)).toBe("The API could not be reached: Failed to fetch. Is urumi-api running?");
    const p = new ApiProblem({ status: 409, title: "Conflict", detail: "taken" });
    expect(toProblem(p)).toBe(p);
  });
});
