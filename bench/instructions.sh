#!/usr/bin/env bash
# User-space instructions per request, counted by valgrind's callgrind: the bare axum
# handler (examples/bare_axum.rs), tokenpanel's GET /healthz (the whole middleware stack,
# no database) and GET /tokens/self (one key, from the verified-token cache), on SQLite.
# Unlike requests/s, the count does not move with the machine's other load, so a change
# to the request path can be judged by it on a busy machine: requests/s (bench/api.sh)
# says what a client sees, this says what the server's own code costs.
#
# Each server runs under callgrind; wrk warms it up for 2 s at 4 connections, the
# counters are zeroed, and a 4 s run is counted (its instructions / its requests).
# Kernel work (the socket calls) is not counted: it is the same for every server here.
#
# Needs valgrind and wrk (apt-get install -y valgrind wrk). Setting: PORT (3950; the bare
# handler uses PORT+1).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-3950}
TARGET=${CARGO_TARGET_DIR:-target}
for tool in valgrind callgrind_control wrk; do
  command -v "$tool" >/dev/null || { echo "$tool is needed: apt-get install -y valgrind wrk" >&2; exit 1; }
done

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# As in bench/api.sh: the measured server is the plain release binary, the examples
# need the test kit.
cargo build --release --quiet --bin tokenpanel
cargo build --release --quiet --example bench_seed --example bare_axum

KEYS_FILE="$work/keys.txt" "$TARGET/release/examples/bench_seed" "sqlite://$work/bench.db" 10 >"$work/seed.env"
# shellcheck disable=SC1091
. "$work/seed.env"

# count NAME URL [wrk options…]: instructions per request of the server running as $pid.
count() {
  local name=$1 url=$2
  shift 2
  for _ in $(seq 1 300); do
    curl -fs "$@" "$url" >/dev/null 2>&1 && break
    sleep 0.2
  done
  wrk -t1 -c4 -d2s "$@" "$url" >/dev/null
  callgrind_control --zero "$pid" >/dev/null 2>&1
  wrk -t1 -c4 -d4s "$@" "$url" >"$work/wrk.txt"
  callgrind_control --dump "$pid" >/dev/null 2>&1
  sleep 0.5
  local requests instructions dump
  requests=$(awk '/requests in/ { print $1 }' "$work/wrk.txt")
  # Each dump is a file of its own (PID.1, PID.2, …): the newest is this run's.
  dump=$(ls -t "$work"/callgrind.out.*.* | head -n 1)
  instructions=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
  rm -f "$dump"
  printf '  %-24s %8d instructions/request  (%s requests counted)\n' "$name" \
    "$((instructions / requests))" "$requests"
}

# serve COMMAND…: starts it under callgrind as $pid.
serve() {
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out.%p" "$@" >"$work/server.log" 2>&1 &
  pid=$!
}

stop() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
  rm -f "$work"/callgrind.out.*
}

echo "User-space instructions per request (callgrind; wrk -c4 on loopback):"
serve "$TARGET/release/examples/bare_axum" "127.0.0.1:$((PORT + 1))"
count "bare axum \"ok\"" "http://127.0.0.1:$((PORT + 1))/"
stop
DATABASE_URL="sqlite://$work/bench.db" BIND="127.0.0.1:$PORT" SECRET_KEY="$(printf '%064d' 7)" \
  serve "$TARGET/release/tokenpanel" serve
count "GET /healthz" "http://127.0.0.1:$PORT/healthz"
count "GET /tokens/self" "http://127.0.0.1:$PORT/tokens/self" -H "Fastly-Key: $KEY"
stop
