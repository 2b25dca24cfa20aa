#!/usr/bin/env bash
# End-to-end test of the dashboard in a real browser: starts the local platform
# (scripts/platform.sh: the Kubernetes API simulator, the API serving frontend/dist at
# /dashboard/, two workers) in a fresh database and a temp state dir, then runs
# frontend/e2e/dashboard.mjs in headless Chromium (playwright-core): sign in, create a store,
# see it `ready` with every step succeeded without reloading, delete it.
# Installs what it needs when missing: Debian's `chromium` (apt-get) and the frontend's npm
# packages (playwright-core is one), and builds the dashboard when it is stale
# (scripts/build-dashboard.sh). Needs the binaries (`cargo build --workspace --bins`), psql,
# curl, python3 and a Postgres in $DATABASE_URL: run it as
# `scripts/with-postgres.sh scripts/e2e-dashboard.sh`. E2E_TIMEOUT (seconds, default 120)
# bounds each wait; E2E_SHOTS names a directory to keep screenshots in.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${URUMI_BIN:-target/debug}
t0=$(date +%s)
say() { printf '== dashboard e2e: %s  [%ds]\n' "$*" "$(($(date +%s) - t0))"; }
die() {
  echo "dashboard e2e: FAILED: $*" >&2
  exit 1
}

for b in urumi-sim urumi-api urumi-worker; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing; build it first: cargo build --workspace --bins"
done
for tool in psql curl python3 node npm; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
[ -n "${DATABASE_URL:-}" ] || die "DATABASE_URL is not set; run it as scripts/with-postgres.sh scripts/e2e-dashboard.sh"

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

db="urumi_e2e_dash_$$"
base=${DATABASE_URL%%\?*}
query=${DATABASE_URL#"$base"}
admin_url="${base%/*}/postgres$query"
tmp=$(mktemp -d /tmp/urumi-e2e-dashboard.XXXXXX)
pf=""

alive() {
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $stat != Z* ]]
}

# shellcheck disable=SC2317 # invoked by the trap below
cleanup() {
  local code=$? left
  trap - EXIT INT TERM
  set +e
  if [ -n "$pf" ]; then
    kill -TERM "$pf" 2>/dev/null
    for _ in $(seq 1 200); do alive "$pf" || break; sleep 0.1; done
    if alive "$pf"; then
      echo "dashboard e2e: platform.sh did not stop within 20 s; killing its process group" >&2
      kill -KILL -- "-$pf" 2>/dev/null
      [ "$code" = 0 ] && code=1
    fi
    wait "$pf" 2>/dev/null
    left=$(pgrep -g "$pf" -a 2>/dev/null)
    if [ -n "$left" ]; then
      echo "dashboard e2e: processes left behind by platform.sh (killed now):" >&2
      echo "$left" >&2
      kill -KILL -- "-$pf" 2>/dev/null
      [ "$code" = 0 ] && code=1
    fi
  fi
  if [ "$code" != 0 ]; then
    for log in platform api worker-1 worker-2; do
      if [ -s "$tmp/$log.log" ]; then
        echo "== dashboard e2e: $log.log (last 30 lines)" >&2
        tail -n 30 "$tmp/$log.log" >&2
      fi
    done
  fi
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 ||
    echo "dashboard e2e: could not drop database $db" >&2
  rm -rf "$tmp"
  if [ "$code" = 0 ]; then
    echo "dashboard e2e: passed ($(($(date +%s) - t0))s)"
  else
    echo "dashboard e2e: FAILED (exit $code, $(($(date +%s) - t0))s)" >&2
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"

# Pods, Jobs and namespace finalization take a moment (as in a cluster, if far quicker), so the
# page has something to show live between the request and `ready`.
echo '{"podReadyMs": 1500, "jobRunMs": 1500, "namespaceFinalizeMs": 1000}' >"$tmp/sim-timings.json"

say "start the platform (simulator, API and dashboard on $url, two workers; database $db)"
set -m
env -u URUMI__CLUSTER__KUBECONFIG -u SIM_FAULTS -u SIM_TLS -u URUMI_DEV_EXIT SIM_TIMINGS="$tmp/sim-timings.json" \
  DATABASE_URL="${base%/*}/$db$query" URUMI__API__LISTEN="127.0.0.1:$port" \
  URUMI__API__DASHBOARD_DIR="$PWD/frontend/dist" \
  NO_COLOR=1 URUMI_DEV_DEMO=0 URUMI_DEV_DIR="$tmp" SIM_SNAPSHOT="$tmp/sim-snapshot.json" URUMI_BIN="$bin" \
  scripts/platform.sh </dev/null >"$tmp/platform.log" 2>&1 &
pf=$!
set +m
for _ in $(seq 1 600); do
  [ -s "$tmp/admin-token" ] && break
  alive "$pf" || die "platform.sh exited before the API was ready"
  sleep 0.1
done
[ -s "$tmp/admin-token" ] || die "no admin token after 60 s"
curl -fsS "$url/dashboard/" | grep -q '<div id="root">' || die "the API does not serve the dashboard at $url/dashboard/"

say "run the browser ($chromium)"
URUMI_URL="$url" URUMI_TOKEN="$(cat "$tmp/admin-token")" CHROMIUM="$chromium" \
  E2E_TIMEOUT="${E2E_TIMEOUT:-120}" E2E_SHOTS="${E2E_SHOTS:-}" \
  node frontend/e2e/dashboard.mjs
say "stop the platform"
