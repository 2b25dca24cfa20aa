#!/usr/bin/env bash
# End-to-end test of the dashboard in a real browser: starts the local platform
# (scripts/platform.sh: the Kubernetes API simulator, the API serving frontend/dist at
# /dashboard/, two workers) in a fresh database and a temp state dir, then runs
# frontend/e2e/dashboard.mjs in headless Chromium (playwright-core): sign in, create a store,
# see it `ready` with every step succeeded without reloading, the fleet overview's charts against
# the insights API, resource usage (one observation started with `urumi-worker start`: the store
# page's bars and the fleet's quota table against the API), move it to another plan with the
# store page's resize form (preview, then move: two plans in a urumi.toml), delete it; a bulk retry of the
# failed runs (preview, start, the operation's page until it succeeded) and a rerun from a step; then the run's timeline,
# the audit log and the tokens page (mint, secret once, revoke), with axe-core on every page.
# Installs what it needs when missing: Debian's `chromium` (apt-get) and the frontend's npm
# packages (playwright-core is one), and builds the dashboard when it is stale
# (scripts/build-dashboard.sh). Needs the binaries (`cargo build --workspace --bins`; in
# URUMI_BIN, default target/debug: set it to $CARGO_TARGET_DIR/debug for another target dir), psql,
# curl, python3 and a Postgres in $DATABASE_URL: run it as
# `scripts/with-postgres.sh scripts/e2e-dashboard.sh`. E2E_TIMEOUT (seconds, default 120)
# bounds each wait; E2E_SHOTS names the directory for the screenshots (default: a new temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${URUMI_BIN:-target/debug}
label="dashboard e2e"
# shellcheck source=scripts/lib/e2e.sh
. scripts/lib/e2e.sh
for b in urumi-sim urumi-api urumi-worker; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing; build it first: cargo build --workspace --bins"
done
for tool in psql curl python3 node npm; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

chromium=""
for c in /usr/lib/chromium/chromium "$(command -v chromium || true)"; do
  if [ -n "$c" ] && [ -x "$c" ]; then chromium=$c && break; fi
done
if [ -z "$chromium" ]; then
  say "install chromium (apt-get)"
  apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } ||
    die "could not install Debian's chromium"
  chromium=/usr/lib/chromium/chromium
  [ -x "$chromium" ] || chromium=$(command -v chromium) || die "chromium installed but not found"
fi
scripts/build-dashboard.sh >/dev/null || die "the dashboard did not build (scripts/build-dashboard.sh)"

e2e_prepare urumi-e2e-dashboard

# Two plans, read by the API and the workers through URUMI_CONFIG (as the Helm chart's
# urumi.toml is): the built-in `starter` (the same values), which the stores are created on,
# and a larger `pro` that the browser test moves the first store to through the store page's
# resize form (more pods and CPU, a larger uploads volume; the database volume's size stays).
cat >"$tmp/urumi.toml" <<'TOML'
[stores.plans.starter]
pods = "10"
requests_cpu = "1"
requests_memory = "1536Mi"
limits_cpu = "2"
limits_memory = "3Gi"
pvcs = "4"
requests_storage = "20Gi"
db_storage = "5Gi"
wp_storage = "5Gi"

[stores.plans.pro]
pods = "20"
requests_cpu = "2"
requests_memory = "1536Mi"
limits_cpu = "2"
limits_memory = "3Gi"
pvcs = "4"
requests_storage = "40Gi"
db_storage = "5Gi"
wp_storage = "10Gi"
TOML

# Pods, Jobs and namespace finalization take a moment (as in a cluster, if far quicker), so the
# page has something to show live between the request and `ready`.
echo '{"podReadyMs": 1500, "jobRunMs": 1500, "namespaceFinalizeMs": 1000}' >"$tmp/sim-timings.json"
# The workers' usage schedule is off: the browser test starts the one observation it checks
# (`urumi-worker start store.usage fleet:usage`), so no scheduled run changes the numbers or
# the run counts it compares. The hourly drift sweep is off for the same reason.
e2e_start_platform SIM_TIMINGS="$tmp/sim-timings.json" URUMI__API__DASHBOARD_DIR="$PWD/frontend/dist" \
  URUMI__USAGE__CRON="" URUMI__SWEEP__CRON="" URUMI_CONFIG="$tmp/urumi.toml"
curl -fsS "$url/dashboard/" | grep -q '<div id="root">' || die "the API does not serve the dashboard at $url/dashboard/"

sim=$(awk '$1 == "server:" { print $2 }' "$tmp/kubeconfig")
[ -n "$sim" ] || die "no simulator URL in $tmp/kubeconfig"

say "run the browser ($chromium)"
URUMI_URL="$url" URUMI_TOKEN="$(cat "$tmp/admin-token")" CHROMIUM="$chromium" SIM_URL="$sim" \
  E2E_TIMEOUT="${E2E_TIMEOUT:-120}" E2E_SHOTS="${E2E_SHOTS:-}" \
  URUMI_WORKER="$bin/urumi-worker" E2E_DATABASE_URL="${base%/*}/$db$query" URUMI_CONFIG="$tmp/urumi.toml" \
  node frontend/e2e/dashboard.mjs
say "stop the platform"
