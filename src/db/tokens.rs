//! API tokens. Only the SHA-256 digest of a token string is stored.

use std::collections::HashMap;

use sqlx::{AnyConnection, FromRow};

use super::{Backend, Exec};

#[derive(Debug, Clone, FromRow)]
pub struct Token {
    pub id: String,
    pub account_id: String,
    pub kind: String,
    pub user_id: Option<String>,
    pub created_by: Option<String>,
    pub name: String,
    pub scope: String,
    pub role: Option<String>,
    /// 0/1 flag.
    pub tls_access: i64,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub last_used_agent: Option<String>,
}

impl Token {
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

const TOKEN_COLUMNS: &str =
    "id, account_id, kind, user_id, created_by, name, scope, role, tls_access, created_at, \
                             expires_at, last_used_at, last_used_ip, last_used_agent";

/// Everything needed to store a new token. `digest` is the SHA-256 of the secret.
#[derive(Debug)]
pub struct NewToken<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub kind: &'a str,
    pub user_id: Option<&'a str>,
    pub created_by: &'a str,
    pub name: &'a str,
    pub scope: &'a str,
    pub role: Option<&'a str>,
    pub tls_access: bool,
    pub digest: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub service_ids: &'a [String],
}

#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Yes,
    LimitReached,
}

/// Stores a token unless its owner already has `limit` active user tokens in the
/// account. Must run inside a transaction, and first in it: on PostgreSQL the owner's
/// membership row is locked so concurrent creations queue; on SQLite the conditional
/// INSERT takes the database write lock before it counts.
pub async fn create(
    conn: &mut AnyConnection,
    backend: Backend,
    token: &NewToken<'_>,
    limit: i64,
) -> sqlx::Result<Created> {
    if backend == Backend::Postgres {
        if let Some(user_id) = token.user_id {
            sqlx::query(
                "SELECT user_id FROM memberships WHERE account_id = $1 AND user_id = $2 FOR UPDATE",
            )
            .bind(token.account_id)
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
        }
    }
    let inserted = sqlx::query(
        "INSERT INTO tokens (id, account_id, kind, user_id, created_by, name, scope, role, tls_access, secret_digest, created_at, expires_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
         WHERE (SELECT COUNT(*) FROM tokens WHERE account_id = $2 AND user_id = $4 AND kind = 'user' \
                AND (expires_at IS NULL OR expires_at > $11)) < $13",
    )
    .bind(token.id)
    .bind(token.account_id)
    .bind(token.kind)
    .bind(token.user_id)
    .bind(token.created_by)
    .bind(token.name)
    .bind(token.scope)
    .bind(token.role)
    .bind(i64::from(token.tls_access))
    .bind(token.digest)
    .bind(token.created_at)
    .bind(token.expires_at)
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(Created::LimitReached);
    }
    for service_id in token.service_ids {
        sqlx::query("INSERT INTO token_services (token_id, service_id) VALUES ($1, $2)")
            .bind(token.id)
            .bind(service_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Created::Yes)
}

/// A user's own user tokens in one account, newest first.
pub async fn owned_by<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
    user_id: &str,
) -> sqlx::Result<Vec<Token>> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = $1 AND user_id = $2 AND kind = 'user' \
         ORDER BY created_at DESC, id"
    ))
    .bind(account_id)
    .bind(user_id)
    .fetch_all(ex)
    .await
}

pub async fn find_owned<'e>(
    ex: impl Exec<'e>,
    id: &str,
    account_id: &str,
    user_id: &str,
) -> sqlx::Result<Option<Token>> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1 AND account_id = $2 AND user_id = $3 AND kind = 'user'"
    ))
    .bind(id)
    .bind(account_id)
    .bind(user_id)
    .fetch_optional(ex)
    .await
}

/// Deletes a user's own token; the name of the deleted token, or None when there was
/// no such token of theirs.
pub async fn delete_owned<'e>(
    ex: impl Exec<'e>,
    id: &str,
    account_id: &str,
    user_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "DELETE FROM tokens WHERE id = $1 AND account_id = $2 AND user_id = $3 AND kind = 'user' RETURNING name",
    )
    .bind(id)
    .bind(account_id)
    .bind(user_id)
    .fetch_optional(ex)
    .await
}

/// Service names per token for a user's own tokens: token id → [(service id, name)].
pub async fn services_of_owned<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
    user_id: &str,
) -> sqlx::Result<HashMap<String, Vec<(String, String)>>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT ts.token_id, s.id, s.name FROM token_services ts \
         JOIN tokens t ON t.id = ts.token_id JOIN services s ON s.id = ts.service_id \
         WHERE t.account_id = $1 AND t.user_id = $2 AND t.kind = 'user' ORDER BY s.name",
    )
    .bind(account_id)
    .bind(user_id)
    .fetch_all(ex)
    .await?;
    let mut map: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (token_id, service_id, name) in rows {
        map.entry(token_id).or_default().push((service_id, name));
    }
    Ok(map)
}

/// Active user tokens a user holds in an account.
pub async fn count_active<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
    user_id: &str,
    now: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM tokens WHERE account_id = $1 AND user_id = $2 AND kind = 'user' \
         AND (expires_at IS NULL OR expires_at > $3)",
    )
    .bind(account_id)
    .bind(user_id)
    .bind(now)
    .fetch_one(ex)
    .await
}

/// Deletes any token of the account; its (name, kind, owner), or None when the account
/// has no such token.
pub async fn delete_in_account<'e>(
    ex: impl Exec<'e>,
    id: &str,
    account_id: &str,
) -> sqlx::Result<Option<(String, String, Option<String>)>> {
    sqlx::query_as(
        "DELETE FROM tokens WHERE id = $1 AND account_id = $2 RETURNING name, kind, user_id",
    )
    .bind(id)
    .bind(account_id)
    .fetch_optional(ex)
    .await
}

/// All user tokens (active or expired) a user holds in an account.
pub async fn count_owned<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
    user_id: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM tokens WHERE account_id = $1 AND user_id = $2 AND kind = 'user'",
    )
    .bind(account_id)
    .bind(user_id)
    .fetch_one(ex)
    .await
}
