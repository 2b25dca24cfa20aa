#!/usr/bin/env bash
# Starts two workers against $DATABASE_URL and a demo run; stops the workers on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
worker=target/debug/urumi-worker
export URUMI__DATABASE__URL="$DATABASE_URL"
"$worker" migrate
pids=()
stop() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait || true; }
trap stop EXIT INT TERM
for n in 1 2; do
  URUMI__WORKER__NAME="worker-$n" "$worker" run &
  pids+=($!)
done
run=$("$worker" start demo "demo-$(date +%s)" '{"name": "world", "work_ms": 1500}')
cat <<MSG

Urumi is running: 2 workers on $DATABASE_URL
Demo run $run — its steps, live:
MSG
"$worker" watch "$run"
cat <<MSG

Try:  URUMI__DATABASE__URL=$DATABASE_URL $worker start demo my-subject '{"name":"you","work_ms":3000}'
      URUMI__DATABASE__URL=$DATABASE_URL $worker show <run-id>
Ctrl-C stops the workers (gracefully: each finishes its current step).
MSG
wait
