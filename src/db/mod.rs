//! Storage. Every SQL statement lives in this module's children, as functions that take
//! an executor, so one function serves a pool and a transaction alike. The same SQL runs
//! on SQLite and PostgreSQL through sqlx's `Any` driver; where the two differ (row
//! locking), the function asks `Db::backend`.

pub mod account_store;
pub mod account_token_list;
pub mod calendar_store;
pub mod event_store;
pub mod exposure_store;
pub mod invitation_store;
pub mod member_store;
pub mod service_store;
pub mod session_store;
pub mod setup_secret_store;
pub mod throttle_store;
pub mod token_policy_store;
pub mod token_store;
pub mod types;
pub mod user_store;
pub mod write_budget_store;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, ConnectOptions, Executor};

/// The migrations both databases run: the same SQL on each.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");
/// What only one of the databases can express (SQLite's FTS5 tables, PostgreSQL's
/// extensions and index types), numbered among the shared migrations: a number of the
/// shared directory is never used here, and one of these two may be used by both.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
pub static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Every migration of `backend`'s databases, in order.
pub fn migrator(backend: Backend) -> Migrator {
    let own = match backend {
        Backend::Sqlite => &SQLITE_MIGRATOR,
        Backend::Postgres => &POSTGRES_MIGRATOR,
    };
    let mut migrations: Vec<_> = MIGRATOR.iter().chain(own.iter()).cloned().collect();
    migrations.sort_by_key(|m| m.version);
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// Anything that runs a query: `&AnyPool`, or `&mut *transaction`.
pub trait Exec<'e>: Executor<'e, Database = Any> {}
impl<'e, T: Executor<'e, Database = Any>> Exec<'e> for T {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

#[derive(Debug)]
pub struct ConnectError(pub String);

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

/// Turns a configured URL into one sqlx accepts; SQLite files are created when missing.
fn normalise_url(url: &str) -> Result<(String, Backend), ConnectError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((url.to_owned(), Backend::Postgres));
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let rest = rest.trim_start_matches("//");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(ConnectError(format!(
                "DATABASE_URL {url:?} names no SQLite file"
            )));
        }
        let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
        if !params.iter().any(|p| p.starts_with("mode=")) {
            params.push("mode=rwc");
        }
        return Ok((
            format!("sqlite://{path}?{}", params.join("&")),
            Backend::Sqlite,
        ));
    }
    Err(ConnectError(format!(
        "DATABASE_URL must start with sqlite:// or postgres://, got {:?}",
        url.split(':').next().unwrap_or("")
    )))
}

pub async fn connect(url: &str) -> Result<Db, ConnectError> {
    sqlx::any::install_default_drivers();
    let (url, backend) = normalise_url(url)?;
    let options = AnyConnectOptions::from_str(&url)
        .map_err(|e| ConnectError(format!("DATABASE_URL cannot be parsed: {e}")))?
        .disable_statement_logging();
    let pool_options = match backend {
        Backend::Sqlite => AnyPoolOptions::new()
            .max_connections(8)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL lets readers run beside the single writer; the busy timeout makes a
                    // writer wait for the lock instead of failing.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    Ok(())
                })
            }),
        Backend::Postgres => AnyPoolOptions::new().max_connections(16),
    };
    // One connection first, so an unreachable or refusing server is reported with its
    // own error rather than as a pool time-out.
    let probe = <sqlx::AnyConnection as sqlx::Connection>::connect_with(&options)
        .await
        .map_err(|e| ConnectError(format!("cannot connect to the database: {e}")))?;
    let _ = sqlx::Connection::close(probe).await;
    let pool = pool_options
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| ConnectError(format!("cannot open the database: {e}")))?;
    if backend == Backend::Sqlite {
        // Each connection keeps its own page cache of up to 2 MB (SQLite's default), and
        // at full load all eight fill up with the same hot pages: 16 MB. A soft heap
        // limit bounds the SQLite heap of the whole process instead; near it, a cache
        // recycles pages rather than grow, and the caches share one LRU (the bundled
        // SQLite is built with SQLITE_ENABLE_MEMORY_MANAGEMENT), so a connection that
        // scans (the Account tokens page) can still use most of it. Process-wide: set
        // once, here.
        sqlx::query(&format!("PRAGMA soft_heap_limit = {SQLITE_HEAP_LIMIT}"))
            .execute(&pool)
            .await
            .map_err(|e| ConnectError(format!("cannot set SQLite's heap limit: {e}")))?;
    }
    Ok(Db { pool, backend })
}

/// The bytes of heap all SQLite connections of the process aim to stay under. At
/// 8 MB the RSS after the all-keys load is 6 MB lower, and the Account tokens pages at
/// 20,000 tokens take as long as with 16 MB of caches (2.1–3.8 ms median either way).
const SQLITE_HEAP_LIMIT: i64 = 8 * 1024 * 1024;

impl Db {
    pub async fn migrate(&self) -> Result<(), ConnectError> {
        migrator(self.backend)
            .run(&self.pool)
            .await
            .map_err(|e| ConnectError(format!("cannot apply database migrations: {e}")))
    }

    /// Begins a transaction; every transaction of the application starts here (clippy's
    /// `disallowed-methods` refuses `Pool::begin` elsewhere).
    ///
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), waiting for it up to
    /// the busy timeout. A deferred `BEGIN` takes it at the first write, and since a
    /// write to `tokens` also writes the names' FTS5 index (triggers of migration
    /// `sqlite/0054`), such a transaction failed at once with "database is locked" when
    /// other connections were writing tokens too (SQLITE_BUSY without the busy wait; the
    /// test `concurrent_token_writes_all_succeed_and_the_search_follows_them` shows it).
    /// SQLite has one writer anyway, and the transactions here all write.
    #[allow(clippy::disallowed_methods)]
    pub async fn begin(&self) -> sqlx::Result<sqlx::Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// True when an error is a unique-constraint violation on either backend.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.code()
                .is_some_and(|c| c == "23505" || c == "2067" || c == "1555")
                || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

/// True when an error is a foreign-key violation on either backend: a row referred to
/// was deleted by a concurrent transaction.
pub fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|c| c == "23503" || c == "787")
                || db.message().contains("FOREIGN KEY constraint failed")
        }
        _ => false,
    }
}

#[cfg(test)]
mod migration_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_connections_share_a_bounded_heap() {
        let path = std::env::temp_dir().join(format!(
            "tokenpanel-heap-{}-{}.db",
            std::process::id(),
            crate::domain::random::id()
        ));
        let db = connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("a database");
        let limit: i64 = sqlx::query_scalar("PRAGMA soft_heap_limit")
            .fetch_one(&db.pool)
            .await
            .expect("the limit");
        assert_eq!(limit, SQLITE_HEAP_LIMIT);
        db.pool.close().await;
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(
            normalise_url("sqlite://tokenpanel.db").unwrap().0,
            "sqlite://tokenpanel.db?mode=rwc"
        );
        assert_eq!(
            normalise_url("sqlite:x.db?mode=ro").unwrap().0,
            "sqlite://x.db?mode=ro"
        );
        assert_eq!(
            normalise_url("postgres://u@h/db").unwrap().1,
            Backend::Postgres
        );
        assert!(normalise_url("mysql://x").is_err());
        assert!(normalise_url("nonsense").is_err());
        assert!(normalise_url("sqlite://").is_err());
    }

    #[test]
    fn each_database_runs_the_shared_migrations_and_its_own_in_order() {
        // A database-specific number is never among the shared ones.
        let sqlite: Vec<i64> = SQLITE_MIGRATOR.iter().map(|m| m.version).collect();
        let postgres: Vec<i64> = POSTGRES_MIGRATOR.iter().map(|m| m.version).collect();
        assert!(sqlite.contains(&54));
        assert!(postgres.contains(&53));
        for own in [&sqlite, &postgres] {
            assert!(MIGRATOR.iter().all(|m| !own.contains(&m.version)));
        }
        for (backend, own) in [(Backend::Sqlite, &sqlite), (Backend::Postgres, &postgres)] {
            let all: Vec<i64> = migrator(backend).iter().map(|m| m.version).collect();
            assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
            assert_eq!(all.len(), MIGRATOR.iter().count() + own.len());
        }
    }
}
