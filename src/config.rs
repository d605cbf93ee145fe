//! Configuration from flags and environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Database to use: `sqlite://path` (created when missing) or `postgres://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://tokenpanel.db",
        global = true
    )]
    pub database_url: String,

    /// Address the web server listens on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:3000", global = true)]
    pub bind: String,

    /// Whether the session cookie carries `Secure`: `auto` sets it unless the server
    /// listens on a loopback address over plain HTTP.
    #[arg(long, env = "COOKIE_SECURE", value_enum, default_value_t = CookieSecure::Auto, global = true)]
    pub cookie_secure: CookieSecure,

    /// Log filter, e.g. `info` or `tokenpanel=debug,tower_http=info`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,

    /// Minutes of inactivity after which a browser session ends.
    #[arg(
        long,
        env = "SESSION_IDLE_MINUTES",
        default_value_t = 720,
        global = true
    )]
    pub session_idle_minutes: u64,

    /// Days after sign-in when a browser session ends, however active it is.
    #[arg(long, env = "SESSION_MAX_DAYS", default_value_t = 30, global = true)]
    pub session_max_days: u64,

    /// Minutes that sudo mode lasts after re-authentication.
    #[arg(long, env = "SUDO_MINUTES", default_value_t = 5, global = true)]
    pub sudo_minutes: u64,

    /// Server key (64 hex characters) that encrypts two-factor secrets at rest. With
    /// SQLite and none given, one is generated into `<database file>.key` on first run;
    /// with PostgreSQL it is required, and every node must share it.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true, global = true)]
    pub secret_key: Option<String>,

    /// Take the client address from the last `X-Forwarded-For` entry (only behind a
    /// proxy that sets it).
    #[arg(
        long,
        env = "TRUST_FORWARDED_FOR",
        default_value_t = false,
        global = true
    )]
    pub trust_forwarded_for: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CookieSecure {
    Auto,
    Always,
    Never,
}

impl Config {
    pub fn bind_addr(&self) -> Result<SocketAddr, String> {
        self.bind.parse().map_err(|_| {
            format!(
                "BIND must be an address such as 127.0.0.1:3000, not {:?}",
                self.bind
            )
        })
    }

    pub fn secure_cookies(&self, bound: SocketAddr) -> bool {
        match self.cookie_secure {
            CookieSecure::Always => true,
            CookieSecure::Never => false,
            CookieSecure::Auto => !bound.ip().is_loopback(),
        }
    }

    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(self.session_idle_minutes.max(1) * 60)
    }

    /// The absolute lifetime of a signed-in session.
    pub fn session_max_age(&self) -> Duration {
        Duration::from_secs(self.session_max_days.max(1) * 86_400)
    }

    pub fn sudo_duration(&self) -> Duration {
        Duration::from_secs(self.sudo_minutes.max(1) * 60)
    }

    /// Where the SQLite file lives, for files kept beside it.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.database_url.strip_prefix("sqlite:")?;
        let rest = rest.trim_start_matches("//");
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }

    /// Where the generated server key is kept for an SQLite database.
    pub fn key_file(&self) -> Option<PathBuf> {
        let db = self.sqlite_path()?;
        let mut name = db.file_name()?.to_os_string();
        name.push(".key");
        Some(db.with_file_name(name))
    }

    /// Settings for tests and tools: a given database, everything else default.
    pub fn for_database(database_url: &str) -> Self {
        Config {
            database_url: database_url.to_owned(),
            bind: "127.0.0.1:0".to_owned(),
            cookie_secure: CookieSecure::Never,
            log_level: "warn".to_owned(),
            session_idle_minutes: 720,
            session_max_days: 30,
            sudo_minutes: 5,
            trust_forwarded_for: false,
            secret_key: None,
        }
    }
}
