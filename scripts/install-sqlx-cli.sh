#!/usr/bin/env bash
# Installs sqlx-cli (`cargo sqlx`, `sqlx`) into .tools/bin, once, at exactly the sqlx version
# Cargo.lock pins (the CLI's `prepare` must write the query cache the macros of that version
# read). Postgres only, rustls, the CLI's own lock file. Used by scripts/test.sh (the
# `cargo sqlx prepare --check` stage) and by hand before `cargo sqlx prepare --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
version=$(awk '/^name = "sqlx"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$version" ]; then
  echo "install-sqlx-cli: no sqlx package in Cargo.lock" >&2
  exit 1
fi
bin="$repo/.tools/bin/cargo-sqlx"
# `cargo sqlx --version` prints e.g. "sqlx-cli-sqlx 0.9.0".
if [ -x "$bin" ] && [ "$("$bin" sqlx --version 2>/dev/null | awk '{ print $NF }')" = "$version" ]; then
  exit 0
fi
echo "== installing sqlx-cli $version into .tools (cargo install, postgres + rustls)"
# Its own temporary build directory, not the workspace's target: different features.
env -u CARGO_TARGET_DIR cargo install sqlx-cli --version "=$version" --locked \
  --no-default-features --features postgres,rustls --root "$repo/.tools" --quiet
"$bin" sqlx --version
