#!/usr/bin/env bash
# Soak test (not in CI): 10 minutes of mixed traffic (API reads, token creation and
# revocation, signed-in page views, sign-ins) against the release binary on
# PostgreSQL, at about 80% of the capacity it measures first; prints requests, errors
# and p99 latency per class and the server's RSS every 30 seconds (examples/soak.rs).
#
# Needs PostgreSQL (SOAK_DATABASE, default postgres://postgres@127.0.0.1:5432/postgres;
# a fresh database is made there and dropped after). Settings: SOAK_SECONDS (600),
# SOAK_REPORT_SECONDS (30), SOAK_WORKERS (16).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
# Two builds: the example needs the test kit; the server measured is the plain release.
cargo build --release --quiet --bin tokenpanel
cargo build --release --quiet --example soak
SOAK_BINARY="$(pwd)/$TARGET/release/tokenpanel" "$TARGET/release/examples/soak"
