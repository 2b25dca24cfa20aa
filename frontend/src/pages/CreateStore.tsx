import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useRef, useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { btn, Field, input, PageTitle, ProblemBanner } from "../components/ui";
import { useAccess } from "../hooks/access";
import { api, call, type Schemas } from "../lib/api";
import { IdempotencyKeys } from "../lib/idempotency";
import { defaultChoiceLabel, planLabel } from "../lib/plans";
import { toProblem, type ApiProblem } from "../lib/problem";

const ENGINES: Schemas["StoreEngine"][] = ["woocommerce"];

export function CreateStorePage() {
  const [name, setName] = useState("");
  const [plan, setPlan] = useState("");
  const [engine, setEngine] = useState<Schemas["StoreEngine"]>("woocommerce");
  const keys = useRef(new IdempotencyKeys());
  const navigate = useNavigate();
  const qc = useQueryClient();
  const { can, learn } = useAccess();
  const allowed = can("create_store");
  const plans = useQuery({
    queryKey: ["plans"],
    queryFn: () => call(() => api.GET("/api/v1/plans")),
    staleTime: 5 * 60_000,
  });

  const create = useMutation<Schemas["StoreAccepted"], ApiProblem, Schemas["CreateStore"]>({
    mutationFn: (body) =>
      call(() =>
        api.POST("/api/v1/stores", {
          body,
          // The same body submitted again (a double click) reuses its key: one store.
          params: { header: { "Idempotency-Key": keys.current.keyFor(body) } },
        }),
      ).catch((e: unknown) => {
        throw toProblem(e);
      }),
    onSuccess: (accepted) => {
      keys.current.reset();
      void qc.invalidateQueries({ queryKey: ["stores"] });
      navigate(`/stores/${accepted.store.id}`);
    },
    onError: learn,
  });

  function submit(e: FormEvent) {
    e.preventDefault();
    const body: Schemas["CreateStore"] = { name: name.trim(), engine, ...(plan ? { plan } : {}) };
    create.mutate(body);
  }

  const problem = create.error;
  const fields = problem?.fieldErrors ?? {};
  return (
    <section className="max-w-lg">
      <PageTitle>Create a store</PageTitle>
      <p className="mt-1 text-sm text-slate-600">
        A WooCommerce store in its own namespace; you can follow its provisioning steps live on the next page.
      </p>
      {!allowed.visible && (
        <p role="status" className="mt-3 rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-900">
          {allowed.reason}
        </p>
      )}
      <ProblemBanner problem={problem} />
      <form className="mt-4 space-y-4 rounded-lg bg-white p-5 shadow" onSubmit={submit} noValidate>
        <Field label="Name" id="store-name" error={fields.name} hint="Its address is derived from it: 3–40 lowercase letters, digits and dashes after conversion.">
          <input
            id="store-name"
            name="name"
            className={input}
            required
            maxLength={100}
            value={name}
            aria-invalid={fields.name ? true : undefined}
            aria-describedby={fields.name ? "store-name-error" : "store-name-hint"}
            onChange={(e) => setName(e.target.value)}
          />
        </Field>
        <Field
          label="Plan"
          id="store-plan"
          error={fields.plan ?? (plans.isError ? "The plans could not be loaded; the store gets the platform's default plan." : undefined)}
          hint="What the store's namespace may use (its ResourceQuota)."
        >
          <select
            id="store-plan"
            name="plan"
            className={input}
            value={plan}
            aria-invalid={fields.plan ? true : undefined}
            aria-describedby={fields.plan || plans.isError ? "store-plan-error" : "store-plan-hint"}
            onChange={(e) => setPlan(e.target.value)}
          >
            <option value="">{defaultChoiceLabel(plans.data?.items)}</option>
            {plans.data?.items.map((p) => (
              <option key={p.name} value={p.name}>
                {planLabel(p)}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Engine" id="store-engine" error={fields.engine}>
          <select id="store-engine" className={input} value={engine} onChange={(e) => setEngine(e.target.value as Schemas["StoreEngine"])}>
            {ENGINES.map((x) => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
        </Field>
        <button type="submit" className={btn.primary} disabled={!allowed.visible || !name.trim() || create.isPending} aria-busy={create.isPending}>
          {create.isPending ? "Creating…" : "Create store"}
        </button>
      </form>
    </section>
  );
}
