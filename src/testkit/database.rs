//! Fresh databases, copied from a migrated template instead of migrated each time.
//!
//! PostgreSQL: the first test of a run that needs one makes the database
//! `tokenpanel_template_<fingerprint of the migrations>` (migrated under a temporary
//! name, then renamed, so the name only ever stands for a complete template); every test
//! then gets `CREATE DATABASE … TEMPLATE` it. PostgreSQL refuses to copy a database
//! someone is connected to, so nobody may connect to the template (`ALLOW_CONNECTIONS
//! false`), and a copy that still meets a connection (a build closing) is retried.
//! Several test processes may share the server (the integration and e2e binaries, or
//! two checkouts): an advisory lock lets one of them build while the others wait, and a
//! template that disappears (dropped by a process with other migrations) is rebuilt.
//! Templates of other migration sets go a day after they were built.
//!
//! SQLite: one migrated file per migration set in the temporary directory, copied per
//! test.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use sqlx::{Connection, PgConnection};

use super::internals;

/// How a template's comment starts, before the Unix time it was built.
const BUILT_AT: &str = "tokenpanel test template, built at ";

/// A database for one test or benchmark, removed when dropped unless kept.
pub struct TestDb {
    url: String,
    place: Place,
    keep: bool,
}

enum Place {
    Sqlite(PathBuf),
    Postgres {
        admin_url: String,
        name: String,
    },
    /// Named by the caller; never removed.
    Existing,
}

impl TestDb {
    /// A fresh SQLite file, migrated.
    pub async fn sqlite() -> TestDb {
        let template = sqlite_template().await;
        let path = std::env::temp_dir().join(format!(
            "tokenpanel-test-{}.db",
            internals::random_base62(12)
        ));
        let url = format!("sqlite://{}", path.display());
        if std::fs::copy(&template, &path).is_err() {
            // Removed meanwhile by the sweep of a checkout with other migrations: this
            // one file is migrated instead.
            let _ = std::fs::remove_file(&path);
            internals::migrate(&url)
                .await
                .expect("migrate a SQLite test database");
        }
        // The template's time stamp says when it was last used, for that sweep.
        let _ = std::fs::File::options()
            .write(true)
            .open(&template)
            .and_then(|f| f.set_modified(SystemTime::now()));
        TestDb {
            url,
            place: Place::Sqlite(path),
            keep: false,
        }
    }

    /// A fresh database on the PostgreSQL server of `admin_url` (any database there),
    /// migrated.
    pub async fn postgres(admin_url: &str) -> TestDb {
        let name = format!(
            "tokenpanel_test_{}",
            internals::random_base62(12).to_lowercase()
        );
        let started = Instant::now();
        let mut looked_again = 0;
        loop {
            let template = postgres_template(admin_url).await;
            let sql = format!("CREATE DATABASE {name} TEMPLATE {template}");
            match execute_alone(admin_url, &sql).await {
                Ok(()) => break,
                // Someone is still connected to the template (a build letting go of it):
                // wait for them to leave.
                Err(e)
                    if code(&e).as_deref() == Some("55006")
                        && started.elapsed() < Duration::from_secs(30) =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                // Dropped (or being dropped) by a process with other migrations since we
                // looked: find or build it again.
                Err(_) if looked_again < 3 => {
                    looked_again += 1;
                    forget_postgres_template(&template).await;
                }
                Err(e) => panic!("create a test database from {template}: {e}"),
            }
        }
        TestDb {
            url: replace_database(admin_url, &name),
            place: Place::Postgres {
                admin_url: admin_url.to_owned(),
                name,
            },
            keep: false,
        }
    }

    /// A database the caller names (created by the server if it is a missing SQLite
    /// file); left in place afterwards.
    pub fn existing(url: &str) -> TestDb {
        TestDb {
            url: url.to_owned(),
            place: Place::Existing,
            keep: true,
        }
    }

    /// Leaves the database in place when dropped.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        match &self.place {
            Place::Existing => {}
            Place::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm", ".key"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Place::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Best effort, on a thread of its own: Drop cannot await.
                let _ = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    rt.block_on(async move {
                        if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&mut admin)
                            .await;
                            let _ = admin.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// `postgres://user@host:port/db?x` with another database name.
pub(super) fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map(|(b, q)| (b, format!("?{q}")))
        .unwrap_or((url, String::new()));
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..host_end])
}

/// The SQLSTATE of a database error.
fn code(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// The migrated SQLite file of this migration set, made on first use.
async fn sqlite_template() -> PathBuf {
    static READY: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    READY
        .get_or_init(|| async {
            let dir = std::env::temp_dir();
            let fingerprint = internals::migrations_fingerprint();
            let path = dir.join(format!("tokenpanel-template-{fingerprint}.db"));
            if path.is_file() {
                return path;
            }
            // Built under a name of its own and renamed: another process sees the whole
            // file or none (two that race write the same file twice).
            let building = dir.join(format!(
                "tokenpanel-template-{fingerprint}-{}.building",
                internals::random_base62(8)
            ));
            internals::migrate(&format!("sqlite://{}", building.display()))
                .await
                .expect("migrate the SQLite template");
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", building.display()));
            }
            std::fs::rename(&building, &path).expect("put the SQLite template in place");
            remove_stale_sqlite_templates(&dir, &path);
            path
        })
        .await
        .clone()
}

/// Templates of other migration sets unused for a day (each copy renews the time stamp;
/// another checkout may still be copying a recent one).
fn remove_stale_sqlite_templates(dir: &std::path::Path, current: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let day_ago = SystemTime::now() - Duration::from_secs(86_400);
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let stale = name.to_string_lossy().starts_with("tokenpanel-template-")
            && path != current
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < day_ago);
        if stale {
            let _ = std::fs::remove_file(&path);
        }
    }
}

static PG_TEMPLATE: tokio::sync::Mutex<Option<String>> = tokio::sync::Mutex::const_new(None);

/// The name of the migrated PostgreSQL template, made when missing.
async fn postgres_template(admin_url: &str) -> String {
    let mut ready = PG_TEMPLATE.lock().await;
    if let Some(name) = ready.as_ref() {
        return name.clone();
    }
    let name = find_or_build_postgres_template(admin_url).await;
    *ready = Some(name.clone());
    name
}

async fn forget_postgres_template(name: &str) {
    let mut ready = PG_TEMPLATE.lock().await;
    if ready.as_deref() == Some(name) {
        *ready = None;
    }
}

async fn find_or_build_postgres_template(admin_url: &str) -> String {
    let name = format!(
        "tokenpanel_template_{}",
        internals::migrations_fingerprint()
    );
    let mut admin = PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("connect to {admin_url}: {e}"));
    // One build of a template at a time, until this connection closes: the lock's key
    // is the fingerprint, so other migration sets build beside it. Advisory locks belong
    // to one database, so this orders the processes that share TEST_DATABASE_URL; the
    // rename keeps the others correct (at worst two build the same template, one wins).
    let fingerprint = internals::migrations_fingerprint();
    let key = u64::from_str_radix(&fingerprint, 16).unwrap_or(0) as i64;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut admin)
        .await
        .expect("take the template build lock");
    let mut attempts = 0;
    while !template_exists(&mut admin, &name).await {
        attempts += 1;
        match build_postgres_template(&mut admin, admin_url, &name).await {
            Ok(()) => drop_stale_postgres_templates(admin_url, &name).await,
            Err(e) if attempts < 3 => eprintln!("building {name} failed, again: {e}"),
            Err(e) => panic!("build the PostgreSQL template {name}: {e}"),
        }
    }
    let _ = admin.close().await;
    name
}

async fn template_exists(admin: &mut PgConnection, name: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT datistemplate FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut *admin)
        .await
        .expect("look for the template")
        .unwrap_or(false)
}

/// Migrates a database of its own, then makes it the template by renaming it: the
/// template's name never stands for half a migration.
async fn build_postgres_template(
    admin: &mut PgConnection,
    admin_url: &str,
    name: &str,
) -> Result<(), String> {
    // The time in the name lets a later run tell an abandoned build from a running one.
    let building = format!(
        "{name}_build_{}_{}",
        unix_now(),
        internals::random_base62(6).to_lowercase()
    );
    sqlx::query(&format!("CREATE DATABASE {building}"))
        .execute(&mut *admin)
        .await
        .map_err(|e| e.to_string())?;
    if let Err(e) = internals::migrate(&replace_database(admin_url, &building)).await {
        drop_database(admin_url, &building).await;
        return Err(e);
    }
    for sql in [
        // The comment dates the template for the stale sweep (it follows the rename).
        format!(
            "COMMENT ON DATABASE {building} IS '{BUILT_AT}{}'",
            unix_now()
        ),
        format!("ALTER DATABASE {building} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
        format!("ALTER DATABASE {building} RENAME TO {name}"),
    ] {
        // The migration's connections may take a moment to leave the database.
        let started = Instant::now();
        loop {
            match sqlx::query(&sql).execute(&mut *admin).await {
                Ok(_) => break,
                Err(e)
                    if code(&e).as_deref() == Some("55006")
                        && started.elapsed() < Duration::from_secs(10) =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                // Another process (holding the lock in another database) finished the
                // same template first: theirs is as good.
                Err(e) if code(&e).as_deref() == Some("42P04") => {
                    drop_database(admin_url, &building).await;
                    return Ok(());
                }
                Err(e) => {
                    drop_database(admin_url, &building).await;
                    return Err(format!("{sql}: {e}"));
                }
            }
        }
    }
    Ok(())
}

/// Templates of other migration sets built over a day ago, and builds abandoned over an
/// hour ago. Younger templates stay: another checkout's concurrent run may be copying
/// its own, and dropping it would only make that run build it again (and a sweep of its
/// own drop ours). A template or database in use refuses to go and stays.
async fn drop_stale_postgres_templates(admin_url: &str, current: &str) {
    let Ok(mut admin) = PgConnection::connect(admin_url).await else {
        return;
    };
    let found: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database \
         WHERE datname LIKE 'tokenpanel\\_template\\_%' AND datname <> $1",
    )
    .bind(current)
    .fetch_all(&mut admin)
    .await
    .unwrap_or_default();
    let _ = admin.close().await;
    let now = unix_now();
    for (name, comment) in found {
        let stale = match name.split_once("_build_") {
            Some((_, rest)) => rest
                .split('_')
                .next()
                .and_then(|t| t.parse::<i64>().ok())
                .is_some_and(|started| started < now - 3600),
            // A template without the date (made by an earlier kit) is left alone.
            None => comment
                .as_deref()
                .and_then(|c| c.strip_prefix(BUILT_AT))
                .and_then(|t| t.parse::<i64>().ok())
                .is_some_and(|built| built < now - 86_400),
        };
        if stale {
            drop_database(admin_url, &name).await;
        }
    }
}

/// Drops a database nobody is connected to, on a connection of its own: PostgreSQL
/// ends a session that touches a database another session is dropping.
async fn drop_database(admin_url: &str, name: &str) {
    let _ = execute_alone(
        admin_url,
        &format!("ALTER DATABASE {name} WITH IS_TEMPLATE false"),
    )
    .await;
    let _ = execute_alone(admin_url, &format!("DROP DATABASE IF EXISTS {name}")).await;
}

/// One statement on a connection of its own.
async fn execute_alone(admin_url: &str, sql: &str) -> Result<(), sqlx::Error> {
    let mut admin = PgConnection::connect(admin_url).await?;
    let done = sqlx::query(sql).execute(&mut admin).await.map(|_| ());
    let _ = admin.close().await;
    done
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
