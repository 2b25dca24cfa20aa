#!/usr/bin/env bash
# Creates a local k3d cluster for Urumi's real-cluster path and runs two workers against it.
# Needs Docker and k3d (https://k3d.io); neither exists on the development machines, so this
# script is written and documented but not exercised there.
#
#   scripts/setup-local.sh            # cluster "urumi", ingress on http://*.stores.localhost:8080
#   cargo test -p urumi-workflows --test real_cluster -- --ignored   # the e2e, in another shell
set -euo pipefail
cd "$(dirname "$0")/.."
cluster=${URUMI_K3D_CLUSTER:-urumi}
for tool in docker k3d; do
  command -v "$tool" >/dev/null 2>&1 || { echo "setup-local: $tool is required" >&2; exit 1; }
done
if ! k3d cluster list "$cluster" >/dev/null 2>&1; then
  # Traefik (k3s's default ingress controller, in kube-system) gets host port 8080.
  k3d cluster create "$cluster" --agents 1 -p "8080:80@loadbalancer" --wait
fi
mkdir -p .dev
k3d kubeconfig get "$cluster" > .dev/k3d.kubeconfig
export URUMI__CLUSTER__KUBECONFIG="$PWD/.dev/k3d.kubeconfig"
export URUMI__STORES__BASE_DOMAIN=stores.localhost
export URUMI__STORES__INGRESS_CLASS=traefik
export URUMI__STORES__INGRESS_NAMESPACE=kube-system
echo "kubeconfig: $URUMI__CLUSTER__KUBECONFIG"
cargo build -p urumi-worker -p urumi-sim --bins
exec scripts/with-postgres.sh scripts/platform.sh
