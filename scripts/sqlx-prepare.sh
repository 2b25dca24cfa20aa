#!/usr/bin/env bash
# Regenerates `.sqlx/`, the offline cache the query macros compile against, from a freshly
# created and migrated database on the Postgres that DATABASE_URL names (dropped afterwards).
# With --check it changes nothing and fails if `.sqlx/` is stale: a query missing or
# different, or a cached query no code uses any more. Without a Postgres at hand:
#   scripts/with-postgres.sh scripts/sqlx-prepare.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/.."
check=()
case "${1:-}" in
  --check) check=(--check) ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2 && exit 2 ;;
esac
if [ -z "${DATABASE_URL:-}" ]; then
  echo "sqlx-prepare: DATABASE_URL is not set (run it through scripts/with-postgres.sh)" >&2
  exit 1
fi
scripts/install-sqlx-cli.sh
export PATH="$PWD/.tools/bin:$PATH"
# A database of its own on the same server, so the schema is exactly migrations/sql.
url=$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
  "$DATABASE_URL" "urumi_sqlx_prepare_$$")
# shellcheck disable=SC2317 # invoked by the trap below
drop() { sqlx database drop -y --database-url "$url" >/dev/null 2>&1 || true; }
trap drop EXIT
sqlx database create --database-url "$url"
sqlx migrate run --source migrations/sql --database-url "$url" >/dev/null
out=$(mktemp)
set +e
# --all-targets: queries in tests and benchmarks are checked and cached too.
DATABASE_URL="$url" cargo sqlx prepare --workspace "${check[@]}" -- --all-targets 2>&1 | tee "$out"
code=${PIPESTATUS[0]}
set -e
# `prepare --check` only warns about cached queries nothing uses; a stale cache fails here.
if [ "$code" = 0 ] && [ ${#check[@]} -gt 0 ] && grep -q 'potentially unused queries' "$out"; then
  echo "sqlx-prepare: .sqlx/ holds queries no code uses; run scripts/sqlx-prepare.sh" >&2
  code=1
fi
rm -f "$out"
exit "$code"
