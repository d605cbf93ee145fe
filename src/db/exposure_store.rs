//! Exposed (leaked and revoked) tokens, and the notices members see on their next page
//! views.

use sqlx::FromRow;

use super::Exec;
use crate::domain::ids::{AccountId, TokenId, UserId};
use crate::domain::secret::TokenKind;

/// A live token found by the digest of a reported string.
#[derive(Debug, Clone, FromRow)]
pub struct Found {
    pub id: TokenId,
    pub account_id: AccountId,
    pub kind: TokenKind,
    pub user_id: Option<UserId>,
    pub name: String,
    pub created_at: i64,
    pub owner_name: Option<String>,
}

/// The tokens whose secret digests are among `digests` (at most a few hundred at once).
pub async fn find_by_digests<'e>(
    ex: impl Exec<'e>,
    digests: &[String],
) -> sqlx::Result<Vec<Found>> {
    if digests.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=digests.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT t.id, t.account_id, t.kind, t.user_id, t.name, t.created_at, u.name AS owner_name \
         FROM tokens t LEFT JOIN users u ON u.id = t.user_id \
         WHERE t.secret_digest IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, Found>(&sql);
    for digest in digests {
        query = query.bind(digest);
    }
    query.fetch_all(ex).await
}

pub async fn record<'e>(
    ex: impl Exec<'e>,
    token: &Found,
    source_url: Option<&str>,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO exposed_tokens (id, account_id, kind, user_id, name, source_url, created_at, reported_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&token.id)
    .bind(&token.account_id)
    .bind(token.kind)
    .bind(&token.user_id)
    .bind(&token.name)
    .bind(source_url)
    .bind(token.created_at)
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

/// One exposed token, as the Exposed tokens page lists it.
#[derive(Debug, FromRow)]
pub struct Exposed {
    pub kind: TokenKind,
    pub name: String,
    pub owner_name: Option<String>,
    pub source_url: Option<String>,
    pub reported_at: i64,
}

/// The account's exposed tokens, newest report first: all of them, or only `owner`'s.
pub async fn list<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    owner: Option<&UserId>,
    limit: i64,
) -> sqlx::Result<Vec<Exposed>> {
    sqlx::query_as(
        "SELECT e.kind, e.name, u.name AS owner_name, e.source_url, e.reported_at \
         FROM exposed_tokens e LEFT JOIN users u ON u.id = e.user_id \
         WHERE e.account_id = $1 AND ($2 IS NULL OR (e.user_id = $2 AND e.kind = 'user')) \
         ORDER BY e.reported_at DESC, e.id LIMIT $3",
    )
    .bind(account_id)
    .bind(owner)
    .bind(limit)
    .fetch_all(ex)
    .await
}

pub async fn add_notice<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    message: &str,
    link: Option<&str>,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notices (id, account_id, user_id, message, link, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(crate::domain::random::id())
    .bind(account_id)
    .bind(user_id)
    .bind(message)
    .bind(link)
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

#[derive(Debug, Clone, FromRow)]
pub struct Notice {
    pub id: String,
    pub message: String,
    pub link: Option<String>,
    pub created_at: i64,
}

/// A member's notices, oldest first.
pub async fn notices<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    limit: i64,
) -> sqlx::Result<Vec<Notice>> {
    sqlx::query_as(
        "SELECT id, message, link, created_at FROM notices \
         WHERE account_id = $1 AND user_id = $2 ORDER BY created_at, id LIMIT $3",
    )
    .bind(account_id)
    .bind(user_id)
    .bind(limit)
    .fetch_all(ex)
    .await
}

/// Dismisses one of the member's notices; whether it was theirs.
pub async fn dismiss<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    user_id: &UserId,
    id: &str,
) -> sqlx::Result<bool> {
    sqlx::query("DELETE FROM notices WHERE account_id = $1 AND user_id = $2 AND id = $3")
        .bind(account_id)
        .bind(user_id)
        .bind(id)
        .execute(ex)
        .await
        .map(|r| r.rows_affected() > 0)
}

/// The account's superusers who can sign in (not the synthetic legacy-key user).
pub async fn superusers_of<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
) -> sqlx::Result<Vec<UserId>> {
    sqlx::query_scalar(
        "SELECT m.user_id FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.account_id = $1 AND m.role = 'superuser' AND u.password_hash IS NOT NULL \
         ORDER BY m.user_id",
    )
    .bind(account_id)
    .fetch_all(ex)
    .await
}
