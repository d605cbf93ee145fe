//! The members of an account as superusers manage them: roles, service limits, removal.
//! Changes that must keep an account's last superuser run after `lock_account`.

use sqlx::{AnyConnection, FromRow};

use super::{Backend, Exec};
use crate::domain::roles::Role;

/// A member as the Users page lists them.
#[derive(Debug, Clone, FromRow)]
pub struct Member {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    /// When they joined this account.
    pub joined_at: i64,
    /// 0/1: whether the user has a password yet (one set through a link may not).
    pub has_password: i64,
    /// User tokens they hold in this account, active or expired.
    pub user_tokens: i64,
}

const MEMBER_SELECT: &str = "SELECT u.id AS user_id, u.name, u.email, m.role, m.created_at AS joined_at, \
        CASE WHEN u.password_hash IS NULL THEN 0 ELSE 1 END AS has_password, \
        (SELECT COUNT(*) FROM tokens t WHERE t.account_id = m.account_id AND t.user_id = m.user_id AND t.kind = 'user') AS user_tokens \
     FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.account_id = $1";

pub async fn list<'e>(ex: impl Exec<'e>, account_id: &str) -> sqlx::Result<Vec<Member>> {
    sqlx::query_as(&format!("{MEMBER_SELECT} ORDER BY u.name, u.email"))
        .bind(account_id)
        .fetch_all(ex)
        .await
}

pub async fn find<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
    user_id: &str,
) -> sqlx::Result<Option<Member>> {
    sqlx::query_as(&format!("{MEMBER_SELECT} AND m.user_id = $2"))
        .bind(account_id)
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

/// Serialises changes to an account's members: the first statement of the transaction.
/// PostgreSQL locks the account's row; on SQLite the (no-op) write takes the database
/// write lock before anything is read, so no other writer can slip in between a check
/// and the change it guards. False when there is no such account.
///
/// `FOR NO KEY UPDATE`, not `FOR UPDATE`: it excludes the other member changes just the
/// same, but not the key-share lock a foreign key check takes on the account row. A
/// token being created holds its owner's membership row and then inserts (a key check
/// on the account); with `FOR UPDATE` here, removing that member would wait for the
/// membership while holding the account, and the two would deadlock.
pub async fn lock_account(
    conn: &mut AnyConnection,
    backend: Backend,
    account_id: &str,
) -> sqlx::Result<bool> {
    let found = match backend {
        Backend::Postgres => sqlx::query("SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE")
            .bind(account_id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
        Backend::Sqlite => {
            sqlx::query("UPDATE accounts SET name = name WHERE id = $1")
                .bind(account_id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                > 0
        }
    };
    Ok(found)
}

pub async fn count_superusers<'e>(ex: impl Exec<'e>, account_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE account_id = $1 AND role = $2")
        .bind(account_id)
        .bind(Role::Superuser.as_str())
        .fetch_one(ex)
        .await
}

/// The accounts other than `account_id` the user belongs to.
pub async fn count_other_memberships<'e>(
    ex: impl Exec<'e>,
    user_id: &str,
    account_id: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE user_id = $1 AND account_id <> $2")
        .bind(user_id)
        .bind(account_id)
        .fetch_one(ex)
        .await
}

pub async fn set_role<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
    user_id: &str,
    role: Role,
) -> sqlx::Result<bool> {
    let done =
        sqlx::query("UPDATE memberships SET role = $3 WHERE account_id = $1 AND user_id = $2")
            .bind(account_id)
            .bind(user_id)
            .bind(role.as_str())
            .execute(ex)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// Removes every service limit of a member: they work on all services again.
pub async fn clear_service_permissions<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
    user_id: &str,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM service_permissions WHERE account_id = $1 AND user_id = $2")
        .bind(account_id)
        .bind(user_id)
        .execute(ex)
        .await
        .map(|_| ())
}

/// Ends a membership (its service limits go with it).
pub async fn remove<'e>(ex: impl Exec<'e>, account_id: &str, user_id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM memberships WHERE account_id = $1 AND user_id = $2")
        .bind(account_id)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes a user. Their tokens must be gone first: `tokens.user_id` has no cascade.
pub async fn delete_user<'e>(ex: impl Exec<'e>, user_id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// (user id, name, email) of every member, by name: the Owner filter's options.
pub async fn names<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
) -> sqlx::Result<Vec<(String, String, String)>> {
    sqlx::query_as(
        "SELECT u.id, u.name, u.email FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.account_id = $1 ORDER BY u.name, u.email",
    )
    .bind(account_id)
    .fetch_all(ex)
    .await
}

pub async fn count<'e>(ex: impl Exec<'e>, account_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE account_id = $1")
        .bind(account_id)
        .fetch_one(ex)
        .await
}
