//! Users and what a signed-in user is in their current account.

use std::fmt;

use sqlx::FromRow;

use super::accounts::Account;
use super::Exec;
use crate::domain::roles::Role;

#[derive(Clone, FromRow)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
    pub totp_last_step: Option<i64>,
    /// 0/1: a locked user cannot sign in.
    pub locked: i64,
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
        self.locked != 0
    }

    pub fn has_two_factor(&self) -> bool {
        self.totp_secret.is_some()
    }
}

const USER_COLUMNS: &str =
    "id, email, name, password_hash, totp_secret, totp_last_step, locked, created_at";

pub async fn create<'e>(
    ex: impl Exec<'e>,
    id: &str,
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

pub async fn find_by_email<'e>(ex: impl Exec<'e>, email: &str) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(ex)
    .await
}

pub async fn find<'e>(ex: impl Exec<'e>, id: &str) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await
}

/// Stores an (encrypted) TOTP secret with the step of the code that confirmed it.
pub async fn enable_totp<'e>(
    ex: impl Exec<'e>,
    user_id: &str,
    sealed_secret: &str,
    step: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET totp_secret = $1, totp_last_step = $2 WHERE id = $3")
        .bind(sealed_secret)
        .bind(step)
        .bind(user_id)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn disable_totp<'e>(ex: impl Exec<'e>, user_id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET totp_secret = NULL, totp_last_step = NULL WHERE id = $1")
        .bind(user_id)
        .execute(ex)
        .await
        .map(|_| ())
}

/// Records `step` as the last accepted TOTP step; false when that step (or a later
/// one) was already accepted, which makes the code a replay.
pub async fn accept_totp_step<'e>(
    ex: impl Exec<'e>,
    user_id: &str,
    step: i64,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_secret IS NOT NULL \
         AND (totp_last_step IS NULL OR totp_last_step < $1)",
    )
    .bind(step)
    .bind(user_id)
    .execute(ex)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Replaces a user's recovery codes with new ones (digests).
pub async fn replace_recovery_codes(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    digests: &[String],
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    for digest in digests {
        sqlx::query(
            "INSERT INTO recovery_codes (user_id, code_digest, created_at) VALUES ($1, $2, $3)",
        )
        .bind(user_id)
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
    user_id: &str,
    digest: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_digest = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .bind(digest)
    .execute(ex)
    .await?;
    Ok(updated.rows_affected() == 1)
}

pub async fn unused_recovery_codes<'e>(ex: impl Exec<'e>, user_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .fetch_one(ex)
        .await
}

/// (id, name) of every member of an account, for showing names beside ids.
pub async fn names_in_account<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
) -> sqlx::Result<Vec<(String, String)>> {
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

/// A user as a member of one account: what every signed-in page works with.
#[derive(Debug, Clone)]
pub struct Member {
    pub user: User,
    pub account: Account,
    pub role: Role,
}

#[derive(FromRow)]
struct MemberRow {
    #[sqlx(flatten)]
    user: User,
    account_id: String,
    account_name: String,
    force_2fa: i64,
    force_sso: i64,
    account_created_at: i64,
    role: String,
}

pub async fn member<'e>(
    ex: impl Exec<'e>,
    user_id: &str,
    account_id: &str,
) -> sqlx::Result<Option<Member>> {
    let row: Option<MemberRow> = sqlx::query_as(
        "SELECT u.id, u.email, u.name, u.password_hash, u.totp_secret, u.totp_last_step, u.locked, u.created_at, \
                a.id AS account_id, a.name AS account_name, a.force_2fa, a.force_sso, a.created_at AS account_created_at, \
                m.role \
         FROM memberships m JOIN users u ON u.id = m.user_id JOIN accounts a ON a.id = m.account_id \
         WHERE m.user_id = $1 AND m.account_id = $2",
    )
    .bind(user_id)
    .bind(account_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.and_then(|r| {
        let role = r.role.parse().ok()?;
        Some(Member {
            user: r.user,
            account: Account {
                id: r.account_id,
                name: r.account_name,
                force_2fa: r.force_2fa,
                force_sso: r.force_sso,
                created_at: r.account_created_at,
            },
            role,
        })
    }))
}
