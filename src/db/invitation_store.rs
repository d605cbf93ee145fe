//! Pending invitations to join an account. Only the SHA-256 digest of a link's secret is
//! stored; accepting, declining or revoking an invitation deletes its row.

use sqlx::FromRow;

use super::Exec;
use crate::domain::ids::{AccountId, InvitationId, ServiceId, UserId};
use crate::domain::roles::{Role, ServicePermission};

#[derive(Debug, Clone, FromRow)]
pub struct Invitation {
    pub id: InvitationId,
    pub account_id: AccountId,
    pub email: String,
    pub role: Role,
    pub invited_by: Option<UserId>,
    /// How many links were made for it (1, then one more per re-issue).
    pub issued: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

const COLUMNS: &str =
    "i.id, i.account_id, i.email, i.role, i.invited_by, i.issued, i.created_at, i.expires_at";

/// A new invitation; fails with a unique violation when the account has one for this
/// email already.
#[allow(clippy::too_many_arguments)]
pub async fn create<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    id: &InvitationId,
    email: &str,
    role: Role,
    invited_by: &UserId,
    digest: &str,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO invitations (id, account_id, email, role, invited_by, secret_digest, issued, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8)",
    )
    .bind(id)
    .bind(account_id)
    .bind(email)
    .bind(role)
    .bind(invited_by)
    .bind(digest)
    .bind(now)
    .bind(expires_at)
    .execute(ex)
    .await
    .map(|_| ())
}

pub async fn add_service<'e>(
    ex: impl Exec<'e>,
    id: &InvitationId,
    service_id: &ServiceId,
    permission: ServicePermission,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO invitation_services (invitation_id, service_id, permission) VALUES ($1, $2, $3)",
    )
    .bind(id)
    .bind(service_id)
    .bind(permission)
    .execute(ex)
    .await
    .map(|_| ())
}

/// The account's pending invitations (expired ones too), newest first.
pub async fn list<'e>(ex: impl Exec<'e>, account_id: &AccountId) -> sqlx::Result<Vec<Invitation>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invitations i WHERE i.account_id = $1 ORDER BY i.created_at DESC, i.id"
    ))
    .bind(account_id)
    .fetch_all(ex)
    .await
}

pub async fn find<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    id: &InvitationId,
) -> sqlx::Result<Option<Invitation>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invitations i WHERE i.account_id = $1 AND i.id = $2"
    ))
    .bind(account_id)
    .bind(id)
    .fetch_optional(ex)
    .await
}

/// The invitation a link's digest opens, while it has not expired.
pub async fn find_current<'e>(
    ex: impl Exec<'e>,
    digest: &str,
    now: i64,
) -> sqlx::Result<Option<Invitation>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invitations i WHERE i.secret_digest = $1 AND i.expires_at > $2"
    ))
    .bind(digest)
    .bind(now)
    .fetch_optional(ex)
    .await
}

/// The services (and permissions) an invitation limits an engineer to.
pub async fn services<'e>(
    ex: impl Exec<'e>,
    id: &InvitationId,
) -> sqlx::Result<Vec<(ServiceId, ServicePermission)>> {
    sqlx::query_as(
        "SELECT service_id, permission FROM invitation_services WHERE invitation_id = $1 ORDER BY service_id",
    )
    .bind(id)
    .fetch_all(ex)
    .await
}

/// Spends a current link: deletes its invitation and returns its id, or None when the
/// link was used, revoked, replaced, expired or never existed. Two concurrent uses race
/// for one row, so only one wins.
pub async fn consume<'e>(
    ex: impl Exec<'e>,
    digest: &str,
    now: i64,
) -> sqlx::Result<Option<InvitationId>> {
    sqlx::query_scalar(
        "DELETE FROM invitations WHERE secret_digest = $1 AND expires_at > $2 RETURNING id",
    )
    .bind(digest)
    .bind(now)
    .fetch_optional(ex)
    .await
}

/// Gives the invitation a new link (`digest`) valid until `expires_at`, when `issued`
/// is still its count of links (a re-posted form finds it moved on); false otherwise.
pub async fn reissue<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    id: &InvitationId,
    issued: i64,
    digest: &str,
    expires_at: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE invitations SET secret_digest = $4, expires_at = $5, issued = issued + 1 \
         WHERE account_id = $1 AND id = $2 AND issued = $3",
    )
    .bind(account_id)
    .bind(id)
    .bind(issued)
    .bind(digest)
    .bind(expires_at)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes an invitation of the account; false when there is none.
pub async fn delete<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    id: &InvitationId,
) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM invitations WHERE account_id = $1 AND id = $2")
        .bind(account_id)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Pending invitations limited to this service alone: deleting it would widen them to
/// every service.
pub async fn limited_to_only<'e>(ex: impl Exec<'e>, service_id: &ServiceId) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM invitation_services s WHERE s.service_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM invitation_services o WHERE o.invitation_id = s.invitation_id AND o.service_id <> s.service_id)",
    )
    .bind(service_id)
    .fetch_one(ex)
    .await
}
