#!/usr/bin/env bash
# API benchmark: tokenpanel's token-authenticated API against a bare axum handler,
# measured in one run on this machine (the servers and wrk share its cores).
#
#   bare       examples/bare_axum.rs: axum "ok" on the same axum, hyper and tokio, no
#              middleware: the reference every ratio is taken against, measured right
#              before each database's runs
#   healthz    tokenpanel GET /healthz: the whole middleware stack, no database
#   self       tokenpanel GET /tokens/self with one Fastly-Key (the verified-token cache)
#   all keys   GET /tokens/self cycling through every seeded token (TOKENS of them): the
#              cache fills up; then the RSS after load is read
#   nolog      self again, on a server started with ACCESS_LOG=off: the price of the
#              access-log line
#
# Every run also reports the server's CPU time per request (user + system, read from
# /proc): on a machine whose other load moves the requests/s, it is the steadier measure
# of the server's own work.
#
# each of the tokenpanel runs on SQLite and on PostgreSQL (a fresh database made on the
# server of BENCH_PG_URL and dropped at the end; PG=0 skips it), each database seeded
# with TOKENS tokens (examples/bench_seed.rs).
#
# Goals (issue 14): self >= 0.9x the bare handler's requests/s and p99 < 2 ms at 32
# connections, on both databases; RSS idle < 30 MB, and < 60 MB after load with
# 100,000 tokens.
#
# Needs wrk (apt-get install -y wrk) and, for PostgreSQL, psql. Settings: CONNECTIONS
# (32), THREADS (1), DURATION (10s), ALL_DURATION (20s), TOKENS (100000), PORT (3900;
# the bare handler uses PORT+1), BENCH_PG_URL (postgres://postgres@127.0.0.1:5432/postgres),
# PG (1).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
DURATION=${DURATION:-10s}
ALL_DURATION=${ALL_DURATION:-20s}
TOKENS=${TOKENS:-100000}
PORT=${PORT:-3900}
BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG=${PG:-1}
TARGET=${CARGO_TARGET_DIR:-target}
base="http://127.0.0.1:$PORT"
bare_base="http://127.0.0.1:$((PORT + 1))"

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }

work=$(mktemp -d)
server=""
pg_db=""
stop() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
  fi
}
cleanup() {
  stop
  if [ -n "$pg_db" ]; then
    psql -q "$BENCH_PG_URL" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Separate builds: the examples need the test kit (a feature of dev builds), and the
# server measured must be the plain release binary.
cargo build --release --quiet --bin tokenpanel
cargo build --release --quiet --example bench_seed --example bare_axum

wait_for() {
  for _ in $(seq 1 300); do
    curl -fs "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "nothing answers $1" >&2
  return 1
}
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
rps() { awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$1"; }
# wrk prints latencies as 812.00us, 3.41ms or 1.02s; in milliseconds:
ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v } else { sub(/s$/, "", v); printf "%.2f", v * 1000 } }'; }
p50() { ms "$(awk '$1 == "50%" {print $2}' "$1")"; }
p99() { ms "$(awk '$1 == "99%" {print $2}' "$1")"; }
bad() { awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' "$1"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# CPU time (user + system, in clock ticks) of a process so far.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# The server's CPU microseconds per request of a run: less at the mercy of the machine's
# other load than requests/s, since it counts the server's own work only.
cpu_us() { awk -v t="$2" -v n="$(awk '/requests in/ { print $1 }' "$1")" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.1f", t * 1000000 / hz / n; else printf "-" }'; }

# wrk NAME PID URL [wrk options…]: a run at CONNECTIONS connections against the server
# PID, saved as NAME (and its CPU per request as NAME.cpu).
measure() {
  local name=$1 pid=$2 url=$3
  shift 3
  local before
  before=$(ticks "$pid")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" >"$work/$name.txt"
  cpu_us "$work/$name.txt" "$(($(ticks "$pid") - before))" >"$work/$name.cpu"
  printf '  %-22s %9s req/s  p50 %6s ms  p99 %6s ms  %5s us CPU/req  %s\n' "$name" "$(rps "$work/$name.txt")" \
    "$(p50 "$work/$name.txt")" "$(p99 "$work/$name.txt")" "$(cat "$work/$name.cpu")" "$(bad "$work/$name.txt")"
}

cat >"$work/all.lua" <<'EOF'
-- GET /tokens/self with every seeded token in turn.
local keys = {}
for line in io.lines(os.getenv("KEYS")) do keys[#keys + 1] = line end
local i = 0
request = function()
  i = i % #keys + 1
  return wrk.format("GET", "/tokens/self", { ["Fastly-Key"] = keys[i] })
end
EOF

# bare NAME: the reference, measured right before the run it is compared with (this
# machine's load moves between runs; ratios are taken against the adjacent reference).
bare() {
  "$TARGET/release/examples/bare_axum" "127.0.0.1:$((PORT + 1))" >"$work/bare.log" 2>&1 &
  local pid=$!
  wait_for "$bare_base/"
  measure "$1" "$pid" "$bare_base/"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

echo "Load before: $(load) on $(nproc) cores"

# backend NAME DATABASE_URL: seed, serve, measure.
backend() {
  local name=$1 db=$2
  echo "== tokenpanel on $name: seeding $TOKENS tokens"
  KEYS_FILE="$work/keys-$name.txt" "$TARGET/release/examples/bench_seed" "$db" "$TOKENS" >"$work/seed-$name.env"
  # shellcheck disable=SC1090
  . "$work/seed-$name.env"
  # Seeding leaves PostgreSQL analysing and vacuuming 100,000 new rows: done before
  # anything is timed.
  case "$db" in postgres*) psql -q "$db" -c "VACUUM ANALYZE" >/dev/null ;; esac
  DATABASE_URL="$db" BIND="127.0.0.1:$PORT" SECRET_KEY="$(printf '%064d' 7)" \
    "$TARGET/release/tokenpanel" serve >"$work/server-$name.log" 2>&1 &
  server=$!
  wait_for "$base/readyz"
  curl -fs -H "Fastly-Key: $KEY" "$base/tokens/self" >/dev/null || {
    echo "the token does not work" >&2
    cat "$work/server-$name.log" >&2
    exit 1
  }
  sleep 1
  echo "$(rss_mb "$server")" >"$work/rss-idle-$name"
  bare "$name-bare"
  measure "$name-healthz" "$server" "$base/healthz"
  measure "$name-self" "$server" "$base/tokens/self" -H "Fastly-Key: $KEY"
  echo "$(rss_mb "$server")" >"$work/rss-self-$name"
  local before
  before=$(ticks "$server")
  KEYS="$work/keys-$name.txt" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$ALL_DURATION" --latency \
    -s "$work/all.lua" "$base/tokens/self" >"$work/$name-all.txt"
  cpu_us "$work/$name-all.txt" "$(($(ticks "$server") - before))" >"$work/$name-all.cpu"
  printf '  %-22s %9s req/s  p50 %6s ms  p99 %6s ms  %s\n' "$name-all-keys" "$(rps "$work/$name-all.txt")" \
    "$(p50 "$work/$name-all.txt")" "$(p99 "$work/$name-all.txt")" "$(bad "$work/$name-all.txt")"
  echo "$(rss_mb "$server")" >"$work/rss-load-$name"
  stop
  # The same server without its access-log line per request (ACCESS_LOG=off): what the
  # line costs on this machine, where the log is written on the cores that serve.
  DATABASE_URL="$db" BIND="127.0.0.1:$PORT" SECRET_KEY="$(printf '%064d' 7)" ACCESS_LOG=off \
    "$TARGET/release/tokenpanel" serve >"$work/server-$name-nolog.log" 2>&1 &
  server=$!
  wait_for "$base/readyz"
  measure "$name-self-nolog" "$server" "$base/tokens/self" -H "Fastly-Key: $KEY"
  stop
}

backend sqlite "sqlite://$work/bench.db"
backends=(sqlite)
if [ "$PG" = 1 ] && command -v psql >/dev/null && psql -q "$BENCH_PG_URL" -c "SELECT 1" >/dev/null 2>&1; then
  pg_db="tokenpanel_bench_$$"
  psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $pg_db" >/dev/null
  backend postgres "${BENCH_PG_URL%/*}/$pg_db"
  backends+=(postgres)
else
  echo "== PostgreSQL skipped (PG=0, no psql, or $BENCH_PG_URL unreachable)"
fi
echo "Load after: $(load)"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "Summary: $CONNECTIONS connections, $THREADS wrk thread(s), $DURATION per run ($ALL_DURATION for all keys), $TOKENS tokens seeded"
printf '  %-40s %9s %8s %8s %9s %11s\n' "" "req/s" "p50 ms" "p99 ms" "x bare" "CPU us/req"
row() { printf '  %-40s %9s %8s %8s %9s %11s\n' "$1" "$(rps "$2")" "$(p50 "$2")" "$(p99 "$2")" "$(ratio "$(rps "$2")" "$bare_rps")" "$(cat "${2%.txt}.cpu")"; }
for b in "${backends[@]}"; do
  bare_rps=$(rps "$work/$b-bare.txt")
  row "bare axum \"ok\" (before $b)" "$work/$b-bare.txt"
  row "$b GET /healthz" "$work/$b-healthz.txt"
  row "$b GET /tokens/self" "$work/$b-self.txt"
  row "$b GET /tokens/self, ACCESS_LOG=off" "$work/$b-self-nolog.txt"
  row "$b GET /tokens/self, all $TOKENS keys" "$work/$b-all.txt"
done
for b in "${backends[@]}"; do
  echo "  $b RSS: idle $(cat "$work/rss-idle-$b") MB, after the one-key run $(cat "$work/rss-self-$b") MB, after all $TOKENS keys $(cat "$work/rss-load-$b") MB (goals: < 30 idle, < 60 after load)"
done
for b in "${backends[@]}"; do
  echo "  $b: /tokens/self at $(ratio "$(rps "$work/$b-self.txt")" "$(rps "$work/$b-bare.txt")")x bare (goal >= 0.90), p99 $(p99 "$work/$b-self.txt") ms (goal < 2)"
done
