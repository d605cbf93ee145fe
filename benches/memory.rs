//! Memory under the two heaviest requests: five CSV exports of 1,000,000 events at once
//! (streamed a chunk at a time), and a burst of 60 sign-ins at once (argon2 runs on a
//! fixed set of workers, each reusing one 19 MiB block).
//! Run: `cargo bench --bench memory` (BENCH_DATABASE_URL for PostgreSQL; EVENTS to change
//! the count). The server runs in this process, so the RSS reported is the server's plus
//! the client's (which reads each download as it streams and keeps none of it).
//! Goals: after a burst, at most 45 MB over idle; exports peak under 100 MB. Between the
//! two the bench waits for the password workers to give their blocks back.

use std::time::{Duration, Instant};

use reqwest::Method;
use tokenpanel::testkit::bench::{self, int, rss_mib, text, Cell};
use tokenpanel::testkit::{random_id, Persona, Role, TestApp};

const EXPORTS: usize = 5;
const SIGN_INS: usize = 60;

/// Samples RSS every 50 ms until `done` is set; returns the highest.
fn watch(done: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<f64> {
    std::thread::spawn(move || {
        let mut peak: f64 = 0.0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(rss_mib());
            std::thread::sleep(Duration::from_millis(50));
        }
        peak.max(rss_mib())
    })
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let app = TestApp::start_on(bench::database().await).await;
    let account = app.account("Bench").await;
    let boss = app.member(&account, Role::Superuser).await;
    let now = app.now();
    let seeded = Instant::now();
    let rows = (0..total).map(|i| {
        vec![
            text(random_id()),
            text(account.as_str()),
            text("service.purge"),
            text(boss.id.as_str()),
            Cell::Text(None),
            Cell::Text(None),
            text("192.0.2.1"),
            text("seeded event with a description of a usual length"),
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

    let client = app.client();
    client.sign_in(&boss).await;
    let node = app.node_behind_proxy().await;
    let mut people = Vec::new();
    for _ in 0..SIGN_INS {
        people.push(app.member(&account, Role::User).await);
    }
    // Let the seeding's buffers go before measuring idle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_mib();
    println!("idle: {idle:.1} MiB");

    // Two bursts of sign-ins: the first brings the password workers' blocks in, the
    // second shows nothing more stays behind.
    for round in 1..=2 {
        sign_in_burst(&node, &people, idle, round).await;
    }
    // Each password worker gives its block back after 15 quiet seconds
    // (domain/password.rs, IDLE_RELEASE), one worker after the other.
    tokio::time::sleep(Duration::from_secs(35)).await;
    let quiet = rss_mib();
    println!(
        "35 s after the bursts: {quiet:.1} MiB ({:+.1} over idle)",
        quiet - idle
    );

    // The seeded events and the few the setup and sign-ins recorded.
    let expected_lines = app.count("events").await as usize + 1;

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = watch(done.clone());
    let started = Instant::now();
    let exports: Vec<_> = (0..EXPORTS)
        .map(|_| {
            let http = client.raw().clone();
            let url = client.url("/account/events.csv");
            tokio::spawn(async move {
                let mut response = http.get(url).send().await.expect("an export");
                assert_eq!(response.status(), 200);
                let (mut bytes, mut lines) = (0usize, 0usize);
                while let Some(chunk) = response.chunk().await.expect("a chunk") {
                    bytes += chunk.len();
                    lines += chunk.iter().filter(|b| **b == b'\n').count();
                }
                (bytes, lines)
            })
        })
        .collect();
    for export in exports {
        let (bytes, lines) = export.await.expect("an export task");
        assert_eq!(lines, expected_lines, "every event and the header");
        println!(
            "export: {:.1} MiB, {lines} lines",
            bytes as f64 / 1_048_576.0
        );
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = peak.join().expect("the RSS watcher");
    println!(
        "{EXPORTS} exports at once: {:.1} s, peak RSS {peak:.1} MiB ({:+.1} over idle, {:+.1} over the start of the exports; goal: peak under 100 MiB)",
        started.elapsed().as_secs_f64(),
        peak - idle,
        peak - quiet
    );
}

/// Sixty sign-ins at once, each from an address of its own (so no throttle holds any
/// back), all with a wrong password; prints the answers and the RSS after.
async fn sign_in_burst(node: &TestApp, people: &[Persona], idle: f64, round: usize) {
    let before = rss_mib();
    let api = node.api();
    let started = Instant::now();
    let attempts: Vec<_> = people
        .iter()
        .enumerate()
        .map(|(i, person)| {
            let builder = api
                .request(Method::POST, "/tokens", None)
                .header("x-forwarded-for", format!("198.51.{round}.{}", i + 1))
                .basic_auth(&person.email, Some("a wrong password"));
            let api = api.clone();
            tokio::spawn(async move { api.send(builder).await.status })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for attempt in attempts {
        *statuses
            .entry(attempt.await.expect("a sign-in"))
            .or_insert(0) += 1;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_mib();
    println!(
        "burst {round}: {SIGN_INS} sign-ins at once in {:.2} s, answers {statuses:?}: RSS {before:.1} → {after:.1} MiB ({:+.1} over idle; goal: at most +45)",
        started.elapsed().as_secs_f64(),
        after - idle
    );
}
