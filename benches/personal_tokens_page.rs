//! Server time of Account > API tokens > Personal tokens for a user with 100 tokens.
//! Run: `cargo bench --bench personal_tokens_page` (BENCH_DATABASE_URL for PostgreSQL).

use tokenpanel::testkit::{bench, Role, TestApp, TokenSpec};

const REQUESTS: usize = 1000;

#[tokio::main]
async fn main() {
    let app = TestApp::start_on(bench::database().await).await;
    let account = app.account("Bench").await;
    let user = app.member(&account, Role::Engineer).await;
    let mut services = Vec::new();
    for i in 0..5 {
        services.push(app.service(&account, &format!("service-{i}.example")).await);
    }
    for i in 0..100 {
        let chosen = if i % 2 == 0 {
            vec![services[i % 5].clone()]
        } else {
            Vec::new()
        };
        let spec = TokenSpec::user(&user)
            .named(&format!("token {i}"))
            .scope("global purge_select")
            .services(&chosen)
            .expires_at(app.now() + 86_400 * (i as i64 + 1));
        app.issue_token(spec).await;
    }
    let client = app.client();
    client.sign_in(&user).await;
    let url = app.url("/account/tokens");
    let samples = bench::time_requests(
        || client.raw().get(&url),
        50,
        REQUESTS,
        |body| assert!(body.len() > 10_000, "the page lists the tokens"),
    )
    .await;
    println!("backend: {}", app.backend_name());
    bench::summary(
        "GET /account/tokens with 100 tokens (round trip on loopback)",
        samples,
    );
}
