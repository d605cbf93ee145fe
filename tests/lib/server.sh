# Sourced by tests/compat/run.sh and tests/fuzz/run.sh (from the repository's root): the
# one way these scripts build tokenpanel, run it against a temporary SQLite database on a
# free loopback port, wait until it answers and stop it when the script exits.
#
#   server_build RELEASE   the debug binary `cargo test` builds for the integration tests
#                          (RELEASE=1: cargo build --release); sets server_bin
#   server_prepare NAME    a temporary directory (server_work, removed on exit) and the
#                          environment `tokenpanel` reads: DATABASE_URL (NAME.db in it),
#                          SECRET_KEY; server_bin then seeds or serves that database
#   server_start           `tokenpanel serve` on a free loopback port; sets server_url and
#                          returns once /readyz answers 200 (fails, with the log's tail,
#                          after 30 seconds or when the server exits)
#   server_finish STATUS   exits with STATUS, made 1 when the server stopped during the
#                          run; prints the log's tail when the result is a failure

server_bin=
server_work=
server_pid=
server_url=

server_build() {
  local target_dir
  target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  if [[ "${1:-}" == 1 ]]; then
    echo "== building tokenpanel (release)"
    cargo build --locked --release --bin tokenpanel
    server_bin="$target_dir/release/tokenpanel"
  else
    # The binary the integration tests run, built with their features: right after
    # `cargo test` (as in .ci/run) this builds nothing, where a plain `cargo build`
    # would rebuild much of the tree with other features.
    echo "== building tokenpanel (debug, as the integration tests do)"
    cargo test --locked --no-run --test integration
    server_bin="$target_dir/debug/tokenpanel"
  fi
}

server_cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ -n "$server_work" ]]; then
    rm -rf "$server_work"
  fi
}

server_prepare() {
  server_work=$(mktemp -d)
  trap server_cleanup EXIT
  export DATABASE_URL="sqlite://$server_work/$1.db"
  SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  export SECRET_KEY
}

server_start() {
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  server_url="http://127.0.0.1:$port"
  echo "== starting tokenpanel on $server_url"
  BIND="127.0.0.1:$port" "$server_bin" serve > "$server_work/server.log" 2>&1 &
  server_pid=$!
  if ! SERVER_URL="$server_url" SERVER_PID="$server_pid" python3 - <<'PY'; then
import os, sys, time, urllib.error, urllib.request
for _ in range(300):
    try:
        with urllib.request.urlopen(os.environ["SERVER_URL"] + "/readyz", timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except (urllib.error.URLError, ConnectionError, OSError):
        pass
    try:
        os.kill(int(os.environ["SERVER_PID"]), 0)
    except ProcessLookupError:
        sys.exit("tokenpanel exited before answering /readyz")
    time.sleep(0.1)
sys.exit("tokenpanel did not answer /readyz within 30 seconds")
PY
    tail -n 50 "$server_work/server.log" >&2
    return 1
  fi
}

server_finish() {
  local status=$1
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "tokenpanel stopped during the run" >&2
    status=1
  fi
  if [[ $status != 0 ]]; then
    echo "== last lines of the server log"
    tail -n 40 "$server_work/server.log"
  fi
  exit "$status"
}
