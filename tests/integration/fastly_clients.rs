//! Fastly's own clients against tokenpanel (issue 15): the Go client's and CLI's
//! requests replayed byte for byte as tests/compat/GO_SHAPES.md writes them down (the
//! Go toolchain cannot be installed here), and the JavaScript and Python clients'
//! requests where only they reach an endpoint. Each answer is checked the way the
//! client decodes it. The clients themselves run in tests/compat/run.sh.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use tokenpanel::testkit::{
    on_both_databases, totp_code, Api, Reply, Role, ServicePermission, TestApp, Token, TokenSpec,
};

on_both_databases!(
    go_create_token_sends_one_form_to_sudo_then_tokens,
    go_create_token_with_two_factor_and_wrong_credentials,
    go_automation_tokens_create_list_show_delete,
    go_and_cli_read_users_and_verify,
    customer_reads_follow_the_pages_rules,
    go_service_details_have_an_empty_version_list,
    writes_carry_rate_limit_headers_and_share_one_budget,
    api_clients_get_json_errors,
    event_links_are_absolute_and_the_go_client_follows_them,
    javascript_bulk_purge_sends_keys_in_a_json_body,
);

const GO_UA: &str = "FastlyGo/9.2.2 (+github.com/fastly/go-fastly; go1.22.5)";
const CLI_UA: &str = "FastlyCLI/v10.17.0";
const FORM: &str = "application/x-www-form-urlencoded";

/// Go's `url.QueryEscape`: everything but `A–Z a–z 0–9 - _ . ~` as upper-case `%XX`,
/// a space as `+`.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `url.Values.Encode()`: fields sorted by name, repeated names in the caller's order.
fn go_form(fields: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = fields.iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    sorted
        .iter()
        .map(|(name, value)| format!("{}={}", query_escape(name), query_escape(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One request as Go's net/http writes it: Host, User-Agent, Content-Length for a body
/// (and 0 for a POST, PUT or PATCH without one), the caller's headers, then the
/// `Accept-Encoding: gzip` the transport adds.
fn go_request(
    api: &Api,
    agent: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Vec<u8> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {agent}\r\n",
        api.authority()
    );
    match body {
        Some(body) => out.push_str(&format!("Content-Length: {}\r\n", body.len())),
        None if matches!(method, "POST" | "PUT" | "PATCH") => out.push_str("Content-Length: 0\r\n"),
        None => {}
    }
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Accept-Encoding: gzip\r\n\r\n");
    out.push_str(body.unwrap_or(""));
    out.into_bytes()
}

/// A request of go-fastly with the token in `Fastly-Key`.
async fn go(
    api: &Api,
    key: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut all = vec![("Fastly-Key", key)];
    all.extend_from_slice(headers);
    api.raw(&go_request(api, GO_UA, method, path, &all, body))
        .await
}

/// A form POST of go-fastly (`Content-Type` form, no `Accept`).
async fn go_form_post(api: &Api, key: &str, path: &str, body: &str) -> Reply {
    go(
        api,
        key,
        "POST",
        path,
        &[("Content-Type", FORM)],
        Some(body),
    )
    .await
}

/// The CLI's `whoami`: `GET /verify` with `Accept: application/json`.
async fn cli_verify(api: &Api, key: &str) -> Reply {
    api.raw(&go_request(
        api,
        CLI_UA,
        "GET",
        "/verify",
        &[("Fastly-Key", key), ("Accept", "application/json")],
        None,
    ))
    .await
}

/// A GET as Fastly's Python client sends it.
async fn python_get(api: &Api, key: &str, path: &str) -> Reply {
    api.raw(
        format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept-Encoding: identity\r\nAccept: application/json\r\nFastly-Key: {key}\r\nUser-Agent: fastly-py/15.0.0\r\n\r\n",
            api.authority()
        )
        .as_bytes(),
    )
    .await
}

/// The API leaves unset fields out: no `null` anywhere in an answer.
#[track_caller]
fn no_nulls(reply: &Reply) {
    fn walk(value: &Value, at: &str) {
        match value {
            Value::Null => panic!("null at {at}"),
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{at}[{i}]"));
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    walk(v, &format!("{at}.{k}"));
                }
            }
            _ => {}
        }
    }
    assert!(!reply.json.is_null(), "not JSON: {}", reply.text);
    walk(&reply.json, "$");
}

/// A time as go-fastly's decode hook takes it, and as google/jsonapi's `iso8601`
/// requires: `2006-01-02T15:04:05Z`.
#[track_caller]
fn go_time(value: &Value) {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"));
    let bytes = s.as_bytes();
    assert!(
        s.len() == 20
            && bytes[4] == b'-'
            && bytes[10] == b'T'
            && bytes[19] == b'Z'
            && time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .is_ok(),
        "{s} is not 2006-01-02T15:04:05Z"
    );
}

fn rfc3339(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn go_create_token_sends_one_form_to_sudo_then_tokens(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::Superuser).await;
    let s1 = app.service(&ada.account_id, "www").await;
    let s2 = app.service(&ada.account_id, "api").await;
    let Token { key, .. } = app.issue_token(&ada).await;
    let expires = rfc3339(app.now() + 30 * 86_400);

    // The CLI's `auth-token create`: no username, the token's fields sent to /sudo too.
    let body = go_form(&[
        ("expires_at", &expires),
        ("name", "ci deploy"),
        ("password", &ada.password),
        ("scope", "global purge_select"),
        ("services[]", &s1),
        ("services[]", &s2),
    ]);
    assert!(
        body.starts_with("expires_at=")
            && body.contains("&services%5B%5D=")
            && body.contains("%3A"),
        "{body}"
    );
    let sudo = go_form_post(&api, &key, "/sudo", &body).await;
    sudo.expect(200);
    assert!(sudo.json["expiry_time"].is_string(), "{}", sudo.text);
    // /sudo took none of the token's fields for its own: no token was made yet.
    assert_eq!(app.token_names().await, vec!["test token".to_owned()]);

    let created = go_form_post(&api, &key, "/tokens", &body).await;
    created.expect(200);
    no_nulls(&created);
    let token = &created.json;
    assert!(token["access_token"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(token["name"], "ci deploy");
    assert_eq!(token["scope"], "global purge_select");
    assert_eq!(token["expires_at"], expires.as_str());
    assert_eq!(token["user_id"], ada.id.as_str());
    go_time(&token["created_at"]);
    let services: BTreeSet<&str> = token["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(services, BTreeSet::from([s1.as_str(), s2.as_str()]));
    let new_key = token["access_token"].as_str().unwrap().to_owned();
    let own = go(&api, &new_key, "GET", "/tokens/self", &[], None).await;
    own.expect(200);
    assert_eq!(own.json["scope"], "global purge_select");

    // With `username`, when the caller sets one: it must be the token owner's.
    let body = go_form(&[
        ("name", "with username"),
        ("password", &ada.password),
        ("username", &ada.email.to_uppercase()),
    ]);
    go_form_post(&api, &key, "/sudo", &body).await.expect(200);
    go_form_post(&api, &key, "/tokens", &body).await.expect(200);

    // The automation variant sends role and tls_access to /sudo as well.
    let body = go_form(&[
        ("expires_at", &expires),
        ("name", "deploy bot"),
        ("password", &ada.password),
        ("role", "engineer"),
        ("scope", "global"),
        ("services[]", &s1),
        ("tls_access", "true"),
    ]);
    go_form_post(&api, &key, "/sudo", &body).await.expect(200);
}

async fn go_create_token_with_two_factor_and_wrong_credentials(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::Superuser).await;
    let bob = app.member(&ada.account_id, Role::User).await;
    let Token { key, .. } = app.issue_token(&ada).await;
    let form = |password: &str, username: Option<&str>| {
        let mut fields = vec![("name", "ci"), ("password", password)];
        if let Some(username) = username {
            fields.push(("username", username));
        }
        go_form(&fields)
    };

    go_form_post(&api, &key, "/sudo", &go_form(&[("name", "ci")]))
        .await
        .expect_msg(400, "Send the password of the token's owner.");
    let wrong = "The supplied username/password combination is not correct.";
    go_form_post(&api, &key, "/sudo", &form("not it", None))
        .await
        .expect_msg(403, wrong);
    // Someone else's login, even with their right password, is refused.
    go_form_post(&api, &key, "/sudo", &form(&bob.password, Some(&bob.email)))
        .await
        .expect_msg(403, wrong);
    go_form_post(&api, &key, "/tokens", &form("not it", None))
        .await
        .expect(401);

    // go-fastly cannot send a second factor; a caller who adds `Fastly-OTP` can.
    let secret = app.enrol_two_factor(&ada).await;
    go_form_post(&api, &key, "/sudo", &form(&ada.password, None))
        .await
        .expect_msg(400, "2fa.verify");
    let code = totp_code(&secret, app.now()).unwrap();
    go(
        &api,
        &key,
        "POST",
        "/sudo",
        &[("Content-Type", FORM), ("Fastly-OTP", &code)],
        Some(&form(&ada.password, None)),
    )
    .await
    .expect(200);
}

async fn go_automation_tokens_create_list_show_delete(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::Superuser).await;
    let s1 = app.service(&ada.account_id, "www").await;
    let Token { key, .. } = app.issue_token(&ada).await;
    let expires = rfc3339(app.now() + 30 * 86_400);

    let sudo = go_form(&[
        ("expires_at", &expires),
        ("name", "deploy bot"),
        ("password", &ada.password),
        ("role", "engineer"),
        ("scope", "global"),
        ("services[]", &s1),
    ]);
    go_form_post(&api, &key, "/sudo", &sudo).await.expect(200);
    let json_headers = [
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
    ];
    // Fields in struct order; `services` null when none were given (a nil slice).
    let bodies = [
        format!(
            r#"{{"expires_at":"{expires}","name":"deploy bot","role":"engineer","scope":"global","services":["{s1}"],"tls_access":true}}"#
        ),
        format!(
            r#"{{"expires_at":"{}","name":"all services","role":"user","services":null,"tls_access":false}}"#,
            expires.replace('Z', ".5Z")
        ),
    ];
    let mut made = Vec::new();
    for body in &bodies {
        let reply = go(
            &api,
            &key,
            "POST",
            "/automation-tokens",
            &json_headers,
            Some(body),
        )
        .await;
        reply.expect(200);
        no_nulls(&reply);
        assert!(reply.json["access_token"].is_string());
        assert_eq!(reply.json["customer_id"], ada.account_id.as_str());
        made.push(reply.json.clone());
    }
    assert_eq!(made[0]["role"], "engineer");
    assert_eq!(made[0]["tls_access"], true);
    assert_eq!(made[0]["services"], json!([s1]));
    assert_eq!(made[1]["role"], "user");
    assert_eq!(made[1]["scope"], "global");
    assert_eq!(made[1]["services"], json!([]));
    assert_eq!(made[1]["expires_at"], expires.as_str());
    let made_ids: BTreeSet<String> = made
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();

    // ListAutomationTokens: the paginator's query, no Accept, `{data, meta}` back.
    let listed = go(
        &api,
        &key,
        "GET",
        "/automation-tokens?page=1&per_page=100",
        &[],
        None,
    )
    .await;
    listed.expect(200);
    no_nulls(&listed);
    assert_eq!(ids(&listed.json["data"]), made_ids);
    assert_eq!(
        listed.json["meta"],
        json!({"current_page": 1, "per_page": 100, "record_count": 2, "total_pages": 1})
    );
    assert!(!listed.header("link").contains("rel=\"next\""));
    // A page of one: the next page is named in `Link`, absolute, with `?page=2`.
    let first = go(
        &api,
        &key,
        "GET",
        "/automation-tokens?page=1&per_page=1",
        &[],
        None,
    )
    .await;
    first.expect(200);
    assert_eq!(first.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(first.json["meta"]["total_pages"], 2);
    let next = format!(
        "<http://{}/automation-tokens?page=2&per_page=1>; rel=\"next\"",
        api.authority()
    );
    assert!(
        first.header("link").contains(&next),
        "{}",
        first.header("link")
    );
    let second = go(
        &api,
        &key,
        "GET",
        "/automation-tokens?page=2&per_page=1",
        &[],
        None,
    )
    .await;
    let mut both = ids(&first.json["data"]);
    both.extend(ids(&second.json["data"]));
    assert_eq!(both, made_ids);

    // The Python and JavaScript clients: Accept: application/json, a bare array.
    let python = python_get(&api, &key, "/automation-tokens").await;
    python.expect(200);
    assert_eq!(ids(&python.json), made_ids);

    let id = made[0]["id"].as_str().unwrap();
    let shown = go(
        &api,
        &key,
        "GET",
        &format!("/automation-tokens/{id}"),
        &[],
        None,
    )
    .await;
    shown.expect(200);
    no_nulls(&shown);
    assert_eq!(shown.json["role"], "engineer");
    assert!(shown.json.get("access_token").is_none());

    // DeleteAutomationToken goes to /tokens/{id} and takes only 204.
    let deleted = go(&api, &key, "DELETE", &format!("/tokens/{id}"), &[], None).await;
    deleted.expect(204);
    assert!(!app.token_exists(id).await);
    go(
        &api,
        &key,
        "GET",
        "/automation-tokens?page=1&per_page=100",
        &[],
        None,
    )
    .await
    .expect(200);
}

async fn go_and_cli_read_users_and_verify(app: TestApp) {
    let api = app.api();
    let root = app.persona(Role::Superuser).await;
    let account = root.account_id.clone();
    let eng = app.member(&account, Role::Engineer).await;
    let bob = app.member(&account, Role::User).await;
    let s1 = app.service(&account, "www").await;
    let s2 = app.service(&account, "api").await;
    app.limit_to(&eng, &s1, ServicePermission::PurgeAll).await;
    let stranger = app.persona(Role::User).await;
    // global:read is enough for every read.
    let root_key = app
        .issue_token(TokenSpec::user(&root).scope("global:read"))
        .await
        .key;
    let bob_key = app.issue_token(&bob).await.key;
    let eng_key = app.issue_token(&eng).await.key;

    let me = go(&api, &root_key, "GET", "/current_user", &[], None).await;
    me.expect(200);
    no_nulls(&me);
    assert_eq!(me.json["id"], root.id.as_str());
    assert_eq!(me.json["login"], root.email.as_str());
    assert_eq!(me.json["customer_id"], account.as_str());
    assert_eq!(me.json["role"], "superuser");
    assert_eq!(me.json["two_factor_auth_enabled"], false);
    go_time(&me.json["created_at"]);
    // GetUser of oneself is the same object.
    let same = go(
        &api,
        &root_key,
        "GET",
        &format!("/user/{}", root.id),
        &[],
        None,
    )
    .await;
    same.expect(200);
    assert_eq!(same.json, me.json);

    // A superuser reads every member; others only themselves. Whoever may not see a
    // user, or asks for one of another account, is told there is none.
    let bob_by_root = go(
        &api,
        &root_key,
        "GET",
        &format!("/user/{}", bob.id),
        &[],
        None,
    )
    .await;
    bob_by_root.expect(200);
    assert_eq!(bob_by_root.json["role"], "user");
    let eng_by_root = go(
        &api,
        &root_key,
        "GET",
        &format!("/user/{}", eng.id),
        &[],
        None,
    )
    .await;
    assert_eq!(eng_by_root.json["limit_services"], true);
    assert_eq!(bob_by_root.json["limit_services"], false);
    go(
        &api,
        &bob_key,
        "GET",
        &format!("/user/{}", bob.id),
        &[],
        None,
    )
    .await
    .expect(200);
    go(
        &api,
        &bob_key,
        "GET",
        &format!("/user/{}", root.id),
        &[],
        None,
    )
    .await
    .expect_msg(404, "Record not found");
    go(
        &api,
        &root_key,
        "GET",
        &format!("/user/{}", stranger.id),
        &[],
        None,
    )
    .await
    .expect_msg(404, "Record not found");
    let purger = app
        .issue_token(TokenSpec::user(&root).scope("purge_all"))
        .await
        .key;
    go(
        &api,
        &purger,
        "GET",
        &format!("/user/{}", root.id),
        &[],
        None,
    )
    .await
    .expect_msg(
        403,
        "This token's scope does not allow access to this endpoint.",
    );
    go(&api, &purger, "GET", "/current_user", &[], None)
        .await
        .expect(403);

    // ListCustomerUsers: superusers, of their own customer.
    let path = format!("/customer/{account}/users");
    let users = go(&api, &root_key, "GET", &path, &[], None).await;
    users.expect(200);
    no_nulls(&users);
    assert_eq!(
        ids(&users.json),
        BTreeSet::from([root.id.clone(), eng.id.clone(), bob.id.clone()])
    );
    for user in users.json.as_array().unwrap() {
        assert_eq!(user["customer_id"], account.as_str());
        go_time(&user["created_at"]);
    }
    go(&api, &bob_key, "GET", &path, &[], None)
        .await
        .expect(403);
    go(
        &api,
        &root_key,
        "GET",
        &format!("/customer/{}/users", stranger.account_id),
        &[],
        None,
    )
    .await
    .expect_msg(403, "A token only reaches its own customer.");

    // whoami: every leaf a string, services an object of id → name.
    let whoami = cli_verify(&api, &root_key).await;
    whoami.expect(200);
    no_nulls(&whoami);
    assert_eq!(
        whoami.json["customer"],
        json!({"id": account, "name": "Acme"})
    );
    assert_eq!(
        whoami.json["user"],
        json!({"id": root.id, "name": "Test Superuser", "login": root.email})
    );
    assert_eq!(whoami.json["services"], json!({ &s1: "www", &s2: "api" }));
    let token = whoami.json["token"].as_object().unwrap();
    assert_eq!(token["scope"], "global:read");
    assert_eq!(token["name"], "test token");
    assert!(token.values().all(Value::is_string), "{token:?}");
    assert!(!token.contains_key("expires_at"), "never expires");
    go_time(&token["created_at"]);

    // The services a token reaches: its own list, and a limited engineer's.
    let until = app.now() + 86_400;
    let limited = app
        .issue_token(
            TokenSpec::user(&root)
                .services(std::slice::from_ref(&s2))
                .expires_at(until),
        )
        .await;
    let whoami = cli_verify(&api, &limited.key).await;
    assert_eq!(whoami.json["services"], json!({ &s2: "api" }));
    assert_eq!(whoami.json["token"]["id"], limited.id.as_str());
    assert_eq!(whoami.json["token"]["expires_at"], rfc3339(until).as_str());
    let whoami = cli_verify(&api, &eng_key).await;
    assert_eq!(whoami.json["services"], json!({ &s1: "www" }));
    // An automation token belongs to no one: no user part.
    let robot = app
        .issue_token(TokenSpec::automation(&root, Role::Engineer))
        .await;
    let whoami = cli_verify(&api, &robot.key).await;
    whoami.expect(200);
    no_nulls(&whoami);
    assert!(whoami.json.get("user").is_none());
    assert_eq!(whoami.json["token"]["id"], robot.id.as_str());
    cli_verify(&api, &purger).await.expect(403);
    cli_verify(&api, "not-a-token")
        .await
        .expect_msg(401, "Provided credentials are missing or invalid");
}

async fn customer_reads_follow_the_pages_rules(app: TestApp) {
    let api = app.api();
    let root = app.persona(Role::Superuser).await;
    let bob = app.member(&root.account_id, Role::User).await;
    let stranger = app.persona(Role::Superuser).await;
    let bob_key = app
        .issue_token(TokenSpec::user(&bob).scope("global:read"))
        .await
        .key;

    // Only the Python and JavaScript clients have GetCustomer.
    let path = format!("/customer/{}", root.account_id);
    let customer = python_get(&api, &bob_key, &path).await;
    customer.expect(200);
    no_nulls(&customer);
    let mut shown = customer.json.clone();
    let created = shown
        .as_object_mut()
        .and_then(|o| o.remove("created_at"))
        .expect("the customer's creation time");
    assert!(
        created
            .as_str()
            .is_some_and(|t| t.len() == 20 && t.ends_with('Z')),
        "{created}"
    );
    assert_eq!(
        shown,
        json!({"id": root.account_id, "name": "Acme", "force_2fa": false, "force_sso": false})
    );
    python_get(
        &api,
        &bob_key,
        &format!("/customer/{}", stranger.account_id),
    )
    .await
    .expect_msg(403, "A token only reaches its own customer.");
    let purger = app
        .issue_token(TokenSpec::user(&bob).scope("purge_select"))
        .await
        .key;
    python_get(&api, &purger, &path).await.expect(403);
    python_get(&api, &bob_key, &format!("{path}/users"))
        .await
        .expect(403);
}

async fn go_service_details_have_an_empty_version_list(app: TestApp) {
    let api = app.api();
    let root = app.persona(Role::Superuser).await;
    let s1 = app.service(&root.account_id, "www").await;
    let s2 = app.service(&root.account_id, "api").await;
    let key = app
        .issue_token(TokenSpec::user(&root).scope("global:read"))
        .await
        .key;

    let detail = go(
        &api,
        &key,
        "GET",
        &format!("/service/{s1}/details"),
        &[],
        None,
    )
    .await;
    detail.expect(200);
    no_nulls(&detail);
    assert_eq!(detail.json["id"], s1.as_str());
    assert_eq!(detail.json["name"], "www");
    assert_eq!(detail.json["customer_id"], root.account_id.as_str());
    assert_eq!(detail.json["versions"], json!([]));
    // `version` and `active_version` are Version objects or nothing: nothing here.
    assert!(detail.json.get("version").is_none() && detail.json.get("active_version").is_none());
    go_time(&detail.json["created_at"]);

    let only_s2 = app
        .issue_token(TokenSpec::user(&root).services(std::slice::from_ref(&s2)))
        .await
        .key;
    go(
        &api,
        &only_s2,
        "GET",
        &format!("/service/{s1}/details"),
        &[],
        None,
    )
    .await
    .expect_msg(403, "This token does not have access to this service.");
    go(
        &api,
        &key,
        "GET",
        "/service/nosuchservice/details",
        &[],
        None,
    )
    .await
    .expect_msg(404, "Record not found");
}

async fn writes_carry_rate_limit_headers_and_share_one_budget(app: TestApp) {
    // Far enough from the end of the clock hour that the window cannot turn mid-test.
    let into_hour = app.now().rem_euclid(3600);
    if into_hour > 3300 {
        app.clock.advance(3600 - into_hour + 1);
    }
    let reset = (app.now() - app.now().rem_euclid(3600) + 3600).to_string();
    let api = app.api();
    let root = app.persona(Role::Superuser).await;
    let bob = app.member(&root.account_id, Role::Engineer).await;
    let s1 = app.service(&root.account_id, "www").await;
    let key = app.issue_token(&root).await.key;
    let other_key = app.issue_token(&root).await.key;
    let purge = format!("/service/{s1}/purge_all");

    let first = go(&api, &key, "POST", &purge, &[], None).await;
    first.expect(200);
    assert_eq!(first.header("fastly-ratelimit-remaining"), "999");
    assert_eq!(first.header("fastly-ratelimit-reset"), reset);
    // The budget is the user's, whichever token they write with.
    let second = go(&api, &other_key, "POST", &purge, &[], None).await;
    assert_eq!(second.header("fastly-ratelimit-remaining"), "998");
    // Reads are neither counted nor labelled.
    let read = go(&api, &key, "GET", "/service", &[], None).await;
    read.expect(200);
    assert!(read.headers.get("fastly-ratelimit-remaining").is_none());
    // Another node counts against the same budget.
    let node2 = app.second_node().await;
    let api2 = node2.api();
    let third = go(&api2, &key, "POST", &purge, &[], None).await;
    third.expect(200);
    assert_eq!(third.header("fastly-ratelimit-remaining"), "997");
    // Refused writes count too, and carry the headers.
    let refused = go(&api, &key, "DELETE", "/tokens/nosuchtoken", &[], None).await;
    refused.expect(404);
    assert_eq!(refused.header("fastly-ratelimit-remaining"), "996");

    // The last write of the hour leaves zero; the next is refused, on any node.
    sqlx::query("UPDATE api_write_budget SET writes = 999 WHERE key = $1")
        .bind(format!("user:{}", root.id))
        .execute(app.pool())
        .await
        .unwrap();
    let last = go(&api, &key, "POST", &purge, &[], None).await;
    last.expect(200);
    assert_eq!(last.header("fastly-ratelimit-remaining"), "0");
    for api in [&api, &api2] {
        let over = go(api, &key, "POST", &purge, &[], None).await;
        over.expect_msg(
            429,
            "You have exceeded your hourly rate limit for API writes.",
        );
        assert_eq!(over.header("fastly-ratelimit-remaining"), "0");
        assert_eq!(over.header("fastly-ratelimit-reset"), reset);
        let wait: i64 = over.header("retry-after").parse().unwrap();
        assert!((1..=3600).contains(&wait), "{wait}");
    }
    assert_eq!(
        app.event_types()
            .await
            .iter()
            .filter(|t| *t == "service.purge_all")
            .count(),
        4,
        "the refused purges did nothing"
    );
    go(&api, &key, "GET", "/tokens/self", &[], None)
        .await
        .expect(200);
    // Other users and automation tokens have budgets of their own.
    let bob_key = app.issue_token(&bob).await.key;
    let bob_write = go(&api, &bob_key, "POST", &purge, &[], None).await;
    bob_write.expect(200);
    assert_eq!(bob_write.header("fastly-ratelimit-remaining"), "999");
    let robot = app
        .issue_token(TokenSpec::automation(&root, Role::Engineer))
        .await
        .key;
    let robot_write = go(&api, &robot, "POST", &purge, &[], None).await;
    assert_eq!(robot_write.header("fastly-ratelimit-remaining"), "999");

    // The next clock hour starts a whole budget.
    app.clock.advance(3600);
    let later = go(&api, &key, "POST", &purge, &[], None).await;
    later.expect(200);
    assert_eq!(later.header("fastly-ratelimit-remaining"), "999");
}

async fn api_clients_get_json_errors(app: TestApp) {
    let api = app.api();
    let root = app.persona(Role::Superuser).await;
    let key = app.issue_token(&root).await.key;
    let is_json = |reply: &Reply| {
        assert!(
            reply.header("content-type").starts_with("application/json"),
            "{}: {}",
            reply.header("content-type"),
            reply.text
        );
        assert!(reply.json["msg"].is_string(), "{}", reply.text);
    };

    // Unknown paths: a Go request (Fastly-Key, no Accept), and JSON asked by Accept.
    let missing = go(&api, &key, "GET", "/go-compat-no-such-path", &[], None).await;
    missing.expect_msg(404, "Not found");
    assert_eq!(
        missing.json["detail"],
        "Nothing is served at GET /go-compat-no-such-path"
    );
    let asked = python_get(&api, "", "/tokens/self/nothing").await;
    asked.expect(404);
    is_json(&asked);
    // A browser still gets the page.
    let page = api
        .raw(
            format!(
                "GET /no-such-page HTTP/1.1\r\nHost: {}\r\nAccept: text/html,application/xhtml+xml,*/*;q=0.8\r\n\r\n",
                api.authority()
            )
            .as_bytes(),
        )
        .await;
    page.expect(404);
    assert!(page.header("content-type").starts_with("text/html"));

    // 405 with Allow, on an API route and on a page.
    let put = go(&api, &key, "PUT", "/tokens", &[], None).await;
    put.expect(405);
    is_json(&put);
    let allow: BTreeSet<&str> = put.header("allow").split(',').map(str::trim).collect();
    assert!(
        allow.is_superset(&BTreeSet::from(["GET", "POST", "DELETE"])),
        "{allow:?}"
    );
    let page_method = go(&api, &key, "GET", "/logout", &[], None).await;
    page_method.expect_msg(405, "Method not allowed");
    assert!(
        page_method.header("allow").contains("POST"),
        "{:?}",
        page_method.headers
    );

    // 415: a body the API does not read.
    let plain = go(
        &api,
        &key,
        "POST",
        "/tokens",
        &[("Content-Type", "text/plain")],
        Some("name=x"),
    )
    .await;
    plain.expect(415);
    is_json(&plain);

    // 413: a body over the limit, refused by its Content-Length before it is read.
    let big = "x".repeat(1024 * 1024 + 1);
    let request = go_request(
        &api,
        GO_UA,
        "POST",
        "/tokens",
        &[("Fastly-Key", &key), ("Content-Type", FORM)],
        Some(&big),
    );
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let too_large = api.raw(&request[..head_end]).await;
    too_large.expect_msg(413, "Request body too large");
}

async fn event_links_are_absolute_and_the_go_client_follows_them(app: TestApp) {
    let api = app.api();
    let root = app.persona(Role::Superuser).await;
    let s1 = app.service(&root.account_id, "www").await;
    let key = app.issue_token(&root).await.key;
    for _ in 0..3 {
        go(
            &api,
            &key,
            "POST",
            &format!("/service/{s1}/purge_all"),
            &[],
            None,
        )
        .await
        .expect(200);
    }

    // GetAPIEvents without page[number]: the client follows links.next as it is.
    let query = go_form(&[
        ("filter[event_type]", "service.purge_all"),
        ("filter[service_id]", &s1),
        ("page[size]", "1"),
    ]);
    let mut path = format!("/events?{query}");
    let mut seen = BTreeSet::new();
    loop {
        let page = go(&api, &key, "GET", &path, &[], None).await;
        page.expect(200);
        no_nulls(&page);
        for event in page.json["data"].as_array().unwrap() {
            assert_eq!(event["type"], "event");
            go_time(&event["attributes"]["created_at"]);
            assert!(seen.insert(event["id"].as_str().unwrap().to_owned()));
        }
        for link in ["self", "first", "last"] {
            let url = page.json["links"][link].as_str().unwrap();
            assert!(
                url.starts_with(&format!("http://{}/events?", api.authority())),
                "{url}"
            );
        }
        let Some(next) = page.json["links"]["next"].as_str() else {
            break;
        };
        // SimpleGet: url.Parse, then a GET of that URL.
        let prefix = format!("http://{}", api.authority());
        path = next
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{next} is not on {prefix}"))
            .to_owned();
        assert!(seen.len() <= 3, "the pages do not end");
    }
    assert_eq!(seen.len(), 3);

    // The links name the host the client used.
    let other_host = api
        .raw(
            format!(
                "GET /events?page%5Bsize%5D=1 HTTP/1.1\r\nHost: tokens.example.test\r\nUser-Agent: {GO_UA}\r\nFastly-Key: {key}\r\nAccept-Encoding: gzip\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
    other_host.expect(200);
    assert!(other_host.json["links"]["next"]
        .as_str()
        .unwrap()
        .starts_with("http://tokens.example.test/events?"));
}

async fn javascript_bulk_purge_sends_keys_in_a_json_body(app: TestApp) {
    let api = app.api();
    let root = app.persona(Role::Superuser).await;
    let s1 = app.service(&root.account_id, "www").await;
    let key = app.issue_token(&root).await.key;
    let body = r#"{"surrogate_keys":["key_1","key_2"]}"#;
    let reply = api
        .raw(
            format!(
                "POST /service/{s1}/purge HTTP/1.1\r\nHost: {}\r\nAccept-Encoding: gzip, deflate\r\nUser-Agent: fastly-js/13.0.0\r\nFastly-Key: {key}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                api.authority(),
                body.len()
            )
            .as_bytes(),
        )
        .await;
    reply.expect(200);
    let purged: BTreeSet<&str> = reply
        .json
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            assert!(v.is_string());
            k.as_str()
        })
        .collect();
    assert_eq!(purged, BTreeSet::from(["key_1", "key_2"]));
    assert_eq!(reply.header("fastly-ratelimit-remaining"), "999");
}
