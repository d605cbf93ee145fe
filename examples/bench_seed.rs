//! Seeds a database for `bench/api.sh`: one account and service, `TOKENS` user tokens
//! spread over users of 100 tokens each (the per-user limit), and one benchmark user
//! with a password and a global token. Prints shell assignments for the script. With
//! KEYS_FILE, the strings of the seeded tokens go there, one a line (for runs that use
//! every token).
//!
//! Usage: bench_seed DATABASE_URL [TOKENS]

use tokenpanel::testkit::bench;
use tokenpanel::testkit::{Role, TestApp, TestDb, TokenSpec};

const PER_USER: usize = 100;
const PASSWORD: &str = "bench password 0123456789";

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: bench_seed DATABASE_URL [TOKENS]")?;
    let total: usize = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    // The panel on the database (it migrates it), as the script's server will find it.
    let app = TestApp::start_on(TestDb::existing(&url)).await;
    let now = app.now();
    let account = app.account("Benchmark").await;
    let service = app.service(&account, "www.bench.example").await;

    // Seeded users cannot sign in (no password): only their tokens matter.
    let users: Vec<(String, String, Role)> = (0..total.div_ceil(PER_USER))
        .map(|n| {
            (
                format!("seed-{n}@bench.example"),
                "Seed".to_owned(),
                Role::Engineer,
            )
        })
        .collect();
    let users = app.members_without_password(&account, &users).await;
    let seeds = (0..total).map(|i| {
        let spec = TokenSpec::user(&users[i / PER_USER])
            .named("seeded")
            .expires_at(now + 90 * 86_400);
        (spec, now, None)
    });
    let keys = bench::insert_tokens(&app, seeds).await;
    if let Ok(path) = std::env::var("KEYS_FILE") {
        let mut lines = keys.join("\n");
        lines.push('\n');
        std::fs::write(&path, lines)?;
    }

    let email = "bench@bench.example";
    let user = app
        .persona_with_login(&account, Role::Engineer, email, PASSWORD)
        .await;
    let spec = TokenSpec::user(&user)
        .named("bench")
        .services(std::slice::from_ref(&service));
    let issued = app
        .try_issue_token(spec)
        .await
        .map_err(|e| format!("{e:?}"))?;
    println!("KEY={}", issued.key);
    println!("EMAIL={email}");
    println!("PASSWORD='{PASSWORD}'");
    println!("SEEDED={}", total + 1);
    Ok(())
}
