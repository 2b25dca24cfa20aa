#!/usr/bin/env bash
# `make test`: formatting, lints, and the whole test suite against a real Postgres.
set -euo pipefail
cd "$(dirname "$0")/.."

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test (Postgres via scripts/with-postgres.sh)"
scripts/with-postgres.sh cargo test --workspace --no-fail-fast
