#!/usr/bin/env bash
# `make dev`: the local platform on embedded defaults — a Postgres (DATABASE_URL, or a
# throwaway one), the migrations, the Kubernetes API simulator as the cluster (unless
# URUMI__CLUSTER__KUBECONFIG names a real one), two workers, and a demo store provisioned
# step by step before your eyes. (The HTTP API's store endpoints are issue 5.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p urumi-worker -p urumi-sim --bins
exec scripts/with-postgres.sh scripts/platform.sh
