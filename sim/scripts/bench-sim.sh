#!/usr/bin/env bash
# Builds the simulator in release mode and runs its benchmark program; the program starts
# and stops its own simulator processes. Last line: RESULT {json}.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p urumi-sim --bins
exec ./target/release/bench-sim "$@"
