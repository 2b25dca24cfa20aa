#!/usr/bin/env bash
# End-to-end test of the real binaries: starts the local platform (scripts/platform.sh: the
# Kubernetes API simulator, the API, two workers) in a fresh database and a temp state dir,
# then, with the operator CLI only:
#   1. creates a store and follows its event stream until `store.ready`;
#   2. scripts the simulator so the setup Jobs of a second store fail, creates that store and
#      waits for `store.failed`; the failed run is listed and shows the `setup` step failed
#      with the Job's log tail;
#   3. retries the run (the script covers only the run's first four Jobs, so the retry's
#      fifth Job succeeds) and waits for `store.ready`; the steps before `setup` did not run
#      again;
#   4. deletes both stores and waits for `store.deleted`.
# Everything is stopped and removed on exit (no processes left behind, the database
# dropped). Needs the binaries (`cargo build --workspace --bins`), psql, curl, python3 and a
# Postgres in $DATABASE_URL: run it as `scripts/with-postgres.sh scripts/e2e.sh`.
# E2E_TIMEOUT (seconds, default 120) bounds each wait for an event.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${URUMI_BIN:-target/debug}
timeout=${E2E_TIMEOUT:-120}
label=e2e
# shellcheck source=scripts/lib/e2e.sh
. scripts/lib/e2e.sh
for b in urumi-sim urumi-api urumi-worker urumictl; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing; build it first: cargo build --workspace --bins"
done
for tool in psql curl python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
e2e_prepare urumi-e2e
follower="" cursor=""

# shellcheck disable=SC2317 # invoked by e2e_cleanup
on_exit() { [ -n "$follower" ] && kill "$follower" 2>/dev/null; }

e2e_start_platform
URUMI_TOKEN=$(cat "$tmp/admin-token")
export URUMI_URL="$url" URUMI_TOKEN
sim=$(awk '$1 == "server:" { print $2 }' "$tmp/kubeconfig")
[ -n "$sim" ] || die "no simulator URL in $tmp/kubeconfig"
echo "   API $url, simulator $sim"

ctl() { "$bin/urumictl" "$@"; }
show() { sed 's/^/   /'; }
# json EXPR: evaluates EXPR over the JSON document on stdin, bound to `d`.
json() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# field NAME: the value of `NAME  value` in the CLI's human output on stdin.
field() { awk -v k="$1" '$1 == k { print $2; exit }'; }
# events STORE AFTER UNTIL: follows STORE's stream from cursor AFTER until an UNTIL event
# (fails on store.failed unless UNTIL is it); sets `cursor` to that event's cursor. The CLI
# runs in the background so that a signal to this script is handled at once.
events() {
  local out="$tmp/events-$1-$3" fail_on=store.failed
  [ "$3" = store.failed ] && fail_on=store.ready
  "$bin/urumictl" events --store "$1" --last-event-id "$2" --until "$3" --fail-on "$fail_on" \
    --timeout "$timeout" >"$out" 2>"$out.err" &
  follower=$!
  if ! wait "$follower"; then
    follower=""
    show <"$out" >&2
    show <"$out.err" >&2
    die "store $1 did not reach $3"
  fi
  follower=""
  [ "$(awk 'END { print $2 }' "$out")" = "$3" ] || die "the stream of store $1 did not end at $3"
  cursor=$(awk 'END { print $1 }' "$out")
}
sim_req() {
  curl -fsS -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} "$sim$2" >/dev/null ||
    die "simulator request $1 $2 failed"
}
ns_status() { curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer urumi-sim' "$sim/api/v1/namespaces/$1"; }

say "create store 1 with the CLI"
out=$(ctl stores create "E2E Shop")
show <<<"$out"
store1=$(echo "$out" | field store)
run1=$(echo "$out" | field run)
if [ -z "$store1" ] || [ -z "$run1" ]; then die "stores create printed no store or run id"; fi

say "follow store 1's event stream until store.ready"
events "$store1" 0-0 store.ready
ready1=$cursor
show <"$tmp/events-$store1-store.ready"
out=$(ctl stores show "$store1")
show <<<"$out"
[ "$(echo "$out" | field status)" = ready ] || die "store 1 is not ready"
url1=$(echo "$out" | field url)
[[ $url1 == http* ]] || die "store 1 has no URL"
[ "$(ns_status store-e2e-shop)" = 200 ] || die "namespace store-e2e-shop is not in the cluster"

say "inject a fault: the simulator fails the setup Jobs of store 2 (Jobs 1-4, all pods)"
ns2=store-e2e-broken-shop
marker="e2e-injected: wp core install: Error establishing a database connection"
for n in 1 2 3 4; do
  sim_req POST /_sim/jobs "{\"namespace\":\"$ns2\",\"namePrefix\":\"store-setup-$n\",\"failTimes\":4294967295,\"log\":\"step 3/5: installing WordPress\\n$marker\\n\"}"
done
out=$(ctl stores create "E2E Broken Shop")
show <<<"$out"
store2=$(echo "$out" | field store)
run2=$(echo "$out" | field run)
if [ -z "$store2" ] || [ -z "$run2" ]; then die "stores create printed no store or run id"; fi
[ "$(ctl --json stores show "$store2" | json '"store-" + d["slug"]')" = "$ns2" ] ||
  die "store 2 is not in namespace $ns2, the one the fault was scripted for"

say "wait for store.failed on store 2's stream"
events "$store2" 0-0 store.failed
failed_at=$cursor
echo "   store.failed at cursor $failed_at"
out=$(ctl runs list --status failed)
show <<<"$out"
grep -q "^$run2 " <<<"$out" || die "runs list --status failed does not list run $run2"
ctl runs show "$run2" | show
ctl --json runs show "$run2" >"$tmp/run2-failed.json"
python3 - "$tmp/run2-failed.json" "$marker" <<'PY' || die "run $run2 does not show the failed setup step with the Job's log tail"
import json, sys
run = json.load(open(sys.argv[1]))
marker = sys.argv[2]
assert run["status"] == "failed", run["status"]
failed = [s for s in run["steps"] if s["status"] == "failed"]
assert [s["name"] for s in failed] == ["setup"], failed
setup = failed[0]
assert setup["attempts"] == 4, setup
err = setup["last_error"] or ""
assert "setup Job store-setup-4 failed; log tail:" in err and marker in err, err
assert marker in (run.get("error") or ""), run.get("error")
PY

# The simulator keeps Job scripts for good (no endpoint removes one), so the fault was
# scripted for the failed run's four Jobs only: the retry's Job, store-setup-5, succeeds.
say "lift the fault (it covered Jobs 1-4 only) and retry the run with the CLI"
ctl runs retry "$run2" | show

say "wait for store.ready on store 2's stream"
events "$store2" "$failed_at" store.ready
ready2=$cursor
ctl runs show "$run2" | show
ctl --json runs show "$run2" >"$tmp/run2-retried.json"
python3 - "$tmp/run2-failed.json" "$tmp/run2-retried.json" <<'PY' || die "the retry did not resume run $run2 at its setup step"
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:3])
assert after["status"] == "succeeded", after["status"]
setup = next(s["position"] for s in after["steps"] if s["name"] == "setup")
old = {s["name"]: s for s in before["steps"]}
for s in after["steps"]:
    assert s["status"] == "succeeded", s
    if s["position"] < setup:
        # Not run again: one attempt, the same times as before the retry.
        assert s["attempts"] == 1, s
        for k in ("attempts", "started_at", "finished_at"):
            assert s[k] == old[s["name"]][k], (k, s, old[s["name"]])
    elif s["name"] == "setup":
        assert s["attempts"] == 1 and s["output"]["job"] == "store-setup-5", s
PY
[ "$(ctl stores show "$store2" | field status)" = ready ] || die "store 2 is not ready"

say "delete both stores with the CLI"
ctl stores delete "$store1" | show
ctl stores delete "$store2" | show
for s in "$store1:$ready1" "$store2:$ready2"; do
  after=${s#*:} s=${s%%:*}
  events "$s" "$after" store.deleted
  status=$(ctl stores show "$s" | field status)
  echo "   store $s: $status"
  [ "$status" = deleted ] || die "store $s is $status, not deleted"
done
for ns in store-e2e-shop "$ns2"; do
  [ "$(ns_status "$ns")" = 404 ] || die "namespace $ns is still in the cluster"
done
say "stop the platform"
