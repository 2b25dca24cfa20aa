#!/usr/bin/env bash
# `make dev`: the local platform on embedded defaults — a Postgres (DATABASE_URL, or a
# throwaway one from the machine's Postgres binaries), the migrations, the Kubernetes API
# simulator as the cluster (unless URUMI__CLUSTER__KUBECONFIG names a real one), the API,
# two workers; prints the URL and an admin token and provisions a demo store live.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p urumi-worker -p urumi-sim -p urumi-api -p urumi-cli --bins
exec scripts/with-postgres.sh scripts/platform.sh
