#!/bin/sh
# A fake `mariadb` over the directory database of fake-mariadb-dump.sh ($FAKE_DB_STATE: one
# file per table, one row per line). It runs `-e 'SHOW TABLES'`, or reads SQL on stdin in the
# dump's dialect (DROP TABLE IF EXISTS, CREATE TABLE, INSERT INTO … VALUES (…), SET, comments)
# and changes the directory accordingly; anything else is an error. Each run appends
# "mariadb <db> <what>" to $FAKE_DB_LOG. With $FAKE_DB_PASSWORD set, MYSQL_PWD must match.
set -eu
state="${FAKE_DB_STATE:?}"
mkdir -p "$state"
db=""
stmt=""
expect_e=no
for a in "$@"; do
  if [ "$expect_e" = yes ]; then
    stmt="$a"
    expect_e=no
    continue
  fi
  case "$a" in
    -e) expect_e=yes ;;
    --execute=*) stmt="${a#--execute=}" ;;
    -p* | --password*) echo "fake mariadb: password on the command line: $a" >&2; exit 2 ;;
    -*) ;;
    *) db="$a" ;;
  esac
done
[ -n "$db" ] || { echo "fake mariadb: no database named" >&2; exit 2; }
if [ -n "${FAKE_DB_PASSWORD:-}" ] && [ "${MYSQL_PWD:-}" != "$FAKE_DB_PASSWORD" ]; then
  echo "fake mariadb: Access denied for user" >&2
  exit 1
fi
if [ -n "$stmt" ]; then
  echo "mariadb $db $stmt" >>"${FAKE_DB_LOG:-/dev/null}"
  case "$stmt" in
    "SHOW TABLES")
      for f in "$state"/*; do
        if [ -f "$f" ]; then basename "$f"; fi
      done
      ;;
    *) echo "fake mariadb: unsupported statement: $stmt" >&2; exit 2 ;;
  esac
  exit 0
fi
echo "mariadb $db <stdin" >>"${FAKE_DB_LOG:-/dev/null}"
table() {
  t="${1#*\`}"
  t="${t%%\`*}"
  case "$t" in
    '' | */* | .*) echo "fake mariadb: bad table name in: $1" >&2; exit 2 ;;
  esac
  echo "$t"
}
while IFS= read -r line; do
  case "$line" in
    '' | --* | '/*'* | SET\ *) ;;
    "DROP TABLE IF EXISTS \`"*) rm -f "$state/$(table "$line")" ;;
    "CREATE TABLE \`"*)
      t=$(table "$line")
      if [ -e "$state/$t" ]; then echo "fake mariadb: table $t already exists" >&2; exit 1; fi
      : >"$state/$t"
      ;;
    "INSERT INTO \`"*" VALUES ("*");")
      t=$(table "$line")
      [ -e "$state/$t" ] || { echo "fake mariadb: table $t doesn't exist" >&2; exit 1; }
      row="${line#*VALUES (}"
      printf '%s\n' "${row%);}" >>"$state/$t"
      ;;
    *) echo "fake mariadb: unsupported SQL: $line" >&2; exit 2 ;;
  esac
done
