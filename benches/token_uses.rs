//! Writing token uses: what `ops::token_usage` does every second with the uses of the
//! last second. Seeds TOKENS (100,000) tokens on a fresh SQLite file or, with
//! BENCH_DATABASE_URL, a fresh PostgreSQL database, then writes a use of every token in
//! transactions of 2,000 (the flush's chunk), ROUNDS (3) times each way, alternating:
//! one UPDATE a use (how uses were written before: the reference) and several hundred
//! uses a statement (`token_store::record_uses`, as the flush writes them). Prints uses
//! per second each way and their ratio.
//!
//!     cargo bench --bench token_uses
//!     BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench token_uses
//!
//! At full load with every key, SQLite's one writer has to keep up with a use of every
//! token used in the last second; when it cannot, the last uses shown lag behind.
//! Without `--bench` (e.g. `cargo test --benches`) it runs a small smoke version.

use std::time::Instant;

use tokenpanel::testkit::bench;
use tokenpanel::testkit::{Role, TestApp, TokenSpec};

const PER_TRANSACTION: usize = 2_000;
const PER_USER: usize = 100;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let tokens = setting("TOKENS", if full { 100_000 } else { 500 });
    let rounds = setting("ROUNDS", if full { 3 } else { 1 });
    let app = TestApp::start_on(bench::database().await).await;
    let now = app.now();
    let account = app.account("Bench account").await;
    let members: Vec<(String, String, Role)> = (0..tokens.div_ceil(PER_USER))
        .map(|n| {
            (
                format!("m{n}@bench.example"),
                "Member".to_owned(),
                Role::Engineer,
            )
        })
        .collect();
    let members = app.members_without_password(&account, &members).await;
    let seeds = (0..tokens).map(|i| {
        (
            TokenSpec::user(&members[i / PER_USER]).named("seeded"),
            now,
            None,
        )
    });
    bench::insert_tokens(&app, seeds).await;
    println!(
        "{tokens} tokens on {}, a use of each in transactions of {PER_TRANSACTION}",
        app.backend_name()
    );
    let mut at = now;
    let (mut single, mut batched) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        for one_a_statement in [true, false] {
            // A later time each pass, so every row is written (a use never moves back).
            at += 1;
            let started = Instant::now();
            let written = app
                .write_a_use_of_every_token(at, PER_TRANSACTION, one_a_statement)
                .await;
            assert_eq!(written, tokens);
            let per_second = tokens as f64 / started.elapsed().as_secs_f64();
            let rows: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE last_used_at = $1")
                    .bind(at)
                    .fetch_one(app.pool())
                    .await
                    .expect("a count");
            assert_eq!(rows, tokens as i64, "every token got its use");
            let how = if one_a_statement {
                "one UPDATE a use"
            } else {
                "record_uses"
            };
            println!("  round {round}: {how:<17} {per_second:>10.0} uses/s");
            if one_a_statement {
                single.push(per_second);
            } else {
                batched.push(per_second);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (single, batched) = (median(&mut single), median(&mut batched));
    println!(
        "median: one UPDATE a use {single:.0} uses/s, record_uses {batched:.0} uses/s ({:.1}x)",
        batched / single
    );
}
