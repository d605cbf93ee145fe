//! Browser sessions: the tower-sessions store over our own `sessions` table (shared by
//! every node, surviving restarts), and the queries of the Sessions page and of the
//! operations that end sessions.
//!
//! A row is keyed by the SHA-256 digest of the session id, never the id: a copy of the
//! table gives no live session. Beside the data, the row copies the few entries the
//! pages list and the operations select by (user, current account, sign-in time, last
//! activity, address, user agent); `web::session` writes them under the names in `keys`.
//!
//! Saving never brings a deleted row back: a session ended by another request (sign out
//! everywhere, a password change) stays ended even when a request of that session was
//! in flight and saves its changes afterwards. Idle expiry is judged by the wall clock,
//! as tower-sessions sets it; the absolute lifetime by the application clock in
//! `web::session`, plus a sweep here.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::FromRow;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use super::{Db, Exec};
use crate::domain::ids::{AccountId, UserId};
use crate::domain::secret;

/// The session entries copied into columns.
pub mod keys {
    pub const USER_ID: &str = "user_id";
    pub const ACCOUNT_ID: &str = "account_id";
    pub const SIGNED_IN_AT: &str = "signed_in_at";
    pub const LAST_ACTIVE_AT: &str = "last_active_at";
    pub const IP: &str = "ip";
    pub const USER_AGENT: &str = "user_agent";
}

/// The digest a session is stored under.
pub fn id_digest(id: &Id) -> String {
    secret::digest(&id.to_string())
}

#[derive(Clone)]
pub struct DbSessionStore {
    db: Db,
    /// Signed-in sessions older than this (seconds since sign-in) are swept.
    max_age: i64,
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbSessionStore")
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

/// The columns a record's data gives.
struct Columns {
    data: String,
    user_id: Option<String>,
    account_id: Option<String>,
    signed_in_at: Option<i64>,
    last_active_at: Option<i64>,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl Columns {
    fn of(record: &Record) -> session_store::Result<Columns> {
        let data = serde_json::to_string(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let text = |key: &str| {
            record
                .data
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let int = |key: &str| record.data.get(key).and_then(Value::as_i64);
        Ok(Columns {
            data,
            user_id: text(keys::USER_ID),
            account_id: text(keys::ACCOUNT_ID),
            signed_in_at: int(keys::SIGNED_IN_AT),
            last_active_at: int(keys::LAST_ACTIVE_AT),
            ip: text(keys::IP),
            user_agent: text(keys::USER_AGENT),
        })
    }
}

impl DbSessionStore {
    pub fn new(db: Db, max_age_seconds: i64) -> Self {
        DbSessionStore {
            db,
            max_age: max_age_seconds,
        }
    }

    /// Removes sessions past their idle expiry or their absolute lifetime; run
    /// periodically.
    pub async fn delete_expired(&self) -> sqlx::Result<u64> {
        let now = now();
        sqlx::query(
            "DELETE FROM sessions WHERE expiry_date < $1 \
             OR (signed_in_at IS NOT NULL AND signed_in_at <= $2)",
        )
        .bind(now)
        .bind(now - self.max_age)
        .execute(&self.db.pool)
        .await
        .map(|r| r.rows_affected())
    }
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let c = Columns::of(record)?;
        // A fresh random id colliding is astronomically unlikely, but never overwrite.
        loop {
            let inserted = sqlx::query(
                "INSERT INTO sessions (id_digest, data, expiry_date, user_id, account_id, signed_in_at, last_active_at, ip, user_agent) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id_digest) DO NOTHING",
            )
            .bind(id_digest(&record.id))
            .bind(&c.data)
            .bind(record.expiry_date.unix_timestamp())
            .bind(&c.user_id)
            .bind(&c.account_id)
            .bind(c.signed_in_at)
            .bind(c.last_active_at)
            .bind(&c.ip)
            .bind(&c.user_agent)
            .execute(&self.db.pool)
            .await
            .map_err(backend)?;
            if inserted.rows_affected() == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    /// Updates an existing session only: one deleted meanwhile stays deleted.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let c = Columns::of(record)?;
        sqlx::query(
            "UPDATE sessions SET data = $2, expiry_date = $3, user_id = $4, account_id = $5, \
             signed_in_at = $6, last_active_at = $7, ip = $8, user_agent = $9 WHERE id_digest = $1",
        )
        .bind(id_digest(&record.id))
        .bind(&c.data)
        .bind(record.expiry_date.unix_timestamp())
        .bind(&c.user_id)
        .bind(&c.account_id)
        .bind(c.signed_in_at)
        .bind(c.last_active_at)
        .bind(&c.ip)
        .bind(&c.user_agent)
        .execute(&self.db.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT data, expiry_date FROM sessions WHERE id_digest = $1 AND expiry_date > $2",
        )
        .bind(id_digest(id))
        .bind(now())
        .fetch_optional(&self.db.pool)
        .await
        .map_err(backend)?;
        let Some((data, expiry)) = row else {
            return Ok(None);
        };
        let data =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(expiry)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_digest = $1")
            .bind(id_digest(id))
            .execute(&self.db.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// One signed-in browser of a user, as the Sessions page lists it.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id_digest: String,
    pub signed_in_at: Option<i64>,
    pub last_active_at: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The user's signed-in sessions that have not expired (idle expiry is wall-clock time,
/// as in `load`), most recently active first.
pub async fn list_for_user<'e>(
    ex: impl Exec<'e>,
    user_id: &UserId,
) -> sqlx::Result<Vec<SessionRow>> {
    sqlx::query_as(
        "SELECT id_digest, signed_in_at, last_active_at, ip, user_agent FROM sessions \
         WHERE user_id = $1 AND expiry_date > $2 \
         ORDER BY COALESCE(last_active_at, signed_in_at, 0) DESC, id_digest",
    )
    .bind(user_id)
    .bind(now())
    .fetch_all(ex)
    .await
}

/// Ends one session of the user; false when the user has no such session.
pub async fn delete_one<'e>(
    ex: impl Exec<'e>,
    user_id: &UserId,
    id_digest: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_digest = $2")
        .bind(user_id)
        .bind(id_digest)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every session of the user but `keep` (the digest of the session asking, when
/// there is one); returns how many ended.
pub async fn delete_for_user<'e>(
    ex: impl Exec<'e>,
    user_id: &UserId,
    keep: Option<&str>,
) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_digest <> $2")
        .bind(user_id)
        .bind(keep.unwrap_or(""))
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}

/// Ends the user's sessions that are working in `account_id`.
pub async fn delete_for_member<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND account_id = $2")
        .bind(user_id)
        .bind(account_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}

/// Sessions not yet expired, for the metrics.
pub async fn count_active<'e>(ex: impl Exec<'e>, now: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE expiry_date > $1")
        .bind(now)
        .fetch_one(ex)
        .await
}
