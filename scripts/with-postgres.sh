#!/usr/bin/env bash
# Runs the given command with DATABASE_URL pointing at a Postgres that answers.
#
# If DATABASE_URL is set and answers, it is used as is. Otherwise a throwaway Postgres is
# started from the machine's Postgres binaries (initdb + pg_ctl in a temp dir, on a free
# port, trust auth, as the `postgres` user when run as root) and stopped and removed when
# the command exits. The command's exit code is returned.
set -euo pipefail

if [ -n "${DATABASE_URL:-}" ] && psql "$DATABASE_URL" -Atqc 'select 1' >/dev/null 2>&1; then
  exec "$@"
fi

bindir=""
if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
  bindir=$(pg_config --bindir)
else
  bindir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "with-postgres: DATABASE_URL does not answer and no Postgres binaries (initdb) were found." >&2
  echo "Install PostgreSQL (e.g. apt-get install postgresql) or set DATABASE_URL." >&2
  exit 1
fi

dir=$(mktemp -d /tmp/urumi-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$dir"
  as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
"${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o \
  "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
# shellcheck disable=SC2317 # invoked by the trap below
cleanup() {
  "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
echo "with-postgres: started a throwaway Postgres at $DATABASE_URL" >&2
set +e
"$@"
code=$?
set -e
exit $code
