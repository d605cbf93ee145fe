//! Operations that change what is stored: each owns its transaction and writes its
//! event in it, so the pages, the API and the command line change things one way.
//! They take a `Context` (database, clock, settings, password hasher, server key),
//! never the web or API state.

pub mod account_security;
pub mod authentication;
pub mod expiry_calendar;
pub mod first_run;
pub mod invitations;
pub mod leaked_tokens;
pub mod membership;
pub mod service_catalog;
pub mod token_cache;
pub mod token_lifecycle;
pub mod token_usage;
pub mod write_budget;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::SharedClock;
use crate::db::Db;
use crate::domain::cidr::Cidr;
use crate::domain::crypto::SecretKey;
use crate::domain::password::Passwords;
use crate::telemetry::Metrics;

/// Settings fixed at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub sudo_seconds: i64,
    pub session_idle: Duration,
    /// Seconds after sign-in when a session ends, however active.
    pub session_max_seconds: i64,
    pub secure_cookies: bool,
    pub trust_forwarded_for: bool,
    /// Proxies whose `X-Forwarded-For` entries are believed (with `trust_forwarded_for`).
    pub trusted_proxies: Arc<[Cidr]>,
    /// Active user tokens a user may hold per account.
    pub token_limit: i64,
    /// Where clients reach the server (`https://host`), for absolute links; None: the
    /// request's own `Host`.
    pub public_url: Option<String>,
    /// API write requests per user (or automation token) per clock hour.
    pub api_writes_per_hour: i64,
    /// One log line per request (`ACCESS_LOG`).
    pub access_log: bool,
}

/// What operations need: the database, the clock, the settings, the password hasher,
/// the server key and the verified-token cache.
#[derive(Clone)]
pub struct Context {
    pub db: Db,
    pub clock: SharedClock,
    pub settings: Arc<Settings>,
    pub passwords: Passwords,
    pub secret_key: Arc<SecretKey>,
    /// Counters that operations move (sign-ins); served by `app::Server`.
    pub metrics: Arc<Metrics>,
    /// Verified tokens in memory; writes that change what a token may do commit
    /// through `token_cache::commit`.
    pub tokens: token_cache::TokenCache,
}
