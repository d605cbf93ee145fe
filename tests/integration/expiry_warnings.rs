//! Expiry warnings: the banner on every page (own tokens; superusers also automation
//! tokens), `Token-Expires-At` on API answers, and the per-user calendar feed.

use tokenpanel::testkit::{on_both_databases, Role, TestApp, TokenSpec};

on_both_databases!(
    a_banner_on_every_page_names_tokens_expiring_within_a_week,
    api_answers_carry_token_expires_at,
    the_calendar_feed_works_without_a_session_and_can_be_revoked,
);

const DAY: i64 = 86_400;
const BANNER: &str = "within 7 days.</strong>";

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

async fn a_banner_on_every_page_names_tokens_expiring_within_a_week(app: TestApp) {
    let account = app.account("Acme").await;
    let root = app.member(&account, Role::Superuser).await;
    let ada = app.member(&account, Role::User).await;
    let soon = app.now() + 3 * DAY + 60;
    app.issue_token(TokenSpec::user(&ada).named("soon").expires_at(soon))
        .await;
    app.issue_token(
        TokenSpec::user(&ada)
            .named("later")
            .expires_at(app.now() + 11 * DAY),
    )
    .await;
    app.issue_token(
        TokenSpec::automation(&root, Role::Engineer)
            .named("robot soon")
            .expires_at(app.now() + DAY + 60),
    )
    .await;

    let client = app.client();
    client.sign_in(&ada).await;
    for path in ["/account/tokens", "/account/security", "/account/events"] {
        let page = client.get(path).await;
        page.assert(200, BANNER);
        assert!(
            page.body.contains(&format!(
                r#"soon: expires <time datetime="{}" title="#,
                rfc3339(soon)
            )),
            "{path}: {}",
            page.body
        );
        assert!(page.body.contains(">in 3 days</time>"));
        assert!(!page.body.contains("later:"), "beyond 7 days");
        assert!(
            !page.body.contains("robot soon"),
            "a user sees no automation token"
        );
    }
    // An htmx fragment carries no banner (and costs no query).
    let fragment = client.get_htmx("/account/events").await;
    assert!(!fragment.body.contains(BANNER));

    let su = app.client();
    su.sign_in(&root).await;
    let page = su.get("/account/tokens").await;
    page.assert(200, "robot soon (automation token): expires");
    assert!(
        !page.body.contains("soon: expires"),
        "not another user's token"
    );

    // A superuser's own tokens and the automation tokens are named together, soonest
    // first, five at most; rolled-over tokens are not named.
    for (name, hours) in [("own first", 2), ("own fourth", 30), ("own seventh", 100)] {
        app.issue_token(
            TokenSpec::user(&root)
                .named(name)
                .expires_at(app.now() + hours * 3_600),
        )
        .await;
    }
    for (name, hours) in [
        ("robot third", 20),
        ("robot fifth", 40),
        ("robot sixth", 50),
    ] {
        app.issue_token(
            TokenSpec::automation(&root, Role::Engineer)
                .named(name)
                .expires_at(app.now() + hours * 3_600),
        )
        .await;
    }
    let rolled = app
        .issue_token(
            TokenSpec::automation(&root, Role::Engineer)
                .named("robot rolled")
                .expires_at(app.now() + 3_600),
        )
        .await;
    sqlx::query("UPDATE tokens SET replaced_by = id WHERE id = $1")
        .bind(&rolled.id)
        .execute(app.pool())
        .await
        .unwrap();
    let page = su.get("/account/tokens").await;
    let named: Vec<&str> = page
        .body
        .split("<li>")
        .skip(1)
        .filter_map(|item| item.split(':').next())
        .filter(|item| !item.contains('<'))
        .collect();
    assert_eq!(
        named,
        [
            "own first",
            "robot third (automation token)",
            "robot soon (automation token)",
            "own fourth",
            "robot fifth (automation token)",
        ],
        "{}",
        page.body
    );
    page.assert(200, "<li>and more</li>");

    // Past its expiry a token leaves the banner.
    app.clock.advance(3 * DAY + 120);
    let page = client.get("/account/tokens").await;
    assert!(!page.body.contains(BANNER), "{}", page.body);
}

async fn api_answers_carry_token_expires_at(app: TestApp) {
    let ada = app.persona(Role::User).await;
    let at = app.now() + 20 * DAY;
    let expiring = app
        .issue_token(TokenSpec::user(&ada).named("ci").expires_at(at))
        .await;
    let forever = app
        .issue_token(TokenSpec::user(&ada).named("forever"))
        .await;
    let api = app.api();
    let reply = api.get("/tokens/self", &expiring.key).await;
    reply.expect(200);
    assert_eq!(reply.header("token-expires-at"), rfc3339(at));
    // Every answer made with the token, refusals too.
    let refused = api.get("/customer/nope/users", &expiring.key).await;
    assert!(refused.status >= 400);
    assert_eq!(refused.header("token-expires-at"), rfc3339(at));
    let write = api.delete("/tokens/self", &expiring.key).await;
    write.expect(204);
    assert_eq!(write.header("token-expires-at"), rfc3339(at));
    let reply = api.get("/tokens/self", &forever.key).await;
    reply.expect(200);
    assert!(reply.headers.get("token-expires-at").is_none());
    // A refused (gone) token says nothing.
    let gone = api.get("/tokens/self", &expiring.key).await;
    gone.expect(401);
    assert!(gone.headers.get("token-expires-at").is_none());
}

fn link_in(html: &str) -> String {
    let start = html.find("http://").expect("a link");
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

async fn the_calendar_feed_works_without_a_session_and_can_be_revoked(app: TestApp) {
    let account = app.account("Acme").await;
    let root = app.member(&account, Role::Superuser).await;
    let ada = app.member(&account, Role::User).await;
    let at = app.now() + 40 * DAY;
    app.issue_token(
        TokenSpec::user(&ada)
            .named("deploy, prod; eu")
            .expires_at(at),
    )
    .await;
    app.issue_token(TokenSpec::user(&ada).named("forever"))
        .await;
    app.issue_token(
        TokenSpec::automation(&root, Role::Engineer)
            .named("robot")
            .expires_at(at),
    )
    .await;

    let client = app.client();
    client.sign_in(&ada).await;
    client
        .get("/account/security")
        .await
        .assert(200, "Make a calendar link");
    let made = client.post("/account/security/calendar", &[]).await;
    made.assert(200, "This is the only time the link is shown.");
    let link = link_in(&made.body);
    assert!(link.contains("/account/tokens/expiry.ics?key="), "{link}");
    let key = link.split("key=").nth(1).unwrap().to_owned();
    let stored: String = sqlx::query_scalar("SELECT key_digest FROM expiry_calendars")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_ne!(stored, key, "only a digest is kept");
    client
        .get("/account/security")
        .await
        .assert(200, "You have a calendar link");

    // Without a session.
    let outsider = reqwest::Client::new();
    let feed = outsider.get(&link).send().await.unwrap();
    assert_eq!(feed.status(), 200);
    assert_eq!(
        feed.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let body = feed.text().await.unwrap();
    assert!(
        body.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"),
        "{body}"
    );
    assert!(body.ends_with("END:VCALENDAR\r\n"));
    assert!(!body.replace("\r\n", "").contains('\n'));
    assert_eq!(body.matches("BEGIN:VEVENT").count(), 1, "{body}");
    let unfolded = body.replace("\r\n ", "");
    assert!(
        unfolded.contains("SUMMARY:API token \u{201c}deploy\\, prod\\; eu\u{201d} expires\r\n"),
        "{unfolded}"
    );
    assert!(
        !body.contains("robot"),
        "a user's feed has no automation token"
    );

    // A superuser's feed also lists the account's automation tokens.
    let su = app.client();
    su.sign_in(&root).await;
    let su_link = link_in(&su.post("/account/security/calendar", &[]).await.body);
    let su_feed = outsider
        .get(&su_link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(su_feed.contains("Automation token \u{201c}robot\u{201d} expires"));
    assert!(!su_feed.contains("deploy"));

    // A new link replaces the old; revoking ends it.
    let newer = link_in(&client.post("/account/security/calendar", &[]).await.body);
    assert_eq!(outsider.get(&link).send().await.unwrap().status(), 404);
    assert_eq!(outsider.get(&newer).send().await.unwrap().status(), 200);
    let revoked = client.post("/account/security/calendar/revoke", &[]).await;
    assert_eq!(revoked.status, 303);
    assert_eq!(outsider.get(&newer).send().await.unwrap().status(), 404);
    let wrong = app.url("/account/tokens/expiry.ics?key=short");
    assert_eq!(outsider.get(&wrong).send().await.unwrap().status(), 404);
    assert_eq!(app.count("sessions").await, 2, "the feed makes no session");
}
