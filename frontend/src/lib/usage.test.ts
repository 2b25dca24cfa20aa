import { describe, expect, it } from "vitest";
import { formatAmount, formatBytes, kind, level, orderResources, usagePercent } from "./usage";

describe("kind", () => {
  it("tells cpu, memory, storage and pods from the quota's names, anything else is a count", () => {
    expect(["requests.cpu", "limits.cpu", "cpu"].map(kind)).toEqual(["cpu", "cpu", "cpu"]);
    expect(["requests.memory", "limits.memory"].map(kind)).toEqual(["memory", "memory"]);
    expect(["requests.storage", "requests.ephemeral-storage"].map(kind)).toEqual(["storage", "storage"]);
    expect(kind("pods")).toBe("pods");
    expect(["persistentvolumeclaims", "services.loadbalancers", "count/jobs.batch"].map(kind)).toEqual(["", "", ""]);
  });
});

describe("orderResources", () => {
  it("puts cpu, memory, storage, pods first (requests before limits), then the rest by name", () => {
    const names = ["services.nodeports", "limits.memory", "pods", "persistentvolumeclaims", "requests.storage", "limits.cpu", "requests.memory", "requests.cpu", "services.loadbalancers"];
    expect(orderResources(names.map((name) => ({ name }))).map((r) => r.name)).toEqual([
      "requests.cpu",
      "limits.cpu",
      "requests.memory",
      "limits.memory",
      "requests.storage",
      "pods",
      "persistentvolumeclaims",
      "services.loadbalancers",
      "services.nodeports",
    ]);
  });
  it("does not reorder the list it is given", () => {
    const items = [{ name: "pods" }, { name: "requests.cpu" }];
    orderResources(items);
    expect(items.map((r) => r.name)).toEqual(["pods", "requests.cpu"]);
  });
});

describe("formatAmount", () => {
  it("writes cpu in cores", () => {
    expect(formatAmount("requests.cpu", 0.5)).toBe("0.5 cores");
    expect(formatAmount("limits.cpu", 1)).toBe("1 core");
    expect(formatAmount("requests.cpu", 2.125)).toBe("2.13 cores");
    expect(formatAmount("requests.cpu", 0)).toBe("0 cores");
  });
  it("writes memory and storage in GiB, below 1 GiB in MiB", () => {
    expect(formatAmount("requests.memory", 2 ** 30)).toBe("1 GiB");
    expect(formatAmount("limits.memory", 1.5 * 2 ** 30)).toBe("1.5 GiB");
    expect(formatAmount("requests.storage", 12 * 2 ** 30)).toBe("12 GiB");
    expect(formatAmount("requests.memory", 512 * 2 ** 20)).toBe("512 MiB");
    expect(formatAmount("requests.memory", 0)).toBe("0 GiB");
  });
  it("writes anything else as a count", () => {
    expect(formatAmount("pods", 12)).toBe("12");
    expect(formatAmount("persistentvolumeclaims", 3)).toBe("3");
  });
});

describe("level and percentage", () => {
  it("is ok below 80 %, high from 80 %, over from 100 %", () => {
    expect([0, 0.79, 0.8, 0.99, 1, 1.5].map(level)).toEqual(["ok", "ok", "high", "high", "over", "over"]);
  });
  it("rounds to a whole percentage, with small non-zero use as < 1%", () => {
    expect([0, 0.001, 0.25, 0.805, 1, 1.2].map(usagePercent)).toEqual(["0%", "< 1%", "25%", "81%", "100%", "120%"]);
  });
});

describe("formatBytes", () => {
  it("says bytes below a KiB and binary units above", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(5_452_595)).toBe("5.2 MiB");
    expect(formatBytes(3 * 2 ** 30)).toBe("3.0 GiB");
  });
});
