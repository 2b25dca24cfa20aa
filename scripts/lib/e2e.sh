#!/usr/bin/env bash
# Shared by scripts/e2e.sh and scripts/e2e-dashboard.sh (sourced, after `label` and `bin` are
# set): a fresh database on $DATABASE_URL's server and a state dir of the test's own (the
# developer's .dev and database are left alone), the local platform (scripts/platform.sh) in
# its own process group, and the teardown that leaves no process, database or file behind.
# Defines say, die, alive, e2e_prepare, e2e_start_platform, e2e_teardown; sets t0, db, base,
# query, admin_url, tmp, pf, port, url.
# shellcheck disable=SC2154 # `label` and `bin` come from the sourcing script

t0=$(date +%s)
say() { printf '== %s: %s  [%ds]\n' "$label" "$*" "$(($(date +%s) - t0))"; }
die() {
  echo "$label: FAILED: $*" >&2
  exit 1
}
alive() {
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $stat != Z* ]]
}

# e2e_prepare NAME: the names of database NAME_<pid> and a temp dir /tmp/NAME.XXXXXX, and
# the traps that tear everything down on exit.
e2e_prepare() {
  [ -n "${DATABASE_URL:-}" ] || die "DATABASE_URL is not set; run it as scripts/with-postgres.sh $0"
  db="${1//-/_}_$$"
  base=${DATABASE_URL%%\?*}
  query=${DATABASE_URL#"$base"}
  admin_url="${base%/*}/postgres$query"
  tmp=$(mktemp -d "/tmp/$1.XXXXXX")
  pf=""
  trap e2e_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# The EXIT trap: the script's `on_exit CODE`, if it defines one, then e2e_teardown.
# shellcheck disable=SC2317 # invoked by the trap
e2e_cleanup() {
  local code=$?
  trap - EXIT INT TERM
  set +e
  if declare -F on_exit >/dev/null; then on_exit "$code"; fi
  e2e_teardown "$code"
}

# e2e_start_platform [VAR=VALUE ...]: creates the database, starts platform.sh with the
# given extra environment on a free port, and waits for its admin token.
e2e_start_platform() {
  psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  url="http://127.0.0.1:$port"
  say "start the platform (simulator, API on $url, two workers; database $db)"
  # Its own process group (set -m), so that whatever it leaves behind can be found and killed.
  set -m
  env -u URUMI__CLUSTER__KUBECONFIG -u SIM_FAULTS -u SIM_TIMINGS -u SIM_TLS -u URUMI_DEV_EXIT \
    DATABASE_URL="${base%/*}/$db$query" URUMI__API__LISTEN="127.0.0.1:$port" \
    NO_COLOR=1 URUMI_DEV_DEMO=0 URUMI_DEV_DIR="$tmp" SIM_SNAPSHOT="$tmp/sim-snapshot.json" URUMI_BIN="$bin" \
    "$@" scripts/platform.sh </dev/null >"$tmp/platform.log" 2>&1 &
  pf=$!
  set +m
  for _ in $(seq 1 600); do
    [ -s "$tmp/admin-token" ] && break
    alive "$pf" || die "platform.sh exited before the API was ready"
    sleep 0.1
  done
  [ -s "$tmp/admin-token" ] || die "no admin token after 60 s"
}

# e2e_teardown CODE: stops the platform (TERM; after 20 s, or if anything is left in its
# process group, KILL and a failure), shows the logs on failure, drops the database, removes
# the state dir, prints the verdict and exits with the (possibly raised) code.
e2e_teardown() {
  local code=$1 left
  if [ -n "$pf" ]; then
    # platform.sh stops the simulator, the API and the workers on TERM and waits for them.
    kill -TERM "$pf" 2>/dev/null
    for _ in $(seq 1 200); do alive "$pf" || break; sleep 0.1; done
    if alive "$pf"; then
      echo "$label: platform.sh did not stop within 20 s; killing its process group" >&2
      kill -KILL -- "-$pf" 2>/dev/null
      [ "$code" = 0 ] && code=1
    fi
    wait "$pf" 2>/dev/null
    left=$(pgrep -g "$pf" -a 2>/dev/null)
    if [ -n "$left" ]; then
      echo "$label: processes left behind by platform.sh (killed now):" >&2
      echo "$left" >&2
      kill -KILL -- "-$pf" 2>/dev/null
      [ "$code" = 0 ] && code=1
    fi
  fi
  if [ "$code" != 0 ]; then
    for log in platform api worker-1 worker-2; do
      if [ -s "$tmp/$log.log" ]; then
        echo "== $label: $log.log (last 40 lines)" >&2
        tail -n 40 "$tmp/$log.log" >&2
      fi
    done
  fi
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 ||
    echo "$label: could not drop database $db" >&2
  rm -rf "$tmp"
  if [ "$code" = 0 ]; then
    echo "$label: passed ($(($(date +%s) - t0))s)"
  else
    echo "$label: FAILED (exit $code, $(($(date +%s) - t0))s)" >&2
  fi
  exit "$code"
}
