//! Account > Event log: who sees what, filters, pages of 50 and the CSV download.

use tokenpanel::testkit::{
    on_both_databases, page_date, page_date_time, Client, EventSpec, Role, ServicePermission,
    TestApp,
};

on_both_databases!(
    each_role_sees_what_the_seed_says,
    filters_pages_and_csv_agree,
    a_long_csv_export_streams_every_row_once,
    event_times_read_relative_with_the_exact_time_on_hover,
    the_csv_carries_the_token_description_quoted_and_defused,
);

struct World {
    superuser: Client,
    engineer: Client,
    user: Client,
    billing: Client,
    super_id: String,
    user_id: String,
    www: String,
    api: String,
}

/// (actor, service, token) of an event.
type Who<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

async fn event(
    app: &TestApp,
    account: &str,
    (actor, service, token): Who<'_>,
    kind: &str,
    description: &str,
    at: i64,
) {
    let event = EventSpec {
        account_id: Some(account),
        event_type: kind,
        actor_id: actor,
        service_id: service,
        token_id: token,
        ip: Some("192.0.2.7"),
        description,
        metadata: token.map(|_| serde_json::json!({ "name": "deploy key" })),
    };
    app.record_event(&event, at).await;
}

async fn world(app: &TestApp) -> World {
    let account = app.account("Acme").await;
    let www = app.service(&account, "www.example.com").await;
    let api = app.service(&account, "api.example.com").await;
    let personas = [
        app.member(&account, Role::Superuser).await,
        app.member(&account, Role::Engineer).await,
        app.member(&account, Role::User).await,
        app.member(&account, Role::Billing).await,
    ];
    app.limit_to(&personas[1], &www, ServicePermission::Full)
        .await;
    let mut clients = Vec::new();
    for persona in &personas {
        let client = app.client();
        client.sign_in(persona).await;
        clients.push(client);
    }
    let base = app.now() - 3600;
    let [s, e, u, b] = [
        &personas[0].id,
        &personas[1].id,
        &personas[2].id,
        &personas[3].id,
    ];
    let other = app.account("Other").await;
    // One second apart, oldest first.
    let seeded: [(&str, Who, &str, &str); 7] = [
        (
            &account,
            (Some(s), Some(&www), None),
            "service.purge_all",
            "superuser purged www",
        ),
        (
            &account,
            (Some(s), Some(&api), None),
            "service.purge_all",
            "superuser purged api",
        ),
        (
            &account,
            (Some(s), None, None),
            "account.update",
            "superuser changed settings",
        ),
        (
            &account,
            (Some(e), None, Some("tok-eng")),
            "token.create",
            "engineer made a token",
        ),
        (
            &account,
            (Some(u), None, Some("tok-user")),
            "token.create",
            "user made a token",
        ),
        (
            &account,
            (Some(b), None, None),
            "user.logout",
            "billing signed out",
        ),
        (
            &other,
            (None, None, None),
            "account.update",
            "another account's event",
        ),
    ];
    for (at, (account, who, kind, description)) in (base..).zip(seeded) {
        event(app, account, who, kind, description, at).await;
    }
    let mut clients = clients.into_iter();
    World {
        superuser: clients.next().unwrap(),
        engineer: clients.next().unwrap(),
        user: clients.next().unwrap(),
        billing: clients.next().unwrap(),
        super_id: s.clone(),
        user_id: u.clone(),
        www,
        api,
    }
}

const ALL: [&str; 7] = [
    "superuser purged www",
    "superuser purged api",
    "superuser changed settings",
    "engineer made a token",
    "user made a token",
    "billing signed out",
    "another account's event",
];

async fn visible(client: &Client, query: &str) -> Vec<&'static str> {
    let page = client.get(&format!("/account/events{query}")).await;
    page.assert(200, "Event log");
    ALL.iter()
        .copied()
        .filter(|d| page.body.contains(d))
        .collect()
}

async fn each_role_sees_what_the_seed_says(app: TestApp) {
    let w = world(&app).await;
    assert_eq!(
        visible(&w.superuser, "").await,
        ALL[..6].to_vec(),
        "superusers see everything in the account, nothing of another"
    );
    assert_eq!(
        visible(&w.engineer, "").await,
        vec!["superuser purged www", "engineer made a token"],
        "engineers see their own actions and actions on their services"
    );
    assert_eq!(visible(&w.user, "").await, vec!["user made a token"]);
    assert_eq!(visible(&w.billing, "").await, vec!["billing signed out"]);
    // Filtering cannot widen the view.
    assert_eq!(
        visible(&w.user, &format!("?user={}", w.super_id)).await,
        Vec::<&str>::new()
    );
    assert_eq!(
        visible(&w.engineer, &format!("?service={}", w.api)).await,
        Vec::<&str>::new()
    );
    let csv = w
        .user
        .get(&format!("/account/events.csv?user={}", w.super_id))
        .await;
    assert!(!csv.body.contains("superuser"), "{}", csv.body);
    // The page itself is reachable from the navigation.
    w.user
        .get("/account/tokens")
        .await
        .assert(200, "href=\"/account/events\"");
    // Sign-in events of these personas are there too, for the superuser.
    let page = w
        .superuser
        .get("/account/events?event_type=user.login")
        .await;
    page.assert(200, "user.login").assert(200, "Signed in");
}

async fn filters_pages_and_csv_agree(app: TestApp) {
    // The world's events are an hour old; at noon (UTC, as pages show dates) they are
    // today's whatever time the test runs.
    app.clock.advance(12 * 3600 - app.now().rem_euclid(86_400));
    let w = world(&app).await;
    let s = &w.superuser;
    assert_eq!(
        visible(s, "?event_type=service.purge_all").await,
        vec!["superuser purged www", "superuser purged api"]
    );
    assert_eq!(
        visible(s, &format!("?service={}", w.www)).await,
        vec!["superuser purged www"]
    );
    assert_eq!(
        visible(s, &format!("?user={}", w.user_id)).await,
        vec!["user made a token"]
    );
    assert_eq!(
        visible(s, "?token=tok-eng").await,
        vec!["engineer made a token"]
    );
    let today = page_date(app.now());
    let yesterday = page_date(app.now() - 86_400 * 2);
    assert_eq!(
        visible(
            s,
            &format!("?from={today}&to={today}&event_type=token.create")
        )
        .await
        .len(),
        2
    );
    assert!(visible(s, &format!("?from={yesterday}&to={yesterday}"))
        .await
        .is_empty());
    s.get("/account/events?from=last+week")
        .await
        .assert(200, "Enter the From date as YYYY-MM-DD.");
    let row = s.get("/account/events?token=tok-eng").await;
    row.assert(200, "tok-eng")
        .assert(200, "deploy key")
        .assert(200, "192.0.2.7");

    // The CSV carries exactly the filtered view.
    let csv = s
        .get("/account/events.csv?event_type=service.purge_all")
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.headers.get("content-type").unwrap(),
        "text/csv; charset=utf-8"
    );
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "time,event_type,actor,token_id,token_name,token_description,service,ip,description"
    );
    assert_eq!(lines.len(), 3, "{}", csv.body);
    assert!(
        lines[1].contains("superuser purged api") && lines[2].contains("superuser purged www"),
        "newest first"
    );
    assert!(lines[1].contains("api.example.com"));

    // Pages of 50, newest first.
    let account: String =
        sqlx::query_scalar("SELECT account_id FROM memberships WHERE user_id = $1")
            .bind(&w.super_id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    for i in 0..120 {
        event(
            &app,
            &account,
            (Some(&w.super_id), None, None),
            "user.update",
            &format!("bulk event {i:03}"),
            app.now() - 7200 + i,
        )
        .await;
    }
    let first = s.get("/account/events?event_type=user.update").await;
    assert_eq!(first.body.matches("bulk event").count(), 50);
    assert!(first.body.contains("bulk event 119") && first.body.contains("rel=\"next\""));
    let third = s.get("/account/events?event_type=user.update&page=3").await;
    assert_eq!(third.body.matches("bulk event").count(), 20);
    assert!(third.body.contains("bulk event 000") && !third.body.contains("rel=\"next\""));
    assert!(third.body.contains("rel=\"prev\""));
    let csv = s.get("/account/events.csv?event_type=user.update").await;
    assert_eq!(csv.body.lines().count(), 121, "the CSV is not paged");
}

async fn event_times_read_relative_with_the_exact_time_on_hover(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    let at = app.now() - 2 * 86_400 - 600;
    let who = (Some(boss.id.as_str()), None, None);
    event(&app, &boss.account_id, who, "user.update", "renamed", at).await;
    let page = client.get("/account/events?event_type=user.update").await;
    page.assert(
        200,
        &format!("title=\"{}\">2 days ago</time>", page_date_time(at)),
    );
    // The export keeps the exact time.
    let csv = client
        .get("/account/events.csv?event_type=user.update")
        .await;
    let row = csv.body.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with(&format!("{},", page_date_time(at))),
        "{row}"
    );
}

async fn the_csv_carries_the_token_description_quoted_and_defused(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    let at = app.now() - 60;
    let event = EventSpec {
        account_id: Some(&boss.account_id),
        event_type: "token.create",
        actor_id: None,
        service_id: None,
        token_id: Some("tok-1"),
        ip: Some("192.0.2.7"),
        description: "@admin said \"hi\", then left",
        metadata: Some(serde_json::json!({
            "name": "deploy, key",
            "description": "=HYPERLINK(\"x\")\nsecond line",
        })),
    };
    app.record_event(&event, at).await;
    // The page shows the token's description under its name.
    client
        .get("/account/events?event_type=token.create")
        .await
        .assert(200, "second line");
    let csv = client
        .get("/account/events.csv?event_type=token.create")
        .await;
    assert_eq!(csv.status, 200);
    let expected = format!(
        "time,event_type,actor,token_id,token_name,token_description,service,ip,description\n\
         {},token.create,System,tok-1,\"deploy, key\",\"'=HYPERLINK(\"\"x\"\")\nsecond line\",,\
         192.0.2.7,\"'@admin said \"\"hi\"\", then left\"\n",
        page_date_time(at)
    );
    assert_eq!(csv.body, expected);
}

async fn a_long_csv_export_streams_every_row_once(app: TestApp) {
    // More rows than one chunk of the streamed export, several sharing a second, so the
    // walk from chunk to chunk must neither skip nor repeat a row.
    let (client, boss) = app.signed_in(Role::Superuser).await;
    let base = app.now() - 10_000;
    let total = 2_345;
    for i in 0..total {
        let description = format!("event {i:05}");
        event(
            &app,
            &boss.account_id,
            (Some(&boss.id), None, None),
            "service.purge",
            &description,
            base + i / 3,
        )
        .await;
    }
    let csv = client
        .get("/account/events.csv?event_type=service.purge")
        .await;
    assert_eq!(csv.status, 200);
    let rows: Vec<&str> = csv.body.lines().skip(1).collect();
    assert_eq!(rows.len(), total as usize);
    let mut seen: Vec<&str> = rows
        .iter()
        .map(|r| r.rsplit(',').next().unwrap_or(""))
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total as usize, "every event exactly once");
    // Newest first: the first row is one of the last second's three events.
    assert!(rows[0].contains("event 0234"), "newest first: {}", rows[0]);
}
