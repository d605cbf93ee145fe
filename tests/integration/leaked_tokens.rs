//! `POST /tokens/revoke-leaked`: live tokens with a valid checksum are revoked, kept as
//! exposed, announced to the owner and the superusers (notices, events); the answer is
//! the same whatever was sent; malformed reports and floods are refused.

use std::time::Duration;

use serde_json::json;
use tokenpanel::testkit::{on_both_databases, unissued_key, Role, TestApp, TokenKind, TokenSpec};

on_both_databases!(
    reported_tokens_are_revoked_announced_and_the_answer_never_tells,
    malformed_reports_and_floods_are_refused,
);

const PATH: &str = "/tokens/revoke-leaked";

async fn wait_until_gone(app: &TestApp, ids: &[&str]) {
    for _ in 0..100 {
        let mut any = false;
        for id in ids {
            any |= app.token_exists(id).await;
        }
        if !any {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the reported tokens were not revoked");
}

async fn reported_tokens_are_revoked_announced_and_the_answer_never_tells(app: TestApp) {
    let account = app.account("Acme").await;
    let root = app.member(&account, Role::Superuser).await;
    let ada = app.member(&account, Role::User).await;
    let leaked = app.issue_token(TokenSpec::user(&ada).named("laptop")).await;
    let kept = app.issue_token(TokenSpec::user(&ada).named("kept")).await;
    let robot = app
        .issue_token(TokenSpec::automation(&root, Role::Engineer).named("ci robot"))
        .await;
    let api = app.api();
    let url = "https://github.example/acme/app/blob/main/.env";

    let live = api
        .post_json(
            PATH,
            None,
            json!({"tokens": [leaked.key, robot.key, unissued_key(TokenKind::User), "garbage", leaked.key], "url": url}),
        )
        .await;
    live.expect(202);
    let dead = api
        .post_json(
            PATH,
            None,
            json!({"tokens": [unissued_key(TokenKind::Automation), "x"]}),
        )
        .await;
    dead.expect(202);
    let empty = api.post_json(PATH, None, json!({"tokens": []})).await;
    empty.expect(202);
    assert_eq!(live.text, dead.text, "no oracle");
    assert_eq!(live.text, empty.text);

    wait_until_gone(&app, &[&leaked.id, &robot.id]).await;
    assert!(app.token_exists(&kept.id).await);
    api.get("/tokens/self", &leaked.key).await.expect(401);
    // The exposure is kept, and the events written (once each).
    let exposed: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT name, source_url FROM exposed_tokens ORDER BY name")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(
        exposed,
        vec![
            ("ci robot".to_owned(), Some(url.to_owned())),
            ("laptop".to_owned(), Some(url.to_owned()))
        ]
    );
    let types = app.event_types().await;
    assert_eq!(
        types.iter().filter(|t| *t == "token.exposed").count(),
        2,
        "{types:?}"
    );
    assert_eq!(types.iter().filter(|t| *t == "token.destroy").count(), 2);

    // The owner is told on the next page view, and may dismiss it.
    let client = app.client();
    client.sign_in(&ada).await;
    let page = client.get("/account/tokens").await;
    page.assert(200, "Your token \u{201c}laptop\u{201d} was reported exposed at https://github.example/acme/app/blob/main/.env and has been revoked. Make a new one for whatever used it. <time datetime=\"");
    assert!(!page.body.contains("ci robot"));
    let notice = tokenpanel::testkit::hidden(&page.body, "notice").expect("a notice id");
    let dismissed = client
        .post(
            "/account/notices/dismiss",
            &[("notice", &notice), ("back", "/account/security")],
        )
        .await;
    assert_eq!(dismissed.status, 303);
    assert_eq!(dismissed.location(), "/account/security");
    let page = client.get("/account/tokens").await;
    assert!(!page.body.contains("was reported exposed"), "dismissed");
    let list = client.get("/account/tokens/exposed").await;
    list.assert(200, "laptop");
    // When it was reported: a machine-readable time with the exact one on hover.
    assert_eq!(
        list.body.matches("<td><time datetime=\"").count(),
        1,
        "{}",
        list.body
    );
    assert!(list.body.contains(url));
    assert!(
        !list.body.contains("ci robot"),
        "a user sees their own only"
    );

    // Superusers hear of every exposed token of the account.
    let su = app.client();
    su.sign_in(&root).await;
    let page = su.get("/account/events").await;
    assert!(page
        .body
        .contains("The automation token \u{201c}ci robot\u{201d} was reported exposed"));
    assert!(page
        .body
        .contains("\u{2019}s token \u{201c}laptop\u{201d} was reported exposed"));
    let list = su.get("/account/tokens/exposed").await;
    assert!(list.body.contains("laptop") && list.body.contains("ci robot"));
    // A notice of someone else cannot be dismissed by ada.
    let root_notice = tokenpanel::testkit::hidden(&page.body, "notice").unwrap();
    client
        .post("/account/notices/dismiss", &[("notice", &root_notice)])
        .await;
    assert_eq!(app.count("notices").await, 2);
}

async fn malformed_reports_and_floods_are_refused(app: TestApp) {
    let api = app.api();
    let reply = api
        .send(
            api.request(reqwest::Method::POST, PATH, None)
                .header("content-type", "application/json")
                .body("not json"),
        )
        .await;
    reply.expect(400);
    assert!(reply.msg().starts_with("Send JSON"), "{}", reply.text);
    let many: Vec<String> = (0..1001).map(|i| format!("tpu_{i}")).collect();
    api.post_json(PATH, None, json!({ "tokens": many }))
        .await
        .expect_msg(
            413,
            "At most 1000 tokens per request: send the rest in another.",
        );
    for _ in 0..28 {
        api.post_json(PATH, None, json!({"tokens": []}))
            .await
            .expect(202);
    }
    let flood = api.post_json(PATH, None, json!({"tokens": []})).await;
    flood.expect(429);
    assert!(!flood.header("retry-after").is_empty());
}
