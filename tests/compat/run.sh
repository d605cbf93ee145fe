#!/usr/bin/env bash
# Fastly's official Python and JavaScript clients, and a replay of its Go client's exact
# requests, against a live tokenpanel server.
#
# Builds the server, seeds a demo account (one user per role, three services) in a
# temporary SQLite database, starts the server on a free loopback port, runs
# tests/compat/go/replay.py, tests/compat/python/suite.py and tests/compat/node/suite.js
# (each with a fresh token of its own), stops the server and exits non-zero if any failed. Downloads nothing but the pinned client packages
# (pip install --require-hashes, npm ci) from their registries.
#
# Settings (environment):
#   COMPAT_RELEASE=1      build and run the release binary (default: debug)
#   COMPAT_KEEP_GOING=1   run every check instead of stopping at each suite's first failure
#   COMPAT_INVITATIONS=1  add the /invitations checks
#   COMPAT_ONLY=go|python|node   run one suite
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
compat="$root/tests/compat"

profile=debug
build_flags=()
if [[ "${COMPAT_RELEASE:-}" == 1 ]]; then
  profile=release
  build_flags=(--release)
fi
suite_flags=()
go_flags=()
if [[ "${COMPAT_KEEP_GOING:-}" == 1 ]]; then
  suite_flags+=(--keep-going)
  go_flags+=(--keep-going)
fi
[[ "${COMPAT_INVITATIONS:-}" == 1 ]] && suite_flags+=(--with-invitations)
only="${COMPAT_ONLY:-}"

echo "== building tokenpanel ($profile)"
cargo build --locked "${build_flags[@]}" --bin tokenpanel
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/$profile/tokenpanel"

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

export DATABASE_URL="sqlite://$work/compat.db"
export SECRET_KEY
SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export LOG_LEVEL="${LOG_LEVEL:-warn}"
unset FASTLY_API_TOKEN FASTLY_API_KEY

echo "== seeding the demo account"
"$bin" demo > "$work/demo.txt"
read -r COMPAT_LOGIN COMPAT_PASSWORD < <(
  awk '$1 == "superuser" && $3 == "password:" { print $2, $4; exit }' "$work/demo.txt")
if [[ -z "${COMPAT_LOGIN:-}" || -z "${COMPAT_PASSWORD:-}" ]]; then
  echo "cannot read the superuser's login from 'tokenpanel demo':" >&2
  cat "$work/demo.txt" >&2
  exit 1
fi
export COMPAT_LOGIN COMPAT_PASSWORD

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export TOKENPANEL_URL="http://127.0.0.1:$port"
echo "== starting tokenpanel on $TOKENPANEL_URL"
BIND="127.0.0.1:$port" "$bin" serve > "$work/server.log" 2>&1 &
server_pid=$!

# Waits for /readyz (database reachable); with `token NAME` instead, prints a new global token of the
# superuser, made with the plain form POST /tokens that tokenpanel documents.
helper() {
  python3 - "$@" <<'PY'
import json, os, sys, time, urllib.error, urllib.parse, urllib.request
base = os.environ["TOKENPANEL_URL"]
if sys.argv[1] == "wait":
    for _ in range(300):
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                if r.status == 200:
                    sys.exit(0)
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    sys.exit("tokenpanel did not answer /readyz within 30 seconds")
form = urllib.parse.urlencode({
    "username": os.environ["COMPAT_LOGIN"], "password": os.environ["COMPAT_PASSWORD"],
    "name": sys.argv[2], "scope": "global"}).encode()
request = urllib.request.Request(base + "/tokens", data=form, headers={
    "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=30) as r:
        print(json.load(r)["access_token"])
except urllib.error.HTTPError as e:
    sys.exit(f"cannot make a bootstrap token: {e.code} {e.read()[:300]!r}")
PY
}
if ! helper wait; then
  tail -n 50 "$work/server.log" >&2
  exit 1
fi

status=0
run_go() {
  echo "== Go client's requests replayed (tests/compat/GO_SHAPES.md)"
  local token
  token=$(helper token "compat go") || return 1
  COMPAT_TOKEN="$token" python3 "$compat/go/replay.py" "${go_flags[@]}"
}
run_python() {
  echo "== Python client (PyPI fastly, tests/compat/python/requirements.txt)"
  local venv="$compat/python/.venv"
  local stamp="$venv/requirements.sha256"
  local want
  want=$(sha256sum "$compat/python/requirements.txt" | cut -d' ' -f1)
  if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
      -r "$compat/python/requirements.txt" || return 1
    echo "$want" > "$stamp"
  fi
  local token
  token=$(helper token "compat python") || return 1
  COMPAT_TOKEN="$token" "$venv/bin/python" "$compat/python/suite.py" "${suite_flags[@]}"
}
run_node() {
  echo "== JavaScript client (npm fastly, tests/compat/node/package-lock.json)"
  (cd "$compat/node" && npm ci --no-audit --no-fund --loglevel=error) || return 1
  local token
  token=$(helper token "compat node") || return 1
  COMPAT_TOKEN="$token" node "$compat/node/suite.js" "${suite_flags[@]}"
}
if [[ -z "$only" || "$only" == go ]]; then
  run_go || status=1
fi
if [[ -z "$only" || "$only" == python ]]; then
  run_python || status=1
fi
if [[ -z "$only" || "$only" == node ]]; then
  run_node || status=1
fi

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "tokenpanel stopped during the run" >&2
  status=1
fi
if [[ $status != 0 ]]; then
  echo "== last lines of the server log"
  tail -n 30 "$work/server.log"
fi
exit $status
