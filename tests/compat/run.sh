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

suite_flags=()
go_flags=()
if [[ "${COMPAT_KEEP_GOING:-}" == 1 ]]; then
  suite_flags+=(--keep-going)
  go_flags+=(--keep-going)
fi
[[ "${COMPAT_INVITATIONS:-}" == 1 ]] && suite_flags+=(--with-invitations)
only="${COMPAT_ONLY:-}"

source "$root/tests/lib/server.sh"
server_build "${COMPAT_RELEASE:-}"
server_prepare compat
export LOG_LEVEL="${LOG_LEVEL:-warn}"
unset FASTLY_API_TOKEN FASTLY_API_KEY

echo "== seeding the demo account"
"$server_bin" demo > "$server_work/demo.txt"
read -r COMPAT_LOGIN COMPAT_PASSWORD < <(
  awk '$1 == "superuser" && $3 == "password:" { print $2, $4; exit }' "$server_work/demo.txt")
if [[ -z "${COMPAT_LOGIN:-}" || -z "${COMPAT_PASSWORD:-}" ]]; then
  echo "cannot read the superuser's login from 'tokenpanel demo':" >&2
  cat "$server_work/demo.txt" >&2
  exit 1
fi
export COMPAT_LOGIN COMPAT_PASSWORD

server_start
export TOKENPANEL_URL="$server_url"

# Prints a new global token of the superuser named NAME, made with the plain form
# POST /tokens that tokenpanel documents.
new_token() {
  python3 - "$@" <<'PY'
import json, os, sys, urllib.error, urllib.parse, urllib.request
base = os.environ["TOKENPANEL_URL"]
form = urllib.parse.urlencode({
    "username": os.environ["COMPAT_LOGIN"], "password": os.environ["COMPAT_PASSWORD"],
    "name": sys.argv[1], "scope": "global"}).encode()
request = urllib.request.Request(base + "/tokens", data=form, headers={
    "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=30) as r:
        print(json.load(r)["access_token"])
except urllib.error.HTTPError as e:
    sys.exit(f"cannot make a bootstrap token: {e.code} {e.read()[:300]!r}")
PY
}

status=0
run_go() {
  echo "== Go client's requests replayed (tests/compat/GO_SHAPES.md)"
  local token
  token=$(new_token "compat go") || return 1
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
  token=$(new_token "compat python") || return 1
  COMPAT_TOKEN="$token" "$venv/bin/python" "$compat/python/suite.py" "${suite_flags[@]}"
}
run_node() {
  echo "== JavaScript client (npm fastly, tests/compat/node/package-lock.json)"
  (cd "$compat/node" && npm ci --no-audit --no-fund --loglevel=error) || return 1
  local token
  token=$(new_token "compat node") || return 1
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

server_finish $status
