//! Accounts and their security settings.

use sqlx::FromRow;

use super::types::Flag;
use super::Exec;
use crate::domain::ids::AccountId;

#[derive(Debug, Clone, FromRow)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub force_2fa: Flag,
    pub force_sso: Flag,
    pub created_at: i64,
}

impl Account {
    pub fn forces_2fa(&self) -> bool {
        self.force_2fa.get()
    }

    pub fn forces_sso(&self) -> bool {
        self.force_sso.get()
    }
}

const ACCOUNT_COLUMNS: &str = "id, name, force_2fa, force_sso, created_at";

pub async fn create<'e>(
    ex: impl Exec<'e>,
    id: &AccountId,
    name: &str,
    now: i64,
) -> sqlx::Result<()> {
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
    id: &AccountId,
    force_2fa: bool,
    force_sso: bool,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE accounts SET force_2fa = $2, force_sso = $3 WHERE id = $1")
        .bind(id)
        .bind(Flag(force_2fa))
        .bind(Flag(force_sso))
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn find<'e>(ex: impl Exec<'e>, id: &AccountId) -> sqlx::Result<Option<Account>> {
    sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await
}

pub async fn find_by_name<'e>(ex: impl Exec<'e>, name: &str) -> sqlx::Result<Option<Account>> {
    sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1 ORDER BY created_at LIMIT 1"
    ))
    .bind(name)
    .fetch_optional(ex)
    .await
}
