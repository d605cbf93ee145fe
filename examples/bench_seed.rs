//! Seeds a database for `bench/api.sh`: one account and service, `TOKENS` user tokens
//! spread over users of 100 tokens each (the per-user limit), and one benchmark user
//! with a password and a global token. Prints shell assignments for the script.
//!
//! Usage: bench_seed DATABASE_URL [TOKENS]

use std::sync::Arc;

use tokenpanel::app::{self, AppState};
use tokenpanel::clock::{Clock, SystemClock};
use tokenpanel::config::Config;
use tokenpanel::db::tokens::{self as store, NewToken};
use tokenpanel::db::{accounts, users};
use tokenpanel::domain::password::Password;
use tokenpanel::domain::random;
use tokenpanel::domain::roles::{Role, ScopeSet};
use tokenpanel::domain::secret::{TokenKind, TokenSecret};
use tokenpanel::tokens::{issue, TokenRequest};

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
    let db = app::open_database(&Config::for_database(&url)).await?;
    let clock = SystemClock;
    let now = clock.unix();
    let account = random::id();
    accounts::create(&db.pool, &account, "Benchmark", now).await?;
    let service = random::id();
    accounts::create_service(&db.pool, &service, &account, "www.bench.example", now).await?;

    // Seeded users cannot sign in (no password): only their tokens matter.
    let scope = "global";
    let mut made = 0;
    let mut user_no = 0;
    while made < total {
        let user = random::id();
        users::create(
            &db.pool,
            &user,
            &format!("seed-{user_no}@bench.example"),
            "Seed",
            None,
            now,
        )
        .await?;
        accounts::add_member(&db.pool, &account, &user, Role::Engineer, now).await?;
        let mut tx = db.pool.begin().await?;
        for _ in 0..PER_USER.min(total - made) {
            let id = random::id();
            let digest = TokenSecret::generate(TokenKind::User).digest();
            let token = NewToken {
                id: &id,
                account_id: &account,
                kind: "user",
                user_id: Some(&user),
                created_by: &user,
                name: "seeded",
                scope,
                role: None,
                tls_access: false,
                digest: &digest,
                created_at: now,
                expires_at: Some(now + 90 * 86_400),
                service_ids: &[],
            };
            store::create(&mut tx, db.backend, &token, PER_USER as i64).await?;
            made += 1;
        }
        tx.commit().await?;
        user_no += 1;
    }

    let config = Config::for_database(&url);
    let key = app::load_secret_key(&config)?;
    let state = AppState::new(&config, db.clone(), Arc::new(SystemClock), key, false)?;
    let hash = state.passwords.hash(&Password::new(PASSWORD)).await?;
    let email = "bench@bench.example";
    let user = random::id();
    users::create(&db.pool, &user, email, "Bench", Some(&hash), now).await?;
    accounts::add_member(&db.pool, &account, &user, Role::Engineer, now).await?;
    let scopes = ScopeSet::parse("global")?;
    let services = vec![service.clone()];
    let issued = issue(
        &state,
        &TokenRequest {
            kind: TokenKind::User,
            account_id: &account,
            actor_id: &user,
            name: "bench",
            scopes: &scopes,
            services: &services,
            role: None,
            tls_access: false,
            expires_at: None,
            ip: None,
        },
    )
    .await
    .map_err(|e| format!("{e:?}"))?;
    println!("KEY={}", issued.secret.expose());
    println!("EMAIL={email}");
    println!("PASSWORD='{PASSWORD}'");
    println!("SEEDED={}", made + 1);
    Ok(())
}
