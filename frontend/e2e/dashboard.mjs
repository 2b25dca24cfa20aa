// End-to-end test of the dashboard in a real browser against the real platform (started by
// scripts/e2e-dashboard.sh): sign in (a bad token first: the 401 message), create a store with
// a double click (one store), watch it become `ready` with every step `succeeded` on the live
// page (no reload), see it in the list, delete it and watch it become `deleted`.
//
// Env: URUMI_URL (the API, which serves the dashboard at /dashboard/), URUMI_TOKEN (admin),
// CHROMIUM (the browser binary), E2E_TIMEOUT (seconds per wait, default 120), E2E_SHOTS (a
// directory for screenshots; the last page is saved there on failure).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const url = process.env.URUMI_URL;
const token = process.env.URUMI_TOKEN;
const executablePath = process.env.CHROMIUM;
const timeout = Number(process.env.E2E_TIMEOUT ?? 120) * 1000;
const shots = process.env.E2E_SHOTS;
if (!url || !token || !executablePath) {
  console.error("dashboard e2e: URUMI_URL, URUMI_TOKEN and CHROMIUM must be set");
  process.exit(2);
}
const t0 = Date.now();
const say = (m) => console.log(`== dashboard e2e: ${m}  [${Math.round((Date.now() - t0) / 1000)}s]`);

async function api(path) {
  const r = await fetch(url + path, { headers: { Authorization: `Bearer ${token}` } });
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

async function expectText(locator, pattern, what) {
  await locator.waitFor();
  const text = await locator.innerText();
  if (!pattern.test(text)) throw new Error(`${what}: ${JSON.stringify(text)} does not match ${pattern}`);
}

let failed = false;
try {
  say(`open ${url}/dashboard/`);
  await page.goto(`${url}/dashboard/`);
  await page.getByRole("heading", { name: "Sign in to Urumi" }).waitFor();
  if (!page.url().endsWith("/dashboard/sign-in")) throw new Error(`not sent to sign-in: ${page.url()}`);

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

  say("create a store (double click on submit)");
  const name = `Browser Shop ${Date.now().toString(36)}`;
  await page.getByRole("link", { name: "Create store" }).first().click();
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

  if (shots) await page.screenshot({ path: join(shots, "store-ready.png"), fullPage: true });

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
  const unexpected = consoleErrors.filter((e) => !/401|Unauthorized/.test(e));
  if (unexpected.length) throw new Error(`console errors: ${unexpected.join(" | ")}`);
  say("passed");
} catch (e) {
  failed = true;
  console.error(`dashboard e2e: FAILED: ${e instanceof Error ? e.message : e}`);
  if (consoleErrors.length) console.error(`   console: ${consoleErrors.join(" | ")}`);
  if (shots) {
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
    console.error(`   screenshot: ${join(shots, "failure.png")}`);
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
