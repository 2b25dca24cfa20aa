#!/usr/bin/env bash
# Urumi on a local k3d cluster, the way an operator installs it: the platform image built from
# the Dockerfile and imported into the cluster, a throwaway Postgres in it
# (deploy/local/postgres.yaml, local use only), the Helm chart with
# helm/urumi/values-local.yaml (one API, one worker, Traefik on host port 8080); then an admin
# token and the dashboard's URL. Idempotent: a second run reuses the cluster, rebuilds and
# re-imports the image and upgrades the release (new pods only when the image changed).
#
#   scripts/setup-local.sh [CLUSTER]       # default cluster "urumi" (or $URUMI_K3D_CLUSTER)
#   k3d cluster delete urumi               # tears it all down
#
# Needs Docker (a running engine), k3d 5, kubectl, helm (3.8+ or 4; scripts/install-helm.sh
# puts helm 4 in .tools/bin, sim/scripts/install-kubectl.sh kubectl, both used from there when
# not on PATH) and curl. Optional: URUMI_K3S_IMAGE (k3d's --image, e.g. rancher/k3s:v1.33.4-k3s1;
# the chart's ValidatingAdmissionPolicy needs Kubernetes 1.30+), URUMI_K3D_PORT (host port of
# the ingress, default 8080). scripts/test-setup-local.sh runs it against stub tools; the real
# run needs Docker, which the development machines do not have.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cluster=${1:-${URUMI_K3D_CLUSTER:-urumi}}
port=${URUMI_K3D_PORT:-8080}
ns=urumi-system
release=urumi
image=urumi:dev
values=helm/urumi/values-local.yaml
dev=${URUMI_DEV_DIR:-$repo/.dev}
# The project's own kubectl and helm, after whatever PATH has.
PATH="$PATH:${URUMI_TOOLS_BIN:-$repo/.tools/bin}"

say() { printf '== %s\n' "$*"; }
die() { printf 'setup-local: %s\n' "$*" >&2; exit 1; }

missing=()
hint() {
  case $1 in
    docker) echo "docker: Docker Engine or Docker Desktop, https://docs.docker.com/get-docker/" ;;
    k3d) echo "k3d: https://k3d.io (v5)" ;;
    kubectl) echo "kubectl: https://kubernetes.io/docs/tasks/tools/ (or sim/scripts/install-kubectl.sh)" ;;
    helm) echo "helm: https://helm.sh/docs/intro/install/ (or scripts/install-helm.sh)" ;;
    curl) echo "curl: your system's package manager" ;;
  esac
}
for tool in docker k3d kubectl helm curl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  {
    echo "setup-local: missing required tool(s): ${missing[*]}"
    for tool in "${missing[@]}"; do echo "  install $(hint "$tool")"; done
  } >&2
  exit 1
fi
docker info >/dev/null 2>&1 || die "docker is installed but its engine does not answer (docker info failed): start Docker first"

# 1. The cluster: created once (Traefik, k3s's ingress controller in kube-system, on host
#    port $port), reused afterwards.
if k3d cluster list --no-headers 2>/dev/null | awk '{print $1}' | grep -qx -- "$cluster"; then
  say "k3d cluster $cluster exists: reusing it"
else
  say "creating k3d cluster $cluster (ingress on host port $port)"
  create=(k3d cluster create "$cluster" --agents 1 -p "$port:80@loadbalancer" --wait)
  [ -n "${URUMI_K3S_IMAGE:-}" ] && create+=(--image "$URUMI_K3S_IMAGE")
  "${create[@]}"
fi
mkdir -p "$dev"
kubeconfig="$dev/k3d-$cluster.kubeconfig"
(umask 077 && k3d kubeconfig get "$cluster" > "$kubeconfig.tmp") && mv "$kubeconfig.tmp" "$kubeconfig"
# Every kubectl and helm below talks to this cluster only, whatever the current context is.
export KUBECONFIG="$kubeconfig"
kubectl get nodes >/dev/null || die "cluster $cluster does not answer (is it stopped? k3d cluster start $cluster)"

# 2. The platform image, tagged with its image id too, so that the release changes (and the
#    pods roll) exactly when the image did.
say "building $image from the Dockerfile"
docker build -t "$image" .
id=$(docker image inspect --format '{{.Id}}' "$image")
id=${id#sha256:}
tag="dev-${id:0:12}"
docker tag "$image" "urumi:$tag"
say "importing $image (urumi:$tag) into $cluster"
k3d image import "$image" "urumi:$tag" -c "$cluster"

# 3. Postgres (local use only) and the Secret the chart reads its URL from.
say "namespace $ns, local Postgres (deploy/local/postgres.yaml)"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$ns" apply -f deploy/local/postgres.yaml
kubectl -n "$ns" rollout status deployment/urumi-postgres --timeout=300s
kubectl -n "$ns" create secret generic urumi-database \
  --from-literal=url="postgres://postgres@urumi-postgres.$ns.svc.cluster.local:5432/urumi" \
  --dry-run=client -o yaml | kubectl apply -f -

# 4. The chart (the migrate hook runs first), then both Deployments rolled out.
say "helm upgrade --install $release ($values, image urumi:$tag)"
helm upgrade --install "$release" helm/urumi --namespace "$ns" -f "$values" \
  --set image.repository=urumi --set image.tag="$tag" --set image.pullPolicy=Never \
  --wait --timeout 10m
kubectl -n "$ns" rollout status deployment/urumi-api --timeout=300s
kubectl -n "$ns" rollout status deployment/urumi-worker --timeout=300s

# 5. The API through Traefik, as a browser reaches it (Host header: no DNS needed here).
url="http://api.localhost:$port"
say "waiting for $url/readyz through the ingress"
ready=0
for _ in $(seq 1 60); do
  if curl -fsS -o /dev/null -H "Host: api.localhost" "http://127.0.0.1:$port/readyz"; then ready=1 && break; fi
  sleep 2
done
[ "$ready" = 1 ] || die "$url/readyz did not answer through Traefik; see kubectl -n $ns get ingress,pods and kubectl -n kube-system logs deploy/traefik"

# 6. An admin token (a live token's name must be unique, hence the timestamp). The command
#    prints the token alone on stdout.
say "minting an admin token"
token=$(kubectl -n "$ns" exec deploy/urumi-api -- urumi-api token create --name "local-admin-$(date +%s)" --role admin)
[ -n "$token" ] || die "urumi-api token create printed no token"
(umask 077 && printf '%s\n' "$token" > "$dev/k3d-$cluster.admin-token")

cat <<MSG

Urumi is running on k3d cluster $cluster (namespace $ns, release $release, image urumi:$tag)
  dashboard    $url/dashboard/   (sign in with the admin token)
  API          $url   (docs: $url/docs)
  admin token  $token
  stores       http://<slug>.stores.localhost:$port
  kubeconfig   $kubeconfig   (export KUBECONFIG=$kubeconfig)

Try:  export URUMI_URL=$url URUMI_TOKEN=$token
      urumictl stores create "My Shop" && urumictl events --until store.ready
  (*.localhost names resolve to 127.0.0.1 in browsers; elsewhere add them to /etc/hosts or
   use curl -H "Host: api.localhost" http://127.0.0.1:$port/...)

The real-cluster e2e against this cluster (its own worker and a throwaway Postgres on this
machine; the ingress at 127.0.0.1:$port):
  KUBECONFIG=$kubeconfig URUMI_INGRESS=127.0.0.1:$port scripts/with-postgres.sh \\
    cargo test -p urumi-workflows --test real_cluster -- --ignored

Upgrade after a change: run this script again. Tear down: k3d cluster delete $cluster
MSG
