#!/usr/bin/env bash
# Tests scripts/setup-local.sh without Docker or a cluster: stub docker, k3d, kubectl, helm
# and curl (one script, tests/stub below) log every call (argv, plus KUBECONFIG and what was
# piped in) and answer what setup-local.sh reads back (the cluster list, a kubeconfig, an image
# id, a token). PATH holds only the stubs and links to the few system tools the script uses,
# so nothing real is reached. Checks:
#   - a first run creates the cluster, builds and imports the image, applies the Postgres
#     manifest, creates the Secret, installs the chart with values-local.yaml and the image
#     settings, waits, mints the token and prints the dashboard URL and the token, in that order,
#     with every kubectl and helm call on the k3d cluster's own kubeconfig;
#   - a second run (k3d cluster list now names the cluster) reuses it and upgrades again;
#   - each missing tool, and a Docker engine that does not answer, stops it with a clear
#     message before anything is done;
#   - deploy/local/postgres.yaml is valid Kubernetes (kubernetes-validate --strict, 1.33);
#   - the real helm (scripts/install-helm.sh) renders the chart with the very -f/--set flags
#     the run passed: image urumi:dev-<id> never pulled, one API and one worker, the API's
#     Ingress on Traefik for api.localhost, stores under stores.localhost.
#   - scripts/setup-local.ps1 parses (tree-sitter PowerShell grammar) and has the same steps.
# What it cannot show: that Docker builds the image, that k3d and the chart come up, that
# Traefik routes api.localhost (those need Docker: see README "Local cluster (k3d)").
# Run on its own or by scripts/test.sh; ends with "setup-local: passed".
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d)
# KEEP=1 keeps the stubs' logs and the outputs.
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; else echo "test-setup-local: keeping $work" >&2; fi
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The stub: $0's name is the tool.
mkdir -p "$work/stubs" "$work/sys" "$work/state"
cat > "$work/stubs/stub" <<'STUB'
#!/usr/bin/env bash
tool=$(basename "$0")
line="$tool $*"
[ -n "${KUBECONFIG:-}" ] && line="$line  [KUBECONFIG=$KUBECONFIG]"
if [ "${*: -1}" = - ] && [[ " $* " == *" apply "* ]]; then
  line="$line  <stdin: $(tr '\n' ' ' | head -c 300)>"
fi
printf '%s\n' "$line" >> "$STUB_LOG"
case "$tool $*" in
  "docker info"*) [ "${STUB_DOCKER_DOWN:-0}" = 1 ] && { echo "Cannot connect to the Docker daemon" >&2; exit 1; } ;;
  "docker image inspect"*) echo "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" ;;
  "k3d cluster list"*)
    for f in "$STUB_STATE"/cluster-*; do
      if [ -e "$f" ]; then echo "${f##*/cluster-}   1/1       1/1      true"; fi
    done ;;
  "k3d cluster create"*) touch "$STUB_STATE/cluster-$3" ;;
  "k3d kubeconfig get"*) printf 'apiVersion: v1\nkind: Config\nclusters: []\n' ;;
  "kubectl create namespace"*) printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$3" ;;
  "kubectl -n urumi-system create secret"*) printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: urumi-database\n' ;;
  "kubectl -n urumi-system exec deploy/urumi-api -- urumi-api token create"*)
    echo "minted token 0190 (local-admin, admin); it is shown only now:" >&2
    echo "STUBTOKEN0123456789" ;;
esac
exit 0
STUB
chmod +x "$work/stubs/stub"
for tool in docker k3d kubectl helm curl; do ln -s stub "$work/stubs/$tool"; done
for tool in bash env awk grep mkdir mv cat date seq sleep dirname basename tr head touch cut; do
  ln -s "$(command -v "$tool")" "$work/sys/$tool"
done

# run NAME [VAR=VALUE...]: setup-local.sh with the stubs; its output in $work/NAME.out, the
# calls in $work/NAME.log, its exit code in $rc.
run() {
  local name=$1 && shift
  : > "$work/$name.log"
  set +e
  env -i HOME="$work" PATH="$work/stubs:$work/sys" STUB_LOG="$work/$name.log" \
    STUB_STATE="$work/state" URUMI_K3D_CLUSTER=urumi URUMI_DEV_DIR="$work/dev" \
    URUMI_TOOLS_BIN="$work/no-tools" "$@" bash "$repo/scripts/setup-local.sh" > "$work/$name.out" 2>&1
  rc=$?
  set -e
}
# has FILE TEXT: a fixed-string match; line FILE TEXT: the first matching line's number.
has() { grep -qF -- "$2" "$1"; }
line() { { grep -nF -- "$2" "$1" || true; } | head -n 1 | cut -d: -f1; }

kcfg="KUBECONFIG=$work/dev/k3d-urumi.kubeconfig"
tag=dev-0123456789ab
# The calls of a run that must come, in this order (first match of each).
sequence=(
  "docker info"
  "k3d cluster list --no-headers"
  "k3d kubeconfig get urumi"
  "kubectl get nodes  [$kcfg]"
  "docker build -t urumi:dev ."
  "docker image inspect --format {{.Id}} urumi:dev"
  "docker tag urumi:dev urumi:$tag"
  "k3d image import urumi:dev urumi:$tag -c urumi"
  "kubectl create namespace urumi-system --dry-run=client -o yaml"
  "kubectl -n urumi-system apply -f deploy/local/postgres.yaml  [$kcfg]"
  "kubectl -n urumi-system rollout status deployment/urumi-postgres"
  "kubectl -n urumi-system create secret generic urumi-database --from-literal=url=postgres://postgres@urumi-postgres.urumi-system.svc.cluster.local:5432/urumi --dry-run=client -o yaml"
  "kubectl apply -f -  [$kcfg]  <stdin: apiVersion: v1 kind: Secret"
  "helm upgrade --install urumi helm/urumi --namespace urumi-system -f helm/urumi/values-local.yaml --set image.repository=urumi --set image.tag=$tag --set image.pullPolicy=Never --wait --timeout 10m  [$kcfg]"
  "kubectl -n urumi-system rollout status deployment/urumi-api --timeout=300s"
  "kubectl -n urumi-system rollout status deployment/urumi-worker --timeout=300s"
  "curl -fsS -o /dev/null -H Host: api.localhost http://127.0.0.1:8080/readyz"
  "kubectl -n urumi-system exec deploy/urumi-api -- urumi-api token create --name local-admin-"
)
check_run() {
  local name=$1 prev=0 n
  [ "$rc" = 0 ] || { fail "$name: exit $rc"; sed 's/^/  | /' "$work/$name.out"; return; }
  for call in "${sequence[@]}"; do
    n=$(line "$work/$name.log" "$call")
    if [ -z "$n" ]; then
      fail "$name: no call: $call"
    elif [ "$n" -le "$prev" ]; then
      fail "$name: out of order (line $n, after line $prev): $call"
    else
      prev=$n
    fi
  done
  has "$work/$name.log" "--role admin" || fail "$name: the token is not an admin's"
  # Every kubectl and helm call is on the k3d kubeconfig, never the user's current context.
  if grep -E '^(kubectl|helm) ' "$work/$name.log" | grep -vqF "[$kcfg]"; then
    fail "$name: a kubectl/helm call without the k3d kubeconfig"
  fi
  has "$work/$name.out" "dashboard    http://api.localhost:8080/dashboard/" || fail "$name: no dashboard URL printed"
  has "$work/$name.out" "admin token  STUBTOKEN0123456789" || fail "$name: no admin token printed"
  has "$work/$name.out" "cargo test -p urumi-workflows --test real_cluster -- --ignored" || fail "$name: no e2e command printed"
  has "$work/$name.out" "k3d cluster delete urumi" || fail "$name: no teardown printed"
  [ "$(cat "$work/dev/k3d-urumi.admin-token" 2>/dev/null)" = STUBTOKEN0123456789 ] || fail "$name: token not saved"
}

echo "== first run: creates the cluster"
run first
check_run first
has "$work/first.log" "k3d cluster create urumi --agents 1 -p 8080:80@loadbalancer --wait" || fail "first: no k3d cluster create"
has "$work/first.out" "creating k3d cluster urumi" || fail "first: did not say it creates the cluster"

echo "== second run: reuses it, upgrades the release"
run second
check_run second
if has "$work/second.log" "k3d cluster create"; then fail "second: created the cluster again"; fi
has "$work/second.out" "k3d cluster urumi exists: reusing it" || fail "second: did not say it reuses the cluster"

echo "== another cluster name and k3s image"
run other URUMI_K3D_CLUSTER=demo URUMI_K3S_IMAGE=rancher/k3s:v1.33.4-k3s1
[ "$rc" = 0 ] || fail "other: exit $rc"
has "$work/other.log" "k3d cluster create demo --agents 1 -p 8080:80@loadbalancer --wait --image rancher/k3s:v1.33.4-k3s1" || fail "other: cluster demo not created with the image"
has "$work/other.log" "k3d image import urumi:dev urumi:$tag -c demo" || fail "other: image not imported into demo"

echo "== a missing tool, a Docker engine that does not answer"
for tool in docker k3d kubectl helm curl; do
  rm "$work/stubs/$tool"
  run "missing-$tool"
  ln -s stub "$work/stubs/$tool"
  [ "$rc" != 0 ] || fail "missing $tool: exit 0"
  has "$work/missing-$tool.out" "setup-local: missing required tool(s): $tool" || fail "missing $tool: no clear message: $(cat "$work/missing-$tool.out")"
  if [ -s "$work/missing-$tool.log" ]; then fail "missing $tool: called tools before stopping: $(cat "$work/missing-$tool.log")"; fi
done
sed -n 1,2p "$work/missing-helm.out"
run docker-down STUB_DOCKER_DOWN=1
[ "$rc" != 0 ] || fail "docker down: exit 0"
has "$work/docker-down.out" "docker is installed but its engine does not answer" || fail "docker down: no clear message"
if grep -qvE '^docker info' "$work/docker-down.log"; then fail "docker down: went on after docker info"; fi
cat "$work/docker-down.out"

echo "== deploy/local/postgres.yaml: kubernetes-validate --strict -k 1.33.0"
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
  hash -r
fi
kubernetes-validate --strict --quiet -k 1.33.0 deploy/local/postgres.yaml || fail "deploy/local/postgres.yaml is not valid"

echo "== helm template with values-local.yaml and the script's --set flags (real helm)"
scripts/install-helm.sh
# The exact chart arguments the first run passed to the helm stub, rendered by the real helm.
mapfile -t chart_args < <(grep -m1 '^helm upgrade --install ' "$work/first.log" | sed 's/  \[KUBECONFIG=.*//' |
  tr ' ' '\n' | sed -n '/^-f$/{n;s/^/-f\n/;p};/^--set$/{n;s/^/--set\n/;p}')
if ! .tools/bin/helm template urumi helm/urumi --namespace urumi-system "${chart_args[@]}" > "$work/local.yaml"; then
  fail "helm template with ${chart_args[*]} failed"
elif ! python3 - "$work/local.yaml" <<'PY'
import sys, tomllib, yaml
docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(sys.argv[1])) if d}
want = {
    "api image": (docs[("Deployment", "urumi-api")]["spec"]["template"]["spec"]["containers"][0]["image"], "urumi:dev-0123456789ab"),
    "api pullPolicy": (docs[("Deployment", "urumi-api")]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "Never"),
    "worker image": (docs[("Deployment", "urumi-worker")]["spec"]["template"]["spec"]["containers"][0]["image"], "urumi:dev-0123456789ab"),
    "migrate image": (docs[("Job", "urumi-migrate")]["spec"]["template"]["spec"]["containers"][0]["image"], "urumi:dev-0123456789ab"),
    "api replicas": (docs[("Deployment", "urumi-api")]["spec"]["replicas"], 1),
    "worker replicas": (docs[("Deployment", "urumi-worker")]["spec"]["replicas"], 1),
    "ingress class": (docs[("Ingress", "urumi-api")]["spec"]["ingressClassName"], "traefik"),
    "ingress host": (docs[("Ingress", "urumi-api")]["spec"]["rules"][0]["host"], "api.localhost"),
    "database secret": (docs[("Deployment", "urumi-api")]["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"], "urumi-database"),
}
stores = tomllib.loads(docs[("ConfigMap", "urumi-config")]["data"]["urumi.toml"])["stores"]
want["stores"] = ({k: stores.get(k) for k in ("base_domain", "ingress_class", "ingress_namespace")},
                  {"base_domain": "stores.localhost", "ingress_class": "traefik", "ingress_namespace": "kube-system"})
bad = [f"{k}: {got!r}, want {exp!r}" for k, (got, exp) in want.items() if got != exp]
for b in bad:
    print("  ", b)
sys.exit(1 if bad else 0)
PY
then
  fail "the local install does not render what setup-local.sh promises"
fi

# PowerShell is not on these machines: the .ps1 is parsed by the tree-sitter PowerShell
# grammar (PyPI tree-sitter-powershell) — a syntax check, not PowerShell's own parser, and not
# a run. Any ERROR or MISSING node fails. Then the steps it must share with setup-local.sh.
ps1=${SETUP_LOCAL_PS1:-scripts/setup-local.ps1}
echo "== $ps1: syntax (tree-sitter-powershell) and the same steps as setup-local.sh"
py=.tools/py
if ! "$py/bin/python" -c 'import tree_sitter, tree_sitter_powershell' >/dev/null 2>&1; then
  echo "== installing tree-sitter and tree-sitter-powershell (PyPI) into .tools/py"
  [ -x "$py/bin/python" ] || python3 -m venv "$py"
  "$py/bin/python" -m pip install --quiet --disable-pip-version-check \
    'tree-sitter>=0.25,<0.27' 'tree-sitter-powershell==0.26.4'
fi
if ! "$py/bin/python" - "$ps1" <<'PY'
import sys, tree_sitter, tree_sitter_powershell
src = open(sys.argv[1], "rb").read()
tree = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language())).parse(src)
bad = []
def walk(node):
    if node.is_error or node.is_missing:
        bad.append(node)
    for child in node.children:
        walk(child)
walk(tree.root_node)
for n in bad[:10]:
    what = "missing " + n.type if n.is_missing else "syntax error"
    text = src[n.start_byte:n.end_byte].decode(errors="replace").splitlines()[:1]
    print(f"  {sys.argv[1]}:{n.start_point[0] + 1}:{n.start_point[1] + 1}: {what} near {text[0] if text else ''!r}")
print(f"  {len(bad)} syntax error(s)" if bad else f"  parsed: {tree.root_node.end_point[0]} lines, no errors")
sys.exit(1 if bad else 0)
PY
then
  fail "$ps1 does not parse"
fi
for step in "\$ErrorActionPreference = 'Stop'" "[string]\$Cluster" "'cluster', 'list', '--no-headers'" \
  "'cluster', 'create', \$Cluster" "'build', '-t', \$Image, '.'" "'image', 'import', \$Image" \
  "'apply', '-f', 'deploy/local/postgres.yaml'" "'create', 'secret', 'generic', 'urumi-database'" \
  "'upgrade', '--install', \$Release, 'helm/urumi'" "helm/urumi/values-local.yaml" \
  "image.pullPolicy=Never" "'urumi-api', 'token', 'create'" "'--role', 'admin'" \
  "\$Url/dashboard/" "admin token  \$Token" "k3d cluster delete" \
  "setup-local: missing required tool(s)" "foreach (\$Tool in 'docker', 'k3d', 'kubectl', 'helm', 'curl')"; do
  has "$ps1" "$step" || fail "$ps1 lacks: $step"
done

if [ "$fails" != 0 ]; then
  echo "setup-local: FAILED ($fails)"
  exit 1
fi
echo "setup-local: passed"
