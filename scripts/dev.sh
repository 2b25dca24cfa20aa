#!/usr/bin/env bash
# `make dev`: the local platform on embedded defaults — a Postgres (DATABASE_URL, or a
# throwaway one from the machine's Postgres binaries), the migrations, the Kubernetes API
# simulator as the cluster (unless URUMI__CLUSTER__KUBECONFIG names a real one), the API,
# two workers, the dashboard; prints the URLs and an admin token and provisions a demo store
# live. The dashboard (frontend/) is built with npm when needed; without npm, or if its build
# fails, the platform starts without it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p urumi-worker -p urumi-sim -p urumi-api -p urumi-cli --bins
if ! scripts/build-dashboard.sh; then
  echo "warning: the dashboard was not built; starting without it (the API and urumictl work)" >&2
  export URUMI__API__DASHBOARD_DIR=""
fi
exec scripts/with-postgres.sh scripts/platform.sh
