#!/usr/bin/env bash
# API benchmark: server and load on this machine, SQLite with 100,000 tokens.
#
#   1. GET /healthz                       (the floor: routing, middleware, one SELECT 1)
#   2. GET /tokens/self with a Fastly-Key  (goal: >= 60% of 1's requests/s, p99 < 10 ms)
#   3. GET /tokens/self while 32 connections sign in with a password (POST /sudo with a
#      Fastly-Key, username and password: an argon2id verification each, a 200 each time,
#      where POST /tokens would stop at the 100-token limit)  (goal: p99 < 20 ms)
#
# Needs wrk (apt-get install wrk). Settings: CONNECTIONS (32), DURATION (20s),
# THREADS (2), TOKENS (100000), PORT (3900), SELF_CONNECTIONS for run 3 (32).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-20s}
THREADS=${THREADS:-2}
TOKENS=${TOKENS:-100000}
PORT=${PORT:-3900}
SELF_CONNECTIONS=${SELF_CONNECTIONS:-32}
TARGET=${CARGO_TARGET_DIR:-target}
base="http://127.0.0.1:$PORT"

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Two builds: the example needs the test kit (a feature of dev builds); in one build the
# server measured here would be linked against the library with the kit.
cargo build --release --quiet --bin tokenpanel
cargo build --release --quiet --example bench_seed
db="sqlite://$work/bench.db"
echo "Seeding $TOKENS tokens..."
"$TARGET/release/examples/bench_seed" "$db" "$TOKENS" > "$work/seed.env"
# shellcheck disable=SC1091
. "$work/seed.env"
echo "Seeded $SEEDED tokens."

DATABASE_URL="$db" BIND="127.0.0.1:$PORT" LOG_LEVEL=warn "$TARGET/release/tokenpanel" serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fs "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs -H "Fastly-Key: $KEY" "$base/tokens/self" >/dev/null || { echo "the token does not work" >&2; cat "$work/server.log"; exit 1; }

cat > "$work/signin.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Fastly-Key"] = "$KEY"
wrk.body = "username=$EMAIL&password=$(printf %s "$PASSWORD" | sed 's/ /+/g')"
EOF

rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
p99() { awk '$1 == "99%" {print $2}' "$1"; }
p50() { awk '$1 == "50%" {print $2}' "$1"; }
errors() { awk '/Non-2xx|Socket errors/ {print}' "$1"; }
# wrk prints latencies as 812.00us, 3.41ms or 1.02s; in milliseconds:
ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 } else { sub(/s$/, "", v); print v * 1000 } }'; }

echo "Load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "== 1. GET /healthz, $CONNECTIONS connections, $DURATION"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$base/healthz" | tee "$work/healthz.txt"
echo "== 2. GET /tokens/self, $CONNECTIONS connections, $DURATION"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Fastly-Key: $KEY" "$base/tokens/self" | tee "$work/self.txt"

echo "== 3. GET /tokens/self ($SELF_CONNECTIONS connections) while 32 connections sign in with a password"
sign_in_seconds=$(( ${DURATION%s} + 6 ))
wrk -t1 -c32 -d"${sign_in_seconds}s" -s "$work/signin.lua" "$base/sudo" > "$work/signin.txt" &
signins=$!
sleep 3
wrk -t"$THREADS" -c"$SELF_CONNECTIONS" -d"$DURATION" --latency -H "Fastly-Key: $KEY" "$base/tokens/self" | tee "$work/mixed.txt"
wait "$signins"
echo "-- sign-ins during run 3:"
cat "$work/signin.txt"
echo "Load after: $(cut -d' ' -f1-3 /proc/loadavg)"

h_rps=$(rps "$work/healthz.txt"); s_rps=$(rps "$work/self.txt")
ratio=$(awk -v a="$s_rps" -v b="$h_rps" 'BEGIN { printf "%.0f", 100 * a / b }')
echo
echo "Summary ($SEEDED tokens in SQLite, $CONNECTIONS connections, $DURATION each)"
printf '  %-44s %10s req/s  p50 %8s  p99 %8s\n' "GET /healthz" "$h_rps" "$(p50 "$work/healthz.txt")" "$(p99 "$work/healthz.txt")"
printf '  %-44s %10s req/s  p50 %8s  p99 %8s\n' "GET /tokens/self" "$s_rps" "$(p50 "$work/self.txt")" "$(p99 "$work/self.txt")"
printf '  %-44s %10s req/s  p50 %8s  p99 %8s\n' "GET /tokens/self during 32 sign-ins" "$(rps "$work/mixed.txt")" "$(p50 "$work/mixed.txt")" "$(p99 "$work/mixed.txt")"
printf '  %-44s %10s req/s\n' "password sign-ins (POST /sudo)" "$(rps "$work/signin.txt")"
echo "  /tokens/self reaches ${ratio}% of /healthz (goal >= 60%)"
echo "  p99 /tokens/self: $(ms "$(p99 "$work/self.txt")") ms (goal < 10); during sign-ins: $(ms "$(p99 "$work/mixed.txt")") ms (goal < 20)"
for f in healthz self mixed signin; do
  e=$(errors "$work/$f.txt"); [ -n "$e" ] && echo "  WARNING ($f): $e"
done
exit 0
