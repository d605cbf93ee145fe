#!/usr/bin/env bash
# Fuzzes the JSON API against its own OpenAPI document with Schemathesis (PyPI, pinned
# in tests/fuzz/requirements.txt): a seeded server (the demo account, SQLite), a valid
# global token of its superuser, at most FUZZ_SECONDS (150 by default) of generated
# requests. Fails on any 5xx, any answer whose status, content type or body the
# document does not allow, and any request that takes longer than 10 seconds.
#
# Settings (environment):
#   FUZZ_SECONDS=N     the time budget (default 150)
#   FUZZ_SEED=N        Schemathesis' seed, to replay a run
#   FUZZ_RELEASE=1     build and run the release binary (default: debug)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
fuzz="$root/tests/fuzz"
seconds="${FUZZ_SECONDS:-150}"

echo "== Schemathesis (tests/fuzz/requirements.txt)"
venv="$fuzz/.venv"
stamp="$venv/requirements.sha256"
want=$(sha256sum "$fuzz/requirements.txt" | cut -d' ' -f1)
if [[ ! -x "$venv/bin/schemathesis" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    -r "$fuzz/requirements.txt"
  echo "$want" > "$stamp"
fi

source "$root/tests/lib/server.sh"
server_build "${FUZZ_RELEASE:-}"
server_prepare fuzz
export LOG_LEVEL=warn
# The fuzzer writes far more than a person: the hourly write budget would turn most
# of its requests into 429s.
export API_WRITES_PER_HOUR=100000000

echo "== seeding the demo account"
"$server_bin" demo > "$server_work/demo.txt"
read -r login password < <(
  awk '$1 == "superuser" && $3 == "password:" { print $2, $4; exit }' "$server_work/demo.txt")

server_start

# The fuzzer's token, and ids for tests/fuzz/schemathesis.toml: the account, a service,
# the superuser, and a second token for DELETE /tokens/{id} to revoke.
read -r token FUZZ_CUSTOMER FUZZ_SERVICE FUZZ_USER FUZZ_VICTIM < <(
  BASE="$server_url" LOGIN="$login" PASSWORD="$password" python3 - <<'PY'
import json, os, urllib.parse, urllib.request
base = os.environ["BASE"]
def create(name):
    form = urllib.parse.urlencode({"username": os.environ["LOGIN"], "password": os.environ["PASSWORD"],
                                   "name": name, "scope": "global"}).encode()
    with urllib.request.urlopen(urllib.request.Request(base + "/tokens", data=form), timeout=30) as r:
        return json.load(r)
def get(path, key):
    with urllib.request.urlopen(urllib.request.Request(base + path, headers={"Fastly-Key": key}), timeout=30) as r:
        return json.load(r)
token = create("fuzzer")
victim = create("revoked by the fuzzer")
user = get("/current_user", token["access_token"])
service = get("/service", token["access_token"])[0]
print(token["access_token"], user["customer_id"], service["id"], user["id"], victim["id"])
PY
)
export FUZZ_CUSTOMER FUZZ_SERVICE FUZZ_USER FUZZ_VICTIM

echo "== fuzzing $server_url/openapi.json for at most ${seconds}s"
seed_flags=()
[[ -n "${FUZZ_SEED:-}" ]] && seed_flags=(--seed "$FUZZ_SEED")
status=0
# DELETE /tokens/self and POST /tokens/self/rotate would end the fuzzer's own token and
# leave it nothing but 401s.
"$venv/bin/schemathesis" --config-file "$fuzz/schemathesis.toml" run "$server_url/openapi.json" \
  --header "Fastly-Key: $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --exclude-name 'DELETE /tokens/self' \
  --exclude-name 'POST /tokens/self/rotate' \
  --max-time "$seconds" \
  --request-timeout 10 \
  --workers 2 \
  --no-color \
  "${seed_flags[@]}" || status=$?

server_finish $status
