#!/usr/bin/env python3
"""Replays, byte for byte, the requests Fastly's Go client (go-fastly) and CLI send, as
written down in tests/compat/GO_SHAPES.md, against a live tokenpanel server, and checks
each answer the way the Go client decodes it (status it accepts, fields and their types).

The Go client cannot be installed here; this is its stand-in until the same requests
become Rust integration tests. Standard library only. Same environment and flags as the
Python suite (TOKENPANEL_URL, COMPAT_LOGIN, COMPAT_PASSWORD, COMPAT_TOKEN; --keep-going).
"""

import datetime
import gzip
import http.client
import json
import os
import re
import sys
import urllib.parse

GO_UA = "FastlyGo/9.2.2 (+github.com/fastly/go-fastly; go1.22.5)"
CLI_UA = "FastlyCLI/v10.17.0"
FORM = "application/x-www-form-urlencoded"
BULK = "application/vnd.api+json; ext=bulk"
# go-fastly's checkResp: anything else is an error.
GO_OK = {200, 201, 202, 204, 205, 206}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
# google/jsonapi's iso8601 attributes: exactly this layout, nothing else.
JSONAPI_ISO8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Fail(message)


def go_form(fields):
    """url.Values.Encode(): keys sorted, QueryEscape on keys and values."""
    pairs = []
    for key in sorted(fields):
        values = fields[key] if isinstance(fields[key], list) else [fields[key]]
        for value in values:
            pairs.append(urllib.parse.quote_plus(key, safe="-_.~") + "="
                         + urllib.parse.quote_plus(value, safe="-_.~"))
    return "&".join(pairs)


# Weak decoding as mapstructure does it in go-fastly (WeaklyTypedInput, the RFC 3339 time
# hook): absent and null are fine for pointer fields; a present value must convert.
def go_time(value, where):
    if value is None:
        return
    expect(isinstance(value, str), f"{where}: a time must be a string, got {value!r}")
    expect(RFC3339.match(value) or re.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", value),
           f"{where}: {value!r} is neither RFC 3339 nor '2006-01-02 15:04:05'")


def go_string(value, where):
    expect(value is None or isinstance(value, (str, int, float, bool)),
           f"{where}: expected a string, got {value!r}")


def go_bool(value, where):
    expect(value is None or isinstance(value, (bool, int)) or value in ("true", "false", "1", "0", ""),
           f"{where}: expected a bool, got {value!r}")


def go_strings(value, where):
    if value is None or isinstance(value, str):
        return
    expect(isinstance(value, list) and all(isinstance(v, str) for v in value),
           f"{where}: expected a list of strings, got {value!r}")


TOKEN_FIELDS = {"access_token": go_string, "created_at": go_time, "expires_at": go_time,
                "ip": go_string, "last_used_at": go_time, "name": go_string,
                "scope": go_string, "services": go_strings, "id": go_string,
                "user_id": go_string}
AUTOMATION_FIELDS = dict(TOKEN_FIELDS, role=go_string, tls_access=go_bool,
                         customer_id=go_string)
USER_FIELDS = {"created_at": go_time, "customer_id": go_string, "deleted_at": go_time,
               "email_hash": go_string, "id": go_string, "limit_services": go_bool,
               "locked": go_bool, "login": go_string, "name": go_string,
               "require_new_password": go_bool, "role": go_string,
               "two_factor_auth_enabled": go_bool, "two_factor_setup_required": go_bool,
               "updated_at": go_time}
SERVICE_FIELDS = {"version": lambda v, w: expect(v is None or isinstance(v, int), f"{w}: {v!r}"),
                  "comment": go_string, "created_at": go_time, "customer_id": go_string,
                  "deleted_at": go_time, "id": go_string, "name": go_string,
                  "type": go_string, "updated_at": go_time,
                  "versions": lambda v, w: expect(v is None or isinstance(v, list), f"{w}: {v!r}")}


def go_struct(value, fields, where):
    expect(isinstance(value, dict), f"{where}: expected an object, got {str(value)[:80]}")
    for name, check in fields.items():
        check(value.get(name), f"{where}.{name}")


def main():
    args = set(sys.argv[1:])
    keep_going = "--keep-going" in args
    base = urllib.parse.urlparse(os.environ["TOKENPANEL_URL"])
    if base.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"TOKENPANEL_URL must be a loopback address, not {base.hostname}")
    login = os.environ["COMPAT_LOGIN"]
    password = os.environ["COMPAT_PASSWORD"]
    bootstrap = os.environ["COMPAT_TOKEN"]
    results = {"passed": 0, "failed": 0, "skipped": 0}
    log = []
    state = {}

    def send(method, path, headers, body=None, ua=GO_UA):
        """One request as Go's net/http writes it: Host, User-Agent, Content-Length for a
        body (and 0 for a bodiless POST/PUT/PATCH), the caller's headers, and the
        Accept-Encoding: gzip the transport adds."""
        connection = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
        data = body.encode() if isinstance(body, str) else body
        connection.putrequest(method, path, skip_accept_encoding=True)
        sent = [("User-Agent", ua)]
        if data is not None:
            sent.append(("Content-Length", str(len(data))))
        elif method in ("POST", "PUT", "PATCH"):
            sent.append(("Content-Length", "0"))
        sent.extend(headers)
        sent.append(("Accept-Encoding", "gzip"))
        for name, value in sent:
            connection.putheader(name, value)
        connection.endheaders(data)
        response = connection.getresponse()
        raw = response.read()
        if response.getheader("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8", "replace")
        connection.close()
        entry = {"method": method, "path": path, "headers": sent, "body": body,
                 "status": response.status, "text": text,
                 "response_headers": dict(response.getheaders())}
        log.append(entry)
        return entry

    def key(token=None):
        return [("Fastly-Key", token or bootstrap)]

    def json_of(entry):
        try:
            return json.loads(entry["text"])
        except ValueError:
            raise Fail(f"the body is not JSON: {entry['text'][:120]!r}")

    def ok(entry, statuses=GO_OK):
        expect(entry["status"] in statuses,
               f"HTTP {entry['status']}; the Go client accepts {sorted(statuses)}")

    def need(*keys):
        missing = [k for k in keys if k not in state]
        if missing:
            raise Skip(f"needs {', '.join(missing)} from an earlier check")
        return [state[k] for k in keys]

    def describe():
        if not log:
            return "    (no request was sent)"
        e = log[-1]
        headers = [(n, "<token>" if n == "Fastly-Key" else v) for n, v in e["headers"]]
        lines = [f"    request:  {e['method']} {e['path']}",
                 f"    headers:  {headers}"]
        if e["body"] is not None:
            lines.append("    body:     " + re.sub(r"password=[^&]*", "password=<password>",
                                                  e["body"]))
        text = e["text"].strip().replace("\n", " ")
        lines.append(f"    response: {e['status']} {text[:400]}{'…' if len(text) > 400 else ''}")
        return "\n".join(lines)

    def finish():
        print(f"go: {results['passed']} passed, {results['failed']} failed, "
              f"{results['skipped']} skipped")
        sys.exit(1 if results["failed"] else 0)

    def check(name, fn):
        log.clear()
        try:
            fn()
        except Skip as e:
            results["skipped"] += 1
            print(f"SKIP {name}: {e}", flush=True)
            return
        except (Fail, KeyError, TypeError, ValueError) as e:
            results["failed"] += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            print(describe(), flush=True)
            if not keep_going:
                finish()
            return
        results["passed"] += 1
        print(f"PASS {name}", flush=True)

    me = json.loads(send("GET", "/tokens/self", key())["text"])
    state.update(customer_id=me["customer_id"], user_id=me["user_id"], bootstrap_id=me["id"])
    services = json.loads(send("GET", "/service", key())["text"])
    if services:
        state["service_id"] = services[0]["id"]
    expires = (datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
               + datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # --- CreateToken: POST /sudo, then POST /tokens, the same form both times ---------

    def create_token(with_username):
        def run():
            (service_id,) = need("service_id")
            fields = {"expires_at": expires, "name": "go compat", "password": password,
                      "scope": "global purge_select", "services[]": [service_id]}
            if with_username:
                fields["username"] = login
            body = go_form(fields)
            headers = key() + [("Content-Type", FORM)]
            ok(send("POST", "/sudo", headers, body))
            entry = send("POST", "/tokens", headers, body)
            ok(entry)
            token = json_of(entry)
            go_struct(token, TOKEN_FIELDS, "token")
            expect(token.get("access_token"), "no access_token")
            expect(token.get("services") == [service_id], f"services {token.get('services')!r}")
            expect(token.get("scope") == "global purge_select", f"scope {token.get('scope')!r}")
            expect(token.get("expires_at") == expires, f"expires_at {token.get('expires_at')!r}")
            state.setdefault("created", []).append(token)
        return run

    check("CreateToken as the CLI sends it (POST /sudo + POST /tokens, no username)",
          create_token(False))
    check("CreateToken with username (POST /sudo + POST /tokens)", create_token(True))

    # --- Reading tokens ---------------------------------------------------------------

    def token_self():
        entry = send("GET", "/tokens/self", key())
        ok(entry)
        go_struct(json_of(entry), TOKEN_FIELDS, "token")

    check("GetTokenSelf (GET /tokens/self)", token_self)

    def list_tokens():
        entry = send("GET", "/tokens", key())
        ok(entry)
        tokens = json_of(entry)
        expect(isinstance(tokens, list), "not a JSON array")
        for i, t in enumerate(tokens):
            go_struct(t, TOKEN_FIELDS, f"tokens[{i}]")

    check("ListTokens (GET /tokens)", list_tokens)

    def list_customer_tokens():
        entry = send("GET", f"/customer/{state['customer_id']}/tokens", key())
        ok(entry)
        tokens = json_of(entry)
        expect(isinstance(tokens, list), "not a JSON array")
        for i, t in enumerate(tokens):
            go_struct(t, TOKEN_FIELDS, f"tokens[{i}]")

    check("ListCustomerTokens (GET /customer/{id}/tokens)", list_customer_tokens)

    # --- Users and whoami ---------------------------------------------------------------

    def current_user():
        entry = send("GET", "/current_user", key())
        ok(entry)
        go_struct(json_of(entry), USER_FIELDS, "user")

    check("GetCurrentUser (GET /current_user)", current_user)

    def get_user():
        entry = send("GET", f"/user/{state['user_id']}", key())
        ok(entry)
        go_struct(json_of(entry), USER_FIELDS, "user")

    check("GetUser (GET /user/{id})", get_user)

    def customer_users():
        entry = send("GET", f"/customer/{state['customer_id']}/users", key())
        ok(entry)
        users = json_of(entry)
        expect(isinstance(users, list), "not a JSON array")
        for i, u in enumerate(users):
            go_struct(u, USER_FIELDS, f"users[{i}]")

    check("ListCustomerUsers (GET /customer/{id}/users)", customer_users)

    def whoami():
        entry = send("GET", "/verify", key() + [("Accept", "application/json")], ua=CLI_UA)
        ok(entry, {200})
        body = json_of(entry)
        # encoding/json into VerifyResponse: each part an object of strings.
        for part, names in (("customer", ("id", "name")), ("user", ("id", "name", "login")),
                            ("token", ("id", "name", "created_at", "expires_at", "scope"))):
            expect(isinstance(body.get(part), dict), f"{part} is not an object")
            for n in names:
                v = body[part].get(n)
                expect(v is None or isinstance(v, str), f"{part}.{n} is not a string: {v!r}")
        expect(isinstance(body.get("services"), dict)
               and all(isinstance(v, str) for v in body["services"].values()),
               "services is not an object of id: name")
        expect(body["token"]["id"] == state["bootstrap_id"], "token.id")

    check("CLI whoami (GET /verify)", whoami)

    # --- Services and purges ------------------------------------------------------------

    def list_services():
        entry = send("GET", "/service?page=1&per_page=100", key())
        ok(entry)
        listed = json_of(entry)
        expect(isinstance(listed, list), "not a JSON array")
        for i, s in enumerate(listed):
            go_struct(s, SERVICE_FIELDS, f"services[{i}]")

    check("ListServices (GET /service?page=1&per_page=100)", list_services)

    def get_service():
        (service_id,) = need("service_id")
        entry = send("GET", f"/service/{service_id}", key())
        ok(entry)
        go_struct(json_of(entry), SERVICE_FIELDS, "service")

    check("GetService (GET /service/{id})", get_service)

    def service_details():
        (service_id,) = need("service_id")
        entry = send("GET", f"/service/{service_id}/details", key())
        ok(entry)
        detail = json_of(entry)
        go_struct(detail, dict(SERVICE_FIELDS, version=lambda v, w: expect(
            v is None or isinstance(v, dict), f"{w}: a Version object or null, got {v!r}")),
            "detail")

    check("GetServiceDetails (GET /service/{id}/details)", service_details)

    def purge_all():
        (service_id,) = need("service_id")
        entry = send("POST", f"/service/{service_id}/purge_all", key())
        ok(entry)
        go_struct(json_of(entry), {"id": go_string, "status": go_string}, "purge")

    check("PurgeAll (POST /service/{id}/purge_all)", purge_all)

    def purge_key():
        (service_id,) = need("service_id")
        entry = send("POST", f"/service/{service_id}/purge/go-compat",
                     key() + [("Fastly-Soft-Purge", "1")])
        ok(entry)
        go_struct(json_of(entry), {"id": go_string, "status": go_string}, "purge")

    check("PurgeKey, soft (POST /service/{id}/purge/{key})", purge_key)

    def purge_keys():
        (service_id,) = need("service_id")
        entry = send("POST", f"/service/{service_id}/purge",
                     key() + [("Surrogate-Key", "go-a go-b")])
        ok(entry)
        answer = json_of(entry)
        expect(isinstance(answer, dict) and set(answer) == {"go-a", "go-b"}
               and all(isinstance(v, str) for v in answer.values()),
               f"expected a map of key to purge id, got {answer!r}")

    check("PurgeKeys (POST /service/{id}/purge, Surrogate-Key header)", purge_keys)

    def write_headers():
        (service_id,) = need("service_id")
        entry = send("POST", f"/service/{service_id}/purge_all", key())
        ok(entry)
        headers = {k.lower(): v for k, v in entry["response_headers"].items()}
        for name in ("fastly-ratelimit-remaining", "fastly-ratelimit-reset"):
            expect(re.match(r"^\d+$", headers.get(name, "")), f"no {name} header")

    check("rate-limit headers read after a write", write_headers)

    # --- Events (google/jsonapi) ------------------------------------------------------

    def events():
        (service_id,) = need("service_id")
        query = go_form({"filter[event_type]": "service.purge_all",
                         "filter[service_id]": service_id, "page[size]": "1"})
        entry = send("GET", f"/events?{query}", key())
        ok(entry)
        body = json_of(entry)
        expect(isinstance(body.get("data"), list) and body["data"], "no events in data")
        for i, item in enumerate(body["data"]):
            expect(item.get("type") == "event", f"data[{i}].type {item.get('type')!r}")
            attributes = item.get("attributes", {})
            created = attributes.get("created_at")
            expect(created is None or JSONAPI_ISO8601.match(created),
                   f"data[{i}].attributes.created_at {created!r} is not 2006-01-02T15:04:05Z")
        # With page[number] unset the client follows links.next with a plain GET of the
        # URL as given: it must be absolute.
        following = (body.get("links") or {}).get("next")
        if following:
            target = urllib.parse.urlparse(following)
            expect(target.scheme in ("http", "https") and target.netloc,
                   f"links.next {following!r} is not an absolute URL")

    check("GetAPIEvents (GET /events, filtered, page[size]=1)", events)

    # --- Automation tokens ----------------------------------------------------------------

    def create_automation():
        (service_id,) = need("service_id")
        form = go_form({"expires_at": expires, "name": "go automation", "password": password,
                        "role": "engineer", "scope": "global", "services[]": [service_id]})
        ok(send("POST", "/sudo", key() + [("Content-Type", FORM)], form))
        body = json.dumps({"expires_at": expires, "name": "go automation", "role": "engineer",
                           "scope": "global", "services": [service_id], "tls_access": False},
                          separators=(",", ":"))
        entry = send("POST", "/automation-tokens",
                     key() + [("Accept", "application/json"), ("Content-Type", "application/json")],
                     body)
        ok(entry)
        token = json_of(entry)
        go_struct(token, AUTOMATION_FIELDS, "automation token")
        expect(token.get("access_token"), "no access_token")
        state["automation_id"] = token["id"]

    check("CreateAutomationToken (POST /sudo form + POST /automation-tokens JSON)",
          create_automation)

    def list_automation():
        (automation_id,) = need("automation_id")
        entry = send("GET", "/automation-tokens?page=1&per_page=100", key())
        ok(entry)
        body = json_of(entry)
        # Decoded into []*AutomationTokenPaginator: one {data, meta} object (a single
        # object weakly becomes a one-element slice). A bare array decodes each token as
        # a paginator with no data: zero tokens, silently.
        expect(isinstance(body, dict) and isinstance(body.get("data"), list),
               "expected {\"data\": [...], \"meta\": {...}}")
        expect(any(t.get("id") == automation_id for t in body["data"]), "not listed")

    check("ListAutomationTokens (GET /automation-tokens?page=1&per_page=100)", list_automation)

    def get_automation():
        (automation_id,) = need("automation_id")
        entry = send("GET", f"/automation-tokens/{automation_id}", key())
        ok(entry)
        go_struct(json_of(entry), AUTOMATION_FIELDS, "automation token")

    check("GetAutomationToken (GET /automation-tokens/{id})", get_automation)

    def delete_automation():
        (automation_id,) = need("automation_id")
        ok(send("DELETE", f"/tokens/{automation_id}", key()), {204})

    check("DeleteAutomationToken (DELETE /tokens/{id})", delete_automation)

    # --- Revocation ----------------------------------------------------------------------

    def delete_token():
        # Every token made above goes: the suites after this one share the superuser,
        # and the Python client cannot read a "global purge_select" token in a list.
        for token in need("created")[0]:
            ok(send("DELETE", f"/tokens/{token['id']}", key()), {204})

    check("DeleteToken (DELETE /tokens/{id}, exactly 204)", delete_token)

    def plain_token(name):
        entry = send("POST", "/tokens", [("Content-Type", FORM)],
                     go_form({"username": login, "password": password, "name": name}))
        ok(entry)
        return json_of(entry)

    def batch_delete():
        ids = [plain_token("go batch")["id"] for _ in range(2)]
        body = json.dumps({"data": [{"type": "token", "id": i} for i in ids]},
                          separators=(",", ":")) + "\n"
        ok(send("DELETE", "/tokens", key() + [("Accept", BULK), ("Content-Type", BULK)], body))
        listed = {t["id"] for t in json_of(send("GET", "/tokens", key()))}
        expect(not listed & set(ids), "a token survived the bulk deletion")

    check("BatchDeleteTokens (DELETE /tokens, JSON:API bulk)", batch_delete)

    def delete_self():
        token = plain_token("go self")["access_token"]
        ok(send("DELETE", "/tokens/self", key(token)), {204})
        expect(send("GET", "/tokens/self", key(token))["status"] == 401,
               "the deleted token still works")

    check("DeleteTokenSelf (DELETE /tokens/self, exactly 204)", delete_self)

    # --- Errors ---------------------------------------------------------------------------

    def unknown_path():
        entry = send("GET", "/go-compat-no-such-path", key())
        expect(entry["status"] == 404, f"HTTP {entry['status']}")
        body = json_of(entry)
        expect(isinstance(body, dict) and body.get("msg"), "no msg")

    check("unknown path with Fastly-Key answers JSON 404", unknown_path)

    finish()


if __name__ == "__main__":
    main()
