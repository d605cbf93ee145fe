//! Server time of Account > Event log with 1,000,000 events in one account: filtered
//! pages for a superuser and the role-limited view of an engineer.
//! Run: `cargo bench --bench event_log_page` (BENCH_DATABASE_URL for PostgreSQL;
//! EVENTS to change the count).

mod support;

use std::time::Instant;

use tokenpanel::clock::{Clock, SystemClock};
use tokenpanel::db::accounts;
use tokenpanel::domain::random;
use tokenpanel::domain::roles::{Role, ScopeSet, ServicePermission};
use tokenpanel::domain::secret::TokenKind;
use tokenpanel::tokens::{self, TokenRequest};

const REQUESTS: usize = 200;
const BATCH: usize = 500;
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
    let bench = support::start(false).await;
    let pool = &bench.state.db.pool;
    let account = bench.account().await;
    let (super_id, super_email) = bench
        .user(&account, Role::Superuser, "the right password")
        .await;
    let (eng_id, eng_email) = bench
        .user(&account, Role::Engineer, "the right password")
        .await;
    let mut services = Vec::new();
    for i in 0..10 {
        let id = random::id();
        accounts::create_service(
            pool,
            &id,
            &account,
            &format!("svc-{i}.example"),
            SystemClock.unix(),
        )
        .await
        .unwrap();
        services.push(id);
    }
    accounts::set_service_permission(
        pool,
        &account,
        &eng_id,
        &services[0],
        ServicePermission::Full.as_str(),
    )
    .await
    .unwrap();
    let actors: Vec<String> = (0..48)
        .map(|_| random::id())
        .chain([super_id.clone(), eng_id.clone()])
        .collect();

    let seeded = Instant::now();
    let now = SystemClock.unix();
    let mut made = 0;
    while made < total {
        let n = BATCH.min(total - made);
        let mut sql = String::from(
            "INSERT INTO events (id, account_id, event_type, actor_id, token_id, service_id, ip, description, metadata, created_at) VALUES ",
        );
        for row in 0..n {
            let b = row * 6;
            if row > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, NULL, ${}, '192.0.2.1', 'seeded event', '{{}}', ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            ));
        }
        let mut query = sqlx::query(&sql);
        for row in 0..n {
            let i = made + row;
            // One event in five names a service, spread over every service and type
            // (a plain `i % n` would tie services to types).
            let mixed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
            let service =
                (mixed % 5 == 0).then(|| services[(mixed / 5) as usize % services.len()].clone());
            query = query
                .bind(random::id())
                .bind(account.clone())
                .bind(TYPES[i % TYPES.len()])
                .bind(actors[i % actors.len()].clone())
                .bind(service)
                .bind(now - (total - i) as i64);
        }
        query.execute(pool).await.unwrap();
        made += n;
    }
    println!(
        "backend: {}; seeded {total} events in {:.1} s",
        bench.backend,
        seeded.elapsed().as_secs_f64()
    );
    if bench.state.db.backend == tokenpanel::db::Backend::Postgres {
        // What autovacuum does within a minute of a bulk load; without statistics the
        // planner guesses a dozen rows per filter and picks bitmap scans of 40,000.
        // SQLite is left without statistics, as a panel's database is.
        sqlx::query("VACUUM ANALYZE events")
            .execute(pool)
            .await
            .unwrap();
    }

    for (who, email, path) in [
        (
            "superuser",
            &super_email,
            "/account/events?event_type=service.purge_all",
        ),
        (
            "superuser",
            &super_email,
            "/account/events?service=SERVICE&event_type=service.purge",
        ),
        (
            "superuser",
            &super_email,
            "/account/events?user=ACTOR&page=3",
        ),
        ("engineer", &eng_email, "/account/events"),
    ] {
        let path = path
            .replace("SERVICE", &services[3])
            .replace("ACTOR", &actors[7]);
        let client = bench.client();
        bench.sign_in(&client, email, "the right password").await;
        let url = format!("{}{path}", bench.base);
        let samples = support::time_requests(
            || client.get(&url),
            20,
            REQUESTS,
            |body| assert!(body.contains("seeded event"), "the page shows events"),
        )
        .await;
        support::summary(&format!("{who} GET {path}"), samples);
    }

    // The same events through the API, whose `meta` counts every matching event.
    for (who, user_id, path) in [
        ("superuser", &super_id, "/events"),
        (
            "superuser",
            &super_id,
            "/events?filter[event_type]=service.purge_all&page[number]=3",
        ),
        ("engineer", &eng_id, "/events?filter[service_id]=SERVICE"),
    ] {
        let path = path.replace("SERVICE", &services[0]);
        let scopes = ScopeSet::parse("global:read").unwrap();
        let issued = tokens::issue(
            &bench.state,
            &TokenRequest {
                kind: TokenKind::User,
                account_id: &account,
                actor_id: user_id,
                name: "bench",
                scopes: &scopes,
                services: &[],
                role: None,
                tls_access: false,
                expires_at: None,
                ip: None,
            },
        )
        .await
        .unwrap();
        let key = issued.secret.expose().to_owned();
        let client = bench.client();
        let url = format!("{}{path}", bench.base);
        let get = || client.get(&url).header("Fastly-Key", &key);
        let samples = support::time_requests(get, 20, REQUESTS, |body| {
            assert!(body.contains("seeded event"), "the API returns events")
        })
        .await;
        support::summary(&format!("{who} API GET {path}"), samples);
    }
    bench.finish().await;
}
