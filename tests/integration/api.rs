//! The JSON API: authentication by `Fastly-Key`, token endpoints, sudo, automation
//! tokens, services and purges, the event log, the permission matrix, last-used
//! recording and revocation across two nodes.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tokenpanel::testkit::{
    digest, on_both_databases, totp_code, unissued_key, Api, Reply, Role, ServicePermission,
    TestApp, Token, TokenKind, TokenSpec, Viewer, TOTP_STEP,
};

on_both_databases!(
    missing_malformed_unknown_and_revoked_keys_are_401,
    expired_tokens_get_401_with_id_and_time,
    owners_who_leave_or_are_locked_lose_their_tokens,
    token_object_has_fastlys_shape,
    create_with_username_and_password_form_json_and_basic,
    create_with_a_key_needs_password_or_sudo,
    create_validates_and_never_exceeds_the_creating_token,
    create_respects_the_token_limit,
    sudo_endpoint,
    two_factor_users_must_send_an_otp,
    accounts_forcing_two_factor_refuse_users_without_it,
    list_show_and_delete_own_and_account_tokens,
    bulk_delete_is_all_or_nothing,
    automation_tokens,
    permission_matrix,
    services_follow_token_and_member_limits,
    purges_answer_like_fastly_and_record_events,
    events_filter_page_and_follow_visibility,
    last_use_is_recorded_coalesced,
    uses_of_many_tokens_are_each_written,
    revocation_is_seen_by_another_node_at_once,
    the_api_ignores_session_cookies,
);

const INVALID: &str = "Provided credentials are missing or invalid";
const READ_ONLY: &str = "Read only tokens are not allowed to access this endpoint.";
const SUDO: &str = "You must POST /sudo to access this endpoint";

async fn missing_malformed_unknown_and_revoked_keys_are_401(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::User).await;
    let Token { id, key } = app.issue_token(&ada).await;

    api.send(api.request(Method::GET, "/tokens/self", None))
        .await
        .expect_msg(401, INVALID);
    api.get("/tokens/self", "").await.expect_msg(401, INVALID);
    api.get("/tokens/self", "   ")
        .await
        .expect_msg(401, INVALID);

    // A key with a broken checksum is refused before any database work: even a row
    // holding exactly its digest is never looked at.
    let mut broken: Vec<char> = key.chars().collect();
    broken[8] = if broken[8] == 'a' { 'b' } else { 'a' };
    let broken: String = broken.into_iter().collect();
    sqlx::query("UPDATE tokens SET secret_digest = $1 WHERE id = $2")
        .bind(digest(&broken))
        .bind(&id)
        .execute(app.pool())
        .await
        .unwrap();
    api.get("/tokens/self", &broken)
        .await
        .expect_msg(401, INVALID);
    sqlx::query("UPDATE tokens SET secret_digest = $1 WHERE id = $2")
        .bind(digest(&key))
        .bind(&id)
        .execute(app.pool())
        .await
        .unwrap();

    let well_formed_unknown = unissued_key(TokenKind::User);
    api.get("/tokens/self", &well_formed_unknown)
        .await
        .expect_msg(401, INVALID);
    api.get("/tokens/self", "not a key at all!")
        .await
        .expect_msg(401, INVALID);

    api.get("/tokens/self", &key).await.expect(200);
    api.delete(&format!("/tokens/{id}"), &key).await.expect(204);
    api.get("/tokens/self", &key).await.expect_msg(401, INVALID);
    api.get("/service", &key).await.expect_msg(401, INVALID);
}

async fn expired_tokens_get_401_with_id_and_time(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::User).await;
    let expires = app.now() + 60;
    let Token { id, key } = app
        .issue_token(TokenSpec::user(&ada).expires_at(expires))
        .await;
    api.get("/tokens/self", &key).await.expect(200);
    app.clock.advance(61);
    let when = time::OffsetDateTime::from_unix_timestamp(expires).unwrap();
    let expected = format!(
        "Token {id} expired at {:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        when.year(),
        when.month() as u8,
        when.day(),
        when.hour(),
        when.minute(),
        when.second()
    );
    for path in ["/tokens/self", "/tokens", "/current_user", "/service"] {
        api.get(path, &key).await.expect_msg(401, &expected);
    }
    api.post_form("/tokens", Some(&key), &[("password", &ada.password)])
        .await
        .expect_msg(401, &expected);
}

async fn owners_who_leave_or_are_locked_lose_their_tokens(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::User).await;
    let bob = app.member(&ada.account_id, Role::User).await;
    let ada_key = app.issue_token(&ada).await.key;
    let bob_key = app.issue_token(&bob).await.key;
    api.get("/current_user", &ada_key).await.expect(200);
    sqlx::query("UPDATE users SET locked = 1 WHERE id = $1")
        .bind(&ada.id)
        .execute(app.pool())
        .await
        .unwrap();
    // Edits by hand are announced to the token cache (or wait out its 30 seconds).
    app.announce_user_change(&ada).await;
    api.get("/current_user", &ada_key)
        .await
        .expect_msg(401, INVALID);
    api.get("/tokens/self", &bob_key).await.expect(200);
    sqlx::query("DELETE FROM memberships WHERE user_id = $1")
        .bind(&bob.id)
        .execute(app.pool())
        .await
        .unwrap();
    app.forget_cached_tokens().await;
    api.get("/tokens/self", &bob_key)
        .await
        .expect_msg(401, INVALID);
}

async fn token_object_has_fastlys_shape(app: TestApp) {
    let api = app.api();
    let account = app.account("Acme").await;
    let service = app.service(&account, "www").await;
    let ada = app.member(&account, Role::Engineer).await;
    let spec = TokenSpec::user(&ada)
        .scope("purge_select global:read")
        .services(std::slice::from_ref(&service));
    let Token { id, key } = app.issue_token(spec).await;
    let reply = api.get("/tokens/self", &key).await;
    reply.expect(200);
    assert_eq!(reply.header("cache-control"), "no-store");
    assert!(reply.header("content-type").starts_with("application/json"));
    let t = &reply.json;
    assert_eq!(t["id"], id);
    assert_eq!(t["user_id"], ada.id);
    assert_eq!(t["customer_id"], account);
    assert_eq!(t["name"], "test token");
    assert_eq!(t["scope"], "purge_select global:read");
    assert_eq!(t["services"], json!([service]));
    let created = t["created_at"].as_str().unwrap();
    assert_eq!(created.len(), 20, "{created}");
    assert!(created.ends_with('Z') && created.as_bytes()[10] == b'T');
    for absent in ["access_token", "expires_at", "role", "tls_access"] {
        assert!(t.get(absent).is_none(), "{absent} is left out: {t}");
    }
    assert!(!reply.text.contains("null"), "never null: {}", reply.text);
    // The API answers 405 in JSON for a method a path does not have.
    let reply = api
        .send(api.request(Method::PUT, "/tokens/self", Some(&key)))
        .await;
    reply.expect_msg(405, "Method not allowed");
}

async fn create_with_username_and_password_form_json_and_basic(app: TestApp) {
    let api = app.api();
    let account = app.account("Acme").await;
    let ada = app.member(&account, Role::User).await;

    // Form, with the empty `Basic Og==` header some clients always send.
    let reply = api
        .send(
            api.request(Method::POST, "/tokens", None)
                .header("Authorization", "Basic Og==")
                .form(&[
                    ("username", ada.email.as_str()),
                    ("password", &ada.password),
                    ("name", "deploy"),
                    ("scope", "global:read"),
                ]),
        )
        .await;
    reply.expect(200);
    assert_eq!(reply.header("cache-control"), "no-store");
    let t = &reply.json;
    assert_eq!(t["name"], "deploy");
    assert_eq!(t["scope"], "global:read");
    assert_eq!(t["user_id"], ada.id);
    assert_eq!(t["customer_id"], account);
    let secret = t["access_token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tpu_"));
    let me = api.get("/tokens/self", &secret).await;
    me.expect(200);
    assert_eq!(me.json["id"], t["id"]);
    assert!(me.json.get("access_token").is_none(), "shown only once");
    let stored: String = sqlx::query_scalar("SELECT secret_digest FROM tokens WHERE id = $1")
        .bind(t["id"].as_str().unwrap())
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, digest(&secret), "only the digest is stored");

    // JSON, with services and an expiry.
    let service = app.service(&account, "www").await;
    let reply = api
        .post_json(
            "/tokens",
            None,
            json!({"username": ada.email.to_uppercase(), "password": ada.password,
                   "services": [service], "expires_at": "2099-01-31T12:00:00+00:00"}),
        )
        .await;
    reply.expect(200);
    assert_eq!(reply.json["services"], json!([service]));
    assert_eq!(reply.json["expires_at"], "2099-01-31T12:00:00Z");
    assert_eq!(reply.json["name"], "API token", "default name");
    assert_eq!(reply.json["scope"], "global", "default scope");

    // HTTP Basic with an empty body: all defaults.
    let reply = api
        .send(
            api.request(Method::POST, "/tokens", None)
                .basic_auth(&ada.email, Some(&ada.password)),
        )
        .await;
    reply.expect(200);
    assert_eq!(reply.json["services"], json!([]));
    assert!(reply.json.get("expires_at").is_none());

    // Wrong or missing credentials.
    api.post_form(
        "/tokens",
        None,
        &[("username", &ada.email), ("password", "wrong password")],
    )
    .await
    .expect_msg(401, INVALID);
    api.post("/tokens", None).await.expect_msg(401, INVALID);
    api.send(
        api.request(Method::POST, "/tokens", None)
            .basic_auth("nobody@example.test", Some("whatever")),
    )
    .await
    .expect_msg(401, INVALID);
    assert_eq!(app.count("tokens").await, 3);
    let types = app.event_types().await;
    assert_eq!(types.iter().filter(|t| *t == "token.create").count(), 3);
    assert!(types.contains(&"user.login_failure".to_owned()));

    // Password guessing is throttled like sign-in.
    for _ in 0..4 {
        api.post_form(
            "/tokens",
            None,
            &[("username", &ada.email), ("password", "wrong password")],
        )
        .await
        .expect(401);
    }
    let throttled = api
        .post_form(
            "/tokens",
            None,
            &[("username", &ada.email), ("password", &ada.password)],
        )
        .await;
    throttled.expect(429);
    assert!(throttled.msg().starts_with("Too many failed attempts"));
    assert!(!throttled.header("retry-after").is_empty());
}

async fn create_with_a_key_needs_password_or_sudo(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::User).await;
    let key = app.issue_token(&ada).await.key;

    let reply = api
        .post_form(
            "/tokens",
            Some(&key),
            &[("password", &ada.password), ("name", "by key")],
        )
        .await;
    reply.expect(200);
    assert_eq!(reply.json["name"], "by key");
    api.post_form("/tokens", Some(&key), &[("password", "wrong password")])
        .await
        .expect_msg(401, INVALID);
    // The username, when sent with a key, must be the key's owner.
    let bob = app.member(&ada.account_id, Role::User).await;
    api.post_form(
        "/tokens",
        Some(&key),
        &[("username", &bob.email), ("password", &bob.password)],
    )
    .await
    .expect_msg(401, INVALID);

    // The key alone works only in sudo mode, which lasts five minutes.
    api.post("/tokens", Some(&key)).await.expect_msg(403, SUDO);
    api.enter_sudo(&key, &ada).await;
    api.post("/tokens", Some(&key)).await.expect(200);
    app.clock.advance(5 * 60 + 1);
    api.post("/tokens", Some(&key)).await.expect_msg(403, SUDO);

    // Sudo mode belongs to the token that asked for it.
    let other_key = app.issue_token(&ada).await.key;
    api.enter_sudo(&key, &ada).await;
    api.post("/tokens", Some(&other_key))
        .await
        .expect_msg(403, SUDO);

    // A read-only token cannot create tokens, even with the password.
    let read_key = app
        .issue_token(TokenSpec::user(&ada).scope("global:read"))
        .await
        .key;
    api.post_form("/tokens", Some(&read_key), &[("password", &ada.password)])
        .await
        .expect_msg(403, READ_ONLY);
}

async fn create_validates_and_never_exceeds_the_creating_token(app: TestApp) {
    let api = app.api();
    let account = app.account("Acme").await;
    let other_account = app.account("Other").await;
    let a = app.service(&account, "a").await;
    let b = app.service(&account, "b").await;
    let foreign = app.service(&other_account, "foreign").await;
    let ada = app.member(&account, Role::User).await;
    let creds = |extra: &[(&'static str, String)]| {
        let mut fields = vec![
            ("username", ada.email.clone()),
            ("password", ada.password.clone()),
        ];
        fields.extend_from_slice(extra);
        fields
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let api = &api;
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            api.post_form("/tokens", None, &pairs).await
        }
    };
    post(creds(&[("expires_at", "next tuesday".into())]))
        .await
        .expect(422);
    post(creds(&[("expires_at", "2001-01-01T00:00:00Z".into())]))
        .await
        .expect(422);
    post(creds(&[("scope", "global admin".into())]))
        .await
        .expect(422);
    post(creds(&[("name", " ".into())])).await.expect(422);
    post(creds(&[("services[]", foreign.clone())]))
        .await
        .expect(422);
    // The role limits the scopes, as in the UI.
    let reply = post(creds(&[("scope", "purge_all".into())])).await;
    reply.expect(403);
    assert!(
        reply.msg().contains("Your role cannot grant the scope"),
        "{}",
        reply.text
    );
    assert_eq!(app.count("tokens").await, 0, "nothing was written");

    // A token limited to service a can create tokens for a only.
    let key_a = app
        .issue_token(TokenSpec::user(&ada).services(std::slice::from_ref(&a)))
        .await
        .key;
    api.enter_sudo(&key_a, &ada).await;
    let reply = api
        .post_form("/tokens", Some(&key_a), &[("services[]", &a)])
        .await;
    reply.expect(200);
    assert_eq!(reply.json["services"], json!([a]));
    api.post("/tokens", Some(&key_a)).await.expect(403);
    api.post_form("/tokens", Some(&key_a), &[("services[]", &b)])
        .await
        .expect(403);
    api.post_form(
        "/tokens",
        Some(&key_a),
        &[("services[]", &a), ("services[]", &b)],
    )
    .await
    .expect(403);

    // An engineer's token with purge scopes cannot mint a global one.
    let eve = app.member(&account, Role::Engineer).await;
    let purge_key = app
        .issue_token(TokenSpec::user(&eve).scope("purge_all"))
        .await
        .key;
    let reply = api
        .post_form(
            "/tokens",
            Some(&purge_key),
            &[("password", &eve.password), ("scope", "global")],
        )
        .await;
    reply.expect(403);
}

async fn create_respects_the_token_limit(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::User).await;
    for _ in 0..100 {
        app.issue_token(&ada).await;
    }
    let reply = api
        .post_form(
            "/tokens",
            None,
            &[("username", &ada.email), ("password", &ada.password)],
        )
        .await;
    reply.expect(422);
    assert!(reply.msg().contains("100 active tokens"), "{}", reply.text);
    assert_eq!(app.count("tokens").await, 100);
}

async fn sudo_endpoint(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::Superuser).await;
    let bob = app.member(&ada.account_id, Role::User).await;
    let Token { id, key } = app.issue_token(&ada).await;

    let reply = api
        .post_form(
            "/sudo",
            Some(&key),
            &[("username", &ada.email), ("password", &ada.password)],
        )
        .await;
    reply.expect(200);
    let expiry = reply.json["expiry_time"].as_str().unwrap().to_owned();
    assert!(expiry.ends_with("+00:00"), "{expiry}");
    let until: i64 = sqlx::query_scalar("SELECT sudo_until FROM tokens WHERE id = $1")
        .bind(&id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    let expected = time::OffsetDateTime::from_unix_timestamp(until).unwrap();
    assert!((until - app.now() - 300).abs() <= 2, "five minutes");
    assert!(expiry.starts_with(&format!(
        "{:04}-{:02}-{:02}T",
        expected.year(),
        expected.month() as u8,
        expected.day()
    )));
    let types = app.event_types().await;
    assert!(types.contains(&"user.sudo".to_owned()));
    assert!(types.contains(&"token.sudo".to_owned()));

    // JSON works too; wrong password or someone else's username is 403.
    api.post_json(
        "/sudo",
        Some(&key),
        json!({"username": ada.email, "password": ada.password}),
    )
    .await
    .expect(200);
    api.post_form(
        "/sudo",
        Some(&key),
        &[("username", &ada.email), ("password", "wrong password")],
    )
    .await
    .expect(403);
    api.post_form(
        "/sudo",
        Some(&key),
        &[("username", &bob.email), ("password", &bob.password)],
    )
    .await
    .expect(403);
    api.post_form("/sudo", Some(&key), &[("username", &ada.email)])
        .await
        .expect(400);
    api.post_form(
        "/sudo",
        None,
        &[("username", &ada.email), ("password", &ada.password)],
    )
    .await
    .expect_msg(401, INVALID);
    assert!(app
        .event_types()
        .await
        .contains(&"user.sudo_failure".to_owned()));
    // Automation tokens have no user to re-authenticate.
    let robot = app
        .issue_token(TokenSpec::automation(&ada, Role::Engineer))
        .await
        .key;
    api.post_form(
        "/sudo",
        Some(&robot),
        &[("username", &ada.email), ("password", &ada.password)],
    )
    .await
    .expect(403);
}

async fn two_factor_users_must_send_an_otp(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::Superuser).await;
    let Token { id: key_id, key } = app.issue_token(&ada).await;
    let secret = app.enrol_two_factor(&ada).await;
    let code = |app: &TestApp| totp_code(&secret, app.now()).unwrap();
    let wrong = |app: &TestApp| {
        let right = code(app);
        let first = if right.starts_with('0') { '1' } else { '0' };
        format!("{first}{}", &right[1..])
    };
    let creds = [
        ("username", ada.email.as_str()),
        ("password", &ada.password),
    ];
    let with_otp = |path: &str, key: Option<&str>, otp: &str, fields: &[(&str, &str)]| {
        api.request(Method::POST, path, key)
            .header("Fastly-OTP", otp)
            .form(fields)
    };

    // POST /tokens with username and password.
    api.post_form("/tokens", None, &creds)
        .await
        .expect_msg(400, "2fa.verify");
    api.send(with_otp("/tokens", None, &wrong(&app), &creds))
        .await
        .expect_msg(400, "2fa.verify");
    // The password is checked first: a wrong one says nothing about the second factor.
    api.send(with_otp(
        "/tokens",
        None,
        &code(&app),
        &[("username", &ada.email), ("password", "wrong password")],
    ))
    .await
    .expect_msg(401, INVALID);
    let right = code(&app);
    api.send(with_otp("/tokens", None, &right, &creds))
        .await
        .expect(200);
    // A code works once.
    api.send(with_otp("/tokens", None, &right, &creds))
        .await
        .expect_msg(400, "2fa.verify");
    assert_eq!(app.count("tokens").await, 2);

    // POST /sudo: the code is needed, a wrong password is still 403.
    app.clock.advance(TOTP_STEP);
    api.post_form("/sudo", Some(&key), &creds)
        .await
        .expect_msg(400, "2fa.verify");
    api.send(with_otp("/sudo", Some(&key), &wrong(&app), &creds))
        .await
        .expect_msg(400, "2fa.verify");
    let right = code(&app);
    api.send(with_otp(
        "/sudo",
        Some(&key),
        &right,
        &[("username", &ada.email), ("password", "wrong password")],
    ))
    .await
    .expect(403);
    let sudo_until: Option<i64> = sqlx::query_scalar("SELECT sudo_until FROM tokens WHERE id = $1")
        .bind(&key_id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(sudo_until, None);
    // The code was not spent by the wrong password.
    api.send(with_otp("/sudo", Some(&key), &right, &creds))
        .await
        .expect(200);

    // In sudo mode (reached with the code) the key alone creates tokens; a key with
    // the password needs the code too.
    app.clock.advance(TOTP_STEP);
    api.post("/tokens", Some(&key)).await.expect(200);
    sqlx::query("UPDATE tokens SET sudo_until = NULL WHERE id = $1")
        .bind(&key_id)
        .execute(app.pool())
        .await
        .unwrap();
    app.forget_cached_tokens().await;
    api.post_form("/tokens", Some(&key), &[("password", &ada.password)])
        .await
        .expect_msg(400, "2fa.verify");
    api.send(with_otp(
        "/tokens",
        Some(&key),
        &code(&app),
        &[("password", &ada.password)],
    ))
    .await
    .expect(200);

    // Five wrong codes lock the second factor out.
    app.clock.advance(TOTP_STEP);
    for _ in 0..5 {
        api.send(with_otp("/tokens", None, &wrong(&app), &creds))
            .await
            .expect_msg(400, "2fa.verify");
    }
    let locked = api
        .send(with_otp("/tokens", None, &code(&app), &creds))
        .await;
    locked.expect(429);
    assert!(!locked.header("retry-after").is_empty());
    api.send(with_otp("/sudo", Some(&key), &code(&app), &creds))
        .await
        .expect(429);
}

async fn accounts_forcing_two_factor_refuse_users_without_it(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::User).await;
    let bob = app.member(&ada.account_id, Role::User).await;
    let ada_key = app.issue_token(&ada).await.key;
    let secret = app.enrol_two_factor(&bob).await;
    sqlx::query("UPDATE accounts SET force_2fa = 1 WHERE id = $1")
        .bind(&ada.account_id)
        .execute(app.pool())
        .await
        .unwrap();
    let reply = api
        .post_form(
            "/tokens",
            None,
            &[("username", &ada.email), ("password", &ada.password)],
        )
        .await;
    reply.expect(403);
    assert!(
        reply.msg().contains("requires two-factor"),
        "{}",
        reply.text
    );
    api.post_form(
        "/sudo",
        Some(&ada_key),
        &[("username", &ada.email), ("password", &ada.password)],
    )
    .await
    .expect(403);
    // Existing tokens keep working; users with two-factor still create tokens.
    api.get("/tokens/self", &ada_key).await.expect(200);
    api.send(
        api.request(Method::POST, "/tokens", None)
            .header("Fastly-OTP", totp_code(&secret, app.now()).unwrap())
            .form(&[("username", &bob.email), ("password", &bob.password)]),
    )
    .await
    .expect(200);
}

async fn list_show_and_delete_own_and_account_tokens(app: TestApp) {
    let api = app.api();
    let account = app.account("Acme").await;
    let other = app.account("Other").await;
    let ada = app.member(&account, Role::User).await;
    let bob = app.member(&account, Role::User).await;
    let root = app.member(&account, Role::Superuser).await;
    let stranger = app.member(&other, Role::Superuser).await;
    let Token {
        id: ada_id,
        key: ada_key,
    } = app.issue_token(&ada).await;
    let ada2_id = app
        .issue_token(TokenSpec::user(&ada).scope("global:read"))
        .await
        .id;
    let Token {
        id: bob_id,
        key: bob_key,
    } = app.issue_token(&bob).await;
    let root_key = app.issue_token(&root).await.key;
    let stranger_key = app.issue_token(&stranger).await.key;
    let robot_id = app
        .issue_token(TokenSpec::automation(&root, Role::Engineer))
        .await
        .id;

    let own = api.get("/tokens", &ada_key).await;
    own.expect(200);
    assert_eq!(own.header("cache-control"), "no-store");
    let mut ids: Vec<&str> = own
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![ada_id.as_str(), ada2_id.as_str()];
    expected.sort();
    assert_eq!(ids, expected);

    api.get(&format!("/tokens/{ada2_id}"), &ada_key)
        .await
        .expect(200);
    api.get(&format!("/tokens/{bob_id}"), &ada_key)
        .await
        .expect_msg(404, "Token not found");
    api.get(&format!("/tokens/{bob_id}"), &root_key)
        .await
        .expect(200);
    api.get(&format!("/tokens/{robot_id}"), &root_key)
        .await
        .expect(200);
    api.get(&format!("/tokens/{bob_id}"), &stranger_key)
        .await
        .expect(404);

    let all = api
        .get(&format!("/customer/{account}/tokens"), &root_key)
        .await;
    all.expect(200);
    assert_eq!(all.json.as_array().unwrap().len(), 5);
    api.get(&format!("/customer/{account}/tokens"), &ada_key)
        .await
        .expect(403);
    api.get(&format!("/customer/{account}/tokens"), &stranger_key)
        .await
        .expect(403);

    // Deleting: own tokens, or any in the account for a superuser.
    api.delete(&format!("/tokens/{bob_id}"), &ada_key)
        .await
        .expect(404);
    assert!(app.token_exists(&bob_id).await);
    api.delete(&format!("/tokens/{ada2_id}"), &ada_key)
        .await
        .expect(204);
    assert!(!app.token_exists(&ada2_id).await);
    api.delete(&format!("/tokens/{bob_id}"), &stranger_key)
        .await
        .expect(404);
    api.delete(&format!("/tokens/{bob_id}"), &root_key)
        .await
        .expect(204);
    api.get("/tokens/self", &bob_key)
        .await
        .expect_msg(401, INVALID);
    api.delete("/tokens/self", &ada_key).await.expect(204);
    assert!(!app.token_exists(&ada_id).await);
    api.get("/tokens/self", &ada_key)
        .await
        .expect_msg(401, INVALID);

    let destroyed: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT actor_id, token_id FROM events WHERE event_type = 'token.destroy' ORDER BY created_at, id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(destroyed.len(), 3);
    assert!(destroyed.contains(&(Some(root.id.clone()), Some(bob_id.clone()))));
    assert!(destroyed.contains(&(Some(ada.id.clone()), Some(ada_id.clone()))));
}

async fn bulk_delete_is_all_or_nothing(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::User).await;
    let bob = app.member(&ada.account_id, Role::User).await;
    let key = app.issue_token(&ada).await.key;
    let t1 = app.issue_token(&ada).await.id;
    let t2 = app.issue_token(&ada).await.id;
    let bobs = app.issue_token(&bob).await.id;
    let bulk = |ids: &[&str]| {
        let data: Vec<Value> = ids
            .iter()
            .map(|id| json!({"type": "token", "id": id}))
            .collect();
        api.request(Method::DELETE, "/tokens", Some(&key))
            .header("Content-Type", "application/vnd.api+json; ext=bulk")
            .body(json!({ "data": data }).to_string())
    };
    let reply = api.send(bulk(&[&t1, &bobs, &t2])).await;
    reply.expect_msg(404, "Token not found");
    assert_eq!(reply.json["detail"], bobs);
    for id in [&t1, &t2, &bobs] {
        assert!(app.token_exists(id).await, "nothing deleted");
    }
    api.send(bulk(&[&t1, &t2])).await.expect(204);
    assert!(!app.token_exists(&t1).await && !app.token_exists(&t2).await);
    assert!(app.token_exists(&bobs).await);

    api.send(bulk(&[])).await.expect(400);
    api.send(
        api.request(Method::DELETE, "/tokens", Some(&key))
            .header("Content-Type", "application/vnd.api+json; ext=bulk")
            .body("{not json"),
    )
    .await
    .expect(400);
    api.send(
        api.request(Method::DELETE, "/tokens", Some(&key))
            .header("Content-Type", "application/vnd.api+json; ext=bulk")
            .body(json!({"data": [{"type": "service", "id": bobs}]}).to_string()),
    )
    .await
    .expect(400);
    api.send(
        api.request(Method::DELETE, "/tokens", Some(&key))
            .header("Content-Type", "text/plain")
            .body("x"),
    )
    .await
    .expect(415);
}

async fn automation_tokens(app: TestApp) {
    let api = app.api();
    let account = app.account("Acme").await;
    let service = app.service(&account, "www").await;
    let root = app.member(&account, Role::Superuser).await;
    let eng = app.member(&account, Role::Engineer).await;
    let root_key = app.issue_token(&root).await.key;
    let eng_key = app.issue_token(&eng).await.key;
    let fields = [
        ("name", "ci"),
        ("role", "engineer"),
        ("scope", "purge_all purge_select"),
        ("tls_access", "true"),
    ];

    api.enter_sudo(&eng_key, &eng).await;
    api.post_form("/automation-tokens", Some(&eng_key), &fields)
        .await
        .expect(403);
    api.post_form("/automation-tokens", Some(&root_key), &fields)
        .await
        .expect_msg(403, SUDO);
    api.enter_sudo(&root_key, &root).await;
    api.post_form(
        "/automation-tokens",
        Some(&root_key),
        &[("name", "ci"), ("role", "superuser")],
    )
    .await
    .expect(422);
    api.post_form("/automation-tokens", Some(&root_key), &[("name", "ci")])
        .await
        .expect(422);
    api.post_form(
        "/automation-tokens",
        Some(&root_key),
        &[("role", "user"), ("scope", "purge_all")],
    )
    .await
    .expect(403);

    let reply = api
        .post_form("/automation-tokens", Some(&root_key), &fields)
        .await;
    reply.expect(200);
    assert_eq!(reply.header("cache-control"), "no-store");
    let t = reply.json.clone();
    assert_eq!(t["role"], "engineer");
    assert_eq!(t["tls_access"], true);
    assert_eq!(t["scope"], "purge_all purge_select");
    assert!(t.get("user_id").is_none(), "not tied to a person: {t}");
    let robot_key = t["access_token"].as_str().unwrap().to_owned();
    assert!(robot_key.starts_with("tpa_"));
    let robot_id = t["id"].as_str().unwrap().to_owned();

    // The automation token works with its own role and scopes.
    api.get("/tokens/self", &robot_key).await.expect(200);
    api.post(&format!("/service/{service}/purge_all"), Some(&robot_key))
        .await
        .expect(200);
    api.get("/current_user", &robot_key).await.expect(403);
    api.get("/automation-tokens", &robot_key).await.expect(403);

    let list = api.get("/automation-tokens", &root_key).await;
    list.expect(200);
    assert_eq!(list.json.as_array().unwrap().len(), 1);
    assert_eq!(list.json[0]["id"], robot_id);
    assert!(list.json[0].get("access_token").is_none());
    api.get(&format!("/automation-tokens/{robot_id}"), &root_key)
        .await
        .expect(200);
    api.get("/automation-tokens", &eng_key).await.expect(403);
    let own_user_token = app.issue_token(&root).await.id;
    api.get(&format!("/automation-tokens/{own_user_token}"), &root_key)
        .await
        .expect(404);

    // Accounts forcing SSO or 2FA refuse automation tokens over the API.
    for flag in ["force_sso", "force_2fa"] {
        sqlx::query(&format!("UPDATE accounts SET {flag} = 1 WHERE id = $1"))
            .bind(&account)
            .execute(app.pool())
            .await
            .unwrap();
        let reply = api
            .post_form("/automation-tokens", Some(&root_key), &fields)
            .await;
        reply.expect(403);
        assert!(
            reply.msg().contains("forces SSO or two-factor"),
            "{}",
            reply.text
        );
        sqlx::query(&format!("UPDATE accounts SET {flag} = 0 WHERE id = $1"))
            .bind(&account)
            .execute(app.pool())
            .await
            .unwrap();
    }

    api.delete(&format!("/automation-tokens/{robot_id}"), &eng_key)
        .await
        .expect(403);
    api.delete(&format!("/automation-tokens/{own_user_token}"), &root_key)
        .await
        .expect(404);
    api.delete(&format!("/automation-tokens/{robot_id}"), &root_key)
        .await
        .expect(204);
    api.get("/tokens/self", &robot_key)
        .await
        .expect_msg(401, INVALID);
}

/// The expected answer of the matrix, written as a table of the rules in words.
fn allowed(role: Role, scope: &str, perm: Option<ServicePermission>, endpoint: &str) -> bool {
    let engineering = matches!(role, Role::Engineer | Role::Superuser);
    let perm_ok =
        |ok: &[ServicePermission]| role != Role::Engineer || perm.is_none_or(|p| ok.contains(&p));
    use ServicePermission::*;
    match endpoint {
        "read" => matches!(scope, "global" | "global:read"),
        "purge_all" => {
            matches!(scope, "global" | "purge_all") && engineering && perm_ok(&[Full, PurgeAll])
        }
        "purge_key" => {
            matches!(scope, "global" | "purge_select")
                && engineering
                && perm_ok(&[Full, PurgeAll, PurgeSelect])
        }
        "tokens_read" => matches!(scope, "global" | "global:read"),
        "tokens_write" => scope == "global",
        _ => unreachable!(),
    }
}

async fn permission_matrix(app: TestApp) {
    let api = app.api();
    let account = app.account("Acme").await;
    let service = app.service(&account, "www").await;
    let perms = [
        None,
        Some(ServicePermission::Full),
        Some(ServicePermission::ReadOnly),
        Some(ServicePermission::PurgeSelect),
        Some(ServicePermission::PurgeAll),
    ];
    let mut checked = 0;
    for role in Role::ALL {
        for perm in perms {
            let persona = app.member(&account, role).await;
            if let Some(p) = perm {
                app.limit_to(&persona, &service, p).await;
            }
            for scope in ["global", "purge_all", "purge_select", "global:read"] {
                let key = app
                    .issue_token(TokenSpec::user(&persona).scope(scope))
                    .await
                    .key;
                let spare = app
                    .issue_token(TokenSpec::user(&persona).scope(scope))
                    .await
                    .id;
                let calls = [
                    ("read", api.get(&format!("/service/{service}"), &key).await),
                    (
                        "purge_all",
                        api.post(&format!("/service/{service}/purge_all"), Some(&key))
                            .await,
                    ),
                    (
                        "purge_key",
                        api.post(&format!("/service/{service}/purge/k1"), Some(&key))
                            .await,
                    ),
                    ("tokens_read", api.get("/tokens", &key).await),
                    (
                        "tokens_write",
                        api.delete(&format!("/tokens/{spare}"), &key).await,
                    ),
                ];
                for (endpoint, reply) in calls {
                    let ok = allowed(role, scope, perm, endpoint);
                    let context =
                        format!("{role} / {perm:?} / {scope} / {endpoint}: {}", reply.text);
                    if ok {
                        assert!(
                            reply.status == 200 || reply.status == 204,
                            "expected success: {context}"
                        );
                    } else {
                        assert_eq!(reply.status, 403, "expected 403: {context}");
                        assert!(!reply.msg().is_empty(), "{context}");
                        if scope == "global:read" {
                            assert_eq!(reply.msg(), READ_ONLY, "{context}");
                        }
                    }
                    checked += 1;
                }
                assert_eq!(
                    app.token_exists(&spare).await,
                    !allowed(role, scope, perm, "tokens_write"),
                    "{role} / {perm:?} / {scope}: the spare token"
                );
            }
        }
    }
    assert_eq!(checked, 4 * 5 * 4 * 5);
    // Every allowed purge left an event; no refused one did.
    let purges: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events WHERE event_type IN ('service.purge_all', 'service.purge')",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    let mut expected = 0;
    for role in Role::ALL {
        for perm in perms {
            for scope in ["global", "purge_all", "purge_select", "global:read"] {
                expected += allowed(role, scope, perm, "purge_all") as i64;
                expected += allowed(role, scope, perm, "purge_key") as i64;
            }
        }
    }
    assert_eq!(purges, expected);
}

async fn services_follow_token_and_member_limits(app: TestApp) {
    let api = app.api();
    let account = app.account("Acme").await;
    let other = app.account("Other").await;
    let a = app.service(&account, "a").await;
    let b = app.service(&account, "b").await;
    let c = app.service(&account, "c").await;
    let foreign = app.service(&other, "foreign").await;
    let ada = app.member(&account, Role::User).await;
    let names = |reply: &Reply| -> Vec<String> {
        reply
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };

    let all_key = app
        .issue_token(TokenSpec::user(&ada).scope("global:read"))
        .await
        .key;
    let reply = api.get("/service", &all_key).await;
    reply.expect(200);
    assert_eq!(names(&reply), ["a", "b", "c"]);
    assert_eq!(reply.json[0]["customer_id"], account);
    let ab_key = app
        .issue_token(TokenSpec::user(&ada).services(&[a.clone(), b.clone()]))
        .await
        .key;
    assert_eq!(names(&api.get("/service", &ab_key).await), ["a", "b"]);
    api.get(&format!("/service/{a}"), &ab_key).await.expect(200);
    api.get(&format!("/service/{c}"), &ab_key).await.expect(403);
    api.get(&format!("/service/{foreign}"), &ab_key)
        .await
        .expect_msg(404, "Record not found");
    api.get("/service/nope", &ab_key).await.expect(404);

    // An engineer limited to some services sees those only, whatever the token says.
    let eve = app.member(&account, Role::Engineer).await;
    for (service, perm) in [
        (&b, ServicePermission::ReadOnly),
        (&c, ServicePermission::Full),
    ] {
        app.limit_to(&eve, service, perm).await;
    }
    let eve_key = app.issue_token(&eve).await.key;
    assert_eq!(names(&api.get("/service", &eve_key).await), ["b", "c"]);
    api.get(&format!("/service/{a}"), &eve_key)
        .await
        .expect(403);
    // A purge-only token may not list services.
    let purge_key = app
        .issue_token(TokenSpec::user(&eve).scope("purge_all"))
        .await
        .key;
    api.get("/service", &purge_key).await.expect(403);

    // current_user says who the token belongs to.
    let me = api.get("/current_user", &eve_key).await;
    me.expect(200);
    assert_eq!(me.json["id"], eve.id);
    assert_eq!(me.json["login"], eve.email);
    assert_eq!(me.json["customer_id"], account);
    assert_eq!(me.json["role"], "engineer");
    assert_eq!(me.json["two_factor_auth_enabled"], false);
    api.get("/current_user", &purge_key).await.expect(403);
}

async fn purges_answer_like_fastly_and_record_events(app: TestApp) {
    let api = app.api();
    let account = app.account("Acme").await;
    let service = app.service(&account, "www").await;
    let eve = app.member(&account, Role::Engineer).await;
    let Token { id: key_id, key } = app.issue_token(&eve).await;

    let reply = api
        .post(&format!("/service/{service}/purge_all"), Some(&key))
        .await;
    reply.expect(200);
    assert_eq!(reply.json, json!({"status": "ok"}));

    let reply = api
        .post(&format!("/service/{service}/purge/product-42"), Some(&key))
        .await;
    reply.expect(200);
    assert_eq!(reply.json["status"], "ok");
    assert!(reply.json["id"].as_str().is_some_and(|id| !id.is_empty()));

    let reply = api
        .send(
            api.request(
                Method::POST,
                &format!("/service/{service}/purge"),
                Some(&key),
            )
            .header("Surrogate-Key", "k1 k2  k3"),
        )
        .await;
    reply.expect(200);
    let map = reply.json.as_object().unwrap();
    assert_eq!(map.len(), 3);
    assert!(map.contains_key("k2"));

    let reply = api
        .post_json(
            &format!("/service/{service}/purge"),
            Some(&key),
            json!({"surrogate_keys": ["x", "y"]}),
        )
        .await;
    reply.expect(200);
    assert_eq!(reply.json.as_object().unwrap().len(), 2);

    let too_many: Vec<String> = (0..257).map(|i| format!("k{i}")).collect();
    api.post_json(
        &format!("/service/{service}/purge"),
        Some(&key),
        json!({ "surrogate_keys": too_many }),
    )
    .await
    .expect(400);
    let max: Vec<String> = (0..256).map(|i| format!("k{i}")).collect();
    api.post_json(
        &format!("/service/{service}/purge"),
        Some(&key),
        json!({ "surrogate_keys": max }),
    )
    .await
    .expect(200);
    api.post(&format!("/service/{service}/purge"), Some(&key))
        .await
        .expect(400);

    type Row = (String, Option<String>, Option<String>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT event_type, actor_id, token_id, service_id FROM events \
         WHERE event_type LIKE 'service.%' ORDER BY created_at, id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 5, "{rows:?}");
    for (_, actor, token_id, service_id) in &rows {
        assert_eq!(actor.as_deref(), Some(eve.id.as_str()));
        assert_eq!(token_id.as_deref(), Some(key_id.as_str()));
        assert_eq!(service_id.as_deref(), Some(service.as_str()));
    }
    assert_eq!(
        rows.iter().filter(|r| r.0 == "service.purge_all").count(),
        1
    );
}

async fn events_filter_page_and_follow_visibility(app: TestApp) {
    let api = app.api();
    let account = app.account("Acme").await;
    let other = app.account("Other").await;
    let a = app.service(&account, "a").await;
    let b = app.service(&account, "b").await;
    let user = app.member(&account, Role::User).await;
    let limited = app.member(&account, Role::Engineer).await;
    app.limit_to(&limited, &a, ServicePermission::Full).await;
    let engineer = app.member(&account, Role::Engineer).await;
    let root = app.member(&account, Role::Superuser).await;
    let outsider = app.member(&other, Role::Superuser).await;
    let user_key = app.issue_token(&user).await.key;
    let limited_key = app.issue_token(&limited).await.key;
    let engineer_key = app.issue_token(&engineer).await.key;
    let root_key = app.issue_token(&root).await.key;
    let outsider_key = app.issue_token(&outsider).await.key;
    let Token {
        id: robot_id,
        key: robot_key,
    } = app
        .issue_token(TokenSpec::automation(&root, Role::Engineer))
        .await;
    // Actions on services by different people and the robot.
    api.post(&format!("/service/{a}/purge_all"), Some(&engineer_key))
        .await
        .expect(200);
    app.clock.advance(10);
    api.post(&format!("/service/{b}/purge_all"), Some(&root_key))
        .await
        .expect(200);
    app.clock.advance(10);
    api.post(&format!("/service/{b}/purge/k"), Some(&robot_key))
        .await
        .expect(200);
    api.post(&format!("/service/{a}/purge/k"), Some(&limited_key))
        .await
        .expect(200);
    app.clock.advance(10);
    api.delete("/tokens/self", &outsider_key).await.expect(204);

    async fn all_events(api: &Api, key: &str, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let reply = api
                .get(
                    &format!("/events?page[size]=3&page[number]={page}{query}"),
                    key,
                )
                .await;
            reply.expect(200);
            out.extend(reply.json["data"].as_array().unwrap().iter().cloned());
            if reply.json["links"].get("next").is_none() {
                assert_eq!(reply.json["meta"]["total_pages"], page);
                assert_eq!(reply.json["meta"]["record_count"], out.len());
                return out;
            }
            page += 1;
        }
    }

    for (persona, key, viewer, role, limits) in [
        (
            &user,
            &user_key,
            Viewer::User(user.id.clone()),
            Role::User,
            None,
        ),
        (
            &limited,
            &limited_key,
            Viewer::User(limited.id.clone()),
            Role::Engineer,
            Some(vec![a.clone()]),
        ),
        (
            &engineer,
            &engineer_key,
            Viewer::User(engineer.id.clone()),
            Role::Engineer,
            None,
        ),
        (
            &root,
            &root_key,
            Viewer::User(root.id.clone()),
            Role::Superuser,
            None,
        ),
        (
            &root,
            &robot_key,
            Viewer::Token(robot_id.clone()),
            Role::Engineer,
            None,
        ),
    ] {
        let mut expected = app.visible_by_rule(&account, role, viewer, limits).await;
        let got = all_events(&api, key, "").await;
        let mut got_ids: Vec<String> = got
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        // Newest first.
        let times: Vec<&str> = got
            .iter()
            .map(|e| e["attributes"]["created_at"].as_str().unwrap())
            .collect();
        let mut sorted = times.clone();
        sorted.sort_by(|x, y| y.cmp(x));
        assert_eq!(times, sorted);
        expected.sort();
        got_ids.sort();
        assert_eq!(
            got_ids, expected,
            "{} sees what the rule says",
            persona.email
        );
        assert!(!got_ids.is_empty());
    }
    // The superuser sees the robot's purge; the limited engineer does not see b.
    let root_view = all_events(&api, &root_key, "").await;
    assert!(root_view
        .iter()
        .any(|e| e["attributes"]["token_id"] == robot_id.as_str()));
    let limited_view = all_events(&api, &limited_key, "").await;
    assert!(limited_view
        .iter()
        .all(|e| e["attributes"]["service_id"] != b.as_str()));
    assert!(limited_view
        .iter()
        .any(|e| e["attributes"]["service_id"] == a.as_str()));

    // Filters.
    let purges = all_events(&api, &root_key, "&filter[event_type]=service.purge_all").await;
    assert_eq!(purges.len(), 2);
    assert!(purges
        .iter()
        .all(|e| e["type"] == "event" && e["attributes"]["event_type"] == "service.purge_all"));
    assert_eq!(
        all_events(&api, &root_key, &format!("&filter[service_id]={b}"))
            .await
            .len(),
        2
    );
    // The robot's creation and its purge both name it.
    let mut robot_events: Vec<String> =
        all_events(&api, &root_key, &format!("&filter[token_id]={robot_id}"))
            .await
            .iter()
            .map(|e| e["attributes"]["event_type"].as_str().unwrap().to_owned())
            .collect();
    robot_events.sort();
    assert_eq!(robot_events, ["service.purge", "token.create"]);
    assert!(all_events(
        &api,
        &root_key,
        &format!("&filter[user_id]={}", engineer.id)
    )
    .await
    .iter()
    .all(|e| e["attributes"]["user_id"] == engineer.id.as_str()));
    let b_purge_all = purges
        .iter()
        .find(|e| e["attributes"]["service_id"] == b.as_str())
        .unwrap();
    let at = b_purge_all["attributes"]["created_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let gte = all_events(
        &api,
        &root_key,
        &format!("&filter[event_type]=service.purge_all&filter[created_at][gte]={at}"),
    )
    .await;
    assert_eq!(gte.len(), 1);
    let gt = all_events(
        &api,
        &root_key,
        &format!("&filter[event_type]=service.purge_all&filter[created_at][gt]={at}"),
    )
    .await;
    assert_eq!(gt.len(), 0);
    let lt = all_events(
        &api,
        &root_key,
        &format!("&filter[event_type]=service.purge_all&filter[created_at][lt]={at}"),
    )
    .await;
    assert_eq!(lt.len(), 1);
    let lte = all_events(
        &api,
        &root_key,
        &format!("&filter[event_type]=service.purge_all&filter[created_at][lte]={at}"),
    )
    .await;
    assert_eq!(lte.len(), 2);

    // Paging: links and meta.
    let reply = api
        .get(
            "/events?page[size]=2&page[number]=2&sort=created_at",
            &root_key,
        )
        .await;
    reply.expect(200);
    let meta = &reply.json["meta"];
    assert_eq!(meta["current_page"], 2);
    assert_eq!(meta["per_page"], 2);
    let total = meta["record_count"].as_i64().unwrap();
    assert_eq!(meta["total_pages"].as_i64().unwrap(), (total + 1) / 2);
    let links = &reply.json["links"];
    assert!(links["self"]
        .as_str()
        .unwrap()
        .contains("page%5Bnumber%5D=2"));
    assert!(links["prev"]
        .as_str()
        .unwrap()
        .contains("page%5Bnumber%5D=1"));
    assert!(links["first"].as_str().unwrap().contains("sort=created_at"));
    let first = api.get(links["first"].as_str().unwrap(), &root_key).await;
    first.expect(200);
    assert!(first.json["links"].get("prev").is_none());
    assert!(!reply.text.contains("null"));
    api.get("/events?page[size]=500", &root_key)
        .await
        .expect(400);
    api.get("/events?filter[created_at][gte]=yesterday", &root_key)
        .await
        .expect(400);
    let purge_key = app
        .issue_token(TokenSpec::user(&engineer).scope("purge_all"))
        .await
        .key;
    api.get("/events", &purge_key).await.expect(403);
}

async fn last_use_is_recorded_coalesced(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::User).await;
    let Token { id, key } = app.issue_token(&ada).await;
    let writes_before = app.usage_writes();
    let started = Instant::now();
    for i in 0..40 {
        api.send(
            api.request(Method::GET, "/tokens/self", Some(&key))
                .header("User-Agent", format!("probe/{i}")),
        )
        .await
        .expect(200);
    }
    let burst = started.elapsed();
    // Visible within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(5);
    let row = loop {
        let row: (Option<i64>, Option<String>, Option<String>) = sqlx::query_as(
            "SELECT last_used_at, last_used_ip, last_used_agent FROM tokens WHERE id = $1",
        )
        .bind(&id)
        .fetch_one(app.pool())
        .await
        .unwrap();
        if row.2.as_deref() == Some("probe/39") || Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        row.2.as_deref(),
        Some("probe/39"),
        "the latest use is written"
    );
    assert_eq!(row.1.as_deref(), Some("127.0.0.1"));
    assert!((row.0.unwrap() - app.now()).abs() <= 6);
    // One write per flush at most: 40 requests in `burst` cost a handful of writes.
    let writes = app.usage_writes() - writes_before;
    let flushes = burst.as_secs() + 3;
    assert!(
        writes <= flushes,
        "{writes} writes for 40 uses in {burst:?} (at most one per flush)"
    );
    let shown = api.get("/tokens/self", &key).await;
    assert_eq!(shown.json["user_agent"], "probe/39");
    assert_eq!(shown.json["ip"], "127.0.0.1");
    assert!(shown.json["last_used_at"].as_str().unwrap().ends_with('Z'));
}

/// A token's name and last use: time, address, user agent.
type UseRow = (String, Option<i64>, Option<String>, Option<String>);

/// A flush writes many uses a statement: each token gets its own use, and a later use
/// another node already wrote is kept.
async fn uses_of_many_tokens_are_each_written(app: TestApp) {
    let api = app.api();
    let (ada, bob) = (app.persona(Role::User).await, app.persona(Role::User).await);
    let now = app.now();
    // 137 tokens: statements of 100, 10 and 1 uses.
    let seeds = (0..137).map(|i| {
        let owner = if i % 2 == 0 { &ada } else { &bob };
        (TokenSpec::user(owner).named(&format!("t{i}")), now, None)
    });
    let keys = tokenpanel::testkit::bench::insert_tokens(&app, seeds).await;
    let later = now + 1_000;
    sqlx::query(
        "UPDATE tokens SET last_used_at = $1, last_used_agent = 'other node' WHERE name = 't7'",
    )
    .bind(later)
    .execute(app.pool())
    .await
    .unwrap();
    for (i, key) in keys.iter().enumerate() {
        api.send(
            api.request(Method::GET, "/tokens/self", Some(key))
                .header("User-Agent", format!("probe/{i}")),
        )
        .await
        .expect(200);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let rows = loop {
        let rows: Vec<UseRow> = sqlx::query_as(
            "SELECT name, last_used_at, last_used_ip, last_used_agent FROM tokens \
             WHERE name LIKE 't%'",
        )
        .fetch_all(app.pool())
        .await
        .unwrap();
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|r| r.0[1..].parse::<usize>().is_ok())
            .collect();
        let written = rows
            .iter()
            .filter(|r| r.3.as_deref().is_some_and(|a| a.starts_with("probe/")))
            .count();
        if written == 136 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(rows.len(), 137);
    // Another node's flush of older uses moves no time back.
    let times = || async {
        let times: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT id, last_used_at FROM tokens ORDER BY id")
                .fetch_all(app.pool())
                .await
                .unwrap();
        times
    };
    let before = times().await;
    let written = app.write_a_use_of_every_token(now - 60, 50, false).await;
    assert_eq!(written, before.len());
    assert_eq!(times().await, before);
    for (name, at, ip, agent) in rows {
        let i: usize = name[1..].parse().expect("a seeded name");
        if i == 7 {
            assert_eq!((at, agent.as_deref()), (Some(later), Some("other node")));
            continue;
        }
        assert_eq!(agent, Some(format!("probe/{i}")), "{name}");
        assert_eq!(ip.as_deref(), Some("127.0.0.1"), "{name}");
        assert!((at.unwrap() - app.now()).abs() <= 6, "{name}");
    }
}

async fn revocation_is_seen_by_another_node_at_once(app: TestApp) {
    let node_b = app.second_node().await;
    app.token_cache_ready().await;
    node_b.token_cache_ready().await;
    let (api_a, api_b) = (app.api(), node_b.api());
    let ada = app.persona(Role::User).await;
    let Token { id, key } = app.issue_token(&ada).await;
    let other_key = app.issue_token(&ada).await.key;
    // Warm both nodes: the token is in use there, and served from memory.
    for _ in 0..5 {
        api_a.get("/tokens/self", &key).await.expect(200);
        api_b.get("/tokens/self", &key).await.expect(200);
    }
    assert!(node_b.token_cache().hits >= 3, "{:?}", node_b.token_cache());
    assert!(app.token_cache().hits >= 3, "{:?}", app.token_cache());
    api_a
        .delete(&format!("/tokens/{id}"), &other_key)
        .await
        .expect(204);
    let revoked_at = Instant::now();
    // Immediate on the node that revoked.
    api_a
        .get("/tokens/self", &key)
        .await
        .expect_msg(401, INVALID);
    // And on the other node within a second (the notification, or on SQLite the
    // change log, reaches it).
    loop {
        let reply = api_b.get("/tokens/self", &key).await;
        if reply.status == 401 {
            reply.expect_msg(401, INVALID);
            break;
        }
        reply.expect(200);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "node B still accepts a token revoked a second ago"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
    api_b.get("/tokens/self", &other_key).await.expect(200);
}

async fn the_api_ignores_session_cookies(app: TestApp) {
    let (browser, persona) = app.signed_in(Role::Superuser).await;
    // A signed-in browser is nobody to the API.
    let reply = browser.get("/tokens").await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert!(reply.body.contains(INVALID));
    let reply = browser.post_raw("/tokens", &[("name", "x")]).await;
    assert_eq!(
        reply.status, 401,
        "no CSRF check, no session: {}",
        reply.body
    );
    // And the API needs no CSRF token.
    let api = app.api();
    api.post_form(
        "/tokens",
        None,
        &[
            ("username", &persona.email),
            ("password", &persona.password),
        ],
    )
    .await
    .expect(200);
}
