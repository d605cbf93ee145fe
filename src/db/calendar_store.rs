//! The users' token-expiry calendar links, kept as digests of their keys.

use sqlx::FromRow;

use super::Exec;
use crate::domain::ids::{AccountId, TokenId, UserId};
use crate::domain::secret::TokenKind;

/// Makes (or replaces) the user's calendar key.
pub async fn put<'e>(
    ex: impl Exec<'e>,
    user_id: &UserId,
    digest: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO expiry_calendars (user_id, key_digest, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET key_digest = $2, created_at = $3",
    )
    .bind(user_id)
    .bind(digest)
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

/// Deletes the user's calendar key; whether there was one.
pub async fn delete<'e>(ex: impl Exec<'e>, user_id: &UserId) -> sqlx::Result<bool> {
    sqlx::query("DELETE FROM expiry_calendars WHERE user_id = $1")
        .bind(user_id)
        .execute(ex)
        .await
        .map(|r| r.rows_affected() > 0)
}

/// When the user's calendar key was made, if they have one.
pub async fn created_at<'e>(ex: impl Exec<'e>, user_id: &UserId) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT created_at FROM expiry_calendars WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

/// The user a calendar key belongs to.
pub async fn owner<'e>(ex: impl Exec<'e>, digest: &str) -> sqlx::Result<Option<UserId>> {
    sqlx::query_scalar("SELECT user_id FROM expiry_calendars WHERE key_digest = $1")
        .bind(digest)
        .fetch_optional(ex)
        .await
}

/// One expiring token in a user's feed.
#[derive(Debug, FromRow)]
pub struct FeedToken {
    pub id: TokenId,
    pub account_id: AccountId,
    pub account_name: String,
    pub name: String,
    pub kind: TokenKind,
    pub expires_at: i64,
}

/// The tokens a user's calendar lists, expiring after `since`, soonest first: their
/// own user tokens in every account, and the automation tokens of the accounts where
/// they are a superuser.
pub async fn feed<'e>(
    ex: impl Exec<'e>,
    user_id: &UserId,
    since: i64,
    limit: i64,
) -> sqlx::Result<Vec<FeedToken>> {
    sqlx::query_as(
        "SELECT t.id, t.account_id, a.name AS account_name, t.name, t.kind, t.expires_at \
         FROM tokens t JOIN accounts a ON a.id = t.account_id \
         WHERE t.expires_at > $2 AND t.replaced_by IS NULL AND ( \
           (t.kind = 'user' AND t.user_id = $1 \
            AND EXISTS (SELECT 1 FROM memberships m WHERE m.account_id = t.account_id AND m.user_id = $1)) \
           OR (t.kind = 'automation' AND EXISTS (SELECT 1 FROM memberships m \
               WHERE m.account_id = t.account_id AND m.user_id = $1 AND m.role = 'superuser'))) \
         ORDER BY t.expires_at, t.id LIMIT $3",
    )
    .bind(user_id)
    .bind(since)
    .bind(limit)
    .fetch_all(ex)
    .await
}
