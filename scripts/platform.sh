#!/usr/bin/env bash
# Starts the local platform against $DATABASE_URL: the Kubernetes API simulator as the
# cluster (unless URUMI__CLUSTER__KUBECONFIG names a real one), two workers, and a demo
# store whose provisioning steps you watch live. Everything stops on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
worker=target/debug/urumi-worker
export URUMI__DATABASE__URL="$DATABASE_URL"
mkdir -p .dev
"$worker" migrate
pids=()
stop() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait || true; }
trap stop EXIT INT TERM

if [ -z "${URUMI__CLUSTER__KUBECONFIG:-}" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export SIM_ADDR="127.0.0.1:$port" SIM_KUBECONFIG="$PWD/.dev/kubeconfig" SIM_SNAPSHOT="$PWD/.dev/sim-snapshot.json"
  target/debug/urumi-sim &
  pids+=($!)
  for _ in $(seq 1 100); do [ -s "$SIM_KUBECONFIG" ] && break; sleep 0.1; done
  export URUMI__CLUSTER__KUBECONFIG="$SIM_KUBECONFIG"
fi
for n in 1 2; do
  URUMI__WORKER__NAME="worker-$n" "$worker" run &
  pids+=($!)
done
line=$("$worker" store create "Demo Shop $(date +%H%M%S)")
echo "$line"
run=$(echo "$line" | sed -n 's/.*run \([0-9a-f-]*\)$/\1/p')
cat <<MSG

Urumi is running: 2 workers on $DATABASE_URL, cluster $URUMI__CLUSTER__KUBECONFIG
Provisioning run $run — its steps, live:
MSG
"$worker" watch "$run"
cat <<MSG

Try:  export URUMI__DATABASE__URL=$DATABASE_URL
      $worker store create "My Shop"          # then: $worker watch <run-id>
      $worker store show <store-id>
      $worker store delete <store-id>
      KUBECONFIG=$URUMI__CLUSTER__KUBECONFIG kubectl get all -A   # kubectl, if installed
Ctrl-C stops everything (workers finish their current step first).
MSG
wait
