//! The state every request handler shares: the operations' context plus the buffer of
//! token uses not yet written.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRef;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::Db;
use crate::domain::crypto::SecretKey;
use crate::domain::password::Passwords;
use crate::http::{ProxyTrust, PublicOrigin};
use crate::ops::token_usage::TokenUsage;
use crate::ops::{Context, Settings};
use crate::telemetry::Metrics;

/// Cloned for every request (axum hands each handler and extractor its own copy), so
/// one pointer rather than the handful of shared parts behind it.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub ctx: Context,
    /// Token uses noted by the API, written about once a second.
    pub usage: TokenUsage,
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Handlers read the context's fields directly (`state.db`, `state.clock`) and pass
/// `&state` wherever an operation wants a `&Context`.
impl Deref for Shared {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl FromRef<AppState> for ProxyTrust {
    fn from_ref(state: &AppState) -> ProxyTrust {
        ProxyTrust {
            forwarded_for: state.settings.trust_forwarded_for,
            proxies: state.settings.trusted_proxies.clone(),
        }
    }
}

impl FromRef<AppState> for PublicOrigin {
    fn from_ref(state: &AppState) -> PublicOrigin {
        PublicOrigin {
            configured: state.settings.public_url.clone(),
            trust_forwarded: state.settings.trust_forwarded_for,
        }
    }
}

impl AppState {
    /// The state every entry point shares; `secure_cookies` depends on where the
    /// server listens. The key comes from `app::load_secret_key`, which callers run
    /// before touching the database so a missing key is reported first.
    pub fn new(
        config: &Config,
        db: Db,
        clock: SharedClock,
        secret_key: SecretKey,
        secure_cookies: bool,
    ) -> Result<AppState, String> {
        let concurrency = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        // One hashing thread per core, and twice as many waiting: past that a sign-in is
        // told to come back (503) instead of queueing without end.
        let metrics = Arc::new(Metrics::new());
        let waits = metrics.clone();
        let passwords = Passwords::new(concurrency, 2 * concurrency)
            .map_err(|e| e.to_string())?
            .observe_waits(move |waited| waits.argon2_waited(waited));
        let settings = Settings {
            sudo_seconds: config.sudo_duration().as_secs() as i64,
            session_idle: config.session_idle(),
            session_max_seconds: config.session_max_age().as_secs() as i64,
            secure_cookies,
            trust_forwarded_for: config.trust_forwarded_for,
            trusted_proxies: config.trusted_proxies()?.into(),
            token_limit: 100,
            public_url: config.public_base()?,
            api_writes_per_hour: i64::from(config.api_writes_per_hour),
            access_log: config.access_log,
        };
        Ok(AppState(Arc::new(Shared {
            ctx: Context {
                tokens: crate::ops::token_cache::TokenCache::new(db.backend),
                db,
                clock,
                passwords,
                settings: Arc::new(settings),
                secret_key: Arc::new(secret_key),
                metrics,
            },
            usage: TokenUsage::default(),
        })))
    }
}
