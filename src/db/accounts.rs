//! Accounts, memberships and services.

use sqlx::FromRow;

use super::Exec;
use crate::domain::roles::Role;

#[derive(Debug, Clone, FromRow)]
pub struct Account {
    pub id: String,
    pub name: String,
    /// 0/1 flags (see the schema): use `forces_2fa` and `forces_sso`.
    pub force_2fa: i64,
    pub force_sso: i64,
    pub created_at: i64,
}

impl Account {
    pub fn forces_2fa(&self) -> bool {
        self.force_2fa != 0
    }

    pub fn forces_sso(&self) -> bool {
        self.force_sso != 0
    }
}

pub async fn create<'e>(ex: impl Exec<'e>, id: &str, name: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn update_settings<'e>(
    ex: impl Exec<'e>,
    id: &str,
    force_2fa: bool,
    force_sso: bool,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE accounts SET force_2fa = $1, force_sso = $2 WHERE id = $3")
        .bind(i64::from(force_2fa))
        .bind(i64::from(force_sso))
        .bind(id)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn find<'e>(ex: impl Exec<'e>, id: &str) -> sqlx::Result<Option<Account>> {
    sqlx::query_as("SELECT id, name, force_2fa, force_sso, created_at FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await
}

pub async fn find_by_name<'e>(ex: impl Exec<'e>, name: &str) -> sqlx::Result<Option<Account>> {
    sqlx::query_as("SELECT id, name, force_2fa, force_sso, created_at FROM accounts WHERE name = $1 ORDER BY created_at LIMIT 1")
        .bind(name)
        .fetch_optional(ex)
        .await
}

pub async fn add_member<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
    user_id: &str,
    role: Role,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO memberships (account_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(account_id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

/// The accounts a user belongs to, oldest membership first: the first is the default
/// current account after sign-in.
pub async fn memberships_of<'e>(
    ex: impl Exec<'e>,
    user_id: &str,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT a.id, a.name FROM memberships m JOIN accounts a ON a.id = m.account_id \
         WHERE m.user_id = $1 ORDER BY m.created_at, a.name",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct Service {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub created_at: i64,
}

pub async fn create_service<'e>(
    ex: impl Exec<'e>,
    id: &str,
    account_id: &str,
    name: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO services (id, account_id, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(account_id)
        .bind(name)
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn services<'e>(ex: impl Exec<'e>, account_id: &str) -> sqlx::Result<Vec<Service>> {
    sqlx::query_as("SELECT id, account_id, name, created_at FROM services WHERE account_id = $1 ORDER BY name, id")
        .bind(account_id)
        .fetch_all(ex)
        .await
}

pub async fn set_service_permission<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
    user_id: &str,
    service_id: &str,
    permission: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO service_permissions (account_id, user_id, service_id, permission) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id, user_id, service_id) DO UPDATE SET permission = excluded.permission",
    )
    .bind(account_id)
    .bind(user_id)
    .bind(service_id)
    .bind(permission)
    .execute(ex)
    .await
    .map(|_| ())
}

/// The services a member is limited to, with the permission on each. Empty means the
/// member is not limited (every service of the account).
pub async fn service_permissions<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
    user_id: &str,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as("SELECT service_id, permission FROM service_permissions WHERE account_id = $1 AND user_id = $2")
        .bind(account_id)
        .bind(user_id)
        .fetch_all(ex)
        .await
}

/// One service of an account.
pub async fn service<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
    id: &str,
) -> sqlx::Result<Option<Service>> {
    sqlx::query_as(
        "SELECT id, account_id, name, created_at FROM services WHERE account_id = $1 AND id = $2",
    )
    .bind(account_id)
    .bind(id)
    .fetch_optional(ex)
    .await
}

/// A member's role in an account, if they belong to it.
pub async fn role_of<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
    user_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT role FROM memberships WHERE account_id = $1 AND user_id = $2")
        .bind(account_id)
        .bind(user_id)
        .fetch_optional(ex)
        .await
}
