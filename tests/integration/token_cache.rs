//! The verified-token cache (`ops/token_cache.rs`): repeat requests read no token from
//! the database, and every change that narrows what a token may do is honoured at once
//! on the node that made it and within a second on another node of the same database;
//! a missed notification empties the cache; entries are re-read after 30 seconds; the
//! database is asked about unknown keys a limited number of times per address.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokenpanel::testkit::{
    on_both_databases, unissued_key, Api, Role, ServicePermission, TestApp, Token, TokenKind,
    TokenSpec,
};

on_both_databases!(
    repeat_requests_are_served_from_memory,
    role_and_service_limit_changes_are_honoured_on_every_node,
    a_service_deleted_from_a_grant_and_a_locked_owner_are_honoured,
    sudo_mode_reaches_every_node,
    a_roll_reaches_every_node,
    edits_by_hand_are_seen_after_30_seconds_or_when_announced,
    a_lost_listen_connection_empties_the_cache,
    unknown_keys_are_limited_per_address,
);

const INVALID: &str = "Provided credentials are missing or invalid";

/// Two nodes on one database, each with its cache serving.
async fn two_nodes(app: &TestApp) -> TestApp {
    let node_b = app.second_node().await;
    app.token_cache_ready().await;
    node_b.token_cache_ready().await;
    node_b
}

/// Uses `key` on `node` until the node serves it from memory (a change announced while
/// it was first read keeps it out of the cache until the next read).
async fn warm(node: &TestApp, key: &str) {
    let api = node.api();
    let started = Instant::now();
    loop {
        let hits = node.token_cache().hits;
        api.get("/tokens/self", key).await.expect(200);
        if node.token_cache().hits > hits {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "never served from memory"
        );
    }
}

/// Polls `path` until it answers `status`, for at most a second.
async fn within_a_second(api: &Api, path: &str, key: &str, status: u16) -> Value {
    let started = Instant::now();
    loop {
        let reply = api.get(path, key).await;
        if reply.status == status {
            return reply.json;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{path} still answers {} ({}) a second later",
            reply.status,
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn repeat_requests_are_served_from_memory(app: TestApp) {
    app.token_cache_ready().await;
    let api = app.api();
    let ada = app.persona(Role::User).await;
    let key = app.issue_token(&ada).await.key;
    warm(&app, &key).await;
    let before = app.token_cache();
    for _ in 0..5 {
        api.get("/tokens/self", &key).await.expect(200);
    }
    let after = app.token_cache();
    assert_eq!(after.loads, before.loads, "no token read from the database");
    assert_eq!(after.hits, before.hits + 5);
    assert_eq!(after.entries, 1);
}

async fn role_and_service_limit_changes_are_honoured_on_every_node(app: TestApp) {
    let node_b = two_nodes(&app).await;
    let (api_a, api_b) = (app.api(), node_b.api());
    let (boss_client, boss) = app.signed_in(Role::Superuser).await;
    boss_client.enter_sudo(&boss).await;
    let account = boss.account_id.clone();
    let www = app.service(&account, "www").await;
    let shop = app.service(&account, "shop").await;

    // A superuser demoted to engineer no longer lists the account's users.
    let sam = app.member(&account, Role::Superuser).await;
    let sam_key = app.issue_token(&sam).await.key;
    let users = format!("/customer/{account}/users");
    for node in [&app, &node_b] {
        warm(node, &sam_key).await;
        node.api().get(&users, &sam_key).await.expect(200);
    }
    let demoted = boss_client
        .post(
            &format!("/account/users/{}/role", sam.id),
            &[("role", "engineer")],
        )
        .await;
    assert_eq!(demoted.status, 303, "{}", demoted.body);
    api_a.get(&users, &sam_key).await.expect(403);
    within_a_second(&api_b, &users, &sam_key, 403).await;

    // An engineer's service limits narrowed from two services to one.
    let eve = app.member(&account, Role::Engineer).await;
    app.limit_to(&eve, &www, ServicePermission::Full).await;
    app.limit_to(&eve, &shop, ServicePermission::Full).await;
    let eve_key = app.issue_token(&eve).await.key;
    let shop_path = format!("/service/{shop}");
    for node in [&app, &node_b] {
        warm(node, &eve_key).await;
        node.api().get(&shop_path, &eve_key).await.expect(200);
    }
    let perm_www = format!("perm-{www}");
    let narrowed = boss_client
        .post(
            &format!("/account/users/{}/services", eve.id),
            &[("limit", "some"), (perm_www.as_str(), "full")],
        )
        .await;
    assert_eq!(narrowed.status, 303, "{}", narrowed.body);
    api_a.get(&shop_path, &eve_key).await.expect(403);
    within_a_second(&api_b, &shop_path, &eve_key, 403).await;
    api_b
        .get(&format!("/service/{www}"), &eve_key)
        .await
        .expect(200);
}

async fn a_service_deleted_from_a_grant_and_a_locked_owner_are_honoured(app: TestApp) {
    let node_b = two_nodes(&app).await;
    let (api_a, api_b) = (app.api(), node_b.api());
    let (boss_client, boss) = app.signed_in(Role::Superuser).await;
    boss_client.enter_sudo(&boss).await;
    let account = boss.account_id.clone();
    let www = app.service(&account, "www").await;
    let shop = app.service(&account, "shop").await;
    let ada = app.member(&account, Role::User).await;
    let key = app
        .issue_token(TokenSpec::user(&ada).services(&[www.clone(), shop.clone()]))
        .await
        .key;
    let both = {
        let mut both = vec![www.clone(), shop.clone()];
        both.sort();
        both
    };
    for node in [&app, &node_b] {
        warm(node, &key).await;
        let shown = node.api().get("/tokens/self", &key).await;
        assert_eq!(shown.json["services"], serde_json::json!(both));
    }
    let deleted = boss_client
        .post(&format!("/account/services/{shop}/delete"), &[])
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    let only_www = serde_json::json!([www]);
    assert_eq!(
        api_a.get("/tokens/self", &key).await.json["services"],
        only_www
    );
    let started = Instant::now();
    while api_b.get("/tokens/self", &key).await.json["services"] != only_www {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "node B still shows the deleted service"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // An owner locked by an operator (by hand, then announced) loses the token.
    sqlx::query("UPDATE users SET locked = 1 WHERE id = $1")
        .bind(&ada.id)
        .execute(app.pool())
        .await
        .unwrap();
    app.announce_user_change(&ada).await;
    api_a
        .get("/tokens/self", &key)
        .await
        .expect_msg(401, INVALID);
    within_a_second(&api_b, "/tokens/self", &key, 401).await;
}

async fn sudo_mode_reaches_every_node(app: TestApp) {
    let node_b = two_nodes(&app).await;
    let (api_a, api_b) = (app.api(), node_b.api());
    let ada = app.persona(Role::Superuser).await;
    let key = app.issue_token(&ada).await.key;
    // Outside sudo mode the key alone creates no token, on either node.
    for (node, api) in [(&app, &api_a), (&node_b, &api_b)] {
        warm(node, &key).await;
        let refused = api.post("/tokens", Some(&key)).await;
        assert_eq!(refused.status, 403, "{}", refused.text);
    }
    api_a
        .post_form(
            "/sudo",
            Some(&key),
            &[("username", &ada.email), ("password", &ada.password)],
        )
        .await
        .expect(200);
    api_a.post("/tokens", Some(&key)).await.expect(200);
    let started = Instant::now();
    loop {
        let reply = api_b.post("/tokens", Some(&key)).await;
        if reply.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "node B still refuses: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn a_roll_reaches_every_node(app: TestApp) {
    let node_b = two_nodes(&app).await;
    let (api_a, api_b) = (app.api(), node_b.api());
    let ada = app.persona(Role::User).await;
    let old = app.issue_token(&ada).await;
    warm(&app, &old.key).await;
    warm(&node_b, &old.key).await;
    // Rolled without an overlap: the old secret stops working at once.
    let rolled = api_a.post("/tokens/self/rotate", Some(&old.key)).await;
    rolled.expect(200);
    let new_key = rolled.json["access_token"].as_str().unwrap().to_owned();
    api_a.get("/tokens/self", &old.key).await.expect(401);
    within_a_second(&api_b, "/tokens/self", &old.key, 401).await;
    api_b.get("/tokens/self", &new_key).await.expect(200);
}

async fn edits_by_hand_are_seen_after_30_seconds_or_when_announced(app: TestApp) {
    let node_b = two_nodes(&app).await;
    let api_b = node_b.api();
    let ada = app.persona(Role::User).await;
    let Token { id, key } = app.issue_token(&ada).await;
    warm(&node_b, &key).await;
    // Nobody announces this edit: node B keeps what it read for up to 30 seconds.
    sqlx::query("UPDATE tokens SET secret_digest = 'edited by hand' WHERE id = $1")
        .bind(&id)
        .execute(app.pool())
        .await
        .unwrap();
    api_b.get("/tokens/self", &key).await.expect(200);
    app.clock.advance(31);
    api_b
        .get("/tokens/self", &key)
        .await
        .expect_msg(401, INVALID);

    // `tokenpanel forget-cached-tokens` after an edit: every node re-reads at once.
    let Token { id, key } = app.issue_token(&ada).await;
    warm(&node_b, &key).await;
    sqlx::query("UPDATE tokens SET secret_digest = 'edited again' WHERE id = $1")
        .bind(&id)
        .execute(app.pool())
        .await
        .unwrap();
    app.forget_cached_tokens().await;
    within_a_second(&api_b, "/tokens/self", &key, 401).await;
}

async fn a_lost_listen_connection_empties_the_cache(app: TestApp) {
    let node_b = two_nodes(&app).await;
    let api_b = node_b.api();
    let ada = app.persona(Role::User).await;
    let Token { id, key } = app.issue_token(&ada).await;
    warm(&node_b, &key).await;
    assert_eq!(node_b.token_cache().entries, 1);
    sqlx::query("UPDATE tokens SET secret_digest = 'edited by hand' WHERE id = $1")
        .bind(&id)
        .execute(app.pool())
        .await
        .unwrap();
    // Served from memory: nothing announced the edit.
    api_b.get("/tokens/self", &key).await.expect(200);
    if app.is_postgres() {
        // The LISTEN connections drop: a notification may have been missed, so each
        // node empties its cache and reads tokens afresh until it listens again.
        let flushes = node_b.token_cache().flushes;
        assert_eq!(app.kill_token_cache_listeners().await, 2, "one per node");
        within_a_second(&api_b, "/tokens/self", &key, 401).await;
        assert!(node_b.token_cache().flushes > flushes);
        node_b.token_cache_ready().await;
        let fresh = app.issue_token(&ada).await.key;
        warm(&node_b, &fresh).await;
    } else {
        // SQLite has no connection to lose: the change log is read from where this
        // process left off, and rows it missed make it forget everything. A gap in the
        // log (rows deleted before this process read them) looks like this:
        let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 5 FROM token_cache_log")
            .fetch_one(app.pool())
            .await
            .unwrap();
        sqlx::query("INSERT INTO token_cache_log (seq, changes, created_at) VALUES ($1, $2, $3)")
            .bind(next)
            .bind("u nobody")
            .bind(app.now())
            .execute(app.pool())
            .await
            .unwrap();
        within_a_second(&api_b, "/tokens/self", &key, 401).await;
    }
}

async fn unknown_keys_are_limited_per_address(app: TestApp) {
    app.token_cache_ready().await;
    let api = app.api();
    let ada = app.persona(Role::User).await;
    let key = app.issue_token(&ada).await.key;
    warm(&app, &key).await;
    for _ in 0..30 {
        api.get("/tokens/self", &unissued_key(TokenKind::User))
            .await
            .expect_msg(401, INVALID);
    }
    let throttled = api
        .get("/tokens/self", &unissued_key(TokenKind::Automation))
        .await;
    throttled.expect(429);
    let wait: i64 = throttled.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // A token this node already holds is still served.
    api.get("/tokens/self", &key).await.expect(200);
    // Past its 30 seconds (still within the window), the held token is read again
    // regardless: it is no unknown key, and the address may be a NAT shared with
    // whoever tripped the limit.
    app.clock.advance(31);
    let loads = app.token_cache().loads;
    api.get("/tokens/self", &key).await.expect(200);
    assert_eq!(
        app.token_cache().loads,
        loads + 1,
        "the held token was read again"
    );
    // A valid token this node does not hold yet is looked up like any key: refused
    // until the window passes.
    let bob = app.persona(Role::User).await;
    let unheld = app.issue_token(&bob).await.key;
    api.get("/tokens/self", &unheld).await.expect(429);
    // The window passes.
    app.clock.advance(30);
    api.get("/tokens/self", &unheld).await.expect(200);
    api.get("/tokens/self", &unissued_key(TokenKind::User))
        .await
        .expect_msg(401, INVALID);
}
