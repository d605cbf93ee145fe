//! Rolling tokens (a new secret with the same settings, an overlap for the old one),
//! address allowlists, and descriptions: pages and API, on both databases.

use serde_json::json;
use tokenpanel::testkit::{on_both_databases, Role, TestApp, TokenSpec};

on_both_databases!(
    descriptions_are_set_at_creation_and_shown_everywhere,
    allowlists_are_normalised_bounded_and_shown,
    calls_from_outside_the_allowlist_are_refused_ipv4_and_ipv6,
    the_allowlist_sees_the_forwarded_client_only_behind_a_proxy,
    add_my_current_address_keeps_the_form,
    rolling_keeps_the_settings_and_the_overlap_ends_on_time,
    an_old_secret_used_after_its_overlap_is_recorded,
    rolling_needs_sudo_and_reach,
    a_token_rolls_itself_without_outliving_its_expiry,
    rolling_at_the_token_limit,
    the_roll_page_shows_the_secret_once_and_the_lineage,
    a_rolled_token_past_its_overlap_does_not_hold_its_owner_back,
    pages_stay_full_when_rolled_tokens_await_the_housekeeping,
    every_list_leaves_out_a_rolled_token_past_its_overlap,
);

const DAY: i64 = 86_400;
const REFUSED: &str = "Token is not allowed from this address.";

/// The secret on a "token created" (or rolled) page.
fn shown_secret(html: &str) -> Option<String> {
    let field = html.find("id=\"token-string\"")?;
    let marker = "value=\"";
    let start = html[field..].find(marker)? + field + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

async fn events(app: &TestApp, event_type: &str) -> Vec<(Option<String>, String)> {
    sqlx::query_as(
        "SELECT token_id, metadata FROM events WHERE event_type = $1 ORDER BY created_at, id",
    )
    .bind(event_type)
    .fetch_all(app.pool())
    .await
    .unwrap()
}

async fn descriptions_are_set_at_creation_and_shown_everywhere(app: TestApp) {
    let (client, ada) = app.signed_in(Role::User).await;
    let api = app.api();
    // API, by password.
    let made = api
        .post_json(
            "/tokens",
            None,
            json!({"username": ada.email, "password": ada.password, "name": "deploy",
                   "description": "  Deploys the site from CI.\r\nAsk Ada.  "}),
        )
        .await;
    made.expect(200);
    assert_eq!(
        made.json["description"],
        "Deploys the site from CI.\nAsk Ada."
    );
    let key = made.json["access_token"].as_str().unwrap().to_owned();
    let id = made.json["id"].as_str().unwrap().to_owned();
    let shown = api.get(&format!("/tokens/{id}"), &key).await;
    shown.expect(200);
    assert_eq!(
        shown.json["description"],
        "Deploys the site from CI.\nAsk Ada."
    );
    assert_eq!(
        api.get("/tokens/self", &key).await.json["description"],
        "Deploys the site from CI.\nAsk Ada."
    );
    // Too long: 422, nothing made.
    let before = app.count("tokens").await;
    api.post_json(
        "/tokens",
        None,
        json!({"username": ada.email, "password": ada.password, "description": "x".repeat(501)}),
    )
    .await
    .expect_msg(
        422,
        "description: The description must be at most 500 characters.",
    );
    assert_eq!(app.count("tokens").await, before);
    // A token without one has none in its JSON.
    let plain = app.issue_token(&ada).await;
    assert!(api
        .get("/tokens/self", &plain.key)
        .await
        .json
        .get("description")
        .is_none());

    // The form.
    client.enter_sudo(&ada).await;
    client
        .create_token(&[
            ("name", "laptop"),
            ("description", &"é".repeat(501)),
            ("scope", "global"),
            ("access", "all"),
            ("expiration", "never"),
        ])
        .await
        .assert(422, "The description must be at most 500 characters.");
    client
        .create_token(&[
            ("name", "laptop"),
            ("description", "For the purge script on my laptop"),
            ("scope", "global"),
            ("access", "all"),
            ("expiration", "never"),
        ])
        .await
        .assert(200, "Token created");
    let list = client.get("/account/tokens").await;
    list.assert(200, "For the purge script on my laptop");
    assert!(list.body.contains("Ask Ada."));
    // The event log shows it beside the token.
    client
        .get("/account/events")
        .await
        .assert(200, "For the purge script on my laptop");
    let created = events(&app, "token.create").await;
    assert!(created
        .iter()
        .any(|(_, m)| m.contains("For the purge script on my laptop")));
}

async fn allowlists_are_normalised_bounded_and_shown(app: TestApp) {
    let ada = app.persona(Role::User).await;
    let api = app.api();
    let create = |cidrs: serde_json::Value| {
        api.post_json(
            "/tokens",
            None,
            json!({"username": ada.email, "password": ada.password, "allowed_cidrs": cidrs}),
        )
    };
    let made = create(json!([
        "10.1.2.3/8",
        "127.0.0.1",
        "2001:DB8:FFFF::/32",
        "127.0.0.1/32"
    ]))
    .await;
    made.expect(200);
    assert_eq!(
        made.json["allowed_cidrs"],
        json!(["10.0.0.0/8", "127.0.0.1/32", "2001:db8::/32"])
    );
    let key = made.json["access_token"].as_str().unwrap().to_owned();
    // The test server sees 127.0.0.1: allowed.
    let own = api.get("/tokens", &key).await;
    own.expect(200);
    assert_eq!(own.json[0]["allowed_cidrs"][1], "127.0.0.1/32");
    // Form encoding, repeated or comma-separated.
    let form = api
        .post_form(
            "/tokens",
            None,
            &[
                ("username", &ada.email),
                ("password", &ada.password),
                ("allowed_cidrs[]", "::1"),
                ("allowed_cidrs[]", "192.0.2.0/24, 127.0.0.0/8"),
            ],
        )
        .await;
    form.expect(200);
    assert_eq!(
        form.json["allowed_cidrs"],
        json!(["::1/128", "192.0.2.0/24", "127.0.0.0/8"])
    );
    let before = app.count("tokens").await;
    create(json!(["10.0.0.0/33"])).await.expect_msg(
        422,
        "allowed_cidrs: \"10.0.0.0/33\" is not an address or a CIDR range",
    );
    let many: Vec<String> = (0..33).map(|i| format!("10.0.0.{i}")).collect();
    create(json!(many)).await.expect_msg(
        422,
        "allowed_cidrs: An allowlist holds at most 32 addresses or ranges.",
    );
    create(json!(many[..32])).await.expect(200);
    assert_eq!(app.count("tokens").await, before + 1);
    // No list: absent, and any address.
    let open = create(json!([])).await;
    open.expect(200);
    assert!(open.json.get("allowed_cidrs").is_none());
}

async fn calls_from_outside_the_allowlist_are_refused_ipv4_and_ipv6(app: TestApp) {
    app.clock.freeze();
    let node = app.node_behind_proxy().await;
    let ada = app.persona(Role::User).await;
    let token = app
        .issue_token(TokenSpec::user(&ada).allowed_from(&["203.0.113.0/24", "2001:db8::/32"]))
        .await;
    let api = node.api();
    let from = |ip: &'static str| {
        let request = api
            .request(reqwest::Method::GET, "/tokens/self", Some(&token.key))
            .header("x-forwarded-for", ip);
        api.send(request)
    };
    let inside = from("203.0.113.200").await;
    inside.expect(200);
    assert_eq!(
        inside.json["allowed_cidrs"],
        json!(["203.0.113.0/24", "2001:db8::/32"])
    );
    from("2001:db8:1234::9").await.expect(200);
    from("198.51.100.7").await.expect_msg(403, REFUSED);
    from("2001:db9::1").await.expect_msg(403, REFUSED);
    from("203.0.114.1").await.expect_msg(403, REFUSED);
    // Four refusals within a minute: one event.
    let refused = events(&app, "token.address_refused").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0.as_deref(), Some(token.id.as_str()));
    app.clock.advance(59);
    from("198.51.100.7").await.expect_msg(403, REFUSED);
    assert_eq!(events(&app, "token.address_refused").await.len(), 1);
    app.clock.advance(1);
    from("198.51.100.7").await.expect_msg(403, REFUSED);
    assert_eq!(events(&app, "token.address_refused").await.len(), 2);
    let (noted,): (Option<i64>,) =
        sqlx::query_as("SELECT address_refused_at FROM tokens WHERE id = $1")
            .bind(&token.id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(
        noted,
        Some(app.now()),
        "the throttle is the token's own column"
    );
}

async fn the_allowlist_sees_the_forwarded_client_only_behind_a_proxy(app: TestApp) {
    let ada = app.persona(Role::User).await;
    let token = app
        .issue_token(TokenSpec::user(&ada).allowed_from(&["203.0.113.9"]))
        .await;
    // Without TRUST_FORWARDED_FOR the header is ignored: the peer (127.0.0.1) is outside.
    let api = app.api();
    let spoofed = api
        .request(reqwest::Method::GET, "/tokens/self", Some(&token.key))
        .header("x-forwarded-for", "203.0.113.9");
    api.send(spoofed).await.expect_msg(403, REFUSED);
    // Behind the proxy, the forwarded client is the one checked.
    let node = app.node_behind_proxy().await;
    let proxied = node.api();
    let request = proxied
        .request(reqwest::Method::GET, "/tokens/self", Some(&token.key))
        .header("x-forwarded-for", "203.0.113.9");
    proxied.send(request).await.expect(200);
    // The right-most untrusted entry is the client, not what the client wrote first.
    let request = proxied
        .request(reqwest::Method::GET, "/tokens/self", Some(&token.key))
        .header("x-forwarded-for", "203.0.113.9, 198.51.100.1");
    proxied.send(request).await.expect_msg(403, REFUSED);
}

async fn add_my_current_address_keeps_the_form(app: TestApp) {
    let (client, ada) = app.signed_in(Role::User).await;
    client.enter_sudo(&ada).await;
    let form = client.get("/account/tokens/new").await;
    form.assert(200, "Add my current address (127.0.0.1)");
    let nonce = tokenpanel::testkit::hidden(&form.body, "nonce").unwrap();
    let again = client
        .post(
            "/account/tokens",
            &[
                ("nonce", &nonce),
                ("name", "office"),
                ("description", "Only from the office"),
                ("allowed_cidrs", "2001:db8::/32"),
                ("scope", "purge_select"),
                ("access", "all"),
                ("expiration", "never"),
                ("add_my_address", "1"),
            ],
        )
        .await;
    again.assert(200, "2001:db8::/32\n127.0.0.1</textarea>");
    assert!(again.body.contains("value=\"office\""), "the name is kept");
    assert!(again.body.contains("Only from the office"));
    assert_eq!(app.count("tokens").await, 0, "nothing is created");
    // The same nonce still creates the token.
    let made = client
        .post(
            "/account/tokens",
            &[
                ("nonce", &nonce),
                ("name", "office"),
                ("allowed_cidrs", "2001:db8::/32\n127.0.0.1"),
                ("scope", "global"),
                ("access", "all"),
                ("expiration", "never"),
            ],
        )
        .await;
    made.assert(200, "Token created");
    let key = shown_secret(&made.body).unwrap();
    let me = app.api().get("/tokens/self", &key).await;
    me.expect(200);
    assert_eq!(
        me.json["allowed_cidrs"],
        json!(["2001:db8::/32", "127.0.0.1/32"])
    );
    client
        .get("/account/tokens")
        .await
        .assert(200, "From 2001:db8::/32, 127.0.0.1/32");
    // A bad entry is a field error, every field kept.
    let form = client.get("/account/tokens/new").await;
    let nonce = tokenpanel::testkit::hidden(&form.body, "nonce").unwrap();
    client
        .post(
            "/account/tokens",
            &[
                ("nonce", &nonce),
                ("name", "bad"),
                ("allowed_cidrs", "10.0.0.0/8\nnot-an-address"),
                ("scope", "global"),
                ("access", "all"),
                ("expiration", "never"),
            ],
        )
        .await
        .assert(422, "is not an address or a CIDR range");
}

async fn rolling_keeps_the_settings_and_the_overlap_ends_on_time(app: TestApp) {
    app.clock.freeze();
    let ada = app.persona(Role::Engineer).await;
    let service = app.service(&ada.account_id, "www").await;
    let old = app
        .issue_token(
            TokenSpec::user(&ada)
                .named("ci")
                .scope("global purge_select")
                .services(std::slice::from_ref(&service))
                .described("The CI deploy key")
                .allowed_from(&["127.0.0.0/8", "2001:db8::/32"])
                .expires_at(app.now() + 30 * DAY),
        )
        .await;
    app.clock.advance(10 * DAY);
    let api = app.api();
    api.enter_sudo(&old.key, &ada).await;
    for bad in ["-1", "604801", "1h", "1.5"] {
        api.post_form(
            &format!("/tokens/{}/rotate", old.id),
            Some(&old.key),
            &[("overlap_seconds", bad)],
        )
        .await
        .expect_msg(
            422,
            "overlap_seconds must be a whole number from 0 to 604800 (7 days)",
        );
    }
    let rolled = api
        .post_json(
            &format!("/tokens/{}/rotate", old.id),
            Some(&old.key),
            json!({"overlap_seconds": 3600}),
        )
        .await;
    rolled.expect(200);
    let new = &rolled.json;
    let new_key = new["access_token"].as_str().unwrap().to_owned();
    let new_id = new["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, old.id);
    assert_eq!(new["name"], "ci");
    assert_eq!(new["scope"], "global purge_select");
    assert_eq!(new["services"], json!([service]));
    assert_eq!(new["description"], "The CI deploy key");
    assert_eq!(
        new["allowed_cidrs"],
        json!(["127.0.0.0/8", "2001:db8::/32"])
    );
    assert_eq!(new["rolled_from"], old.id.as_str());
    // Same lifetime (30 days), counted from the roll.
    let (expires,): (Option<i64>,) = sqlx::query_as("SELECT expires_at FROM tokens WHERE id = $1")
        .bind(&new_id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(expires, Some(app.now() + 30 * DAY));
    // The old token names its successor and ends with the overlap.
    let shown_old = api.get(&format!("/tokens/{}", old.id), &new_key).await;
    shown_old.expect(200);
    assert_eq!(shown_old.json["replaced_by"], new_id.as_str());
    assert_eq!(events(&app, "token.rotate").await.len(), 1);
    // Rolled once is rolled: the old one cannot be rolled again.
    api.enter_sudo(&new_key, &ada).await;
    api.post(&format!("/tokens/{}/rotate", old.id), Some(&new_key))
        .await
        .expect(409);
    // Both work during the overlap, to its last second.
    app.clock.advance(3599);
    api.get("/tokens/self", &old.key).await.expect(200);
    api.get("/tokens/self", &new_key).await.expect(200);
    app.clock.advance(1);
    let late = api.get("/tokens/self", &old.key).await;
    late.expect(401);
    assert!(
        late.msg()
            .starts_with(&format!("Token {} expired at", old.id)),
        "{}",
        late.text
    );
    api.get("/tokens/self", &new_key).await.expect(200);
    // Gone from the lists at once, and from the database at the next housekeeping.
    let listed = api.get("/tokens", &new_key).await;
    assert_eq!(listed.json.as_array().unwrap().len(), 1, "{}", listed.text);
    assert!(app.token_exists(&old.id).await);
    assert_eq!(app.sweep_rolled().await, 1);
    assert!(!app.token_exists(&old.id).await);
    api.get("/tokens/self", &old.key).await.expect(401);
    api.get("/tokens/self", &new_key).await.expect(200);
}

async fn an_old_secret_used_after_its_overlap_is_recorded(app: TestApp) {
    app.clock.freeze();
    let ada = app.persona(Role::User).await;
    let old = app.issue_token(TokenSpec::user(&ada).named("ci")).await;
    let api = app.api();
    // No overlap: the old secret stops at once, and the old row goes at once.
    let rolled = api
        .post(&format!("/tokens/{}/rotate", old.id), Some(&old.key))
        .await;
    rolled.expect_msg(403, "You must POST /sudo to access this endpoint");
    api.enter_sudo(&old.key, &ada).await;
    let rolled = api
        .post(&format!("/tokens/{}/rotate", old.id), Some(&old.key))
        .await;
    rolled.expect(200);
    assert!(!app.token_exists(&old.id).await);
    assert!(
        rolled.json.get("expires_at").is_none(),
        "never-expiring stays never"
    );
    // Each use is refused like an expired token; one event a minute per secret.
    for _ in 0..3 {
        let refused = api.get("/tokens/self", &old.key).await;
        refused.expect(401);
        assert!(refused.msg().contains("expired at"), "{}", refused.text);
    }
    let used = events(&app, "token.rotated_secret_used").await;
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(used[0].0.as_deref(), Some(old.id.as_str()));
    assert!(used[0].1.contains(rolled.json["id"].as_str().unwrap()));
    app.clock.advance(60);
    api.get("/tokens/self", &old.key).await.expect(401);
    assert_eq!(events(&app, "token.rotated_secret_used").await.len(), 2);
    // The owner sees it in their event log.
    let client = app.client();
    client.sign_in(&ada).await;
    client
        .get("/account/events")
        .await
        .assert(200, "token.rotated_secret_used");
    // Forgotten 90 days on.
    app.clock.advance(91 * DAY);
    app.sweep_rolled().await;
    assert_eq!(app.count("retired_secrets").await, 0);
    api.get("/tokens/self", &old.key)
        .await
        .expect_msg(401, "Provided credentials are missing or invalid");
}

async fn rolling_needs_sudo_and_reach(app: TestApp) {
    let boss = app.persona(Role::Superuser).await;
    let ada = app.member(&boss.account_id, Role::Engineer).await;
    let ada_token = app.issue_token(&ada).await;
    let boss_token = app.issue_token(&boss).await;
    let robot = app
        .issue_token(TokenSpec::automation(&boss, Role::Engineer).named("robot"))
        .await;
    let api = app.api();
    api.enter_sudo(&boss_token.key, &boss).await;
    api.enter_sudo(&ada_token.key, &ada).await;
    // Another person's token: refused even to a superuser, whose secret it would become.
    api.post(
        &format!("/tokens/{}/rotate", ada_token.id),
        Some(&boss_token.key),
    )
    .await
    .expect(403);
    // An engineer sees no automation token.
    api.post(
        &format!("/tokens/{}/rotate", robot.id),
        Some(&ada_token.key),
    )
    .await
    .expect(404);
    api.post(
        &format!("/tokens/{}/rotate", boss_token.id),
        Some(&ada_token.key),
    )
    .await
    .expect(404);
    // A read-only token rolls nothing but itself (refused before sudo mode matters).
    let reader = app
        .issue_token(TokenSpec::user(&boss).scope("global:read"))
        .await;
    api.post(&format!("/tokens/{}/rotate", robot.id), Some(&reader.key))
        .await
        .expect_msg(
            403,
            "Read only tokens are not allowed to access this endpoint.",
        );
    // The superuser rolls the automation token; it stays an automation token.
    let rolled = api
        .post_form(
            &format!("/tokens/{}/rotate", robot.id),
            Some(&boss_token.key),
            &[("overlap_seconds", "86400")],
        )
        .await;
    rolled.expect(200);
    assert_eq!(rolled.json["role"], "engineer");
    assert!(rolled.json.get("user_id").is_none());
    let new_robot = rolled.json["access_token"].as_str().unwrap().to_owned();
    api.get("/service", &new_robot).await.expect(200);
    api.get("/service", &robot.key).await.expect(200);
    // Pages: behind sudo mode, and the same reach.
    let client = app.client();
    client.sign_in(&boss).await;
    let page = client
        .get(&format!("/account/tokens/{}/roll", boss_token.id))
        .await;
    assert_eq!(page.status, 303);
    assert!(
        page.location().starts_with("/account/sudo"),
        "{}",
        page.location()
    );
    client
        .get(&format!("/account/tokens/{}/roll", ada_token.id))
        .await
        .assert(403, "not another user");
}

async fn a_token_rolls_itself_without_outliving_its_expiry(app: TestApp) {
    app.clock.freeze();
    let boss = app.persona(Role::Superuser).await;
    let expires = app.now() + 20 * DAY;
    let robot = app
        .issue_token(
            TokenSpec::automation(&boss, Role::Engineer)
                .scope("purge_select")
                .expires_at(expires),
        )
        .await;
    app.clock.advance(5 * DAY);
    let api = app.api();
    let rolled = api
        .post_form(
            "/tokens/self/rotate",
            Some(&robot.key),
            &[("overlap_seconds", "600")],
        )
        .await;
    rolled.expect(200);
    let key = rolled.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(rolled.json["scope"], "purge_select");
    assert_eq!(rolled.json["rolled_from"], robot.id.as_str());
    let (new_expires,): (Option<i64>,) =
        sqlx::query_as("SELECT expires_at FROM tokens WHERE id = $1")
            .bind(rolled.json["id"].as_str().unwrap())
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(
        new_expires,
        Some(expires),
        "the same date, not a renewed lifetime"
    );
    // The overlap, then only the new one.
    app.clock.advance(599);
    api.get("/tokens/self", &robot.key).await.expect(200);
    app.clock.advance(1);
    api.get("/tokens/self", &robot.key).await.expect(401);
    api.get("/tokens/self", &key).await.expect(200);
    // The event names no person: the token rolled itself.
    let (actor,): (Option<String>,) =
        sqlx::query_as("SELECT actor_id FROM events WHERE event_type = 'token.rotate'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(actor, None);
    // A user token rolls itself too (its owner recorded), keeping its date.
    let ada = app.persona(Role::User).await;
    let mine = app.issue_token(&ada).await;
    api.post("/tokens/self/rotate", Some(&mine.key))
        .await
        .expect(200);
    api.get("/tokens/self", &mine.key).await.expect(401);
}

async fn rolling_at_the_token_limit(app: TestApp) {
    app.clock.freeze();
    let ada = app.persona(Role::User).await;
    let mut tokens = Vec::new();
    for i in 0..100 {
        tokens.push(
            app.issue_token(TokenSpec::user(&ada).named(&format!("t{i}")))
                .await,
        );
    }
    app.try_issue_token(&ada).await.expect_err("the 101st");
    let api = app.api();
    let first = &tokens[0];
    api.enter_sudo(&first.key, &ada).await;
    // The rolled token does not count against its successor.
    let rolled = api
        .post_json(
            &format!("/tokens/{}/rotate", first.id),
            Some(&first.key),
            json!({"overlap_seconds": 3600}),
        )
        .await;
    rolled.expect(200);
    // During that overlap the old secret still counts: a second roll needs a place.
    let second = &tokens[1];
    api.enter_sudo(&second.key, &ada).await;
    let refused = api
        .post_json(
            &format!("/tokens/{}/rotate", second.id),
            Some(&second.key),
            json!({"overlap_seconds": 60}),
        )
        .await;
    refused.expect(422);
    assert!(
        refused.msg().contains("100 active tokens"),
        "{}",
        refused.text
    );
    app.clock.advance(3600);
    api.enter_sudo(&second.key, &ada).await;
    api.post_json(
        &format!("/tokens/{}/rotate", second.id),
        Some(&second.key),
        json!({"overlap_seconds": 60}),
    )
    .await
    .expect(200);
}

async fn the_roll_page_shows_the_secret_once_and_the_lineage(app: TestApp) {
    app.clock.freeze();
    let (client, boss) = app.signed_in(Role::Superuser).await;
    let mine = app
        .issue_token(
            TokenSpec::user(&boss)
                .named("laptop")
                .described("Purges from my laptop")
                .expires_at(app.now() + 90 * DAY),
        )
        .await;
    let robot = app
        .issue_token(TokenSpec::automation(&boss, Role::Billing).named("invoices"))
        .await;
    client.enter_sudo(&boss).await;
    let list = client.get("/account/tokens").await;
    list.assert(200, &format!("/account/tokens/{}/roll", mine.id));
    let form = client
        .get(&format!("/account/tokens/{}/roll", mine.id))
        .await;
    form.assert(200, "Roll token &ldquo;laptop&rdquo;");
    client
        .post(
            &format!("/account/tokens/{}/roll", mine.id),
            &[("overlap", "2h")],
        )
        .await
        .assert(422, "Choose how long the old secret keeps working.");
    let rolled = client
        .post(
            &format!("/account/tokens/{}/roll", mine.id),
            &[("overlap", "24h")],
        )
        .await;
    rolled.assert(200, "Token rolled");
    assert!(rolled.body.contains("The old secret keeps working until"));
    assert_eq!(rolled.headers.get("cache-control").unwrap(), "no-store");
    let key = shown_secret(&rolled.body).unwrap();
    app.api().get("/tokens/self", &key).await.expect(200);
    // A reload re-posts: the token is already rolled, no second secret.
    let again = client
        .post(
            &format!("/account/tokens/{}/roll", mine.id),
            &[("overlap", "24h")],
        )
        .await;
    assert_eq!(again.status, 409);
    assert!(shown_secret(&again.body).is_none());
    // The list: both, the new one "rolled from" the old, the old with its end.
    let list = client.get("/account/tokens").await;
    list.assert(200, &format!("Rolled from <code>{}</code>", mine.id));
    assert!(list.body.contains("Rolled: the old secret works until"));
    assert_eq!(list.body.matches("Purges from my laptop").count(), 2);
    app.clock.advance(DAY);
    let list = client.get("/account/tokens").await;
    assert_eq!(list.body.matches("Purges from my laptop").count(), 1);
    // Account tokens: a superuser rolls the automation token there.
    client.enter_sudo(&boss).await;
    let accounts = client.get("/account/account-tokens").await;
    accounts.assert(200, &format!("/account/tokens/{}/roll", robot.id));
    let rolled = client
        .post(
            &format!("/account/tokens/{}/roll", robot.id),
            &[("overlap", "none")],
        )
        .await;
    rolled.assert(200, "The old secret no longer works.");
    assert!(rolled.body.contains("href=\"/account/account-tokens\""));
    app.api().get("/tokens/self", &robot.key).await.expect(401);
}

async fn a_rolled_token_past_its_overlap_does_not_hold_its_owner_back(app: TestApp) {
    app.clock.freeze();
    let boss = app.persona(Role::Superuser).await;
    let ada = app.member(&boss.account_id, Role::Engineer).await;
    let old = app.issue_token(&ada).await;
    let api = app.api();
    api.enter_sudo(&old.key, &ada).await;
    let rolled = api
        .post_json(
            &format!("/tokens/{}/rotate", old.id),
            Some(&old.key),
            json!({"overlap_seconds": 600}),
        )
        .await;
    rolled.expect(200);
    let new_key = rolled.json["access_token"].as_str().unwrap().to_owned();
    api.delete("/tokens/self", &new_key).await.expect(204);
    let client = app.client();
    client.sign_in(&boss).await;
    client.enter_sudo(&boss).await;
    // During the overlap the old token is Ada's: she cannot be deleted yet.
    let refused = client
        .post(&format!("/account/users/{}/delete", ada.id), &[])
        .await;
    assert_ne!(refused.status, 303, "{}", refused.body);
    // After it, before any housekeeping, nothing of hers is left to delete.
    app.clock.advance(600);
    client.enter_sudo(&boss).await;
    let done = client
        .post(&format!("/account/users/{}/delete", ada.id), &[])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(!done.location().starts_with("/account/sudo"));
    assert!(!app.token_exists(&old.id).await);
}

async fn pages_stay_full_when_rolled_tokens_await_the_housekeeping(app: TestApp) {
    app.clock.freeze();
    let boss = app.persona(Role::Superuser).await;
    let key = app.issue_token(&boss).await.key;
    // Three tokens rolled with an hour of overlap, the newest first in every list.
    let api = app.api();
    api.enter_sudo(&key, &boss).await;
    for i in 0..3 {
        let old = app
            .issue_token(TokenSpec::user(&boss).named(&format!("rolled {i}")))
            .await;
        api.post_json(
            &format!("/tokens/{}/rotate", old.id),
            Some(&key),
            json!({"overlap_seconds": 3600}),
        )
        .await
        .expect(200);
    }
    // Past the overlap, before any housekeeping: the three old rows are still stored.
    app.clock.advance(3600);
    assert_eq!(app.count("tokens").await, 7);
    let path = format!("/customer/{}/tokens", boss.account_id);
    let mut ids = std::collections::BTreeSet::new();
    for number in 1..=2 {
        let page = api
            .get(&format!("{path}?per_page=2&page={number}"), &key)
            .await;
        page.expect(200);
        let rows = page.json.as_array().unwrap();
        assert_eq!(rows.len(), 2, "page {number} is full: {}", page.json);
        ids.extend(rows.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        let links = page.header("link");
        assert_eq!(
            links.contains("rel=\"next\""),
            number == 1,
            "four listed tokens make two pages: {links}"
        );
    }
    assert_eq!(ids.len(), 4, "the login token and three successors");
    // Account tokens lists the successors only.
    let client = app.client();
    client.sign_in(&boss).await;
    let page = client.get("/account/account-tokens?sort=created").await;
    page.assert(200, ">rolled 2<");
    assert_eq!(
        page.body.matches(">rolled 0<").count(),
        1,
        "only the successor: {}",
        page.body
    );
}

async fn every_list_leaves_out_a_rolled_token_past_its_overlap(app: TestApp) {
    app.clock.freeze();
    let boss = app.persona(Role::Superuser).await;
    let key = app
        .issue_token(TokenSpec::user(&boss).named("login"))
        .await
        .key;
    let mine = app
        .issue_token(TokenSpec::user(&boss).named("laptop"))
        .await;
    let robot = app
        .issue_token(TokenSpec::automation(&boss, Role::Engineer).named("deployer"))
        .await;
    let api = app.api();
    api.enter_sudo(&key, &boss).await;
    for old in [&mine.id, &robot.id] {
        api.post_json(
            &format!("/tokens/{old}/rotate"),
            Some(&key),
            json!({"overlap_seconds": 3600}),
        )
        .await
        .expect(200);
    }
    let client = app.client();
    client.sign_in(&boss).await;
    let count = |text: &str, name: &str| text.matches(name).count();
    // During the overlap both secrets of each are listed; after it, the successor only
    // (the old rows wait for the housekeeping).
    for (advance, listed) in [(3599, 2), (1, 1)] {
        app.clock.advance(advance);
        let own = api.get("/tokens", &key).await;
        own.expect(200);
        assert_eq!(count(&own.text, "\"laptop\""), listed, "{}", own.text);
        let robots = api.get("/automation-tokens", &key).await;
        robots.expect(200);
        assert_eq!(
            count(&robots.text, "\"deployer\""),
            listed,
            "{}",
            robots.text
        );
        let personal = client.get("/account/tokens").await;
        assert_eq!(count(&personal.body, "Delete token laptop\""), listed);
        // Looked up by id, the old token is there during the overlap and gone after it,
        // as if the housekeeping had already deleted it.
        let status = if listed == 2 { 200 } else { 404 };
        api.get(&format!("/tokens/{}", mine.id), &key)
            .await
            .expect(status);
        api.get(&format!("/automation-tokens/{}", robot.id), &key)
            .await
            .expect(status);
        let page = client
            .get(&format!("/account/tokens/{}/delete", mine.id))
            .await;
        assert_eq!(page.status.as_u16(), status, "{}", page.body);
        // The name search of Account tokens, indexed or not, applies the rule too.
        for needle in ["deployer", "de"] {
            let found = client
                .get(&format!("/account/account-tokens?q={needle}"))
                .await;
            assert_eq!(
                count(&found.body, "Delete token deployer\""),
                listed,
                "q={needle}"
            );
        }
    }
    // Rolling the old token again is refused as not found, not as "already rolled".
    api.post_json(
        &format!("/tokens/{}/rotate", mine.id),
        Some(&key),
        json!({"overlap_seconds": 0}),
    )
    .await
    .expect(404);
    assert!(app.token_exists(&mine.id).await && app.token_exists(&robot.id).await);
}
