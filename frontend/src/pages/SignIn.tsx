import { useState, type FormEvent } from "react";
import { Navigate, useLocation, useNavigate } from "react-router";
import { btn, Field, input, PageTitle, ProblemBanner } from "../components/ui";
import { useToken } from "../hooks/session";
import { api, call, UNAUTHORIZED_MESSAGE } from "../lib/api";
import { ApiProblem, toProblem } from "../lib/problem";
import { session } from "../lib/session";

export function SignInPage() {
  const token = useToken();
  const navigate = useNavigate();
  const location = useLocation();
  const from = (location.state as { from?: string } | null)?.from ?? "/stores";
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<ApiProblem | null>(null);
  const reason = session.reason();

  if (token) return <Navigate to={from} replace />;

  async function submit(e: FormEvent) {
    e.preventDefault();
    const t = value.trim();
    if (!t) return;
    setBusy(true);
    setProblem(null);
    try {
      // Checked with one cheap read before it is kept.
      await call(() =>
        api.GET("/api/v1/stores", { params: { query: { limit: 1 } }, headers: { Authorization: `Bearer ${t}` } }),
      );
      session.signIn(t);
      setValue("");
      navigate(from, { replace: true });
    } catch (err) {
      const p = toProblem(err);
      setProblem(p.status === 401 ? new ApiProblem({ status: 401, title: "Unauthorized", detail: UNAUTHORIZED_MESSAGE }) : p);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main id="main" className="mx-auto mt-16 max-w-md rounded-lg bg-white p-6 shadow">
      <PageTitle>Sign in to Urumi</PageTitle>
      {reason && !problem && (
        <p role="alert" className="mt-3 rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-900">
          {reason}
        </p>
      )}
      <ProblemBanner problem={problem} />
      <form className="mt-4 space-y-4" onSubmit={submit}>
        <Field
          label="API token"
          id="token"
          error={problem?.status === 401 ? "This token was not accepted." : undefined}
          hint="A bearer token (urumi_…). `make dev` prints an admin token and writes it to .dev/admin-token; `urumi-api token create` mints others. It is kept in this tab's session storage only."
        >
          <input
            id="token"
            name="token"
            type="password"
            autoComplete="off"
            spellCheck={false}
            required
            className={input}
            value={value}
            aria-invalid={problem?.status === 401}
            aria-describedby={problem?.status === 401 ? "token-error" : "token-hint"}
            onChange={(e) => setValue(e.target.value)}
          />
        </Field>
        <button type="submit" className={btn.primary} disabled={busy || !value.trim()}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
