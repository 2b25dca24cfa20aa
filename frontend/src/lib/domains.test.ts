import { describe, expect, it } from "vitest";
import { primaryHost, typedDomain } from "./domains";

describe("domains", () => {
  it("sends the typed domain trimmed, leaving the rules to the API", () => {
    expect(typedDomain("  Shop.Example.com \n")).toBe("Shop.Example.com");
  });
  it("names the oldest custom domain primary, else the store's own host", () => {
    expect(primaryHost({ domains: ["shop.example.com", "www.example.org"], url: "https://a.stores.example" })).toBe("shop.example.com");
    expect(primaryHost({ domains: [], url: "https://a.stores.example" })).toBe("a.stores.example");
    expect(primaryHost({ domains: [] })).toBeUndefined();
  });
});
