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
use crate::domain::crypto::SecretKey;
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
    pub secret_key: Arc<SecretKey>,
}

impl AppState {
    /// The state every entry point shares; `secure_cookies` depends on where the
    /// server listens. The key comes from `load_secret_key`, which callers run before
    /// touching the database so a missing key is reported first.
    pub fn new(
        config: &Config,
        db: Db,
        clock: SharedClock,
        secret_key: SecretKey,
        secure_cookies: bool,
    ) -> Result<AppState, StartupError> {
        let concurrency = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let passwords = Passwords::new(concurrency).map_err(|e| StartupError(e.to_string()))?;
        let settings = Settings {
            sudo_seconds: config.sudo_duration().as_secs() as i64,
            session_idle: config.session_idle(),
            secure_cookies,
            trust_forwarded_for: config.trust_forwarded_for,
            token_limit: 100,
        };
        Ok(AppState {
            db,
            clock,
            passwords,
            settings: Arc::new(settings),
            secret_key: Arc::new(secret_key),
            usage: UsageLog::default(),
        })
    }
}

/// The configured server key, or for SQLite the one kept beside the database file
/// (generated on first run).
pub fn load_secret_key(config: &Config) -> Result<SecretKey, StartupError> {
    if let Some(hex) = &config.secret_key {
        return SecretKey::from_hex(hex)
            .ok_or_else(|| StartupError("SECRET_KEY must be 64 hexadecimal characters".into()));
    }
    let Some(path) = config.key_file() else {
        return Err(StartupError(
            "SECRET_KEY is required with PostgreSQL, the same on every node (e.g. `openssl rand -hex 32`)".into(),
        ));
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => SecretKey::from_hex(&text).ok_or_else(|| {
            StartupError(format!("the server key file {} is damaged", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let written = options.open(&path).and_then(|mut file| {
                std::io::Write::write_all(&mut file, format!("{}\n", key.to_hex()).as_bytes())
            });
            written.map_err(|e| {
                StartupError(format!(
                    "cannot write the server key file {}: {e}",
                    path.display()
                ))
            })?;
            Ok(key)
        }
        Err(e) => Err(StartupError(format!(
            "cannot read the server key file {}: {e}",
            path.display()
        ))),
    }
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
        let secret_key = load_secret_key(config)?;
        let db = open_database(config).await?;
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| StartupError(format!("cannot listen on {bind}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartupError(e.to_string()))?;
        let state = AppState::new(config, db, clock, secret_key, config.secure_cookies(addr))?;
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
        let state = self.state.clone();
        let housekeeping = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(3600));
            loop {
                every.tick().await;
                if let Err(e) = store.delete_expired().await {
                    tracing::warn!(error = %e, "could not delete expired sessions");
                }
                match crate::tokens::sweep_unused(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "deleted tokens unused for two years"),
                    Err(e) => tracing::warn!(error = %e, "could not sweep unused tokens"),
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
