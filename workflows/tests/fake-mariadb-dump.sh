#!/bin/sh
# A fake `mariadb-dump` over a directory database: $FAKE_DB_STATE holds one file per table,
# one row per line. It prints a deterministic SQL dump (tables in name order) in the dialect
# fake-mariadb.sh reads back, and appends "mariadb-dump <db>" to $FAKE_DB_LOG.
# It insists on what store-backup.sh promises: --single-transaction, no password in the
# arguments, and (when $FAKE_DB_PASSWORD is set) that password in MYSQL_PWD.
set -eu
state="${FAKE_DB_STATE:?}"
consistent=no
db=""
for a in "$@"; do
  case "$a" in
    --single-transaction) consistent=yes ;;
    -p* | --password*) echo "fake mariadb-dump: password on the command line: $a" >&2; exit 2 ;;
    -*) ;;
    *) db="$a" ;;
  esac
done
[ "$consistent" = yes ] || { echo "fake mariadb-dump: --single-transaction missing" >&2; exit 2; }
[ -n "$db" ] || { echo "fake mariadb-dump: no database named" >&2; exit 2; }
if [ -n "${FAKE_DB_PASSWORD:-}" ] && [ "${MYSQL_PWD:-}" != "$FAKE_DB_PASSWORD" ]; then
  echo "fake mariadb-dump: Access denied for user" >&2
  exit 1
fi
echo "mariadb-dump $db" >>"${FAKE_DB_LOG:-/dev/null}"
echo "-- fake dump of $db"
for f in "$state"/*; do
  [ -f "$f" ] || continue
  t=$(basename "$f")
  echo "DROP TABLE IF EXISTS \`$t\`;"
  echo "CREATE TABLE \`$t\` (row text);"
  while IFS= read -r row; do
    echo "INSERT INTO \`$t\` VALUES ($row);"
  done <"$f"
done
