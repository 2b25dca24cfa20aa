import { describe, expect, it } from "vitest";
import { IdempotencyKeys } from "./idempotency";

describe("IdempotencyKeys", () => {
  it("gives a double submit of the same body the same key, and a changed body a new one", () => {
    let n = 0;
    const keys = new IdempotencyKeys(() => `k${++n}`);
    const a = { name: "Shop", engine: "woocommerce" };
    expect(keys.keyFor(a)).toBe("k1");
    expect(keys.keyFor({ ...a })).toBe("k1");
    expect(keys.keyFor({ ...a, plan: "starter" })).toBe("k2");
    keys.reset();
    expect(keys.keyFor(a)).toBe("k3");
  });
});
