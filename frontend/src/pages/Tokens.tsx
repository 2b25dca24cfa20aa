import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { btn, ConfirmButton, Field, input, PageTitle, ProblemBanner, Time } from "../components/ui";
import { useAccess } from "../hooks/access";
import { api, call, type Schemas } from "../lib/api";
import { toProblem, type ApiProblem } from "../lib/problem";
import type { Role } from "../lib/roles";
import { mintBody, tokenState } from "../lib/tokens";

const ROLES: Role[] = ["viewer", "operator", "admin"];

/** The secret of a token just minted, shown this once (kept only in this component's state). */
function Secret({ minted, onDone }: { minted: Schemas["MintedToken"]; onDone: () => void }) {
  const [copied, setCopied] = useState<"no" | "yes" | "failed">("no");
  const copy = () => {
    navigator.clipboard.writeText(minted.token).then(
      () => setCopied("yes"),
      () => setCopied("failed"),
    );
  };
  return (
    <section aria-labelledby="secret-title" className="mt-4 rounded-lg border border-amber-400 bg-amber-50 p-4" data-testid="minted-secret">
      <h2 id="secret-title" className="text-base font-semibold text-amber-950">
        Token “{minted.name}” minted ({minted.role})
      </h2>
      <p className="mt-1 text-sm font-medium text-amber-950">Copy it now: you will not see it again. Leaving this page forgets it.</p>
      <div className="mt-2 flex flex-wrap items-center gap-2">
        <code className="block min-w-0 max-w-full break-all rounded bg-white px-2 py-1 font-mono text-sm text-slate-900 ring-1 ring-amber-300" data-testid="secret-value" aria-label="The new token's secret">
          {minted.token}
        </code>
        <button type="button" className={btn.secondary} onClick={copy}>
          Copy
        </button>
        <button type="button" className={btn.secondary} onClick={onDone}>
          I have stored it
        </button>
        <span role="status" className="text-sm text-amber-950">
          {copied === "yes" ? "Copied to the clipboard." : copied === "failed" ? "The browser refused the clipboard; select the text and copy it." : ""}
        </span>
      </div>
    </section>
  );
}

function MintForm({ onMinted }: { onMinted: (t: Schemas["MintedToken"]) => void }) {
  const qc = useQueryClient();
  const { learn } = useAccess();
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const [hours, setHours] = useState("");
  const mint = useMutation<Schemas["MintedToken"], ApiProblem, void>({
    mutationFn: () =>
      call(() => api.POST("/api/v1/tokens", { body: mintBody(name, role, hours) })).catch((e: unknown) => {
        throw toProblem(e);
      }),
    onSuccess: (t) => {
      setName("");
      setHours("");
      onMinted(t);
      void qc.invalidateQueries({ queryKey: ["tokens"] });
    },
    onError: learn,
  });
  const errors = mint.error?.fieldErrors ?? {};
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!mint.isPending) mint.mutate();
  };
  return (
    <form onSubmit={submit} className="mt-4 rounded-lg bg-white p-4 shadow" aria-labelledby="mint-title" noValidate>
      <h2 id="mint-title" className="text-base font-semibold">
        Mint a token
      </h2>
      <ProblemBanner problem={mint.error} onDismiss={() => mint.reset()} />
      <div className="mt-2 grid grid-cols-1 gap-3 sm:grid-cols-4">
        <Field label="Name" id="token-name" error={errors.name} hint="Letters, digits, . _ @ -; recorded as the actor of what it does.">
          <input
            id="token-name"
            className={input}
            value={name}
            required
            maxLength={100}
            aria-invalid={errors.name ? true : undefined}
            aria-describedby={errors.name ? "token-name-error" : "token-name-hint"}
            onChange={(e) => setName(e.target.value)}
          />
        </Field>
        <Field label="Role" id="token-role" error={errors.role}>
          <select id="token-role" className={input} value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Expires in (hours)" id="token-expiry" error={errors.expires_in_hours} hint="1 to 87,600; blank: until revoked.">
          <input
            id="token-expiry"
            type="number"
            inputMode="numeric"
            min={1}
            max={87600}
            className={input}
            value={hours}
            aria-invalid={errors.expires_in_hours ? true : undefined}
            aria-describedby={errors.expires_in_hours ? "token-expiry-error" : "token-expiry-hint"}
            onChange={(e) => setHours(e.target.value)}
          />
        </Field>
        <div className="flex items-end">
          <button type="submit" className={btn.primary} disabled={mint.isPending}>
            {mint.isPending ? "Minting…" : "Mint token"}
          </button>
        </div>
      </div>
    </form>
  );
}

function TokenRow({ t, self }: { t: Schemas["Token"]; self: boolean }) {
  const qc = useQueryClient();
  const { learn } = useAccess();
  const revoke = useMutation<Schemas["Token"], ApiProblem, void>({
    mutationFn: () =>
      call(() => api.DELETE("/api/v1/tokens/{id}", { params: { path: { id: t.id } } })).catch((e: unknown) => {
        throw toProblem(e);
      }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["tokens"] }),
    onError: learn,
  });
  const st = tokenState(t, Date.now());
  return (
    <tr data-testid="token-row" data-name={t.name} data-state={st.state}>
      <th scope="row" className="px-3 py-2 text-left font-mono text-xs font-medium">
        {t.name}
        {self && <span className="ml-2 font-sans text-slate-600">(this session)</span>}
      </th>
      <td className="px-3 py-2">{t.role}</td>
      <td className="px-3 py-2">{t.created_by}</td>
      <td className="px-3 py-2 whitespace-nowrap">
        <Time at={t.created_at} />
      </td>
      <td className="px-3 py-2 whitespace-nowrap">{t.expires_at ? <Time at={t.expires_at} /> : "never"}</td>
      <td className="px-3 py-2" data-testid="token-state">
        {st.state === "active" && "active"}
        {st.state === "expired" && "expired"}
        {st.state === "revoked" && (
          <>
            revoked by {st.by}, <Time at={st.at} />
          </>
        )}
      </td>
      <td className="px-3 py-2">
        {st.state === "active" && (
          <ConfirmButton
            label={`Revoke ${t.name}`}
            tone="danger"
            question={`Revoke ${t.name}?`}
            explanation={
              self
                ? "This is the token you are signed in with: you will be signed out."
                : "Requests with it are refused from now on (other API processes within their token cache time). This cannot be undone."
            }
            confirmLabel="Revoke"
            busy={revoke.isPending}
            onConfirm={() => revoke.mutate()}
          />
        )}
        {revoke.error && <ProblemBanner problem={revoke.error} onDismiss={() => revoke.reset()} />}
      </td>
    </tr>
  );
}

/** Tokens (admin): list, mint (the secret shown once), revoke after a confirm. */
export function TokensPage() {
  const { access, settled, can, learn } = useAccess();
  const allowed = can("manage_tokens");
  const [minted, setMinted] = useState<Schemas["MintedToken"] | null>(null);
  const tokens = useQuery({
    queryKey: ["tokens"],
    // Wait for the role probe, so a lower role is told so without a refused request.
    enabled: settled && allowed.visible,
    queryFn: ({ signal }) =>
      call(() => api.GET("/api/v1/tokens", { signal })).catch((e: unknown) => {
        const p = toProblem(e);
        learn(p);
        throw p;
      }),
  });
  if (!settled) {
    return (
      <section>
        <PageTitle>Tokens</PageTitle>
        <p role="status" className="mt-3 text-sm">
          Checking this token's role…
        </p>
      </section>
    );
  }
  if (!allowed.visible) {
    return (
      <section>
        <PageTitle>Tokens</PageTitle>
        <p className="mt-3 text-sm">{allowed.reason}</p>
      </section>
    );
  }
  const items = tokens.data?.items ?? [];
  return (
    <section>
      <PageTitle>Tokens</PageTitle>
      <p className="mt-1 text-sm text-slate-600">API tokens, newest first. Secrets are stored hashed: a token's secret is shown only when it is minted.</p>
      {minted && <Secret minted={minted} onDone={() => setMinted(null)} />}
      <MintForm onMinted={setMinted} />
      <ProblemBanner problem={tokens.error ? toProblem(tokens.error) : null} />
      <div className="mt-4 overflow-x-auto rounded-lg bg-white shadow">
        <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="tokens">
          <caption className="sr-only">API tokens, newest first</caption>
          <thead className="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-600">
            <tr>
              <th scope="col" className="px-3 py-2">Name</th>
              <th scope="col" className="px-3 py-2">Role</th>
              <th scope="col" className="px-3 py-2">Created by</th>
              <th scope="col" className="px-3 py-2">Created</th>
              <th scope="col" className="px-3 py-2">Expires</th>
              <th scope="col" className="px-3 py-2">State</th>
              <th scope="col" className="px-3 py-2">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100 align-top">
            {items.map((t) => (
              <TokenRow key={t.id} t={t} self={access.name === t.name && !t.revoked_at} />
            ))}
          </tbody>
        </table>
        {tokens.isPending && <p role="status" className="p-3">Loading tokens…</p>}
      </div>
    </section>
  );
}
