//! One-time first-run setup secrets, stored as digests so that any node can honour the
//! URL printed by another.

use super::Exec;

pub async fn add<'e>(ex: impl Exec<'e>, digest: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO setup_secrets (digest, created_at) VALUES ($1, $2)")
        .bind(digest)
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn exists<'e>(ex: impl Exec<'e>, digest: &str) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM setup_secrets WHERE digest = $1")
        .bind(digest)
        .fetch_one(ex)
        .await?;
    Ok(n > 0)
}

/// Consumes every setup secret; true when `digest` was among them. Run inside the
/// transaction that creates the first user, so two concurrent set-ups cannot both win.
pub async fn consume_all<'e>(ex: impl Exec<'e>, digest: &str) -> sqlx::Result<bool> {
    let deleted: Vec<String> = sqlx::query_scalar("DELETE FROM setup_secrets RETURNING digest")
        .fetch_all(ex)
        .await?;
    Ok(deleted.iter().any(|d| d == digest))
}
