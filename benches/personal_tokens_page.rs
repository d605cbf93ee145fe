//! Server time of Account > API tokens > Personal tokens for a user with 100 tokens.
//! Run: `cargo bench --bench personal_tokens_page` (BENCH_DATABASE_URL for PostgreSQL).

mod support;

use std::time::Instant;

use tokenpanel::clock::{Clock, SystemClock};
use tokenpanel::domain::roles::{Role, ScopeSet};
use tokenpanel::domain::secret::TokenKind;
use tokenpanel::tokens::{issue, TokenRequest};

const REQUESTS: usize = 1000;

#[tokio::main]
async fn main() {
    let bench = support::start(false).await;
    let account = bench.account().await;
    let (user_id, email) = bench
        .user(&account, Role::Engineer, "the right password")
        .await;
    let mut services = Vec::new();
    for i in 0..5 {
        let id = tokenpanel::domain::random::id();
        tokenpanel::db::accounts::create_service(
            &bench.state.db.pool,
            &id,
            &account,
            &format!("service-{i}.example"),
            SystemClock.unix(),
        )
        .await
        .unwrap();
        services.push(id);
    }
    let scopes = ScopeSet::parse("global purge_select").unwrap();
    for i in 0..100 {
        let name = format!("token {i}");
        let chosen = if i % 2 == 0 {
            vec![services[i % 5].clone()]
        } else {
            Vec::new()
        };
        let request = TokenRequest {
            kind: TokenKind::User,
            account_id: &account,
            actor_id: &user_id,
            name: &name,
            scopes: &scopes,
            services: &chosen,
            role: None,
            tls_access: false,
            expires_at: Some(SystemClock.unix() + 86_400 * (i as i64 + 1)),
            ip: None,
        };
        issue(&bench.state, &request).await.unwrap();
    }
    let client = bench.client();
    let csrf = bench.csrf(&client, "/login").await;
    let form = [
        ("csrf_token", csrf.as_str()),
        ("email", &email),
        ("password", "the right password"),
    ];
    let signed_in = client
        .post(format!("{}/login", bench.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let url = format!("{}/account/tokens", bench.base);
    // Warm up connections and caches.
    for _ in 0..50 {
        client
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let mut samples = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.bytes().await.unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(body.len() > 10_000);
    }
    println!("backend: {}", bench.backend);
    support::summary(
        "GET /account/tokens with 100 tokens (round trip on loopback)",
        samples,
    );
    bench.finish().await;
}
