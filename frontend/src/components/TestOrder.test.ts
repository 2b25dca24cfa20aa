import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { testOrderCommands } from "./TestOrder";

describe("testOrderCommands", () => {
  it("is a shell script bash can parse, on the store's own URL, paying by Cash on Delivery", () => {
    const script = testOrderCommands("http://my-shop.stores.example/");
    execFileSync("bash", ["-n"], { input: script }); // throws on a syntax error
    expect(script).toContain('"http://my-shop.stores.example/?rest_route=/wc/store/v1/checkout"');
    expect(script).not.toContain("example//?");
    expect(script).toContain('"payment_method": "cod"');
  });
});
