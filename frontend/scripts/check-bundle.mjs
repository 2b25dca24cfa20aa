// Fails the build when the dashboard's JavaScript, gzipped, is over budget (run by
// `npm run build` after `vite build`). Measures every dist/assets/*.js with node's zlib at
// level 9 and compares the sum with BUDGET_BYTES (README, "The dashboard": why this number).
// BUNDLE_BUDGET_BYTES overrides it for a one-off check, e.g. to see the check fail.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET_BYTES = 170_000;

const budget = process.env.BUNDLE_BUDGET_BYTES ? Number(process.env.BUNDLE_BUDGET_BYTES) : BUDGET_BYTES;
if (!Number.isFinite(budget) || budget <= 0) {
  console.error(`bundle budget: BUNDLE_BUDGET_BYTES=${process.env.BUNDLE_BUDGET_BYTES} is not a positive number`);
  process.exit(2);
}
const dir = new URL("../dist/assets/", import.meta.url).pathname;
let files;
try {
  files = readdirSync(dir).filter((f) => f.endsWith(".js"));
} catch (e) {
  console.error(`bundle budget: cannot read ${dir} (${e.message}); run vite build first`);
  process.exit(2);
}
if (files.length === 0) {
  console.error(`bundle budget: no .js files in ${dir}`);
  process.exit(2);
}
let raw = 0;
let gz = 0;
for (const f of files) {
  const b = readFileSync(join(dir, f));
  const g = gzipSync(b, { level: 9 }).length;
  raw += b.length;
  gz += g;
  console.log(`bundle budget: ${f}: ${b.length} bytes, ${g} gzipped`);
}
const pct = ((gz / budget) * 100).toFixed(1);
if (gz > budget) {
  console.error(`bundle budget: FAILED: ${gz} bytes of JS gzipped (${raw} raw) is over the budget of ${budget} bytes (${pct}%)`);
  process.exit(1);
}
console.log(`bundle budget: ok: ${gz} bytes of JS gzipped (${raw} raw), ${pct}% of ${budget}`);
