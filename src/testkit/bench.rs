//! For the benchmarks (and `examples/bench_seed.rs`): where they run, seeding in bulk,
//! and timing requests.

use std::time::Instant;

use sqlx::any::AnyArguments;
use sqlx::Arguments;

use super::app::{TestApp, TokenSpec};
use super::database::TestDb;
use super::internals::{digest, random_id, unissued_key, TokenKind};
pub use super::internals::{filled_token_cache, FilledTokenCache};

/// The database a benchmark runs on: a fresh database on the PostgreSQL server of
/// BENCH_DATABASE_URL (any database there, e.g. `postgres`) when it is set, else a fresh
/// SQLite file. It is removed at the end unless BENCH_KEEP is set (then it says where).
pub async fn database() -> TestDb {
    let mut db = match std::env::var("BENCH_DATABASE_URL") {
        Ok(admin_url) => TestDb::postgres(&admin_url).await,
        Err(_) => TestDb::sqlite().await,
    };
    if std::env::var_os("BENCH_KEEP").is_some() {
        db.keep();
        println!("kept for inspection (BENCH_KEEP): {}", db.url());
    }
    db
}

/// A value of a row written by `insert_rows`: text or an integer, either maybe NULL.
#[derive(Debug, Clone)]
pub enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
}

/// A text cell.
pub fn text(s: impl Into<String>) -> Cell {
    Cell::Text(Some(s.into()))
}

/// An integer cell.
pub fn int(n: i64) -> Cell {
    Cell::Int(Some(n))
}

/// Writes rows straight into `table`, 500 to a statement: seeding at a scale where
/// going through the panel would take minutes. Each row gives `columns.len()` cells.
pub async fn insert_rows(
    app: &TestApp,
    table: &str,
    columns: &[&str],
    rows: impl IntoIterator<Item = Vec<Cell>>,
) {
    const BATCH: usize = 500;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        let mut args = AnyArguments::default();
        for (i, row) in rows.by_ref().take(BATCH).enumerate() {
            assert_eq!(row.len(), columns.len(), "one cell per column");
            let first = i * columns.len();
            let places: Vec<String> = (1..=columns.len())
                .map(|n| format!("${}", first + n))
                .collect();
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("({})", places.join(", ")));
            for cell in row {
                match cell {
                    Cell::Text(v) => args.add(v),
                    Cell::Int(v) => args.add(v),
                }
                .expect("bind a cell");
            }
        }
        sqlx::query_with(&sql, args)
            .execute(app.pool())
            .await
            .expect("insert seeded rows");
    }
}

/// Writes tokens straight into the database (see `insert_rows`): each a token as
/// `TokenSpec` describes it, with the Unix times it was made and last used. Rows of the
/// real shape, without events or limit checks. Returns the token strings, in order.
pub async fn insert_tokens(
    app: &TestApp,
    tokens: impl IntoIterator<Item = (TokenSpec, i64, Option<i64>)>,
) -> Vec<String> {
    let mut links = Vec::new();
    let mut keys = Vec::new();
    let rows: Vec<Vec<Cell>> = tokens
        .into_iter()
        .map(|(t, created_at, last_used_at)| {
            let id = random_id();
            links.extend(
                t.services
                    .iter()
                    .map(|s| vec![text(id.as_str()), text(s.as_str())]),
            );
            let owner = (t.kind == TokenKind::User).then(|| t.actor_id.clone());
            keys.push(unissued_key(t.kind));
            vec![
                text(id),
                text(t.account_id),
                text(t.kind.as_str()),
                Cell::Text(owner),
                text(t.actor_id),
                text(t.name),
                text(t.scope),
                Cell::Text(t.role.map(|r| r.as_str().to_owned())),
                int(i64::from(t.tls_access)),
                text(digest(keys.last().map(String::as_str).unwrap_or(""))),
                int(created_at),
                Cell::Int(t.expires_at),
                Cell::Int(last_used_at),
            ]
        })
        .collect();
    let columns = [
        "id",
        "account_id",
        "kind",
        "user_id",
        "created_by",
        "name",
        "scope",
        "role",
        "tls_access",
        "secret_digest",
        "created_at",
        "expires_at",
        "last_used_at",
    ];
    insert_rows(app, "tokens", &columns, rows).await;
    insert_rows(app, "token_services", &["token_id", "service_id"], links).await;
    keys
}

/// Sends `warm_up` untimed requests, then times `n` round trips in milliseconds. Each
/// timed response must be a 200 whose body passes `check`.
pub async fn time_requests(
    request: impl Fn() -> reqwest::RequestBuilder,
    warm_up: usize,
    n: usize,
    check: impl Fn(&str),
) -> Vec<f64> {
    for _ in 0..warm_up {
        request()
            .send()
            .await
            .expect("a response")
            .bytes()
            .await
            .expect("a body");
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let response = request().send().await.expect("a response");
        assert_eq!(response.status(), 200);
        let body = response.text().await.expect("a body");
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        check(&body);
    }
    samples
}

/// This process's resident set size, in MiB (0 where /proc is not there to tell).
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

pub fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    let index = ((sorted_ms.len() as f64 - 1.0) * p).round() as usize;
    sorted_ms[index]
}

/// Prints n, median, p90, p99 and min of the samples; returns the median.
pub fn summary(label: &str, mut samples_ms: Vec<f64>) -> f64 {
    samples_ms.sort_by(f64::total_cmp);
    let median = percentile(&samples_ms, 0.5);
    println!(
        "{label}: n={} median={median:.2} ms p90={:.2} ms p99={:.2} ms min={:.2} ms",
        samples_ms.len(),
        percentile(&samples_ms, 0.9),
        percentile(&samples_ms, 0.99),
        samples_ms[0]
    );
    median
}
