//! One-time set-password links for users a superuser added. Only the SHA-256 digest of
//! a link's secret is stored; using the link deletes it.

use super::Exec;
use crate::domain::ids::UserId;

pub async fn add<'e>(
    ex: impl Exec<'e>,
    digest: &str,
    user_id: &UserId,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO password_links (digest, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(digest)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .execute(ex)
    .await
    .map(|_| ())
}

/// The user a current link is for.
pub async fn user_of<'e>(
    ex: impl Exec<'e>,
    digest: &str,
    now: i64,
) -> sqlx::Result<Option<UserId>> {
    sqlx::query_scalar("SELECT user_id FROM password_links WHERE digest = $1 AND expires_at > $2")
        .bind(digest)
        .bind(now)
        .fetch_optional(ex)
        .await
}

/// Spends a current link: its user, or None when it was used, expired or never existed.
/// Two concurrent uses race for one row, so only one wins.
pub async fn consume<'e>(
    ex: impl Exec<'e>,
    digest: &str,
    now: i64,
) -> sqlx::Result<Option<UserId>> {
    sqlx::query_scalar(
        "DELETE FROM password_links WHERE digest = $1 AND expires_at > $2 RETURNING user_id",
    )
    .bind(digest)
    .bind(now)
    .fetch_optional(ex)
    .await
}

/// Forgets every link of a user (once one has been used).
pub async fn delete_for_user<'e>(ex: impl Exec<'e>, user_id: &UserId) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM password_links WHERE user_id = $1")
        .bind(user_id)
        .execute(ex)
        .await
        .map(|_| ())
}
