#!/usr/bin/env bash
# Builds the React dashboard into frontend/dist when it is missing or older than its sources:
# `npm ci` when node_modules is missing or older than package-lock.json, then `npm run build`
# (which first checks the generated API client against api/openapi.json). Quiet when there
# is nothing to do. Used by scripts/dev.sh and scripts/e2e-dashboard.sh.
set -euo pipefail
cd "$(dirname "$0")/../frontend"
command -v npm >/dev/null || {
  echo "build-dashboard: npm is not installed (Node >= 20.19 is needed)" >&2
  exit 1
}
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== dashboard: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
stale=""
if [ ! -f dist/index.html ]; then
  stale=yes
elif [ -n "$(find src scripts index.html package.json package-lock.json vite.config.ts tsconfig.json tsconfig.app.json tsconfig.test.json ../api/openapi.json -newer dist/index.html -print -quit)" ]; then
  stale=yes
fi
if [ -n "$stale" ]; then
  echo "== dashboard: npm run build"
  npm run build --silent
fi
