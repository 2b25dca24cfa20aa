import { describe, expect, it } from "vitest";
import { defaultChoiceLabel, otherPlans, planLabel, type Plan } from "./plans";

const business: Plan = {
  name: "business",
  default: false,
  pods: "20",
  requests_cpu: "2",
  requests_memory: "4Gi",
  limits_cpu: "4",
  limits_memory: "8Gi",
  pvcs: "6",
  requests_storage: "60Gi",
  db_storage: "20Gi",
  wp_storage: "30Gi",
  backups: { retention: 7, volume: "5Gi" },
};

describe("plans", () => {
  it("labels a plan with its quota", () => {
    expect(planLabel(business)).toBe("business: 20 pods, 2 CPU (limit 4), 4Gi memory (limit 8Gi), 60Gi storage");
  });
  it("names the default plan in the empty choice, when known", () => {
    expect(defaultChoiceLabel([business, { ...business, name: "starter", default: true }])).toBe("Platform default (starter)");
    expect(defaultChoiceLabel([business])).toBe("Platform default");
    expect(defaultChoiceLabel(undefined)).toBe("Platform default");
  });
  it("offers a store every plan but its own, in the list's order", () => {
    const starter = { ...business, name: "starter", default: true };
    const pro = { ...business, name: "pro" };
    expect(otherPlans([business, pro, starter], "starter").map((p) => p.name)).toEqual(["business", "pro"]);
    expect(otherPlans([starter], "starter")).toEqual([]);
    expect(otherPlans([business], "gone")).toEqual([business]);
    expect(otherPlans(undefined, "starter")).toEqual([]);
  });
});
