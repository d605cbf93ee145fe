//! Services as the Services page manages them. Listing and creating live beside the
//! account in `accounts` (token creation uses them too).

use sqlx::AnyConnection;

use super::accounts::Service;
use super::{Backend, Exec};

pub async fn find<'e>(
    ex: impl Exec<'e>,
    account_id: &str,
    id: &str,
) -> sqlx::Result<Option<Service>> {
    sqlx::query_as(
        "SELECT id, account_id, name, created_at FROM services WHERE id = $1 AND account_id = $2",
    )
    .bind(id)
    .bind(account_id)
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
    account_id: &str,
    id: &str,
) -> sqlx::Result<bool> {
    let found = match backend {
        Backend::Postgres => {
            sqlx::query("SELECT id FROM services WHERE id = $1 AND account_id = $2 FOR UPDATE")
                .bind(id)
                .bind(account_id)
                .fetch_optional(&mut *conn)
                .await?
                .is_some()
        }
        Backend::Sqlite => {
            sqlx::query("UPDATE services SET name = name WHERE id = $1 AND account_id = $2")
                .bind(id)
                .bind(account_id)
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
    account_id: &str,
    id: &str,
    name: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE services SET name = $3 WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .bind(name)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn delete<'e>(ex: impl Exec<'e>, account_id: &str, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM services WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Tokens limited to this service alone. Deleting the service would leave them with no
/// service rows, which means "all services": a wider grant than anyone made.
pub async fn tokens_limited_to_only<'e>(ex: impl Exec<'e>, id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM token_services ts WHERE ts.service_id = $1 AND NOT EXISTS \
         (SELECT 1 FROM token_services o WHERE o.token_id = ts.token_id AND o.service_id <> $1)",
    )
    .bind(id)
    .fetch_one(ex)
    .await
}

/// Members limited to this service alone: without it they would be unlimited.
pub async fn members_limited_to_only<'e>(ex: impl Exec<'e>, id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM service_permissions sp WHERE sp.service_id = $1 AND NOT EXISTS \
         (SELECT 1 FROM service_permissions o WHERE o.account_id = sp.account_id AND o.user_id = sp.user_id AND o.service_id <> $1)",
    )
    .bind(id)
    .fetch_one(ex)
    .await
}
