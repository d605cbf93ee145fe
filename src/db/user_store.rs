//! Users: who signs in, with what password and second factor.

use std::fmt;

use sqlx::{AnyConnection, FromRow};

use super::types::Flag;
use super::Exec;
use crate::domain::ids::{AccountId, UserId};

#[derive(Clone, FromRow)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
    /// A locked user cannot sign in.
    pub locked: Flag,
    pub created_at: i64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "totp_secret",
                &self.totp_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("locked", &self.locked)
            .finish()
    }
}

impl User {
    pub fn is_locked(&self) -> bool {
        self.locked.get()
    }

    pub fn has_two_factor(&self) -> bool {
        self.totp_secret.is_some()
    }
}

/// The columns of `User`, for queries that join users to other tables as `u`.
pub(super) const USER_COLUMNS: &str =
    "u.id, u.email, u.name, u.password_hash, u.totp_secret, u.locked, u.created_at";

pub async fn create<'e>(
    ex: impl Exec<'e>,
    id: &UserId,
    email: &str,
    name: &str,
    password_hash: Option<&str>,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(email)
        .bind(name)
        .bind(password_hash)
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
}

/// A user who is not a person (see migration 0008): no password, never counted as a
/// superuser.
pub async fn create_synthetic<'e>(
    ex: impl Exec<'e>,
    id: &UserId,
    email: &str,
    name: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, synthetic, created_at) VALUES ($1, $2, $3, NULL, 1, $4)",
    )
    .bind(id)
    .bind(email)
    .bind(name)
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

pub async fn find_by_email<'e>(ex: impl Exec<'e>, email: &str) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.email = $1"
    ))
    .bind(email)
    .fetch_optional(ex)
    .await
}

pub async fn find<'e>(ex: impl Exec<'e>, id: &UserId) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await
}

/// Stores an (encrypted) TOTP secret with the step of the code that confirmed it.
pub async fn enable_totp<'e>(
    ex: impl Exec<'e>,
    id: &UserId,
    sealed_secret: &str,
    step: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET totp_secret = $2, totp_last_step = $3 WHERE id = $1")
        .bind(id)
        .bind(sealed_secret)
        .bind(step)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn disable_totp<'e>(ex: impl Exec<'e>, id: &UserId) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET totp_secret = NULL, totp_last_step = NULL WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await
        .map(|_| ())
}

/// Records `step` as the last accepted TOTP step; false when that step (or a later
/// one) was already accepted, which makes the code a replay.
pub async fn accept_totp_step<'e>(ex: impl Exec<'e>, id: &UserId, step: i64) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_secret IS NOT NULL \
         AND (totp_last_step IS NULL OR totp_last_step < $2)",
    )
    .bind(id)
    .bind(step)
    .execute(ex)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Replaces a user's recovery codes with new ones (digests).
pub async fn replace_recovery_codes(
    conn: &mut AnyConnection,
    id: &UserId,
    digests: &[String],
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for digest in digests {
        sqlx::query(
            "INSERT INTO recovery_codes (user_id, code_digest, created_at) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(digest)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Spends a recovery code; false when it is unknown or already used.
pub async fn use_recovery_code<'e>(
    ex: impl Exec<'e>,
    id: &UserId,
    digest: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_digest = $2 AND used_at IS NULL",
    )
    .bind(id)
    .bind(digest)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(updated.rows_affected() == 1)
}

pub async fn unused_recovery_codes<'e>(ex: impl Exec<'e>, id: &UserId) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(id)
        .fetch_one(ex)
        .await
}

/// (id, name) of every member of an account, for showing names beside ids.
pub async fn names_in_account<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
) -> sqlx::Result<Vec<(UserId, String)>> {
    sqlx::query_as(
        "SELECT u.id, u.name FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.account_id = $1 ORDER BY u.name",
    )
    .bind(account_id)
    .fetch_all(ex)
    .await
}

pub async fn count<'e>(ex: impl Exec<'e>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(ex)
        .await
}

pub async fn set_password<'e>(ex: impl Exec<'e>, id: &UserId, hash: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes a user. Their tokens must be gone first: `tokens.user_id` has no cascade.
pub async fn delete<'e>(ex: impl Exec<'e>, id: &UserId) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}
