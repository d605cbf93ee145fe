//! Services of an account: what token access and purge scopes refer to.

use sqlx::{AnyConnection, FromRow};

use super::{Backend, Exec};
use crate::domain::ids::{AccountId, ServiceId};

#[derive(Debug, Clone, FromRow)]
pub struct Service {
    pub id: ServiceId,
    pub account_id: AccountId,
    pub name: String,
    pub created_at: i64,
}

pub async fn create<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    id: &ServiceId,
    name: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO services (id, account_id, name, created_at) VALUES ($2, $1, $3, $4)")
        .bind(account_id)
        .bind(id)
        .bind(name)
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
}

/// An account's services, by name.
pub async fn list<'e>(ex: impl Exec<'e>, account_id: &AccountId) -> sqlx::Result<Vec<Service>> {
    sqlx::query_as("SELECT id, account_id, name, created_at FROM services WHERE account_id = $1 ORDER BY name, id")
        .bind(account_id)
        .fetch_all(ex)
        .await
}

/// One service of an account.
pub async fn find<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    id: &ServiceId,
) -> sqlx::Result<Option<Service>> {
    sqlx::query_as(
        "SELECT id, account_id, name, created_at FROM services WHERE account_id = $1 AND id = $2",
    )
    .bind(account_id)
    .bind(id)
    .fetch_optional(ex)
    .await
}

/// Locks a service row for its deletion, as the transaction's first statement: on
/// PostgreSQL `FOR UPDATE` makes a token being created with this service wait (or
/// be waited for), on SQLite the no-op write takes the database write lock. False when
/// the account has no such service.
pub async fn lock(
    conn: &mut AnyConnection,
    backend: Backend,
    account_id: &AccountId,
    id: &ServiceId,
) -> sqlx::Result<bool> {
    let found = match backend {
        Backend::Postgres => {
            sqlx::query("SELECT id FROM services WHERE account_id = $1 AND id = $2 FOR UPDATE")
                .bind(account_id)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .is_some()
        }
        Backend::Sqlite => {
            sqlx::query("UPDATE services SET name = name WHERE account_id = $1 AND id = $2")
                .bind(account_id)
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                > 0
        }
    };
    Ok(found)
}

pub async fn rename<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    id: &ServiceId,
    name: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE services SET name = $3 WHERE account_id = $1 AND id = $2")
        .bind(account_id)
        .bind(id)
        .bind(name)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn delete<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    id: &ServiceId,
) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM services WHERE account_id = $1 AND id = $2")
        .bind(account_id)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Tokens limited to this service alone. Deleting the service would leave them with no
/// service rows, which means "all services": a wider grant than anyone made.
pub async fn tokens_limited_to_only<'e>(ex: impl Exec<'e>, id: &ServiceId) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM token_services ts WHERE ts.service_id = $1 AND NOT EXISTS \
         (SELECT 1 FROM token_services o WHERE o.token_id = ts.token_id AND o.service_id <> $1)",
    )
    .bind(id)
    .fetch_one(ex)
    .await
}

/// Members limited to this service alone: without it they would be unlimited.
pub async fn members_limited_to_only<'e>(ex: impl Exec<'e>, id: &ServiceId) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM service_permissions sp WHERE sp.service_id = $1 AND NOT EXISTS \
         (SELECT 1 FROM service_permissions o WHERE o.account_id = sp.account_id AND o.user_id = sp.user_id AND o.service_id <> $1)",
    )
    .bind(id)
    .fetch_one(ex)
    .await
}
