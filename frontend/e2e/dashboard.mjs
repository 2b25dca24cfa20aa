// End-to-end test of the dashboard in a real browser against the real platform (started by
// scripts/e2e-dashboard.sh): sign in (a bad token first: the 401 message), create a store with
// a double click (one store), watch it become `ready` with every step `succeeded` on the live
// page (no reload); a second store whose setup Jobs the simulator fails (SIM_URL) fails; the
// fleet overview (empty before the stores, then its charts and steps table against the
// insights API at 24 h and 7 days, the failed store counted and its failed `setup` step shown
// with the Job's error); resource usage: the store page's "not observed yet", then one
// `store.usage@1` observation (started here with `urumi-worker start`; the script turns the
// workers' schedule off so that nothing else observes or adds runs) and the fleet page's quota
// table and the store page's bars compared number by number with the API; see the first store
// in the list; move it from plan starter to pro with the store page's resize form (its preview's
// quota and volume updates, then the move: the page, the API and the simulator's quota say pro),
// delete it and watch it become `deleted`.
// A repair's dry run on the failed runs page shows its cluster plan (ready, from a worker).
// A bulk retry from the failed runs page (select everything matching, preview, start): the
// operation's page until it `succeeded` with its target, the failing store `ready` again; the
// operations list and the parent run; a rerun of that store's provisioning run from its
// `storefront` step (9 steps carried over). Then the
// provisioning run's page (its timeline: one succeeded bar per step), the audit log (the
// store's `store.created` entry, filters, Load more) and the tokens page (mint a viewer token:
// its secret shown once and accepted by the API; revoke it: marked revoked and refused).
// axe-core runs on every page visited (sign-in, stores, create, store detail and its usage and resize form, runs, the bulk
// form's preview and a repair's cluster plan, operation, operations, run detail, rerun dialog, fleet, audit, tokens); any "serious" or "critical" violation fails the test. A screenshot
// of each page is saved (E2E_SHOTS, else a new temp directory) and its path printed.
//
// Env: URUMI_URL (the API, which serves the dashboard at /dashboard/), URUMI_TOKEN (admin),
// CHROMIUM (the browser binary), SIM_URL (the Kubernetes API simulator), E2E_TIMEOUT (seconds per wait, default 120), E2E_SHOTS (a
// directory for screenshots; the last page is saved there on failure), URUMI_WORKER (the
// urumi-worker binary) and E2E_DATABASE_URL (the platform's database) for the usage observation.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const url = process.env.URUMI_URL;
const token = process.env.URUMI_TOKEN;
const executablePath = process.env.CHROMIUM;
const timeout = Number(process.env.E2E_TIMEOUT ?? 120) * 1000;
const simUrl = process.env.SIM_URL;
const workerBin = process.env.URUMI_WORKER;
const databaseUrl = process.env.E2E_DATABASE_URL;
const shots = process.env.E2E_SHOTS || mkdtempSync(join(tmpdir(), "urumi-dashboard-shots-"));
mkdirSync(shots, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
if (!url || !token || !executablePath || !simUrl || !workerBin || !databaseUrl) {
  console.error("dashboard e2e: URUMI_URL, URUMI_TOKEN, CHROMIUM, SIM_URL, URUMI_WORKER and E2E_DATABASE_URL must be set");
  process.exit(2);
}
const t0 = Date.now();
const say = (m) => console.log(`== dashboard e2e: ${m}  [${Math.round((Date.now() - t0) / 1000)}s]`);

async function api(path, bearer = token) {
  const r = await fetch(url + path, { headers: { Authorization: `Bearer ${bearer}` } });
  if (!r.ok) throw new Error(`GET ${path}: ${r.status}`);
  return r.json();
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = await browser.newPage();
page.setDefaultTimeout(15_000);
const consoleErrors = [];
page.on("console", (m) => {
  if (m.type() === "error") consoleErrors.push(m.text());
});
page.on("pageerror", (e) => consoleErrors.push(String(e)));
// What the store page showed, recorded in the page as it changed: proves the updates were live.
await page.addInitScript(() => {
  const seen = { store: [], steps: [] };
  window.__seen = seen;
  new MutationObserver(() => {
    const s = document.querySelector('[data-testid="store-detail-status"]')?.getAttribute("data-status");
    if (s && seen.store.at(-1) !== s) seen.store.push(s);
    for (const r of document.querySelectorAll('[data-testid="step-row"]')) {
      const v = r.getAttribute("data-status");
      if (v && !seen.steps.includes(v)) seen.steps.push(v);
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"] });
});
let documents = 0;
page.on("request", (r) => {
  if (r.resourceType() === "document") documents += 1;
});

/** Runs axe-core on the page as it is; keeps its serious and critical violations. */
const axeFindings = [];
const axePages = [];
async function checkA11y(name) {
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.addScriptTag({ content: axeSource });
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) }));
  });
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  console.log(`   axe ${name}: ${violations.length} violations, ${bad.length} serious or critical`);
  for (const v of bad) axeFindings.push({ page: name, ...v });
  axePages.push(name);
}
function printAxe() {
  for (const v of axeFindings) {
    console.error(`   axe ${v.page}: ${v.impact} ${v.id}: ${v.help}\n      ${v.nodes.slice(0, 8).join("\n      ")}`);
  }
}
const saved = [];
async function shot(name) {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  saved.push(path);
}

/** Waits (up to 15 s) for the element's text to match: some, like the role, arrive after the element. */
async function expectText(locator, pattern, what) {
  await locator.waitFor();
  const deadline = Date.now() + 15_000;
  let text = await locator.innerText();
  while (!pattern.test(text) && Date.now() < deadline) {
    await page.waitForTimeout(100);
    text = await locator.innerText();
  }
  if (!pattern.test(text)) throw new Error(`${what}: ${JSON.stringify(text)} does not match ${pattern}`);
}

/**
 * The fleet page (already open, window `hours`) against direct calls to the insights API:
 * every store status's count, the provisioning histogram bucket by bucket (its runs summing
 * to the succeeded store.provision runs), the runs chart's totals, and one table row per
 * step the API reports, the e2e store's provisioning steps among them; the quota usage table
 * row by row (name, used, hard, stores; its text in cores / GiB / MiB / counts read back to the
 * API's base-unit numbers) and the one usage observation's step counted once.
 */
async function checkFleet(hours, provisionSteps) {
  if (provisionSteps.length === 0) throw new Error("no provisioning steps to look for");
  await page.locator(`[data-testid="fleet"][data-hours="${hours}"]`).waitFor();
  await page.getByTestId("chart-stores").waitFor();
  await page.getByTestId("chart-provision-histogram").waitFor();
  await page.getByTestId("chart-runs").waitFor();
  await page.getByTestId("step-insights").waitFor();
  const fleet = await api(`/api/v1/insights/fleet?hours=${hours}`);
  const bars = await page.getByTestId("status-bar").evaluateAll((b) => b.map((x) => `${x.getAttribute("data-status")}=${x.getAttribute("data-count")}:${x.textContent}`));
  const want = fleet.stores.map((s) => `${s.status}=${s.count}:${s.status}${s.count}`);
  console.log(`   ${hours} h: stores by status ${bars.join(" ")}`);
  if (bars.join() !== want.join()) throw new Error(`stores by status shows ${bars}, the API says ${want}`);
  const storesDesc = await page.locator('[data-testid="chart-stores"] svg[role="img"] desc').textContent();
  if (storesDesc !== fleet.stores.map((s) => `${s.status}: ${s.count}`).join(", ")) throw new Error(`the stores chart's description is ${JSON.stringify(storesDesc)}`);

  const runs = await api(`/api/v1/insights/runs?definition=store.provision&hours=${hours}`);
  const hist = await page.getByTestId("hist-bar").evaluateAll((b) => b.map((x) => Number(x.getAttribute("data-runs"))));
  const histSum = hist.reduce((a, b) => a + b, 0);
  console.log(`   ${hours} h: provisioning histogram ${hist.join(" ")} (sum ${histSum}); the API: ${runs.succeeded} succeeded, p50 ${runs.p50_ms} ms`);
  if (runs.succeeded < 1) throw new Error("the API reports no succeeded store.provision run after the store became ready");
  if (histSum !== runs.succeeded || hist.join() !== runs.histogram.map((b) => b.runs).join()) {
    throw new Error(`the histogram shows ${hist}, the API ${runs.histogram.map((b) => b.runs)} (${runs.succeeded} succeeded)`);
  }
  await expectText(page.getByTestId("provision-summary"), new RegExp(`^${runs.succeeded} succeeded, ${runs.failed} failed, ${runs.cancelled} cancelled .*p50 .*p95 .*p99 `), "the provisioning summary");

  const perHour = fleet.runs_per_hour.reduce((t, r) => [t[0] + r.succeeded, t[1] + r.failed, t[2] + r.cancelled], [0, 0, 0]);
  const shown = await page.getByTestId("runs-bar").evaluateAll((b) =>
    b.reduce((t, x) => [t[0] + Number(x.getAttribute("data-succeeded")), t[1] + Number(x.getAttribute("data-failed")), t[2] + Number(x.getAttribute("data-cancelled"))], [0, 0, 0]),
  );
  console.log(`   ${hours} h: runs chart succeeded/failed/cancelled ${shown.join("/")}, the API ${perHour.join("/")}`);
  if (shown.join() !== perHour.join() || perHour[0] < 1) throw new Error(`the runs chart shows ${shown}, the API ${perHour}`);

  const steps = (await api(`/api/v1/insights/steps?hours=${hours}`)).items;
  const rows = await page.getByTestId("step-insight-row").evaluateAll((r) => r.map((x) => `${x.getAttribute("data-definition")}/${x.getAttribute("data-step")}=${x.getAttribute("data-count")}`));
  const apiRows = steps.map((s) => `${s.definition}/${s.step}=${s.count}`);
  if ([...rows].sort().join() !== [...apiRows].sort().join()) throw new Error(`the steps table has ${rows}, the API ${apiRows}`);
  const missing = provisionSteps.filter((n) => !rows.some((r) => r.startsWith(`store.provision/${n}=`)));
  console.log(`   ${hours} h: steps table ${rows.length} rows; the provisioning run's ${provisionSteps.length} steps ${missing.length ? `missing ${missing}` : "all listed"}`);
  if (missing.length) throw new Error(`the steps table lacks the provisioning run's steps ${missing}`);
  const observations = steps.filter((s) => s.definition === "store.usage").map((s) => `${s.step}=${s.count}`);
  if (observations.join() !== "observe=1") throw new Error(`expected the one usage observation started by the test, the API counts ${observations}`);

  if (!fleet.usage.some((r) => r.name === "requests.cpu")) throw new Error(`the fleet insights have no observed requests.cpu: ${JSON.stringify(fleet.usage)}`);
  const usageRows = await page.getByTestId("fleet-usage-row").evaluateAll((r) =>
    r.map((x) => ({ key: ["name", "used", "hard", "stores"].map((a) => x.getAttribute(`data-${a}`)).join(" "), text: x.querySelector('[data-testid="usage-amount"]').textContent })),
  );
  const wantUsage = fleet.usage.map((r) => `${r.name} ${r.used} ${r.hard} ${r.stores}`);
  console.log(`   ${hours} h: quota usage ${usageRows.map((r) => `${r.key.split(" ")[0]}=${r.text}`).join(", ")}`);
  if ([...usageRows.map((r) => r.key)].sort().join() !== [...wantUsage].sort().join()) throw new Error(`the quota usage table has ${usageRows.map((r) => r.key)}, the API ${wantUsage}`);
  if (usageRows[0].key.split(" ")[0] !== "requests.cpu") throw new Error(`the quota usage table does not start with requests.cpu: ${usageRows[0].key}`);
  const UNITS = { core: 1, cores: 1, MiB: 2 ** 20, GiB: 2 ** 30, "": 1 };
  for (const row of usageRows) {
    const [name, used, hard] = row.key.split(" ");
    const m = /^([\d.]+) ?(cores?|MiB|GiB|) \/ ([\d.]+) ?(cores?|MiB|GiB|)$/.exec(row.text);
    const unit = name.endsWith("cpu") ? /^cores?$/ : /memory|storage/.test(name) ? /^(MiB|GiB)$/ : /^$/;
    if (!m || !unit.test(m[2]) || !unit.test(m[4])) throw new Error(`${name}: ${JSON.stringify(row.text)} is not in its unit`);
    for (const [shown, u, want] of [[m[1], m[2], Number(used)], [m[3], m[4], Number(hard)]]) {
      const value = Number(shown) * UNITS[u];
      if (Math.abs(value - want) > Math.max(0.01, want * 0.05)) throw new Error(`${name}: the table says ${row.text}, the API ${used} / ${hard}`);
    }
  }
}

/**
 * The store page (open) against GET /api/v1/stores/{id}/usage: one row per resource with the
 * quota's "used / hard", the percentage and its level in words, the meter's value, and the
 * observation's time.
 */
async function checkStoreUsage(storeId) {
  await page.getByTestId("usage-row").first().waitFor();
  const u = await api(`/api/v1/stores/${storeId}/usage`);
  if (!u.observed_at || u.resources.length === 0) throw new Error(`the API has no usage for the store: ${JSON.stringify(u)}`);
  const pct = (f) => (f > 0 && f < 0.005 ? "< 1%" : `${Math.round(f * 100)}%`) + (f >= 1 ? " — at or over the limit" : f >= 0.8 ? " — near the limit" : "");
  const want = u.resources.map((r) => (r.fraction === undefined ? `${r.name}|${r.used} / ${r.hard}|—|-` : `${r.name}|${r.used} / ${r.hard}|${pct(r.fraction)}|${Math.min(100, Math.round(r.fraction * 100))}`));
  const shown = await page.getByTestId("usage-row").evaluateAll((rows) =>
    rows.map((x) => {
      const meter = x.querySelector('[role="meter"]');
      const percent = x.querySelector('[data-testid="usage-percent"]');
      return `${x.getAttribute("data-name")}|${x.querySelector('[data-testid="usage-amount"]').textContent}|${percent ? percent.textContent : x.lastElementChild.textContent}|${meter ? meter.getAttribute("aria-valuenow") : "-"}`;
    }),
  );
  console.log(`   usage bars: ${shown.join(", ")}`);
  if ([...shown].sort().join() !== [...want].sort().join()) throw new Error(`the store page shows ${shown}, the API says ${want}`);
  if (!shown[0].startsWith("requests.cpu|")) throw new Error(`the usage bars do not start with requests.cpu: ${shown[0]}`);
  // The tightened quota: requests.cpu near its limit (amber), limits.memory at it (red), in
  // words as well as colour.
  for (const [name, words, fill] of [["requests.cpu", "near the limit", "bg-amber-500"], ["limits.memory", "at or over the limit", "bg-rose-600"]]) {
    const row = page.locator(`[data-testid="usage-row"][data-name="${name}"]`);
    const text = await row.getByTestId("usage-percent").textContent();
    const cls = await row.locator('[role="meter"] > span').getAttribute("class");
    if (!text.endsWith(words) || !cls.includes(fill)) throw new Error(`${name} shows ${JSON.stringify(text)} with ${cls}, not ${words} in ${fill}`);
  }
  const at = await page.locator('[data-testid="store-usage"] time').getAttribute("datetime");
  if (at !== u.observed_at) throw new Error(`the store page's usage is as of ${at}, the API's ${u.observed_at}`);
}

let failed = false;
try {
  say(`open ${url}/dashboard/`);
  await page.goto(`${url}/dashboard/`);
  await page.getByRole("heading", { name: "Sign in to Urumi" }).waitFor();
  if (!page.url().endsWith("/dashboard/sign-in")) throw new Error(`not sent to sign-in: ${page.url()}`);
  await checkA11y("sign-in");
  await shot("sign-in");

  say("a wrong token is refused with the 401 message");
  await page.getByLabel("API token").fill("urumi_00000000000000000000000000000000_wrong");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expectText(page.getByRole("alert").first(), /401.*not accept/s, "the sign-in error");

  say("sign in with the admin token");
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Stores" }).waitFor();
  await expectText(page.getByTestId("whoami"), /role: admin/, "the role shown");
  await page.locator('[data-testid="live"][data-state="open"]').waitFor();
  const docsAtSignIn = documents;
  await checkA11y("stores");
  await shot("stores");

  say("fleet overview before any store: every section says there is no data yet");
  const before = await Promise.all([
    api("/api/v1/insights/fleet?hours=24"),
    api("/api/v1/insights/runs?definition=store.provision&hours=24"),
    api("/api/v1/insights/steps?hours=24"),
  ]);
  if (before[0].stores.some((s) => s.count > 0) || before[0].runs_per_hour.length || before[0].usage.length || before[1].succeeded || before[2].items.length) {
    throw new Error(`the fresh platform already has insight data: ${JSON.stringify(before)}`);
  }
  await page.getByRole("link", { name: "Fleet", exact: true }).click();
  await page.getByRole("heading", { name: "Fleet overview" }).waitFor();
  for (const id of ["stores-empty", "usage-empty", "provision-empty", "runs-empty", "steps-empty"]) await page.getByTestId(id).waitFor();
  if ((await page.locator('svg[role="img"]').count()) !== 0) throw new Error("the empty fleet page draws charts");
  await expectText(page.getByTestId("provision-empty"), /No store was provisioned in the last 24 h yet/, "the empty provisioning section");
  await checkA11y("fleet-empty");
  await shot("fleet-empty");

  say("create a store (double click on submit)");
  const name = `Browser Shop ${Date.now().toString(36)}`;
  await page.getByRole("link", { name: "Create store" }).first().click();
  await page.getByRole("heading", { name: "Create a store" }).waitFor();
  await checkA11y("create-store");
  await shot("create-store");
  await page.getByLabel("Name").fill(name);
  await page.getByRole("button", { name: "Create store" }).dblclick();
  await page.waitForURL(/\/dashboard\/stores\/[0-9a-f-]{36}$/);
  const storeId = page.url().split("/").pop();
  console.log(`   store ${storeId}`);

  say("watch it become ready with every step succeeded, live");
  await page.locator('[data-testid="store-detail-status"][data-status="ready"]').waitFor({ timeout });
  await page.locator('[data-testid="run-status"][data-status="succeeded"]').waitFor({ timeout });
  const rows = page.getByTestId("step-row");
  await page.waitForFunction(
    () => {
      const r = [...document.querySelectorAll('[data-testid="step-row"]')];
      return r.length > 0 && r.every((x) => x.getAttribute("data-status") === "succeeded");
    },
    null,
    { timeout },
  );
  const steps = await rows.evaluateAll((r) => r.map((x) => `${x.getAttribute("data-step")}:${x.getAttribute("data-status")}`));
  console.log(`   ${steps.join(" ")}`);
  if (steps.length !== 11) throw new Error(`expected the 11 steps of store.provision, saw ${steps.length}`);
  await expectText(page.getByTestId("store-url"), /^https?:\/\//, "the storefront URL");
  await page.getByTestId("simulator-note").waitFor();
  if (documents !== docsAtSignIn) throw new Error(`the page was reloaded (${documents - docsAtSignIn} document loads)`);
  const seen = await page.evaluate(() => window.__seen);
  console.log(`   shown live: store ${seen.store.join(" -> ")}; step statuses ${seen.steps.join(", ")}`);
  if (seen.store[0] !== "provisioning" || seen.store.at(-1) !== "ready") {
    throw new Error(`the store page did not go from provisioning to ready by itself: ${seen.store.join(" -> ")}`);
  }
  if (!seen.steps.some((x) => x !== "succeeded")) throw new Error("no step was ever shown before it succeeded");

  const same = (await api("/api/v1/stores?limit=200")).items.filter((s) => s.name === name);
  if (same.length !== 1) throw new Error(`the double click created ${same.length} stores named ${name}`);

  await expectText(page.getByTestId("usage-empty"), /^Not observed yet/, "the store's usage before any observation");
  await checkA11y("store-detail");
  await shot("store-detail");

  say("a failing store: the simulator fails its setup Jobs; it is created through the API and fails");
  // As scripts/e2e.sh does: every setup Job of the store's namespace fails, with a log line
  // the step's error carries.
  const broken = "E2E Broken Fleet";
  const marker = "e2e-injected: wp core install: Error establishing a database connection";
  for (const n of [1, 2, 3, 4]) {
    const r = await fetch(`${simUrl}/_sim/jobs`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ namespace: "store-e2e-broken-fleet", namePrefix: `store-setup-${n}`, failTimes: 4294967295, log: `step 3/5: installing WordPress\n${marker}\n` }),
    });
    if (!r.ok) throw new Error(`the simulator refused the Job script: ${r.status}`);
  }
  const created = await fetch(`${url}/api/v1/stores`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: broken, engine: "woocommerce" }),
  });
  if (created.status !== 202) throw new Error(`creating ${broken}: ${created.status}`);
  const brokenId = (await created.json()).store.id;
  const until = Date.now() + timeout;
  let brokenStatus = "";
  while (Date.now() < until) {
    brokenStatus = (await api(`/api/v1/stores/${brokenId}`)).status;
    if (brokenStatus === "failed" || brokenStatus === "ready") break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (brokenStatus !== "failed") throw new Error(`${broken} is ${brokenStatus}, not failed, after ${timeout / 1000} s`);
  console.log(`   ${broken} failed`);

  say("observe resource usage: one store.usage run, as the worker's schedule would start it");
  // The store's quota is tightened behind the platform's back first (the simulator recomputes
  // its status), so that one resource is near its limit and one at it: amber and red bars.
  const slug = (await api(`/api/v1/stores/${storeId}`)).slug;
  const tighten = await fetch(`${simUrl}/api/v1/namespaces/store-${slug}/resourcequotas/store-quota`, {
    method: "PATCH",
    headers: { "Content-Type": "application/merge-patch+json" },
    body: JSON.stringify({ spec: { hard: { "requests.cpu": "600m", "limits.memory": "2Gi" } } }),
  });
  if (!tighten.ok) throw new Error(`tightening the store's quota in the simulator: ${tighten.status}`);
  const usageRun = execFileSync(workerBin, ["start", "store.usage", "fleet:usage"], {
    env: { ...process.env, DATABASE_URL: databaseUrl, URUMI__DATABASE__URL: databaseUrl },
    encoding: "utf8",
  }).trim();
  const observedBy = Date.now() + timeout;
  let observed = [];
  while (Date.now() < observedBy) {
    observed = await Promise.all([storeId, brokenId].map((id) => api(`/api/v1/stores/${id}/usage`)));
    if (observed.every((u) => u.observed_at && u.resources.length)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (!observed.every((u) => u.observed_at)) throw new Error(`run ${usageRun} observed no usage within ${timeout / 1000} s`);
  console.log(`   run ${usageRun}: ${observed[0].resources.map((r) => `${r.name} ${r.used}/${r.hard}`).join(", ")}`);

  say("fleet overview: its charts show what the insights API says");
  await page.getByRole("link", { name: "Fleet", exact: true }).click();
  await page.getByRole("heading", { name: "Fleet overview" }).waitFor();
  const provisionRun = (await api(`/api/v1/runs?store_id=${storeId}&kind=store.provision&limit=10`)).items[0];
  const provisionSteps = (await api(`/api/v1/runs/${provisionRun.id}`)).steps.map((s) => s.name);
  await checkFleet(24, provisionSteps);
  // The failing store is counted, and its failed step is in the table with the Job's error.
  // (checkFleet compared every status bar with the API; the API must count the failed store.)
  const failedBar = await page.locator('[data-testid="status-bar"][data-status="failed"]').getAttribute("data-count");
  if (failedBar !== "1") throw new Error(`the failed stores' bar says ${failedBar}, not 1`);
  const failedRows = await page.locator('[data-testid="step-insight-row"][data-definition="store.provision"]:not([data-failed="0"])').evaluateAll((r) =>
    r.map((x) => `${x.getAttribute("data-step")}=${x.getAttribute("data-failed")}:${x.textContent}`),
  );
  console.log(`   failed steps: ${failedRows.map((r) => r.split(":")[0]).join(" ")}`);
  if (failedRows.length !== 1 || !failedRows[0].includes(marker)) throw new Error(`the failed store's step is not shown with its error: ${failedRows}`);
  await checkA11y("fleet");
  await shot("fleet");
  say("fleet overview: the 7-day window, kept in the URL");
  await page.getByRole("button", { name: "7 days" }).click();
  await page.waitForURL(/\/dashboard\/fleet\?hours=168$/);
  await checkFleet(168, provisionSteps);
  await checkA11y("fleet-7-days");
  await shot("fleet-7-days");
  await page.getByRole("link", { name: "Stores", exact: true }).click();
  await page.locator(`a[href$="/stores/${storeId}"]`).first().click();
  await page.locator('[data-testid="store-detail-status"][data-status="ready"]').waitFor();
  say("the store page's resource usage: its bars against the usage API");
  await checkStoreUsage(storeId);
  await checkA11y("store-usage");
  await shot("store-usage");

  say("suspend it (confirm first): the page shows it suspended, with the API agreeing; then resume it");
  await page.getByRole("button", { name: "Suspend", exact: true }).click();
  const suspendDialog = page.getByRole("dialog", { name: `Suspend ${name}?` });
  await suspendDialog.waitFor();
  await suspendDialog.getByRole("button", { name: "Suspend" }).click();
  await page.locator('[data-testid="store-detail-status"][data-status="suspended"]').waitFor({ timeout });
  if ((await api(`/api/v1/stores/${storeId}`)).status !== "suspended") throw new Error("the API does not say suspended");
  await checkA11y("store-suspended");
  await shot("store-suspended");
  await page.getByRole("button", { name: "Resume", exact: true }).click();
  const resumeDialog = page.getByRole("dialog", { name: `Resume ${name}?` });
  await resumeDialog.waitFor();
  await resumeDialog.getByRole("button", { name: "Resume" }).click();
  await page.locator('[data-testid="store-detail-status"][data-status="ready"]').waitFor({ timeout });
  if ((await api(`/api/v1/stores/${storeId}`)).status !== "ready") throw new Error("the API does not say ready after the resume");

  say("back it up (confirm first): the backup is listed complete with its checksum; then restore from it");
  // The quota tightened for the usage bars leaves no room for the backup Job's pod: give the
  // plan's values back first (as a repair would).
  const loosen = await fetch(`${simUrl}/api/v1/namespaces/store-${slug}/resourcequotas/store-quota`, {
    method: "PATCH",
    headers: { "Content-Type": "application/merge-patch+json" },
    body: JSON.stringify({ spec: { hard: { "requests.cpu": "1", "limits.memory": "3Gi" } } }),
  });
  if (!loosen.ok) throw new Error(`restoring the store's quota in the simulator: ${loosen.status}`);
  await page.getByRole("button", { name: "Back up now", exact: true }).click();
  const backupDialog = page.getByRole("dialog", { name: `Back up ${name}?` });
  await backupDialog.waitFor();
  await backupDialog.getByRole("button", { name: "Back up" }).click();
  const completeRow = page.locator('[data-testid="backup-row"][data-status="complete"]').first();
  await completeRow.waitFor({ timeout });
  const backups = (await api(`/api/v1/stores/${storeId}/backups`)).items;
  if (backups.length !== 1 || backups[0].status !== "complete" || backups[0].sha256.length !== 64) {
    throw new Error(`the API does not list one complete backup: ${JSON.stringify(backups)}`);
  }
  if (!(await completeRow.textContent()).includes(backups[0].sha256.slice(0, 12))) throw new Error("the row does not show the checksum");
  await checkA11y("store-backups");
  await shot("store-backups");
  await completeRow.getByRole("button", { name: "Restore", exact: true }).click();
  const restoreDialog = page.getByRole("dialog", { name: `Restore ${name} from this backup?` });
  await restoreDialog.waitFor();
  await restoreDialog.getByRole("button", { name: "Restore" }).click();
  const restored = Date.now() + timeout;
  for (;;) {
    const runs = (await api(`/api/v1/stores/${storeId}/runs`)).items;
    if (runs.some((r) => r.kind === "store.restore" && r.status === "succeeded")) break;
    if (Date.now() > restored) throw new Error(`no succeeded restore run: ${JSON.stringify(runs.map((r) => [r.kind, r.status]))}`);
    await page.waitForTimeout(500);
  }
  await page.locator('[data-testid="store-detail-status"][data-status="ready"]').waitFor({ timeout });

  say("move it to plan pro with the resize form: preview (the quota and the uploads volume would change, nothing does), then move (confirm first)");
  // scripts/e2e-dashboard.sh configures two plans: starter (the store's) and pro.
  const resize = page.getByTestId("store-resize");
  await expectText(resize.getByTestId("current-plan"), /^starter$/, "the current plan");
  const newPlan = resize.getByLabel("New plan");
  const offered = await newPlan.evaluate((s) => [...s.options].map((o) => `${o.value}=${o.textContent}`));
  console.log(`   offered: ${offered.join(" | ")}`);
  if (offered.length !== 1 || !offered[0].startsWith("pro=pro: 20 pods, 2 CPU")) throw new Error(`the resize form offers ${offered}, not pro alone with its quota`);
  await newPlan.selectOption("pro");
  await resize.getByRole("button", { name: "Preview", exact: true }).click();
  await resize.locator('[data-testid="cluster-plan"][data-state="ready"]').waitFor({ timeout });
  const resizePlan = await resize.getByTestId("target-plan").evaluate((x) => `${x.getAttribute("aria-label")}: ${x.textContent}`);
  console.log(`   resize plan: ${resizePlan}`);
  if (!/~ updateResourceQuota\/store-quota.*\/spec\/hard\/pods/.test(resizePlan) || !/~ updatePersistentVolumeClaim\/wordpress-content/.test(resizePlan)) {
    throw new Error("the resize preview does not show the quota's and the uploads volume's updates");
  }
  if ((await api(`/api/v1/stores/${storeId}`)).plan !== "starter") throw new Error("the preview changed the store's plan");
  await checkA11y("store-resize-preview");
  await shot("store-resize-preview");
  await resize.getByRole("button", { name: "Move to plan", exact: true }).click();
  const resizeDialog = page.getByRole("dialog", { name: `Move ${name} to plan pro?` });
  await resizeDialog.waitFor();
  await resizeDialog.getByRole("button", { name: "Move", exact: true }).click();
  await expectText(resize.getByTestId("current-plan"), /^pro$/, "the plan after the move");
  const resized = Date.now() + timeout;
  for (;;) {
    const runs = (await api(`/api/v1/stores/${storeId}/runs`)).items;
    if (runs.some((r) => r.kind === "store.resize" && r.status === "succeeded")) break;
    if (runs.some((r) => r.kind === "store.resize" && (r.status === "failed" || r.status === "cancelled")) || Date.now() > resized) {
      throw new Error(`no succeeded resize run: ${JSON.stringify(runs.map((r) => [r.kind, r.status]))}`);
    }
    await page.waitForTimeout(500);
  }
  await page.locator('[data-testid="store-detail-status"][data-status="ready"]').waitFor({ timeout });
  const movedTo = await api(`/api/v1/stores/${storeId}`);
  if (movedTo.plan !== "pro") throw new Error(`the API says the store is on ${movedTo.plan}, not pro`);
  const hard = (await (await fetch(`${simUrl}/api/v1/namespaces/store-${slug}/resourcequotas/store-quota`)).json()).spec.hard;
  if (hard.pods !== "20") throw new Error(`the store's quota allows ${hard.pods} pods after the move, not pro's 20`);
  await expectText(page.getByTestId("store-plan"), /· pro$/, "the plan in the store's details");
  await checkA11y("store-resized");
  await shot("store-resized");

  say("delete it (confirm first) and watch it become deleted");
  await page.getByRole("button", { name: "Delete store" }).click();
  const dialog = page.getByRole("dialog", { name: `Delete ${name}?` });
  await dialog.waitFor();
  await dialog.getByRole("button", { name: "Delete" }).click();
  await page.locator('[data-testid="store-detail-status"][data-status="deleted"]').waitFor({ timeout });
  await page.locator('[data-testid="run-status"][data-status="succeeded"]').waitFor({ timeout });

  say("the stores list shows it deleted");
  await page.getByRole("link", { name: "Stores", exact: true }).click();
  await page.locator(`[data-testid="store-row"][data-store-id="${storeId}"] [data-status="deleted"]`).waitFor();
  if (documents !== docsAtSignIn) throw new Error(`the page was reloaded (${documents - docsAtSignIn} document loads)`);

  say("bulk retry: select every failed run on the failed runs page, preview, start; watch the operation");
  // The failing store's setup step used its 4 attempts on Jobs store-setup-1..4, which the
  // simulator was told to fail; a retry's Job is store-setup-5, which it runs to success — so
  // the retried run succeeds and the store becomes ready.
  await page.getByRole("link", { name: "Runs", exact: true }).click();
  await page.getByRole("heading", { name: "Failed runs" }).waitFor();
  await page.locator(`[data-testid="run-row"] a[href$="/stores/${brokenId}"]`).first().waitFor();
  await page.getByRole("button", { name: "Select everything matching this filter" }).click();
  await page.getByTestId("bulk-form").waitFor();
  if ((await page.getByLabel("Action").inputValue()) !== "retry") throw new Error("the bulk form's action is not retry by default");
  // A repair's dry run first: its cluster plan, which a worker computes with server-side
  // dry runs against the simulator (nothing written). The failing store's quota drifts first
  // (changed behind the platform's back), so the plan has an update to show. Then back to
  // retry (a new preview).
  const quotaPath = "/api/v1/namespaces/store-e2e-broken-fleet/resourcequotas/store-quota";
  const drift = await fetch(simUrl + quotaPath, {
    method: "PATCH",
    headers: { "Content-Type": "application/merge-patch+json" },
    body: JSON.stringify({ spec: { hard: { pods: "99" } } }),
  });
  if (!drift.ok) throw new Error(`drifting the store's quota in the simulator: ${drift.status}`);
  await page.getByLabel("Action").selectOption("repair");
  await page.getByRole("button", { name: "Preview" }).click();
  await page.locator('[data-testid="cluster-plan"][data-state="ready"]').waitFor({ timeout });
  const plans = await page.getByTestId("target-plan").evaluateAll((r) => r.map((x) => `${x.getAttribute("aria-label")}: ${x.textContent}`));
  console.log(`   repair plan: ${plans.join(" | ")}`);
  if (!plans.some((p) => /^1 to update, \d+ unchanged: .*~ updateResourceQuota\/store-quota.*\/spec\/hard\/pods/.test(p)))
    throw new Error("the repair preview does not show the drifted quota's update of /spec/hard/pods");
  const quota = await (await fetch(simUrl + quotaPath)).json();
  if (quota.spec.hard.pods !== "99") throw new Error(`the preview wrote to the cluster: the quota's pods are ${quota.spec.hard.pods}`);
  await checkA11y("runs-bulk-repair-plan");
  await shot("runs-bulk-repair-plan");
  await page.getByLabel("Action").selectOption("retry");
  await page.getByRole("button", { name: "Preview" }).click();
  const matchedShown = page.getByTestId("preview-matched");
  await expectText(matchedShown, /^\d+ runs? match/, "the preview's matched count");
  const matched = Number(await matchedShown.getAttribute("data-matched"));
  const wouldRows = await page.getByTestId("preview-row").evaluateAll((r) => r.map((x) => x.textContent));
  console.log(`   preview: ${matched} matched; ${wouldRows.length} shown: ${wouldRows.join(" | ")}`);
  if (!(matched >= 1) || wouldRows.length < 1) throw new Error(`the preview shows ${matched} matched runs and ${wouldRows.length} rows`);
  await checkA11y("runs-bulk-preview");
  await shot("runs-bulk-preview");
  await page.getByRole("button", { name: "Start", exact: true }).click();
  await page.waitForURL(/\/dashboard\/operations\/[0-9a-f-]{36}$/);
  const operationId = page.url().split("/").pop();
  console.log(`   operation ${operationId}`);
  const opState = page.getByTestId("operation-state");
  await opState.waitFor();
  const opStates = [];
  const opUntil = Date.now() + timeout;
  for (;;) {
    const s = await opState.getAttribute("data-status");
    if (opStates.at(-1) !== s) opStates.push(s);
    if (["succeeded", "stopped", "cancelled"].includes(s) || Date.now() > opUntil) break;
    await page.waitForTimeout(200);
  }
  console.log(`   operation states shown: ${opStates.join(" -> ")}`);
  if (opStates.at(-1) !== "succeeded") throw new Error(`the operation is ${opStates.at(-1)}, not succeeded`);
  // The targets are refetched once it ends: each shows its outcome.
  await page.waitForFunction(
    (n) => {
      const r = [...document.querySelectorAll('[data-testid="target-row"]')];
      return r.length === n && r.every((x) => x.getAttribute("data-state") === "succeeded");
    },
    matched,
    { timeout },
  );
  const counts = await page.locator('[data-testid^="count-"]').evaluateAll((c) => c.map((x) => `${x.getAttribute("data-testid").slice(6)}=${x.getAttribute("data-count")}`));
  console.log(`   progress: ${counts.join(" ")}`);
  if (!counts.includes(`matched=${matched}`) || !counts.includes(`succeeded=${matched}`)) throw new Error(`the progress shows ${counts}`);
  if ((await page.getByTestId("progress-bar").getAttribute("aria-valuenow")) !== "100") throw new Error("the progress bar is not at 100%");
  if ((await page.getByRole("button", { name: /^(Pause|Resume|Approve|Cancel operation)$/ }).count()) !== 0) throw new Error("an ended operation shows controls");
  const fixed = await api(`/api/v1/stores/${brokenId}`);
  if (fixed.status !== "ready") throw new Error(`${broken} is ${fixed.status} after the retry, not ready`);
  await checkA11y("operation");
  await shot("operation");

  say("the operations list shows it; its parent run's page");
  await page.getByRole("link", { name: "Operations", exact: true }).click();
  await page.getByRole("heading", { name: "Operations" }).waitFor();
  await page.locator(`[data-testid="operation-row"][data-operation-id="${operationId}"][data-state="succeeded"]`).waitFor();
  await checkA11y("operations");
  await shot("operations");
  await page.locator(`a[href$="/operations/${operationId}"]`).click();
  await page.getByTestId("parent-run").click();
  await page.waitForURL(/\/dashboard\/runs\/[0-9a-f-]{36}$/);
  await expectText(page.getByTestId("run-lane"), /^(interactive|scheduled|bulk)$/, "the parent run's lane");
  console.log(`   parent run: lane ${await page.getByTestId("run-lane").innerText()}`);

  say("rerun the failing store's (now succeeded) provisioning run from its storefront step");
  const brokenRun = (await api(`/api/v1/runs?store_id=${brokenId}&kind=store.provision&limit=1`)).items[0];
  await page.goto(`${url}/dashboard/runs/${brokenRun.id}`);
  await page.locator('[data-testid="run-status"][data-status="succeeded"]').waitFor();
  await page.getByRole("button", { name: "Rerun", exact: true }).click();
  const rerunDialog = page.getByRole("dialog", { name: "Rerun this run?" });
  await rerunDialog.waitFor();
  await rerunDialog.getByLabel("From step").selectOption("storefront");
  await checkA11y("run-rerun-dialog");
  await rerunDialog.getByRole("button", { name: "Rerun", exact: true }).click();
  await page.waitForURL((u) => /\/dashboard\/runs\/[0-9a-f-]{36}$/.test(u.pathname) && !u.pathname.endsWith(brokenRun.id));
  const rerunId = page.url().split("/").pop();
  await expectText(page.getByTestId("carried-steps"), /^9 steps carried over from /, "the rerun's carried steps");
  await page.locator('[data-testid="run-status"][data-status="succeeded"]').waitFor({ timeout });
  const rerun = await api(`/api/v1/runs/${rerunId}`);
  console.log(`   rerun ${rerunId}: ${rerun.status}, lane ${rerun.lane}, ${rerun.carried_steps} steps carried over from ${rerun.rerun_of}`);
  if (rerun.rerun_of !== brokenRun.id || rerun.carried_steps !== 9) throw new Error(`the rerun is ${JSON.stringify(rerun)}`);
  await checkA11y("run-detail-rerun");
  await shot("run-detail-rerun");

  say("runs page");
  await page.getByRole("link", { name: "Runs", exact: true }).click();
  await page.getByRole("heading", { name: /runs/i }).first().waitFor();
  await page.locator("#run-status").selectOption("");
  await page.getByTestId("run-row").first().waitFor();
  await checkA11y("runs");
  await shot("runs");

  say("the provisioning run's timeline: one succeeded bar per step");
  const provision = (await api(`/api/v1/runs?store_id=${storeId}&kind=store.provision&limit=10`)).items;
  if (provision.length !== 1) throw new Error(`expected one store.provision run of the store, the API lists ${provision.length}`);
  const runId = provision[0].id;
  const apiSteps = (await api(`/api/v1/runs/${runId}`)).steps.sort((a, b) => a.position - b.position).map((s) => s.name);
  await page.locator(`a[href$="/runs/${runId}"]`).first().click();
  await page.waitForURL(new RegExp(`/dashboard/runs/${runId}$`));
  await page.getByTestId("timeline").waitFor();
  const bars = await page.getByTestId("timeline-bar").evaluateAll((b) => b.map((x) => ({ step: x.getAttribute("data-step"), kind: x.getAttribute("data-kind"), text: x.textContent })));
  console.log(`   bars: ${bars.map((b) => `${b.step}:${b.kind}`).join(" ")}`);
  if (bars.length !== apiSteps.length || bars.length !== 11) throw new Error(`expected 11 bars (the API has ${apiSteps.length} steps), saw ${bars.length}`);
  if (bars.map((b) => b.step).join() !== apiSteps.join()) throw new Error(`bars ${bars.map((b) => b.step)} are not the steps ${apiSteps} in order`);
  const notOk = bars.filter((b) => b.kind !== "succeeded" || !/succeeded/.test(b.text ?? ""));
  if (notOk.length) throw new Error(`bars not shown succeeded: ${JSON.stringify(notOk)}`);
  const rects = await page.locator('[data-testid="timeline-bar"] rect').count();
  if (rects !== 11) throw new Error(`expected 11 drawn bars, saw ${rects}`);
  await checkA11y("run-detail");
  await shot("run-detail");

  say("audit log: the store's store.created entry, filters, Load more");
  await page.getByRole("link", { name: "Audit", exact: true }).click();
  await page.getByRole("heading", { name: "Audit log" }).waitFor();
  // The newest entries first: the page opens on whatever happened last (the failing store's
  // retries, the deletion); the store's store.created entry is found through the filters below.
  const newest = (await api("/api/v1/audit?limit=1")).items[0];
  await page.locator(`[data-testid="audit-row"][data-kind="${newest.kind}"]`).first().waitFor();
  await checkA11y("audit");
  await shot("audit");
  await page.getByLabel("Kind").fill("store.created");
  await page.getByLabel("Store id").fill(storeId);
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/kind=store.created/);
  await page.waitForFunction(
    (id) => {
      const r = [...document.querySelectorAll('[data-testid="audit-row"]')];
      return r.length === 1 && r[0].getAttribute("data-kind") === "store.created" && r[0].getAttribute("data-store-id") === id;
    },
    storeId,
  );
  const adminName = (await api("/api/v1/tokens/current")).name;
  await expectText(page.getByTestId("audit-row").first(), new RegExp(adminName.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), "the store.created entry's actor");
  await page.getByRole("button", { name: "Clear" }).click();
  await page.getByLabel("Page size").selectOption("25");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/limit=25/);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="audit-row"]').length === 25);
  await page.getByRole("button", { name: "Load more" }).click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="audit-row"]').length > 25);
  const auditIds = await page.getByTestId("audit-row").count();
  const total = (await api("/api/v1/audit?limit=200")).items.length;
  console.log(`   audit rows after Load more: ${auditIds} (the API has ${total} in its first 200)`);
  if (auditIds !== Math.min(50, total)) throw new Error(`Load more showed ${auditIds} rows, expected ${Math.min(50, total)}`);

  say("tokens: mint a viewer token (secret shown once), revoke it");
  await page.getByRole("link", { name: "Tokens", exact: true }).click();
  await page.getByRole("heading", { name: "Tokens" }).waitFor();
  await page.locator(`[data-testid="token-row"][data-name="${adminName}"][data-state="active"]`).waitFor();
  const tokenName = `e2e-viewer-${Date.now().toString(36)}`;
  await page.getByLabel("Name").fill(tokenName);
  await page.getByLabel("Role").selectOption("viewer");
  await page.getByLabel("Expires in (hours)").fill("24");
  await page.getByRole("button", { name: "Mint token" }).click();
  const secret = (await page.getByTestId("secret-value").innerText()).trim();
  await expectText(page.getByTestId("minted-secret"), /you will not see it again/, "the once-only warning");
  const who = await api("/api/v1/tokens/current", secret);
  if (who.name !== tokenName || who.role !== "viewer") throw new Error(`the shown secret is ${JSON.stringify(who)} to the API`);
  await page.locator(`[data-testid="token-row"][data-name="${tokenName}"][data-state="active"]`).waitFor();
  await checkA11y("tokens");
  await shot("tokens-minted");
  if ((await page.content()).split(secret).length !== 2) throw new Error("the secret is shown more than once on the page");
  await page.getByRole("link", { name: "Audit", exact: true }).click();
  await page.getByRole("heading", { name: "Audit log" }).waitFor();
  await page.getByRole("link", { name: "Tokens", exact: true }).click();
  await page.locator(`[data-testid="token-row"][data-name="${tokenName}"]`).waitFor();
  if ((await page.getByTestId("minted-secret").count()) !== 0 || (await page.content()).includes(secret)) {
    throw new Error("the secret is still shown after navigating away and back");
  }

  say("as the viewer: Audit in the nav, Tokens not; the tokens page says admin is needed");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API token").fill(secret);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expectText(page.getByTestId("whoami"), new RegExp(`${tokenName} · role: viewer`), "the viewer's role shown");
  const nav = page.getByRole("navigation", { name: "Main" });
  if ((await nav.getByRole("link", { name: "Tokens", exact: true }).count()) !== 0) throw new Error("a viewer sees the Tokens link");
  if ((await nav.getByRole("link", { name: "Fleet", exact: true }).count()) !== 1) throw new Error("a viewer has no Fleet link");
  if ((await nav.getByRole("link", { name: "Operations", exact: true }).count()) !== 1) throw new Error("a viewer has no Operations link");
  await nav.getByRole("link", { name: "Audit", exact: true }).click();
  // The viewer reads the audit log: its newest entry, as the API answers the viewer.
  const newestForViewer = (await api("/api/v1/audit?limit=1", secret)).items[0];
  await page.locator(`[data-testid="audit-row"][data-kind="${newestForViewer.kind}"]`).first().waitFor();
  // Operations need an operator: the bulk button is disabled with the reason, the ended
  // operation's page shows no control.
  await nav.getByRole("link", { name: "Runs", exact: true }).click();
  await page.getByRole("heading", { name: "Failed runs" }).waitFor();
  await page.locator("button:disabled", { hasText: "Select everything matching this filter" }).waitFor();
  await page.getByText("Needs the operator role; this token has viewer.").first().waitFor();
  await nav.getByRole("link", { name: "Operations", exact: true }).click();
  await page.locator(`a[href$="/operations/${operationId}"]`).click();
  await page.locator('[data-testid="operation-state"][data-status="succeeded"]').waitFor();
  if ((await page.getByRole("button", { name: /^(Pause|Resume|Approve|Cancel operation)$/ }).count()) !== 0) throw new Error("a viewer is shown operation controls");
  await page.goto(`${url}/dashboard/tokens`);
  await page.getByRole("heading", { name: "Tokens" }).waitFor();
  await page.getByText("Needs the admin role; this token has viewer.").waitFor();
  if ((await page.getByTestId("tokens").count()) !== 0) throw new Error("a viewer is shown the token list");
  await checkA11y("tokens-as-viewer");
  await shot("tokens-as-viewer");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expectText(page.getByTestId("whoami"), /role: admin/, "the role shown");
  await page.getByRole("link", { name: "Tokens", exact: true }).click();
  await page.locator(`[data-testid="token-row"][data-name="${tokenName}"][data-state="active"]`).waitFor();

  say("revoke it (confirm first)");
  await page.getByRole("button", { name: `Revoke ${tokenName}` }).click();
  const revokeDialog = page.getByRole("dialog", { name: `Revoke ${tokenName}?` });
  await revokeDialog.waitFor();
  await checkA11y("tokens-revoke-dialog");
  await revokeDialog.getByRole("button", { name: "Revoke" }).click();
  await page.locator(`[data-testid="token-row"][data-name="${tokenName}"][data-state="revoked"]`).waitFor();
  await expectText(page.locator(`[data-testid="token-row"][data-name="${tokenName}"] [data-testid="token-state"]`), new RegExp(`revoked by ${adminName}`), "the revoked token's state");
  const refused = await fetch(`${url}/api/v1/tokens/current`, { headers: { Authorization: `Bearer ${secret}` } });
  if (refused.status !== 401) throw new Error(`the revoked token still gets ${refused.status}`);
  await shot("tokens-revoked");

  const unexpected = consoleErrors.filter((e) => !/401|Unauthorized/.test(e));
  if (unexpected.length) throw new Error(`console errors: ${unexpected.join(" | ")}`);
  console.log(`   axe ran on: ${axePages.join(", ")}`);
  if (axeFindings.length) {
    printAxe();
    throw new Error(`${axeFindings.length} serious or critical accessibility violations (above)`);
  }
  say("passed");
} catch (e) {
  failed = true;
  console.error(`dashboard e2e: FAILED: ${e instanceof Error ? e.message : e}`);
  if (consoleErrors.length) console.error(`   console: ${consoleErrors.join(" | ")}`);
  if (axeFindings.length) printAxe();
  await page.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
  console.error(`   screenshot: ${join(shots, "failure.png")}`);
} finally {
  await browser.close();
  for (const p of saved) console.log(`   screenshot: ${p}`);
}
process.exit(failed ? 1 : 0);
