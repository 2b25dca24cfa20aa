#!/usr/bin/env bash
# Installs helm/urumi for real, the way an operator would, into the Kubernetes API simulator
# (the `urumi-sim` binary) with the real helm v4, and checks every step through the API:
#   1. a pre-install hook that fails (the migrate Job scripted to fail through /_sim/jobs)
#      fails `helm install` with a message naming the hook Job;
#   2. `helm install` with the default values (namespace and database Secret created first):
#      Deployments (the API, the workers, the suspended page), Services, ConfigMap,
#      ServiceAccounts, ClusterRole + binding, the ValidatingAdmissionPolicy + binding and the
#      release Secret exist, the migrate hook Job ran and was deleted (hook-delete-policy
#      hook-succeeded);
#   3. the suspended page runs with the installed Deployment's command and env (its --listen
#      moved to a free port) and answers 503 with Retry-After, /healthz ok; urumi.toml names
#      its Service;
#   4. the workers run with the chart's identity: the installed worker ServiceAccount's token
#      (`kubectl create token`), the installed ConfigMap's urumi.toml and the Deployments'
#      literal URUMI__ env, read back from the simulator, drive the real urumi-worker and
#      urumi-api (a scratch database instead of the Secret's); a store provisioned through
#      the API gets ready, and the simulator's request log shows the worker's requests made
#      as system:serviceaccount:urumi-system:urumi-worker;
#   5. the same with a copy of the chart whose worker ClusterRole lacks `create` on secrets:
#      the store fails with the simulator's 403 naming that verb and resource;
#   6. `helm upgrade -f values-prod.yaml`: the pre-upgrade hook runs (and is deleted) before
#      any Deployment changes (request log order), the PodDisruptionBudgets, the
#      HorizontalPodAutoscaler, the NetworkPolicies and the Ingress exist, the new env is set;
#   7. `helm rollback urumi 1`: revision 1's objects and env are back, the prod-only ones gone;
#   8. `helm uninstall urumi`: the chart's objects and the release Secrets are gone.
# Each step fails the script with a message saying what is wrong.
#
# HELM_INSTALL_BREAK=hook or =rbac makes step 2 (or 4) itself use the broken setup of step 1
# (or 5), to see the failure as an operator would. Builds the binaries with cargo (a no-op
# when fresh; CARGO_TARGET_DIR honoured); installs helm (scripts/install-helm.sh) and kubectl
# (sim/scripts/install-kubectl.sh) into .tools/bin. Needs psql, curl, python3 and a Postgres
# in $DATABASE_URL: scripts/with-postgres.sh scripts/check-helm-install.sh (check-helm.sh
# runs it so). Leaves no process, database or file behind.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$repo/$target ;; esac
bin=$target/debug
label="helm-install"
# shellcheck source=scripts/lib/e2e.sh
. scripts/lib/e2e.sh
helm="$repo/.tools/bin/helm"
kubectl="$repo/.tools/bin/kubectl"
chart=helm/urumi
rns=urumi-system
breaking=${HELM_INSTALL_BREAK:-}
case $breaking in "" | hook | rbac) ;; *) die "HELM_INSTALL_BREAK must be hook or rbac, not '$breaking'" ;; esac

for tool in cargo psql curl python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
scripts/install-helm.sh >/dev/null || die "scripts/install-helm.sh failed"
sim/scripts/install-kubectl.sh >/dev/null || die "sim/scripts/install-kubectl.sh failed"
say "build the binaries (urumi-sim, urumi-api, urumi-worker, urumictl)"
cargo build -q -p urumi-sim -p urumi-api -p urumi-worker -p urumi-cli --bins || die "cargo build failed"

e2e_prepare urumi-helm-install
pids=() dbs=() sim_pid=""
# shellcheck disable=SC2317 # invoked by e2e_cleanup
on_exit() {
  local log
  if [ "$1" != 0 ]; then
    for log in "$tmp/sim.log" "$tmp"/*/worker.log "$tmp"/*/api.log; do
      [ -s "$log" ] || continue
      echo "== $label: ${log#"$tmp"/} (last 15 lines)" >&2
      tail -n 15 "$log" >&2
    done
  fi
  stop_all
  if [ -n "$sim_pid" ]; then
    pids=("$sim_pid")
    stop_all
  fi
  for d in "${dbs[@]}"; do
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 ||
      echo "$label: could not drop database $d" >&2
  done
}
# stop_all: TERM to the processes in `pids` (the worker and the API), KILL after 15 s.
stop_all() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 150); do
    local left=0
    for p in "${pids[@]}"; do alive "$p" && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do
    if alive "$p"; then
      echo "$label: process $p did not stop on TERM; killing it" >&2
      kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
  done
  pids=()
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
show() { sed 's/^/   /'; }
# json EXPR: evaluates EXPR over the JSON document on stdin, bound to `d`.
json() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

say "start the simulator"
sim_port=$(free_port)
kc=$tmp/kubeconfig
env -u SIM_FAULTS -u SIM_TIMINGS -u SIM_TLS -u SIM_SNAPSHOT SIM_ADDR="127.0.0.1:$sim_port" \
  SIM_KUBECONFIG="$kc" "$bin/urumi-sim" >"$tmp/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 1 100); do [ -s "$kc" ] && break; sleep 0.1; done
[ -s "$kc" ] || die "the simulator wrote no kubeconfig; see $tmp/sim.log"
sim=http://127.0.0.1:$sim_port
echo "   $sim ($("$helm" version --short))"

k() { "$kubectl" --kubeconfig "$kc" "$@"; }
h() { "$helm" --kubeconfig "$kc" "$@"; }
simget() { curl -fsS "$sim$1" || die "GET $sim$1 failed"; }
mark() { simget /_sim/stats | json 'd["requests"]'; }
# requests SINCE: the simulator's request log after sequence number SINCE, into $tmp/requests.json.
requests() { simget "/_sim/requests?since=$1" >"$tmp/requests.json"; }

# operator_prepare NS: the namespace and the database Secret, as values.yaml tells an operator
# (kubectl's typed generators send protobuf, which the simulator does not speak, so they
# render client-side and apply).
operator_prepare() {
  k create namespace "$1" --dry-run=client -o json | k apply -f - >/dev/null ||
    die "cannot create namespace $1"
  k -n "$1" create secret generic urumi-database \
    --from-literal=url="postgres://urumi:secret@db.example.com:5432/urumi" --dry-run=client -o json |
    k apply -f - >/dev/null || die "cannot create the database Secret in $1"
}

# expect present|absent NS OBJECT...: each kind/name exists (or not) in namespace NS.
expect() {
  local want=$1 ns=$2 o got wrong=()
  shift 2
  for o in "$@"; do
    if k -n "$ns" get "$o" -o name >/dev/null 2>"$tmp/get.err"; then
      got=present
    elif grep -q NotFound "$tmp/get.err"; then
      got=absent
    else
      die "kubectl get $o: $(cat "$tmp/get.err")"
    fi
    [ "$got" = "$want" ] || wrong+=("$o")
  done
  [ ${#wrong[@]} = 0 ] || die "expected $want in $ns but $( [ "$want" = present ] && echo absent || echo present): ${wrong[*]}"
  echo "   $want: $*"
}

# env_of NS DEPLOYMENT NAME: the literal value of env NAME of the Deployment's first container.
env_of() {
  k -n "$1" get deployment "$2" -o json |
    json "next((e.get('value') for e in d['spec']['template']['spec']['containers'][0]['env'] if e['name'] == '$3'), '<unset>')"
}

# broken_chart: a copy of the chart whose worker ClusterRole lacks `create` on secrets (the
# rule's only verb, so the rule goes).
broken_chart() {
  local copy=$tmp/chart-no-secret-create
  if [ ! -d "$copy" ]; then
    cp -r "$chart" "$copy"
    python3 - "$copy/templates/rbac.yaml" <<'PY' || die "cannot break the chart copy's ClusterRole"
import sys
p = sys.argv[1]
text = open(p).read()
rule = '  - apiGroups: [""]\n    resources: [secrets]\n    verbs: [create]\n'
assert text.count(rule) == 1, "the secrets rule is not in rbac.yaml as expected"
open(p, "w").write(text.replace(rule, ""))
PY
  fi
  echo "$copy"
}

# hook_fails NS: with the migrate Job scripted to fail in NS, `helm install` must fail naming
# the hook Job (returns helm's verdict; the output is in $tmp/hook-fail.out).
script_migrate_failure() {
  curl -fsS -X POST -H 'Content-Type: application/json' "$sim/_sim/jobs" \
    --data "{\"namespace\":\"$1\",\"namePrefix\":\"urumi-migrate\",\"failTimes\":4294967295,\"log\":\"error: migration 0042 failed: relation already exists\\n\"}" >/dev/null ||
    die "cannot script the migrate Job to fail"
}

if [ "$breaking" != hook ]; then
  say "broken chart 1: the migrate hook Job fails -> helm install fails naming it"
  operator_prepare urumi-hookfail
  script_migrate_failure urumi-hookfail
  if h install urumi "$chart" -n urumi-hookfail --timeout 60s >"$tmp/hook-fail.out" 2>&1; then
    show <"$tmp/hook-fail.out"
    die "helm install succeeded though its migrate hook Job failed"
  fi
  show <"$tmp/hook-fail.out"
  grep -q "urumi-migrate" "$tmp/hook-fail.out" || die "helm's error does not name the hook Job urumi-migrate"
  expect absent urumi-hookfail deployment/urumi-api deployment/urumi-worker
  h uninstall urumi -n urumi-hookfail >/dev/null || die "helm uninstall of the failed release failed"
fi

say "helm install urumi $chart -n $rns --create-namespace (database Secret created first)"
operator_prepare "$rns"
[ "$breaking" = hook ] && script_migrate_failure "$rns"
install_chart=$chart
[ "$breaking" = rbac ] && install_chart=$(broken_chart)
m_install=$(mark)
if ! h install urumi "$install_chart" -n "$rns" --create-namespace --wait --timeout 90s >"$tmp/install.out" 2>&1; then
  show <"$tmp/install.out"
  die "helm install failed"
fi
head -n 6 "$tmp/install.out" | show
expect present "$rns" deployment/urumi-api deployment/urumi-worker service/urumi-api configmap/urumi-config \
  deployment/urumi-suspended service/urumi-suspended serviceaccount/urumi-api serviceaccount/urumi-worker secret/sh.helm.release.v1.urumi.v1 \
  clusterrole/urumi-system-urumi-worker clusterrolebinding/urumi-system-urumi-worker \
  validatingadmissionpolicy/urumi-system-urumi-worker-stores-only \
  validatingadmissionpolicybinding/urumi-system-urumi-worker-stores-only
# hook-delete-policy: before-hook-creation,hook-succeeded: it ran, succeeded and was deleted.
expect absent "$rns" job/urumi-migrate
requests "$m_install"
python3 - "$tmp/requests.json" <<'PY' || die "the migrate hook Job was not created, then deleted, before the Deployments"
import json, sys
log = json.load(open(sys.argv[1]))
# helm applies (server-side) the hook Job: the apply that creates it is logged as `created`.
created = [r["seq"] for r in log if r["resource"] == "jobs" and r.get("created") == "urumi-migrate"]
deleted = [r["seq"] for r in log if r["resource"] == "jobs" and r["verb"] == "delete" and r["name"] == "urumi-migrate" and r["status"] == 200]
deploy = [r["seq"] for r in log if r["resource"] == "deployments" and r["verb"] in ("create", "patch", "update") and r["status"] < 300 and r["changed"]]
# before-hook-creation: helm deletes an old hook Job first (none here: 404).
before = [r["seq"] for r in log if r["resource"] == "jobs" and r["verb"] == "delete" and r["name"] == "urumi-migrate" and r["status"] == 404]
assert created and deleted and deploy and before, (before, created, deleted, deploy)
assert before[0] < created[-1] < deleted[-1] < min(deploy), (before, created, deleted, deploy)
print(f"   hook Job: old one deleted first (#{before[0]}, 404), created (#{created[-1]}), deleted once succeeded (#{deleted[-1]}), then the Deployments (#{min(deploy)})")
PY

# run_with_chart_identity NS DB STORE: the real worker and API with the settings installed in
# NS, read back from the simulator; provisions STORE through the API. Returns 0 when it is
# ready, 1 when it failed (the run's error in $tmp/run-error), and dies on anything else.
run_with_chart_identity() {
  local ns=$1 dbname=$2 store=$3 token dburl api_port api_url admin run id
  local w="$tmp/$ns"
  mkdir -p "$w"
  psql "$admin_url" -qc "CREATE DATABASE $dbname" >/dev/null || die "cannot create database $dbname"
  dbs+=("$dbname")
  dburl="${base%/*}/$dbname$query"
  token=$(k create token urumi-worker -n "$ns") || die "kubectl create token urumi-worker -n $ns failed"
  [ -n "$token" ] || die "kubectl create token printed no token"
  cat >"$w/worker.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: sim
  cluster:
    server: $sim
contexts:
- name: urumi-worker
  context:
    cluster: sim
    user: urumi-worker
current-context: urumi-worker
users:
- name: urumi-worker
  user:
    token: $token
KC
  k -n "$ns" get configmap urumi-config -o json | json 'd["data"]["urumi.toml"]' >"$w/urumi.toml" ||
    die "cannot read back the ConfigMap urumi-config"
  echo "   urumi.toml from ConfigMap $ns/urumi-config: $(tr '\n' ' ' <"$w/urumi.toml")"
  # NAME=value of the Deployment's literal env; the Secret's database URL (valueFrom) is not
  # literal. The pod's listen addresses (0.0.0.0:<port>) move to free local ports and the
  # dashboard directory of the image is left out; everything else is kept as installed.
  for d in worker api; do
    k -n "$ns" get deployment "urumi-$d" -o json | python3 -c '
import json, sys
d = json.load(sys.stdin)
for e in d["spec"]["template"]["spec"]["containers"][0]["env"]:
    if "value" in e:
        print(e["name"] + "=" + e["value"])' >"$w/$d.env" || die "cannot read back Deployment urumi-$d"
  done
  echo "   worker env from Deployment $ns/urumi-worker: $(tr '\n' ' ' <"$w/worker.env")"
  local worker_env=() api_env=() line
  while IFS= read -r line; do
    case $line in
      URUMI_CONFIG=*) worker_env+=("URUMI_CONFIG=$w/urumi.toml") ;;
      URUMI__WORKER__METRICS_LISTEN=*) worker_env+=("URUMI__WORKER__METRICS_LISTEN=127.0.0.1:$(free_port)") ;;
      *) worker_env+=("$line") ;;
    esac
  done <"$w/worker.env"
  api_port=$(free_port)
  while IFS= read -r line; do
    case $line in
      URUMI_CONFIG=*) api_env+=("URUMI_CONFIG=$w/urumi.toml") ;;
      URUMI__API__LISTEN=*) api_env+=("URUMI__API__LISTEN=127.0.0.1:$api_port") ;;
      URUMI__API__DASHBOARD_DIR=*) ;;
      *) api_env+=("$line") ;;
    esac
  done <"$w/api.env"
  grep -q '^URUMI_CONFIG=' "$w/worker.env" || die "the worker Deployment sets no URUMI_CONFIG"
  local base_env=(PATH="$PATH" HOME="$HOME" NO_COLOR=1 URUMI__DATABASE__URL="$dburl")
  local m
  m=$(mark)
  env -i "${base_env[@]}" "${worker_env[@]}" URUMI__CLUSTER__KUBECONFIG="$w/worker.kubeconfig" \
    "$bin/urumi-worker" run >"$w/worker.log" 2>&1 &
  pids+=($!)
  env -i "${base_env[@]}" "${api_env[@]}" "$bin/urumi-api" >"$w/api.log" 2>&1 &
  pids+=($!)
  api_url=http://127.0.0.1:$api_port
  for _ in $(seq 1 150); do curl -fsS "$api_url/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS "$api_url/readyz" >/dev/null 2>&1 || { tail -n 20 "$w/api.log" >&2; die "urumi-api did not get ready"; }
  admin=$(env -i "${base_env[@]}" "${api_env[@]}" "$bin/urumi-api" token create --name "helm-install-$ns" --role admin 2>"$w/token.err") ||
    die "urumi-api token create failed: $(cat "$w/token.err")"
  export URUMI_URL=$api_url URUMI_TOKEN=$admin
  out=$("$bin/urumictl" stores create "$store") || die "urumictl stores create failed"
  show <<<"$out"
  id=$(awk '$1 == "store" { print $2; exit }' <<<"$out")
  run=$(awk '$1 == "run" { print $2; exit }' <<<"$out")
  if [ -z "$id" ] || [ -z "$run" ]; then die "stores create printed no store or run id"; fi
  local verdict=0
  say "follow store $store's events until store.ready (or store.failed)"
  if ! "$bin/urumictl" events --store "$id" --last-event-id 0-0 --until store.ready --fail-on store.failed --timeout 90 >"$w/events" 2>"$w/events.err"; then
    if [ "$(awk 'END { print $2 }' "$w/events")" != store.failed ]; then
      show <"$w/events"
      tail -n 20 "$w/worker.log" >&2
      die "store $store neither got ready nor failed: $(cat "$w/events.err")"
    fi
    verdict=1
  fi
  "$bin/urumictl" --json runs show "$run" >"$w/run.json" || die "urumictl runs show $run failed"
  if [ "$verdict" = 1 ]; then
    json 'd.get("error") or ""' <"$w/run.json" >"$tmp/run-error"
    [ -s "$tmp/run-error" ] || die "store $store failed, but its run has no error"
  else
    [ "$("$bin/urumictl" --json stores show "$id" | json 'd["status"]')" = ready ] || die "store $store is not ready"
    echo "   store $store is ready"
  fi
  requests "$m"
  python3 - "$tmp/requests.json" "system:serviceaccount:$ns:urumi-worker" <<'PY' || die "the worker's requests were not all made as the chart's ServiceAccount"
import json, sys
log, sa = json.load(open(sys.argv[1])), sys.argv[2]
# The worker is the only client of store namespaces; the simulator's controllers send no requests.
mine = [r for r in log if (r.get("namespace") or "").startswith("store-") or
        (r["resource"] == "namespaces" and (r.get("name") or "").startswith("store-"))]
users = sorted({r.get("user") or "<none>" for r in mine})
writes = [r for r in mine if r["verb"] in ("create", "patch", "update", "delete")]
assert mine and writes, "no request of the worker in the log"
assert users == [sa], users
# The worker's client, by its User-Agent: every request it sent in this window was as the SA.
agents = {r["userAgent"] for r in mine}
theirs = [r for r in log if r["userAgent"] in agents]
assert sorted({r.get("user") or "<none>" for r in theirs}) == [sa], theirs
names = ", ".join(sorted(a or "no User-Agent (kube-rs)" for a in agents))
print(f"   request log: {len(theirs)} requests of the worker's client [{names}] ({len(writes)} writes to stores), all as {sa}")
PY
  say "stop urumi-worker and urumi-api"
  stop_all
  unset URUMI_URL URUMI_TOKEN
  return "$verdict"
}

say "the suspended page runs as Deployment urumi-suspended says (command and env read back from $rns)"
toml=$(k -n "$rns" get configmap urumi-config -o json | json 'd["data"]["urumi.toml"]') || die "cannot read back the ConfigMap urumi-config"
grep -qx '  *suspended_service = "urumi-suspended"' <<<"$toml" || die "urumi.toml does not name Service urumi-suspended: $toml"
svc_port=$(k -n "$rns" get service urumi-suspended -o json | json '[p["port"] for p in d["spec"]["ports"]]')
[ "$svc_port" = "[80]" ] || die "Service urumi-suspended serves ports $svc_port, not [80]"
page_port=$(free_port)
# The container's command, one word a line, its --listen address moved to a free local port.
k -n "$rns" get deployment urumi-suspended -o json | python3 -c '
import json, sys
c = json.load(sys.stdin)["spec"]["template"]["spec"]["containers"][0]
cmd = c["command"]
cmd[cmd.index("--listen") + 1] = "127.0.0.1:" + sys.argv[1]
print("\n".join(cmd))
print("\n".join(e["name"] + "=" + e["value"] for e in c.get("env", [])), file=open(sys.argv[2], "w"))
' "$page_port" "$tmp/suspended.env" >"$tmp/suspended.cmd" || die "cannot read back Deployment urumi-suspended"
mapfile -t page_cmd <"$tmp/suspended.cmd"
mapfile -t page_env <"$tmp/suspended.env"
[ "${page_cmd[0]}" = urumi-api ] || die "Deployment urumi-suspended runs ${page_cmd[*]}, not urumi-api"
echo "   command: ${page_cmd[*]}; env: ${page_env[*]}"
# No database URL, no config file: the page needs neither.
env -i PATH="$PATH" HOME="$HOME" NO_COLOR=1 "${page_env[@]}" "$bin/${page_cmd[0]}" "${page_cmd[@]:1}" >"$tmp/suspended.log" 2>&1 &
pids+=($!)
page=http://127.0.0.1:$page_port
for _ in $(seq 1 100); do curl -fsS "$page/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
[ "$(curl -fsS "$page/healthz")" = ok ] || { tail -n 20 "$tmp/suspended.log" >&2; die "the suspended page's /healthz does not answer ok"; }
curl -sS -o "$tmp/suspended.html" -D "$tmp/suspended.headers" -H 'Host: helm-shop.stores.localhost' "$page/cart" ||
  die "the suspended page does not answer"
head -n 1 "$tmp/suspended.headers" | grep -q ' 503 ' || die "the suspended page answers $(head -n 1 "$tmp/suspended.headers"), not 503"
grep -qi '^retry-after: 3600' "$tmp/suspended.headers" || die "the suspended page sends no Retry-After: 3600"
grep -q 'This store is suspended' "$tmp/suspended.html" || die "the suspended page does not say the store is suspended"
echo "   GET /healthz: ok; GET http://helm-shop.stores.localhost/cart: 503, Retry-After: 3600, the page"
stop_all

say "the workers run with the chart's identity (token, urumi.toml and env read back from $rns)"
if ! run_with_chart_identity "$rns" "${db}_ok" "Helm Shop"; then
  die "the store failed with the chart's identity: $(cat "$tmp/run-error")"
fi

if [ "$breaking" != rbac ]; then
  say "broken chart 2: the worker ClusterRole lacks create on secrets -> the store fails with a 403"
  operator_prepare urumi-broken
  h install urumi "$(broken_chart)" -n urumi-broken --timeout 60s >/dev/null || die "helm install of the broken chart copy failed"
  if run_with_chart_identity urumi-broken "${db}_broken" "Broken Shop"; then
    die "the store got ready though the worker may not create secrets"
  fi
  echo "   run error: $(cat "$tmp/run-error")"
  grep -q 'is forbidden: User "system:serviceaccount:urumi-broken:urumi-worker" cannot create resource "secrets" in API group ""' "$tmp/run-error" ||
    die "the failure is not the simulator's 403 for create on secrets"
  h uninstall urumi -n urumi-broken >/dev/null || die "helm uninstall of the broken chart copy failed"
fi

say "helm upgrade urumi -f values-prod.yaml (the database CA Secret created first)"
k -n "$rns" create secret generic urumi-database-ca --from-literal=ca.crt=dummy --dry-run=client -o json |
  k apply -f - >/dev/null || die "cannot create the database CA Secret"
m_upgrade=$(mark)
if ! h upgrade urumi "$chart" -n "$rns" -f "$chart/values-prod.yaml" --wait --timeout 90s >"$tmp/upgrade.out" 2>&1; then
  show <"$tmp/upgrade.out"
  die "helm upgrade failed"
fi
head -n 6 "$tmp/upgrade.out" | show
prod_only=(poddisruptionbudget/urumi-api poddisruptionbudget/urumi-worker horizontalpodautoscaler/urumi-worker
  networkpolicy/urumi-api networkpolicy/urumi-worker networkpolicy/urumi-suspended ingress/urumi-api)
expect present "$rns" "${prod_only[@]}" secret/sh.helm.release.v1.urumi.v2
expect absent "$rns" job/urumi-migrate
requests "$m_upgrade"
python3 - "$tmp/requests.json" <<'PY' || die "the pre-upgrade hook did not run before the Deployments changed"
import json, sys
log = json.load(open(sys.argv[1]))
job = [r["seq"] for r in log if r["resource"] == "jobs" and r.get("created") == "urumi-migrate"]
done = [r["seq"] for r in log if r["resource"] == "jobs" and r["verb"] == "delete" and r["name"] == "urumi-migrate" and r["status"] == 200]
deploy = [r["seq"] for r in log if r["resource"] == "deployments" and r["verb"] in ("create", "patch", "update") and r["status"] < 300 and r["changed"]]
assert job and done and deploy, (job, done, deploy)
assert job[-1] < done[-1] < min(deploy), (job, done, deploy)
print(f"   pre-upgrade hook Job created (#{job[-1]}), deleted once succeeded (#{done[-1]}), Deployments changed from #{min(deploy)}")
PY
for check in "urumi-worker URUMI__WORKER__CONCURRENCY 24" "urumi-worker URUMI__WORKER__SHUTDOWN_GRACE_MS 60000"; do
  read -r d name want <<<"$check"
  got=$(env_of "$rns" "$d" "$name")
  [ "$got" = "$want" ] || die "$d: $name is $got after the upgrade, not $want"
  echo "   $d: $name=$got"
done
image=$(k -n "$rns" get deployment urumi-api -o json | json 'd["spec"]["template"]["spec"]["containers"][0]["image"]')
[ "$image" = registry.example.com/urumi:0.1.0 ] || die "urumi-api runs $image after the upgrade"
echo "   urumi-api: image $image"

say "helm rollback urumi 1"
h rollback urumi 1 -n "$rns" --wait --timeout 90s >"$tmp/rollback.out" 2>&1 || { show <"$tmp/rollback.out"; die "helm rollback failed"; }
show <"$tmp/rollback.out"
expect absent "$rns" "${prod_only[@]}"
expect present "$rns" deployment/urumi-api deployment/urumi-worker secret/sh.helm.release.v1.urumi.v3
got=$(env_of "$rns" urumi-worker URUMI__WORKER__CONCURRENCY)
[ "$got" = 128 ] || die "urumi-worker: URUMI__WORKER__CONCURRENCY is $got after the rollback, not 128 (the default)"
replicas=$(k -n "$rns" get deployment urumi-worker -o json | json 'd["spec"].get("replicas")')
[ "$replicas" = 2 ] || die "urumi-worker has replicas $replicas after the rollback, not revision 1's 2"
image=$(k -n "$rns" get deployment urumi-api -o json | json 'd["spec"]["template"]["spec"]["containers"][0]["image"]')
[ "$image" = urumi:0.1.0 ] || die "urumi-api runs $image after the rollback, not revision 1's urumi:0.1.0"
echo "   urumi-worker: URUMI__WORKER__CONCURRENCY=$got, replicas $replicas; urumi-api: image $image"

say "helm uninstall urumi"
h uninstall urumi -n "$rns" --wait --timeout 60s >"$tmp/uninstall.out" 2>&1 || { show <"$tmp/uninstall.out"; die "helm uninstall failed"; }
show <"$tmp/uninstall.out"
expect absent "$rns" deployment/urumi-api deployment/urumi-worker service/urumi-api configmap/urumi-config \
  deployment/urumi-suspended service/urumi-suspended serviceaccount/urumi-api serviceaccount/urumi-worker \
  clusterrole/urumi-system-urumi-worker clusterrolebinding/urumi-system-urumi-worker \
  validatingadmissionpolicy/urumi-system-urumi-worker-stores-only \
  validatingadmissionpolicybinding/urumi-system-urumi-worker-stores-only
left=$(k -n "$rns" get secrets -l owner=helm,name=urumi -o name)
[ -z "$left" ] || die "release Secrets left after uninstall: $left"
pods=$(k -n "$rns" get pods -o name)
[ -z "$pods" ] || die "pods left after uninstall: $pods"
echo "   no release Secret and no pod left; the operator's Secrets stay: $(k -n "$rns" get secrets -o name | tr '\n' ' ')"
