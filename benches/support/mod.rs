//! Shared by the benchmarks: a real server on a random port over a fresh SQLite file
//! (or the PostgreSQL database in BENCH_DATABASE_URL), and a small HTTP client.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

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
}

pub async fn start(trust_forwarded_for: bool) -> Bench {
    let (url, backend) = match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) => (url, "postgresql"),
        Err(_) => {
            let path =
                std::env::temp_dir().join(format!("tokenpanel-bench-{}.db", random::base62(8)));
            (format!("sqlite://{}", path.display()), "sqlite")
        }
    };
    let mut config = Config::for_database(&url);
    config.trust_forwarded_for = trust_forwarded_for;
    config.secret_key = Some(tokenpanel::domain::crypto::SecretKey::generate().to_hex());
    let server = Server::build(&config, Arc::new(SystemClock))
        .await
        .expect("server starts");
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    let state = server.state.clone();
    tokio::spawn(server.run(std::future::pending()));
    Bench {
        base,
        state,
        backend,
    }
}

impl Bench {
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
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
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
        let marker = "name=\"csrf_token\" value=\"";
        let start = html.find(marker).expect("a csrf token") + marker.len();
        html[start..start + html[start..].find('"').unwrap()].to_owned()
    }
}

pub fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    let index = ((sorted_ms.len() as f64 - 1.0) * p).round() as usize;
    sorted_ms[index]
}

pub fn summary(label: &str, mut samples_ms: Vec<f64>) -> f64 {
    samples_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
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
