//! Server time of Account > API tokens > Personal tokens for a user with 100 tokens.
//! Run: `cargo bench --bench personal_tokens_page` (BENCH_DATABASE_URL for PostgreSQL).

mod support;

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
    bench.sign_in(&client, &email, "the right password").await;
    let url = format!("{}/account/tokens", bench.base);
    let samples = support::time_requests(
        || client.get(&url),
        50,
        REQUESTS,
        |body| assert!(body.len() > 10_000, "the page lists the tokens"),
    )
    .await;
    println!("backend: {}", bench.backend);
    support::summary(
        "GET /account/tokens with 100 tokens (round trip on loopback)",
        samples,
    );
    bench.finish().await;
}
