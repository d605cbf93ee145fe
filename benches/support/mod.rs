//! Shared by the benchmarks: a real server on a random port over a fresh database (a
//! SQLite file, or a new database on the PostgreSQL server in BENCH_DATABASE_URL), and
//! a small HTTP client.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokenpanel::app::{AppState, Server};
use tokenpanel::clock::{Clock, SystemClock};
use tokenpanel::config::Config;
use tokenpanel::db::{accounts, users};
use tokenpanel::domain::password::Password;
use tokenpanel::domain::random;
use tokenpanel::domain::roles::Role;

pub struct Bench {
    pub base: String,
    pub state: AppState,
    pub backend: &'static str,
    database: Database,
}

/// The database a benchmark runs on: a fresh SQLite file, or, when BENCH_DATABASE_URL
/// names a PostgreSQL server (any database on it, e.g. `postgres`), a fresh database
/// created there; `drop` removes either, unless BENCH_KEEP is set.
pub struct Database {
    pub url: String,
    pub backend: &'static str,
    admin_url: Option<String>,
    /// A file the caller named to be reused: never removed.
    kept: bool,
}

impl Database {
    pub async fn fresh() -> Database {
        let name = format!("tokenpanel_bench_{}", random::base62(8).to_lowercase());
        match std::env::var("BENCH_DATABASE_URL") {
            Ok(admin_url) => {
                sqlx::any::install_default_drivers();
                let admin = sqlx::AnyPool::connect(&admin_url)
                    .await
                    .expect("connect to BENCH_DATABASE_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&admin)
                    .await
                    .expect("create the benchmark database");
                admin.close().await;
                let (server, _) = admin_url
                    .rsplit_once('/')
                    .expect("BENCH_DATABASE_URL ends with /<database>");
                Database {
                    url: format!("{server}/{name}"),
                    backend: "postgresql",
                    admin_url: Some(admin_url),
                    kept: false,
                }
            }
            Err(_) => Database {
                url: format!(
                    "sqlite://{}",
                    std::env::temp_dir().join(format!("{name}.db")).display()
                ),
                backend: "sqlite",
                admin_url: None,
                kept: false,
            },
        }
    }

    /// A SQLite file at `path`, created if missing, left in place afterwards.
    pub fn kept_sqlite(path: &std::path::Path) -> Database {
        Database {
            url: format!("sqlite://{}", path.display()),
            backend: "sqlite",
            admin_url: None,
            kept: true,
        }
    }

    pub async fn drop(self) {
        if self.kept {
            return;
        }
        if std::env::var_os("BENCH_KEEP").is_some() {
            println!("kept for inspection (BENCH_KEEP): {}", self.url);
            return;
        }
        match &self.admin_url {
            Some(admin_url) => {
                let admin = sqlx::AnyPool::connect(admin_url)
                    .await
                    .expect("connect to BENCH_DATABASE_URL");
                let (_, name) = self.url.rsplit_once('/').expect("a database name");
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await
                    .expect("drop the benchmark database");
            }
            None => {
                let path = self.url.trim_start_matches("sqlite://");
                for suffix in ["", "-wal", "-shm", ".key"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
        }
    }
}

/// A server configuration for benchmarks: PostgreSQL needs a server key.
pub fn config(database_url: &str) -> Config {
    let mut config = Config::for_database(database_url);
    config.secret_key = Some(tokenpanel::domain::crypto::SecretKey::generate().to_hex());
    config
}

/// A real server on a random port over a fresh database.
pub async fn start(trust_forwarded_for: bool) -> Bench {
    start_on(Database::fresh().await, trust_forwarded_for).await
}

/// A real server on a random port over `database`.
pub async fn start_on(database: Database, trust_forwarded_for: bool) -> Bench {
    let mut config = config(&database.url);
    config.trust_forwarded_for = trust_forwarded_for;
    let server = Server::build(&config, Arc::new(SystemClock))
        .await
        .expect("server starts");
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    let state = server.state.clone();
    tokio::spawn(server.run(std::future::pending()));
    Bench {
        base,
        state,
        backend: database.backend,
        database,
    }
}

impl Bench {
    /// Removes the benchmark's database.
    pub async fn finish(self) {
        self.state.db.pool.close().await;
        self.database.drop().await;
    }

    pub async fn user(&self, account_id: &str, role: Role, password: &str) -> (String, String) {
        let id = random::id();
        let email = format!("{}@bench.example", random::base62(10).to_lowercase());
        let hash = self
            .state
            .passwords
            .hash(&Password::new(password))
            .await
            .unwrap();
        users::create(
            &self.state.db.pool,
            &id,
            &email,
            "Bench user",
            Some(&hash),
            SystemClock.unix(),
        )
        .await
        .unwrap();
        accounts::add_member(
            &self.state.db.pool,
            account_id,
            &id,
            role,
            SystemClock.unix(),
        )
        .await
        .unwrap();
        (id, email)
    }

    pub async fn account(&self) -> String {
        let id = random::id();
        accounts::create(&self.state.db.pool, &id, "Bench", SystemClock.unix())
            .await
            .unwrap();
        id
    }

    pub fn client(&self) -> reqwest::Client {
        client()
    }

    pub async fn csrf(&self, client: &reqwest::Client, path: &str) -> String {
        let html = client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        csrf_in(&html)
    }

    /// Signs `client` in through the login form.
    pub async fn sign_in(&self, client: &reqwest::Client, email: &str, password: &str) {
        let csrf = self.csrf(client, "/login").await;
        let response = client
            .post(format!("{}/login", self.base))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", email),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "bench sign-in");
    }
}

/// A client that keeps cookies and does not follow redirects, as a browser session.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("a csrf token") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
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
        request().send().await.unwrap().bytes().await.unwrap();
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let response = request().send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.text().await.unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        check(&body);
    }
    samples
}

pub fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    let index = ((sorted_ms.len() as f64 - 1.0) * p).round() as usize;
    sorted_ms[index]
}

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
