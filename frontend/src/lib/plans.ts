// How the create form names a plan: its name and what its quota allows, and the choice
// that leaves the plan to the platform (the default plan, named); the plans the store page's
// resize form offers (every one but the store's own).
import type { Schemas } from "./api";

export type Plan = Schemas["PlanView"];

/** "business: 20 pods, 2 CPU (limit 4), 4Gi memory (limit 8Gi), 60Gi storage". */
export function planLabel(p: Plan): string {
  return `${p.name}: ${p.pods} pods, ${p.requests_cpu} CPU (limit ${p.limits_cpu}), ${p.requests_memory} memory (limit ${p.limits_memory}), ${p.requests_storage} storage`;
}

/** The label of the empty choice: the default plan by name, when the list says which. */
export function defaultChoiceLabel(plans: Plan[] | undefined): string {
  const d = plans?.find((p) => p.default);
  return d ? `Platform default (${d.name})` : "Platform default";
}

/** The plans a store on `current` may move to: all the others, in the list's order. */
export function otherPlans(plans: Plan[] | undefined, current: string): Plan[] {
  return plans?.filter((p) => p.name !== current) ?? [];
}
