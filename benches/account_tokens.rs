//! Account tokens at scale: seeds one account with 100,000 tokens (1,000 members with
//! user tokens, a few thousand automation tokens, mixed scopes, expiries, last uses and
//! service limits), then times full page requests to the real server on a fresh SQLite
//! file or, when BENCH_DATABASE_URL is set, a fresh PostgreSQL database.
//!
//!     cargo bench --bench account_tokens
//!     BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench account_tokens
//!
//! TOKENS and ITERATIONS override the defaults (100000 and 50); BENCH_SQLITE=path keeps
//! the seeded SQLite file there and reuses it on the next run. Times are measured at
//! the client over loopback, so they include HTTP, the session lookup, the queries and
//! rendering: the median is what a superuser waits for, less the network. Without
//! `--bench` (e.g. `cargo test --benches`) it runs a small smoke version.
//!
//! Seeding writes rows directly (in batches) rather than through `tokens::issue`, which
//! would take minutes and record 100,000 events; the rows are the same shape.

mod support;

use std::time::Instant;

use sqlx::any::AnyArguments;
use sqlx::Arguments;
use tokenpanel::clock::{Clock, SystemClock};
use tokenpanel::db::{accounts, users};
use tokenpanel::domain::password::Password;
use tokenpanel::domain::random;
use tokenpanel::domain::roles::Role;

const MEMBERS: usize = 1_000;
const SERVICES: usize = 20;
const SCOPES: [&str; 6] = [
    "global",
    "global:read",
    "global global:read",
    "purge_select",
    "purge_all purge_select",
    "global purge_all",
];

/// A small deterministic generator, so every run seeds the same shape.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SUPERUSER: &str = "boss@bench.example";
const PASSWORD: &str = "bench password 1234";

async fn seed(state: &tokenpanel::AppState, tokens: usize) {
    let pool = &state.db.pool;
    let now = SystemClock.unix();
    let account = random::id();
    accounts::create(pool, &account, "Bench account", now)
        .await
        .unwrap();
    let hash = state
        .passwords
        .hash(&Password::new(PASSWORD))
        .await
        .unwrap();
    let boss = random::id();
    users::create(pool, &boss, SUPERUSER, "Bench Boss", Some(&hash), now)
        .await
        .unwrap();
    accounts::add_member(pool, &account, &boss, Role::Superuser, now)
        .await
        .unwrap();
    let mut members = Vec::with_capacity(MEMBERS);
    let mut tx = pool.begin().await.unwrap();
    for i in 0..MEMBERS {
        let id = random::id();
        let email = format!("member{i}@bench.example");
        users::create(&mut *tx, &id, &email, &format!("Member {i:04}"), None, now)
            .await
            .unwrap();
        let role = if i % 3 == 0 {
            Role::Engineer
        } else {
            Role::User
        };
        accounts::add_member(&mut *tx, &account, &id, role, now)
            .await
            .unwrap();
        members.push(id);
    }
    let mut services = Vec::new();
    for i in 0..SERVICES {
        let id = random::id();
        accounts::create_service(
            &mut *tx,
            &id,
            &account,
            &format!("service-{i}.example"),
            now,
        )
        .await
        .unwrap();
        services.push(id);
    }
    tx.commit().await.unwrap();

    let mut rng = Lcg(42);
    let two_years = 2 * 365 * 86_400;
    const BATCH: usize = 500;
    let mut token_services: Vec<(String, String)> = Vec::new();
    let mut written = 0;
    while written < tokens {
        let n = BATCH.min(tokens - written);
        let mut sql = String::from(
            "INSERT INTO tokens (id, account_id, kind, user_id, created_by, name, scope, role, tls_access, \
             secret_digest, created_at, expires_at, last_used_at) VALUES ",
        );
        let mut args = AnyArguments::default();
        for j in 0..n {
            let i = written + j;
            // 3% automation tokens; user tokens spread over the members, 100 at most each.
            let automation = i % 33 == 0;
            let owner = &members[i % MEMBERS];
            let id = random::id();
            let created = now - rng.below(two_years) as i64;
            let expires: Option<i64> = match rng.below(3) {
                0 => None,
                1 => Some(now - rng.below(86_400 * 300) as i64),
                _ => Some(now + 1 + rng.below(86_400 * 300) as i64),
            };
            let last_used: Option<i64> =
                (rng.below(2) == 0).then(|| now - rng.below(86_400 * 365) as i64);
            let name = match rng.below(10) {
                0 => format!("deploy {i}"),
                1 => format!("CI pipeline {i}"),
                _ => format!("token {i}"),
            };
            let p = j * 13;
            sql.push_str(&format!(
                "{}(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                if j == 0 { "" } else { ", " },
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7,
                p + 8,
                p + 9,
                p + 10,
                p + 11,
                p + 12,
                p + 13
            ));
            args.add(id.clone()).unwrap();
            args.add(account.clone()).unwrap();
            args.add(if automation { "automation" } else { "user" })
                .unwrap();
            args.add((!automation).then(|| owner.clone())).unwrap();
            args.add(owner.clone()).unwrap();
            args.add(name).unwrap();
            args.add(SCOPES[rng.below(SCOPES.len() as u64) as usize])
                .unwrap();
            args.add(automation.then_some("engineer")).unwrap();
            args.add(0_i64).unwrap();
            args.add(random::base62(40)).unwrap();
            args.add(created).unwrap();
            args.add(expires).unwrap();
            args.add(last_used).unwrap();
            if rng.below(10) == 0 {
                token_services.push((id, services[rng.below(SERVICES as u64) as usize].clone()));
            }
        }
        sqlx::query_with(&sql, args).execute(pool).await.unwrap();
        written += n;
    }
    for chunk in token_services.chunks(BATCH) {
        let mut sql = String::from("INSERT INTO token_services (token_id, service_id) VALUES ");
        let mut args = AnyArguments::default();
        for (j, (token, service)) in chunk.iter().enumerate() {
            sql.push_str(&format!(
                "{}(${}, ${})",
                if j == 0 { "" } else { ", " },
                j * 2 + 1,
                j * 2 + 2
            ));
            args.add(token.clone()).unwrap();
            args.add(service.clone()).unwrap();
        }
        sqlx::query_with(&sql, args).execute(pool).await.unwrap();
    }
}

async fn run(database: support::Database, tokens: usize, iterations: usize, reuse: bool) {
    let label = database.backend;
    let bench = support::start_on(database, false).await;
    let state = &bench.state;
    if reuse {
        println!("{label}: reusing the seeded database");
    } else {
        let started = Instant::now();
        seed(state, tokens).await;
        println!(
            "{label}: seeded {tokens} tokens in one account in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    if state.db.backend == tokenpanel::db::Backend::Postgres {
        // What autovacuum does shortly after a bulk load (PostgreSQL 13+ vacuums after
        // inserts too). SQLite is left without statistics, as a panel's database is.
        sqlx::query("VACUUM ANALYZE")
            .execute(&state.db.pool)
            .await
            .unwrap();
    }
    let owner: String =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'member7@bench.example'")
            .fetch_one(&state.db.pool)
            .await
            .unwrap();
    let client = bench.client();
    bench.sign_in(&client, SUPERUSER, PASSWORD).await;

    // A cursor in the middle of the newest-first order, as "Next page" links carry.
    let middle: (i64, String) = sqlx::query_as(
        "SELECT created_at, id FROM tokens ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $1",
    )
    .bind((tokens / 2) as i64)
    .fetch_one(&state.db.pool)
    .await
    .unwrap();
    let scenarios = [
        ("no filter, newest first".to_owned(), String::new()),
        (
            "type=user, status=active, scope=global, sort by expiry".to_owned(),
            "type=user&status=active&scope=global&sort=expires".to_owned(),
        ),
        (
            "status=expired, sort by last used".to_owned(),
            "status=expired&sort=last_used".to_owned(),
        ),
        (
            "one owner, sort by last used".to_owned(),
            format!("owner={owner}&sort=last_used"),
        ),
        (
            "type=automation, scope=purge_all, oldest first".to_owned(),
            "type=automation&scope=purge_all&dir=asc".to_owned(),
        ),
        ("search \"deploy\"".to_owned(), "q=deploy".to_owned()),
        (
            "page in the middle (after a cursor)".to_owned(),
            format!("after={}.{}", middle.0, middle.1),
        ),
        ("search with no match".to_owned(), "q=zzzz".to_owned()),
    ];
    println!("{label}: {iterations} requests each, in ms: full page median, p90 | htmx results block median, p90 | rows");
    for (name, query) in &scenarios {
        let url = format!("{}/account/account-tokens?{query}", bench.base);
        let page = client.get(&url).send().await.unwrap().text().await.unwrap();
        let rows = page.matches("name=\"token\" value=").count();
        let mut line = format!("  {name:<55}");
        for htmx in [false, true] {
            let get = || {
                let request = client.get(&url);
                if htmx {
                    request.header("HX-Request", "true")
                } else {
                    request
                }
            };
            let mut times = support::time_requests(get, 5, iterations, |_| {}).await;
            times.sort_by(f64::total_cmp);
            let (median, p90) = (
                support::percentile(&times, 0.5),
                support::percentile(&times, 0.9),
            );
            line.push_str(&format!(" {median:>7.2} {p90:>7.2} |"));
        }
        println!("{line} {rows:>3}");
    }
    bench.finish().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (tokens, iterations) = if bench {
        (env("TOKENS", 100_000), env("ITERATIONS", 50))
    } else {
        (2_000, 3)
    };
    let kept = std::env::var("BENCH_SQLITE")
        .ok()
        .filter(|_| bench && std::env::var("BENCH_DATABASE_URL").is_err());
    let (database, reuse) = match kept {
        Some(path) => {
            let path = std::path::Path::new(&path);
            (support::Database::kept_sqlite(path), path.exists())
        }
        None => (support::Database::fresh().await, false),
    };
    run(database, tokens, iterations, reuse).await;
}
