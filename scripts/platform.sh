#!/usr/bin/env bash
# Starts the local platform against $DATABASE_URL: migrations, the Kubernetes API simulator
# as the cluster (unless URUMI__CLUSTER__KUBECONFIG names a real one), the API, two workers;
# prints the API's URL and an admin token, then creates a demo store with the CLI and follows
# it on the event stream until it is ready. Everything stops on exit (Ctrl-C).
#
# URUMI_DEV_DEMO=0 skips the demo store; URUMI_DEV_EXIT=1 exits once the demo store is ready;
# URUMI__API__LISTEN moves the API (default 127.0.0.1:8080); URUMI_DEV_DIR holds the state
# (default .dev): the kubeconfig, the simulator's snapshot, the logs, and `admin-token`, the
# minted admin token (written once the API answers; scripts/e2e.sh waits for it).
# The API serves the built dashboard (frontend/dist, see scripts/build-dashboard.sh) at
# /dashboard/ when it exists, unless URUMI__API__DASHBOARD_DIR is set (empty: no dashboard).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${URUMI_BIN:-target/debug}
export URUMI__DATABASE__URL="$DATABASE_URL"
export URUMI__API__LISTEN="${URUMI__API__LISTEN:-127.0.0.1:8080}"
dir=${URUMI_DEV_DIR:-.dev}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -f "$dir/admin-token"
if [ -z "${URUMI__API__DASHBOARD_DIR+set}" ] && [ -f frontend/dist/index.html ]; then
  export URUMI__API__DASHBOARD_DIR="$PWD/frontend/dist"
fi
"$bin/urumi-worker" migrate
pids=()
# shellcheck disable=SC2317 # invoked by the trap below
stop() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait || true
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${URUMI__CLUSTER__KUBECONFIG:-}" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export SIM_ADDR="127.0.0.1:$port" SIM_KUBECONFIG="$dir/kubeconfig"
  export SIM_SNAPSHOT="${SIM_SNAPSHOT:-$dir/sim-snapshot.json}"
  rm -f "$SIM_KUBECONFIG"
  "$bin/urumi-sim" &
  pids+=($!)
  for _ in $(seq 1 100); do [ -s "$SIM_KUBECONFIG" ] && break; sleep 0.1; done
  export URUMI__CLUSTER__KUBECONFIG="$SIM_KUBECONFIG"
fi
"$bin/urumi-api" > "$dir/api.log" 2>&1 &
pids+=($!)
for n in 1 2; do
  URUMI__WORKER__NAME="worker-$n" "$bin/urumi-worker" run > "$dir/worker-$n.log" 2>&1 &
  pids+=($!)
done
url="http://$URUMI__API__LISTEN"
dashboard="not built (scripts/build-dashboard.sh, or: cd frontend && npm ci && npm run build)"
[ -n "${URUMI__API__DASHBOARD_DIR:-}" ] && dashboard="$url/dashboard/   (sign in with the admin token below)"
for _ in $(seq 1 100); do curl -fsS "$url/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$url/readyz" >/dev/null || { echo "the API did not become ready; see $dir/api.log" >&2; exit 1; }
token=$("$bin/urumi-api" token create --name "dev-admin-$(date +%s)" --role admin 2>/dev/null)
(umask 077 && printf '%s\n' "$token" > "$dir/admin-token.tmp") && mv "$dir/admin-token.tmp" "$dir/admin-token"
export URUMI_URL="$url" URUMI_TOKEN="$token"

cat <<MSG

Urumi is running
  dashboard  $dashboard
  API        $url        (docs: $url/docs, spec: $url/openapi.json)
  admin token $token
  database   $DATABASE_URL
  cluster    $URUMI__CLUSTER__KUBECONFIG
  logs       $dir/api.log $dir/worker-1.log $dir/worker-2.log

Try:  export URUMI_URL=$url URUMI_TOKEN=$token
      $bin/urumictl stores create "My Shop"
      $bin/urumictl events --until store.ready         # live steps
      $bin/urumictl stores list
      $bin/urumictl runs list --status failed
      curl -H "Authorization: Bearer \$URUMI_TOKEN" $url/api/v1/stores
MSG

if [ "${URUMI_DEV_DEMO:-1}" != 0 ]; then
  created=$("$bin/urumictl" --json stores create "Demo Shop $(date +%H%M%S)")
  store=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["store"]["id"])')
  echo
  echo "Demo store $store — its provisioning, live from the event stream:"
  "$bin/urumictl" events --store "$store" --last-event-id 0-0 --until store.ready --fail-on store.failed --timeout 300
  "$bin/urumictl" stores show "$store"
  [ "${URUMI_DEV_EXIT:-0}" = 1 ] && exit 0
fi
echo
echo "Ctrl-C stops everything (workers finish their current step first)."
wait
