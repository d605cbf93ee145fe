//! The test kit, for the integration tests, the browser tests, the benchmarks and
//! `examples/bench_seed.rs`; compiled only with the cargo feature `testkit`, which
//! `cargo test` and `cargo bench` turn on through the crate's dev-dependency on itself.
//!
//! - `TestApp`: a real server on a random port over a fresh database (SQLite, or
//!   PostgreSQL from TEST_DATABASE_URL), copied from a migrated template; an injectable
//!   clock; restarts, second nodes.
//! - Scene-setting by intent: `account`, `service`, `persona(role)` (in an account of
//!   their own), `member(account, role)`, `signed_in(role)`, `add_member`, `limit_to`,
//!   `issue_token(TokenSpec)`, `enrol_two_factor`, `record_event`; assertions by intent
//!   (`token_exists`, `token_names`, `role_in`, `event_types`, `count`), and
//!   `pool()` for direct SQL.
//! - `Client` for the pages (cookies, CSRF token, `sign_in`, `enter_sudo`,
//!   `create_token`, `invite`, `accept_as_new_user`) and `Api` for the JSON API (`Fastly-Key`, `enter_sudo`).
//! - `ServerProcess`: the built binary as a child process (its log, SIGTERM, SIGKILL).
//! - `on_both_databases!`: each scenario once on SQLite and once on PostgreSQL.
//!
//! Only `internals` reaches into the rest of the crate.

mod api;
mod app;
pub mod bench;
mod database;
mod internals;
mod pages;
mod process;

pub use api::{Api, Reply};
pub use app::{
    EventSpec, Issuer, Persona, TestApp, Token, TokenCacheStats, TokenSpec, TEST_SECRET_KEY,
};
pub use database::TestDb;
pub use internals::{
    digest, is_token_shaped, page_date, page_date_time, random_base62, random_id, totp_code,
    unissued_key, ImportError, IssueError, Role, Scope, ScopeSet, ServicePermission, TestClock,
    TokenKind, TokenPolicy, Viewer, TOTP_STEP,
};
pub use pages::{csrf_in, hidden, invitation_link, urlencode, Client, Page};
pub use process::ServerProcess;
/// HTTP methods, for `Api::request`.
pub use reqwest::Method;

/// Runs each named `async fn(TestApp)` once on SQLite and once on PostgreSQL (skipped,
/// with a printed line, without TEST_DATABASE_URL, except under `CI=true`).
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testkit::TestApp::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::testkit::TestApp::postgres().await {
                        super::$name(app).await
                    }
                }
            )*
        }
    };
}

pub use crate::on_both_databases;
