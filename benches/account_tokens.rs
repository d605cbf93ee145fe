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

use std::time::Instant;

use tokenpanel::testkit::bench;
use tokenpanel::testkit::{Persona, Role, TestApp, TestDb, TokenSpec};

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

/// Seeds the account; returns its superuser.
async fn seed(app: &TestApp, tokens: usize) -> Persona {
    let now = app.now();
    let account = app.account("Bench account").await;
    let boss = app
        .persona_with_login(&account, Role::Superuser, SUPERUSER, PASSWORD)
        .await;
    let new_members: Vec<(String, String, Role)> = (0..MEMBERS)
        .map(|i| {
            let role = if i % 3 == 0 {
                Role::Engineer
            } else {
                Role::User
            };
            (
                format!("member{i}@bench.example"),
                format!("Member {i:04}"),
                role,
            )
        })
        .collect();
    let members = app.members_without_password(&account, &new_members).await;
    let mut services = Vec::new();
    for i in 0..SERVICES {
        services.push(app.service(&account, &format!("service-{i}.example")).await);
    }

    let mut rng = Lcg(42);
    let two_years = 2 * 365 * 86_400;
    let mut seeds = Vec::with_capacity(tokens);
    for i in 0..tokens {
        // 3% automation tokens; user tokens spread over the members, 100 at most each.
        let automation = i % 33 == 0;
        let owner = &members[i % MEMBERS];
        let created_at = now - rng.below(two_years) as i64;
        let expires_at = match rng.below(3) {
            0 => None,
            1 => Some(now - rng.below(86_400 * 300) as i64),
            _ => Some(now + 1 + rng.below(86_400 * 300) as i64),
        };
        let last_used_at = (rng.below(2) == 0).then(|| now - rng.below(86_400 * 365) as i64);
        let name = match rng.below(10) {
            0 => format!("deploy {i}"),
            1 => format!("CI pipeline {i}"),
            _ => format!("token {i}"),
        };
        let scope = SCOPES[rng.below(SCOPES.len() as u64) as usize];
        let services = if rng.below(10) == 0 {
            vec![services[rng.below(SERVICES as u64) as usize].clone()]
        } else {
            Vec::new()
        };
        let spec = if automation {
            TokenSpec::automation(owner, Role::Engineer)
        } else {
            TokenSpec::user(owner)
        };
        let spec = spec.named(&name).scope(scope).services(&services);
        let spec = match expires_at {
            Some(at) => spec.expires_at(at),
            None => spec,
        };
        seeds.push((spec, created_at, last_used_at));
    }
    bench::insert_tokens(app, seeds).await;
    boss
}

async fn run(database: TestDb, tokens: usize, iterations: usize, reuse: bool) {
    let app = TestApp::start_on(database).await;
    let label = app.backend_name();
    let boss = if reuse {
        println!("{label}: reusing the seeded database");
        // Signing in needs only the login.
        Persona {
            id: String::new(),
            email: SUPERUSER.to_owned(),
            password: PASSWORD.to_owned(),
            account_id: String::new(),
        }
    } else {
        let started = Instant::now();
        let boss = seed(&app, tokens).await;
        println!(
            "{label}: seeded {tokens} tokens in one account in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        boss
    };
    if app.is_postgres() {
        // What autovacuum does shortly after a bulk load (PostgreSQL 13+ vacuums after
        // inserts too). SQLite is left without statistics, as a panel's database is.
        sqlx::query("VACUUM ANALYZE")
            .execute(app.pool())
            .await
            .unwrap();
    }
    let owner: String =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'member7@bench.example'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    let client = app.client();
    client.sign_in(&boss).await;

    // A cursor in the middle of the newest-first order, as "Next page" links carry.
    let middle: (i64, String) = sqlx::query_as(
        "SELECT created_at, id FROM tokens ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $1",
    )
    .bind((tokens / 2) as i64)
    .fetch_one(app.pool())
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
        let path = format!("/account/account-tokens?{query}");
        let rows = client
            .get(&path)
            .await
            .body
            .matches("name=\"token\" value=")
            .count();
        let url = app.url(&path);
        let mut line = format!("  {name:<55}");
        for htmx in [false, true] {
            let get = || {
                let request = client.raw().get(&url);
                if htmx {
                    request.header("HX-Request", "true")
                } else {
                    request
                }
            };
            let mut times = bench::time_requests(get, 5, iterations, |_| {}).await;
            times.sort_by(f64::total_cmp);
            let (median, p90) = (
                bench::percentile(&times, 0.5),
                bench::percentile(&times, 0.9),
            );
            line.push_str(&format!(" {median:>7.2} {p90:>7.2} |"));
        }
        println!("{line} {rows:>3}");
    }
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
            let reuse = std::path::Path::new(&path).exists();
            (TestDb::existing(&format!("sqlite://{path}")), reuse)
        }
        None => (bench::database().await, false),
    };
    run(database, tokens, iterations, reuse).await;
}
