// Resource usage against quotas (GET /api/v1/stores/{id}/usage, the fleet insights' `usage`):
// the order resources are shown in (cpu, memory, storage, pods, then the rest), base-unit
// amounts as text (cores, GiB, counts), and a fraction's level and percentage.

const KINDS = ["cpu", "memory", "storage", "pods"];

/** What a quota resource measures: "cpu", "memory", "storage", "pods", or "" (a count). */
export function kind(name: string): string {
  return KINDS.find((k) => name === k || name.endsWith(`.${k}`) || name.endsWith(`-${k}`)) ?? "";
}

/** Resources ordered cpu, memory, storage, pods first (requests before limits), then the rest by name. */
export function orderResources<T extends { name: string }>(items: T[]): T[] {
  const rank = (n: string) => {
    const k = KINDS.indexOf(kind(n));
    return (k < 0 ? KINDS.length : k) * 2 + (n.startsWith("limits.") ? 1 : 0);
  };
  return [...items].sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
}

const round = (n: number, digits: number) => String(Number(n.toFixed(digits)));
const GiB = 2 ** 30;

/** A base-unit amount as text: "1.5 cores", "1 core", "512 MiB", "2.5 GiB", "12". */
export function formatAmount(name: string, value: number): string {
  const k = kind(name);
  if (k === "cpu") return `${round(value, 2)} ${value === 1 ? "core" : "cores"}`;
  if (k === "memory" || k === "storage") return value > 0 && value < GiB ? `${round(value / 2 ** 20, 0)} MiB` : `${round(value / GiB, 1)} GiB`;
  return round(value, 1);
}

/** A size in bytes as text in binary units: "512 B", "1.5 KiB", "5.2 MiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${bytes} B` : `${v.toFixed(1)} ${units[u]}`;
}

export type Level = "ok" | "high" | "over";

/** ok below 80 %, high from 80 %, over from 100 %. */
export function level(fraction: number): Level {
  return fraction >= 1 ? "over" : fraction >= 0.8 ? "high" : "ok";
}

/** A fraction as a whole percentage: "0%", "45%", "120%" ("< 1%" when small but not zero). */
export function usagePercent(fraction: number): string {
  return fraction > 0 && fraction < 0.005 ? "< 1%" : `${Math.round(fraction * 100)}%`;
}

/** What the level says in words (the bar's colour says it too): "", "near the limit", "at or over the limit". */
export const LEVEL_TEXT: Record<Level, string> = { ok: "", high: "near the limit", over: "at or over the limit" };
