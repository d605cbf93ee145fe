//! Failed sign-ins: unknown email vs wrong password should take the same time (both
//! verify one argon2id hash). Run: `cargo bench --bench sign_in_timing`.

use std::time::Instant;

use tokenpanel::testkit::{bench, Role, TestApp};

const ROUNDS: usize = 60;

#[tokio::main]
async fn main() {
    // Behind a "proxy", so each request can come from an address of its own.
    let app = TestApp::start_behind_proxy(bench::database().await).await;
    let account = app.account("Bench").await;
    let mut known = Vec::new();
    for _ in 0..ROUNDS {
        known.push(app.member(&account, Role::User).await.email);
    }
    let client = app.client();
    client.get("/login").await;
    let csrf = client.csrf().expect("the sign-in form's CSRF token");
    let (mut unknown_ms, mut wrong_ms) = (Vec::new(), Vec::new());
    for (i, email) in known.iter().enumerate() {
        // Alternate the two cases so drift in machine load hits both alike; a fresh
        // address and email each time keeps throttling out of the measurement.
        for unknown in [i % 2 == 0, i % 2 == 1] {
            let email = if unknown {
                format!("nobody{i}@bench.example")
            } else {
                email.clone()
            };
            let form = [
                ("csrf_token", csrf.as_str()),
                ("email", &email),
                ("password", "a wrong password"),
            ];
            let started = Instant::now();
            let response = client
                .raw()
                .post(app.url("/login"))
                .header(
                    "x-forwarded-for",
                    format!("10.0.{}.{}", i / 200, (i % 200) * 2 + usize::from(unknown)),
                )
                .form(&form)
                .send()
                .await
                .unwrap();
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(response.status(), 401);
            if unknown {
                unknown_ms.push(elapsed)
            } else {
                wrong_ms.push(elapsed)
            }
        }
    }
    println!("backend: {}", app.backend_name());
    let a = bench::summary("failed sign-in, unknown email ", unknown_ms);
    let b = bench::summary("failed sign-in, wrong password", wrong_ms);
    println!(
        "difference of medians: {:.1}%",
        (a - b).abs() / a.max(b) * 100.0
    );
}
