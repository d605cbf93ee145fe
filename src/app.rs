//! Application state and the server: connect, migrate, bind, serve.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::api::usage::UsageLog;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::{self, sessions::DbSessionStore, Db};
use crate::domain::password::Passwords;
use crate::domain::{random, secret};

/// Settings that handlers read, fixed at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub sudo_seconds: i64,
    pub session_idle: Duration,
    pub secure_cookies: bool,
    pub trust_forwarded_for: bool,
    /// Active user tokens a user may hold per account.
    pub token_limit: i64,
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: SharedClock,
    pub passwords: Passwords,
    pub settings: Arc<Settings>,
    /// Token uses not yet written (see `api::usage`).
    pub usage: UsageLog,
}

#[derive(Debug)]
pub struct StartupError(pub String);

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

impl From<db::ConnectError> for StartupError {
    fn from(e: db::ConnectError) -> Self {
        StartupError(e.0)
    }
}

/// Opens the database and applies migrations: what every subcommand starts with.
pub async fn open_database(config: &Config) -> Result<Db, StartupError> {
    let db = db::connect(&config.database_url).await?;
    db.migrate().await?;
    Ok(db)
}

pub struct Server {
    listener: TcpListener,
    router: Router,
    pub state: AppState,
    pub addr: SocketAddr,
}

impl Server {
    pub async fn build(config: &Config, clock: SharedClock) -> Result<Server, StartupError> {
        let bind = config.bind_addr().map_err(StartupError)?;
        let db = open_database(config).await?;
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| StartupError(format!("cannot listen on {bind}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartupError(e.to_string()))?;
        let concurrency = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let passwords = Passwords::new(concurrency).map_err(|e| StartupError(e.to_string()))?;
        let settings = Settings {
            sudo_seconds: config.sudo_duration().as_secs() as i64,
            session_idle: config.session_idle(),
            secure_cookies: config.secure_cookies(addr),
            trust_forwarded_for: config.trust_forwarded_for,
            token_limit: 100,
        };
        let state = AppState {
            db,
            clock,
            passwords,
            settings: Arc::new(settings),
            usage: UsageLog::default(),
        };
        let router = crate::web::router(state.clone());
        Ok(Server {
            listener,
            router,
            state,
            addr,
        })
    }

    /// Serves until `shutdown` completes, with periodic housekeeping and the token-use
    /// flusher beside it.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let store = DbSessionStore::new(self.state.db.clone());
        let housekeeping = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(3600));
            loop {
                every.tick().await;
                if let Err(e) = store.delete_expired().await {
                    tracing::warn!(error = %e, "could not delete expired sessions");
                }
            }
        });
        let usage = tokio::spawn(self.state.usage.clone().run(self.state.db.clone()));
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await;
        housekeeping.abort();
        usage.abort();
        // Uses noted since the last flush are written before the server goes away.
        if let Err(e) = self.state.usage.flush(&self.state.db).await {
            tracing::warn!(error = %e, "could not record token use at shutdown");
        }
        result
    }
}

/// While no user exists, makes a one-time setup secret and returns the path that uses
/// it; None once the panel has users.
pub async fn setup_path(state: &AppState) -> Result<Option<String>, sqlx::Error> {
    if db::users::count(&state.db.pool).await? > 0 {
        return Ok(None);
    }
    let secret = random::base62(32);
    db::setup::add(&state.db.pool, &secret::digest(&secret), state.clock.unix()).await?;
    Ok(Some(format!("/setup/{secret}")))
}
