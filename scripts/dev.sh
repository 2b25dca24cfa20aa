#!/usr/bin/env bash
# `make dev`: the local platform on embedded defaults. Today (the API and the cluster
# simulator are separate issues) that is: a Postgres (DATABASE_URL, or a throwaway one),
# the migrations, two worker processes, and a demo run you can watch step by step.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p urumi-worker
exec scripts/with-postgres.sh scripts/platform.sh
