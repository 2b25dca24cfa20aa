#!/usr/bin/env bash
# Builds the simulator in release mode and runs its benchmark program; the program starts
# and stops its own simulator processes. Last line: RESULT {json}.
# Honours CARGO_TARGET_DIR (default ./target) and CARGO_BUILD_JOBS.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p urumi-sim --bins
exec "${CARGO_TARGET_DIR:-target}/release/bench-sim" "$@"
