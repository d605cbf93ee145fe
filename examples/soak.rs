//! Soak: mixed traffic against the release binary on PostgreSQL at about 80% of the
//! capacity measured first, reporting every 30 s the requests, errors and p99 latency
//! per class and the server's resident memory. Run through `bench/soak.sh`.
//!
//! Classes: `read` (GET /tokens/self with a token of one of 20 users), `token` (POST
//! /tokens in sudo mode, then DELETE /tokens/{id}), `page` (a signed-in GET
//! /account/tokens), `sign-in` (the sign-in form, an argon2id check each). Weights 70,
//! 10, 15, 5 of every 100 operations.
//!
//! Environment: SOAK_BINARY (the tokenpanel binary), SOAK_DATABASE (a PostgreSQL URL on
//! the server to use; default postgres://postgres@127.0.0.1:5432/postgres),
//! SOAK_SECONDS (600), SOAK_REPORT_SECONDS (30), SOAK_WORKERS (16).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokenpanel::testkit::{Method, Persona, Role, ServerProcess, TestApp, TestDb, TokenSpec};

type Failure = Box<dyn std::error::Error>;

const CLASSES: [&str; 4] = ["read", "token", "page", "sign-in"];

#[derive(Default, Clone)]
struct Window {
    latencies: [Vec<f64>; 4],
    errors: [u64; 4],
}

struct Shared {
    window: Mutex<Window>,
    stop: AtomicBool,
}

impl Shared {
    fn record(&self, class: usize, started: Instant, ok: bool) {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        w.latencies[class].push(ms);
        if !ok {
            w.errors[class] += 1;
        }
    }

    fn take(&self) -> Window {
        std::mem::take(&mut *self.window.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn p99(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)]
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Scene {
    server_url_api: tokenpanel::testkit::Api,
    boss: Persona,
    boss_key: String,
    read_keys: Vec<String>,
}

/// One operation of class `class`; true when it answered as it should.
async fn operate(scene: &Scene, server: &ServerProcess, class: usize, n: usize) -> bool {
    let api = &scene.server_url_api;
    match class {
        0 => {
            let key = &scene.read_keys[n % scene.read_keys.len()];
            matches!(api.try_send(api.request(Method::GET, "/tokens/self", Some(key))).await, Some(r) if r.status == 200)
        }
        1 => {
            let create = api
                .request(Method::POST, "/tokens", Some(&scene.boss_key))
                .form(&[("name", "soak")]);
            let Some(reply) = api.try_send(create).await else {
                return false;
            };
            let Some(id) = reply.json["id"].as_str().filter(|_| reply.status == 200) else {
                eprintln!("create: {} {}", reply.status, reply.text);
                return false;
            };
            let revoke = api.request(
                Method::DELETE,
                &format!("/tokens/{id}"),
                Some(&scene.boss_key),
            );
            matches!(api.try_send(revoke).await, Some(r) if r.status == 204)
        }
        2 => {
            // A browser that signed in once and keeps looking at its tokens.
            thread_local_page(server, &scene.boss).await
        }
        _ => {
            let client = server.client();
            let page = client.submit_password(&scene.boss).await;
            page.status == 303
        }
    }
}

async fn thread_local_page(server: &ServerProcess, boss: &Persona) -> bool {
    use std::collections::HashMap;
    static BROWSERS: Mutex<
        Option<HashMap<std::thread::ThreadId, Arc<tokenpanel::testkit::Client>>>,
    > = Mutex::new(None);
    let id = std::thread::current().id();
    let existing = BROWSERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .get(&id)
        .cloned();
    let browser = match existing {
        Some(b) => b,
        None => {
            let b = Arc::new(server.client());
            if b.submit_password(boss).await.status != 303 {
                return false;
            }
            BROWSERS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(HashMap::new)
                .insert(id, b.clone());
            b
        }
    };
    browser.get("/account/tokens").await.status == 200
}

fn class_of(n: usize) -> usize {
    match n % 100 {
        0..=69 => 0,
        70..=79 => 1,
        80..=94 => 2,
        _ => 3,
    }
}

/// Runs `workers` loops for `seconds`, each paced to `per_worker_rate` operations a
/// second (None: as fast as they go); returns the operations done.
async fn drive(
    scene: Arc<Scene>,
    server: Arc<ServerProcess>,
    shared: Arc<Shared>,
    workers: usize,
    per_worker_rate: Option<f64>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..workers)
        .map(|w| {
            let (scene, server, shared) = (scene.clone(), server.clone(), shared.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                let mut n = w * 7919;
                let started = Instant::now();
                while !shared.stop.load(Ordering::Relaxed) {
                    if let Some(rate) = per_worker_rate {
                        let due = started + Duration::from_secs_f64(done as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let class = class_of(n);
                    let at = Instant::now();
                    let ok = operate(&scene, &server, class, n).await;
                    shared.record(class, at, ok);
                    done += 1;
                    n += 1;
                }
                done
            })
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let binary = std::env::var("SOAK_BINARY").map_err(|_| "SOAK_BINARY: the tokenpanel binary")?;
    let admin = std::env::var("SOAK_DATABASE")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let env_num = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seconds = env_num("SOAK_SECONDS", 600);
    let every = env_num("SOAK_REPORT_SECONDS", 30);
    let workers = env_num("SOAK_WORKERS", 16) as usize;

    let app = TestApp::start_on(TestDb::postgres(&admin).await).await;
    let account = app.account("Soak").await;
    let boss = app.member(&account, Role::Superuser).await;
    let boss_key = app.issue_token(&boss).await.key;
    let mut read_keys = Vec::new();
    for _ in 0..20 {
        let member = app.member(&account, Role::Engineer).await;
        read_keys.push(
            app.issue_token(TokenSpec::user(&member).scope("global:read"))
                .await
                .key,
        );
    }
    let server = Arc::new(
        ServerProcess::start(
            &binary,
            app.database(),
            &[
                ("LOG_LEVEL", "warn"),
                ("ACCESS_LOG", "off"),
                ("SUDO_MINUTES", "1440"),
                ("API_WRITES_PER_HOUR", "100000000"),
            ],
        )
        .await,
    );
    let api = server.api();
    api.enter_sudo(&boss_key, &boss).await;
    let scene = Arc::new(Scene {
        server_url_api: api,
        boss,
        boss_key,
        read_keys,
    });

    // Capacity: the mix as fast as `workers` loops go, for 15 seconds.
    let shared = Arc::new(Shared {
        window: Mutex::new(Window::default()),
        stop: AtomicBool::new(false),
    });
    let probe = drive(scene.clone(), server.clone(), shared.clone(), workers, None).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    shared.stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for task in probe {
        total += task.await?;
    }
    let _ = shared.take();
    let capacity = total as f64 / 15.0;
    let target = capacity * 0.8;
    println!(
        "capacity {capacity:.0} ops/s with {workers} workers; soaking at {target:.0} ops/s (80%) for {seconds} s on PostgreSQL"
    );
    println!("class weights: read 70, token create+revoke 10, page 15, sign-in 5");

    shared.stop.store(false, Ordering::Relaxed);
    let soak = drive(
        scene.clone(),
        server.clone(),
        shared.clone(),
        workers,
        Some(target / workers as f64),
    )
    .await;
    let started = Instant::now();
    let mut total_errors = 0;
    let mut rss = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(every)).await;
        let mut window = shared.take();
        let mut line = format!(
            "t={:>4}s rss={:>6.1} MiB",
            started.elapsed().as_secs(),
            rss_mib(server.pid())
        );
        rss.push(rss_mib(server.pid()));
        for (i, class) in CLASSES.iter().enumerate() {
            total_errors += window.errors[i];
            line.push_str(&format!(
                " | {class}: {} ops, {} err, p99 {:.1} ms",
                window.latencies[i].len(),
                window.errors[i],
                p99(&mut window.latencies[i])
            ));
        }
        println!("{line}");
    }
    shared.stop.store(true, Ordering::Relaxed);
    for task in soak {
        task.await?;
    }
    let warm = rss.get(1).copied().unwrap_or(0.0);
    let last = rss.last().copied().unwrap_or(0.0);
    println!("errors: {total_errors} (goal 0); RSS after the first minute {warm:.1} MiB, at the end {last:.1} MiB");
    drop(server);
    if total_errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}
