//! Configuration from flags and environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::domain::cidr::{self, Cidr};
pub use crate::telemetry::logging::LogFormat;

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

    /// Log lines as `text` (colour only on a terminal) or `json` (one object per line).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// One info line per request (method, route template, status, latency, client
    /// address, user and token id): `on` or `off`. Failed requests (5xx) are logged
    /// either way.
    #[arg(
        long,
        env = "ACCESS_LOG",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        global = true
    )]
    pub access_log: bool,

    /// Address of a second listener serving Prometheus metrics at `/metrics`, such as
    /// `127.0.0.1:9100`. Unset (the default): no metrics listener.
    #[arg(long, env = "METRICS_BIND", global = true)]
    pub metrics_bind: Option<String>,

    /// Seconds that requests in flight get to finish after SIGTERM or Ctrl-C before the
    /// server stops anyway (it then writes pending last-used records and closes the
    /// database pool).
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub shutdown_grace_seconds: u64,

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

    /// With TRUST_FORWARDED_FOR: the proxies (comma-separated addresses or CIDR ranges)
    /// whose `X-Forwarded-For` entries are believed. The client address is the right-most
    /// entry that is not one of them; the connecting peer must be one of them.
    #[arg(
        long,
        env = "TRUSTED_PROXIES",
        default_value = "127.0.0.0/8,::1",
        global = true
    )]
    pub trusted_proxies: String,

    /// The address clients reach the server at, such as `https://tokens.example.com`:
    /// the base of the absolute links the API hands out (`GET /events` pages). Unset,
    /// the request's `Host` is used, with `X-Forwarded-Proto` when proxies are trusted.
    #[arg(long, env = "PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Write requests (anything but GET, HEAD and OPTIONS) each user may make through
    /// the API per clock hour, counted in the database so every node shares the budget.
    #[arg(
        long,
        env = "API_WRITES_PER_HOUR",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub api_writes_per_hour: u32,
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

    /// The metrics listener's address, when one is configured.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, String> {
        let Some(bind) = self
            .metrics_bind
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
        else {
            return Ok(None);
        };
        bind.parse().map(Some).map_err(|_| {
            format!("METRICS_BIND must be an address such as 127.0.0.1:9100, not {bind:?}")
        })
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }

    pub fn secure_cookies(&self, bound: SocketAddr) -> bool {
        match self.cookie_secure {
            CookieSecure::Always => true,
            CookieSecure::Never => false,
            CookieSecure::Auto => !bound.ip().is_loopback(),
        }
    }

    pub fn trusted_proxies(&self) -> Result<Vec<Cidr>, String> {
        cidr::parse_list(&self.trusted_proxies).map_err(|e| format!("TRUSTED_PROXIES: {e}"))
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

    /// `PUBLIC_URL` checked and without a trailing slash: an `http` or `https` URL with a
    /// host and no path, query or fragment.
    pub fn public_base(&self) -> Result<Option<String>, String> {
        let Some(raw) = self
            .public_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            return Ok(None);
        };
        let bad = || {
            format!("PUBLIC_URL must look like https://tokens.example.com (scheme and host only), not {raw:?}")
        };
        let trimmed = raw.trim_end_matches('/');
        let (scheme, host) = trimmed.split_once("://").ok_or_else(bad)?;
        if !matches!(scheme, "http" | "https")
            || host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        {
            return Err(bad());
        }
        Ok(Some(trimmed.to_owned()))
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
            log_format: LogFormat::Text,
            access_log: true,
            metrics_bind: None,
            shutdown_grace_seconds: 30,
            session_idle_minutes: 720,
            session_max_days: 30,
            sudo_minutes: 5,
            trust_forwarded_for: false,
            trusted_proxies: "127.0.0.0/8,::1".to_owned(),
            secret_key: None,
            public_url: None,
            api_writes_per_hour: 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Flags::try_parse_from(std::iter::once("tokenpanel").chain(args.iter().copied()))
            .map(|f| f.config)
    }

    #[test]
    fn write_budget_defaults_to_a_thousand_and_takes_a_flag_or_the_environment() {
        assert_eq!(parse(&[]).unwrap().api_writes_per_hour, 1000);
        assert_eq!(
            parse(&["--api-writes-per-hour", "25"])
                .unwrap()
                .api_writes_per_hour,
            25
        );
        assert!(parse(&["--api-writes-per-hour", "0"]).is_err());
        assert!(parse(&["--api-writes-per-hour", "lots"]).is_err());
        // Only this test reads the variable.
        std::env::set_var("API_WRITES_PER_HOUR", "7");
        let from_env = parse(&[]).map(|c| c.api_writes_per_hour);
        std::env::remove_var("API_WRITES_PER_HOUR");
        assert_eq!(from_env.unwrap(), 7);
    }

    #[test]
    fn public_url_is_a_scheme_and_a_host() {
        let base = |url: &str| {
            let mut config = Config::for_database("sqlite://x.db");
            config.public_url = Some(url.to_owned());
            config.public_base()
        };
        assert_eq!(
            base("https://tokens.example.com/").unwrap().as_deref(),
            Some("https://tokens.example.com")
        );
        assert_eq!(
            base("http://127.0.0.1:3000").unwrap().as_deref(),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(base("  ").unwrap(), None);
        for bad in [
            "tokens.example.com",
            "ftp://tokens.example.com",
            "https://",
            "https://tokens.example.com/panel",
            "https://tokens.example.com?x=1",
        ] {
            assert!(base(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Config::for_database("sqlite://x.db").public_base().unwrap(),
            None
        );
    }
}
