//! Server time of Account > Event log with 1,000,000 events in one account: filtered
//! pages for a superuser and the role-limited view of an engineer.
//! Run: `cargo bench --bench event_log_page` (BENCH_DATABASE_URL for PostgreSQL;
//! EVENTS to change the count).

use std::time::Instant;

use reqwest::Method;
use tokenpanel::testkit::bench::{self, int, text, Cell};
use tokenpanel::testkit::{random_id, Role, ServicePermission, TestApp, TokenSpec};

const REQUESTS: usize = 200;
const TYPES: [&str; 8] = [
    "token.create",
    "token.destroy",
    "user.login",
    "user.logout",
    "service.purge",
    "service.purge_all",
    "user.sudo",
    "account.update",
];

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let app = TestApp::start_on(bench::database().await).await;
    let account = app.account("Bench").await;
    let superuser = app.member(&account, Role::Superuser).await;
    let engineer = app.member(&account, Role::Engineer).await;
    let mut services = Vec::new();
    for i in 0..10 {
        services.push(app.service(&account, &format!("svc-{i}.example")).await);
    }
    app.limit_to(&engineer, &services[0], ServicePermission::Full)
        .await;
    let actors: Vec<String> = (0..48)
        .map(|_| random_id())
        .chain([superuser.id.clone(), engineer.id.clone()])
        .collect();

    let seeded = Instant::now();
    let now = app.now();
    let rows = (0..total).map(|i| {
        // One event in five names a service, spread over every service and type (a
        // plain `i % n` would tie services to types).
        let mixed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        let service =
            (mixed % 5 == 0).then(|| services[(mixed / 5) as usize % services.len()].clone());
        vec![
            text(random_id()),
            text(account.as_str()),
            text(TYPES[i % TYPES.len()]),
            text(actors[i % actors.len()].as_str()),
            Cell::Text(None),
            Cell::Text(service),
            text("192.0.2.1"),
            text("seeded event"),
            text("{}"),
            int(now - (total - i) as i64),
        ]
    });
    let columns = [
        "id",
        "account_id",
        "event_type",
        "actor_id",
        "token_id",
        "service_id",
        "ip",
        "description",
        "metadata",
        "created_at",
    ];
    bench::insert_rows(&app, "events", &columns, rows).await;
    println!(
        "backend: {}; seeded {total} events in {:.1} s",
        app.backend_name(),
        seeded.elapsed().as_secs_f64()
    );
    if app.is_postgres() {
        // What autovacuum does within a minute of a bulk load; without statistics the
        // planner guesses a dozen rows per filter and picks bitmap scans of 40,000.
        // SQLite is left without statistics, as a panel's database is.
        sqlx::query("VACUUM ANALYZE events")
            .execute(app.pool())
            .await
            .unwrap();
    }

    for (who, persona, path) in [
        (
            "superuser",
            &superuser,
            "/account/events?event_type=service.purge_all",
        ),
        (
            "superuser",
            &superuser,
            "/account/events?service=SERVICE&event_type=service.purge",
        ),
        ("superuser", &superuser, "/account/events?user=ACTOR&page=3"),
        ("engineer", &engineer, "/account/events"),
    ] {
        let path = path
            .replace("SERVICE", &services[3])
            .replace("ACTOR", &actors[7]);
        let client = app.client();
        client.sign_in(persona).await;
        let url = app.url(&path);
        let samples = bench::time_requests(
            || client.raw().get(&url),
            20,
            REQUESTS,
            |body| assert!(body.contains("seeded event"), "the page shows events"),
        )
        .await;
        bench::summary(&format!("{who} GET {path}"), samples);
    }

    // The same events through the API, whose `meta` counts every matching event.
    for (who, persona, path) in [
        ("superuser", &superuser, "/events"),
        (
            "superuser",
            &superuser,
            "/events?filter[event_type]=service.purge_all&page[number]=3",
        ),
        ("engineer", &engineer, "/events?filter[service_id]=SERVICE"),
    ] {
        let path = path.replace("SERVICE", &services[0]);
        let spec = TokenSpec::user(persona).named("bench").scope("global:read");
        let key = app.issue_token(spec).await.key;
        let api = app.api();
        let get = || api.request(Method::GET, &path, Some(&key));
        let samples = bench::time_requests(get, 20, REQUESTS, |body| {
            assert!(body.contains("seeded event"), "the API returns events")
        })
        .await;
        bench::summary(&format!("{who} API GET {path}"), samples);
    }
}
