//! Members of an account as superusers manage them: roles, service limits, removal and
//! deletion (people join by invitation: `ops::invitations`). Every change that must
//! keep the account's last superuser runs after `member_store::lock_account`.

use super::token_cache::{self, Change};
use super::Context;
use crate::db::event_store::{self, NewEvent};
use crate::db::member_store::{self, MemberSummary};
use crate::db::user_store;
use crate::db::{is_unique_violation, session_store, token_store, Backend, Db};
use crate::domain::event_type::EventType;
use crate::domain::ids::{AccountId, ServiceId, UserId};
use crate::domain::member_rules::{self, MemberError};
use crate::domain::roles::{Role, ServicePermission};
use sqlx::AnyConnection;

#[derive(Debug)]
pub enum MembershipError {
    /// No such member (any more).
    NotFound,
    /// The change breaks a rule that keeps the account manageable.
    Refused(MemberError),
    Database(sqlx::Error),
}

impl From<sqlx::Error> for MembershipError {
    fn from(e: sqlx::Error) -> Self {
        MembershipError::Database(e)
    }
}

/// Who acts, where, from which address.
#[derive(Debug, Clone, Copy)]
pub struct Acting<'a> {
    pub account_id: &'a AccountId,
    pub actor: &'a UserId,
    pub ip: &'a str,
}

impl<'a> Acting<'a> {
    pub(super) fn event(&self, event_type: EventType, description: String) -> NewEvent<'a> {
        NewEvent::new(event_type, description)
            .account(self.account_id)
            .actor(Some(self.actor))
            .ip(Some(self.ip))
    }
}

/// Locks the account's members (`member_store::lock_account`: no other member change
/// can slip in between the checks and the change) and reads the member.
async fn lock_and_find(
    conn: &mut AnyConnection,
    backend: Backend,
    account_id: &AccountId,
    user_id: &UserId,
) -> Result<MemberSummary, MembershipError> {
    member_store::lock_account(conn, backend, account_id).await?;
    member_store::summary(&mut *conn, account_id, user_id)
        .await?
        .ok_or(MembershipError::NotFound)
}

/// Changes a member's role; the account keeps a superuser. Leaving the engineer role
/// clears the member's service limits (a later promotion starts afresh).
pub async fn change_role(
    ctx: &Context,
    acting: Acting<'_>,
    user_id: &UserId,
    to: Role,
) -> Result<(), MembershipError> {
    let account_id = acting.account_id;
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    let member = lock_and_find(&mut tx, ctx.db.backend, account_id, user_id).await?;
    let from = member.role;
    let superusers = member_store::count_superusers(&mut *tx, account_id).await?;
    member_rules::check_role_change(member.standing(), to, superusers)
        .map_err(MembershipError::Refused)?;
    if from == to {
        return Ok(());
    }
    member_store::set_role(&mut *tx, account_id, user_id, to).await?;
    if to != Role::Engineer {
        member_store::clear_service_permissions(&mut *tx, account_id, user_id).await?;
    }
    let event = acting
        .event(
            EventType::UserUpdate,
            format!(
                "Changed the role of {} from {} to {}",
                member.email,
                from.label(),
                to.label()
            ),
        )
        .metadata(serde_json::json!({
            "user_id": user_id,
            "role": { "from": from.as_str(), "to": to.as_str() },
        }));
    event_store::record(&mut *tx, &event, now).await?;
    let member = Change::Member(account_id.clone(), user_id.clone());
    token_cache::commit(ctx, tx, &[member]).await?;
    Ok(())
}

/// Limits an engineer to `chosen` services (empty: all services again). NotFound when
/// the member is gone or no longer an engineer once the account is locked.
pub async fn set_service_access(
    ctx: &Context,
    acting: Acting<'_>,
    user_id: &UserId,
    chosen: &[(ServiceId, ServicePermission)],
) -> Result<(), MembershipError> {
    let account_id = acting.account_id;
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    let member = lock_and_find(&mut tx, ctx.db.backend, account_id, user_id).await?;
    if member.role != Role::Engineer {
        return Err(MembershipError::NotFound);
    }
    member_store::clear_service_permissions(&mut *tx, account_id, user_id).await?;
    for (service_id, permission) in chosen {
        member_store::set_service_permission(
            &mut *tx,
            account_id,
            user_id,
            service_id,
            *permission,
        )
        .await?;
    }
    let summary: Vec<serde_json::Value> = chosen
        .iter()
        .map(|(s, p)| serde_json::json!({ "service_id": s, "permission": p.as_str() }))
        .collect();
    let description = if chosen.is_empty() {
        format!("Gave {} access to all services", member.email)
    } else {
        format!("Limited {} to {} services", member.email, chosen.len())
    };
    let event = acting
        .event(EventType::UserUpdate, description)
        .metadata(serde_json::json!({ "user_id": user_id, "services": summary }));
    event_store::record(&mut *tx, &event, now).await?;
    let member = Change::Member(account_id.clone(), user_id.clone());
    token_cache::commit(ctx, tx, &[member]).await?;
    Ok(())
}

/// Whether removing (or deleting) a member would be refused, as far as can be told
/// before trying; `end_membership` checks again under the account lock.
pub async fn refusal(
    ctx: &Context,
    account_id: &AccountId,
    member: &MemberSummary,
    delete: bool,
) -> Result<Option<MemberError>, sqlx::Error> {
    let pool = &ctx.db.pool;
    let superusers = member_store::count_superusers(pool, account_id).await?;
    let outcome = if delete {
        let others =
            member_store::count_other_memberships(pool, account_id, &member.user_id).await?;
        member_rules::check_deletion(member.standing(), superusers, member.user_tokens, others)
    } else {
        member_rules::check_removal(member.standing(), superusers, member.user_tokens)
    };
    Ok(outcome.err())
}

/// Removes the member from the account and, when `delete`, deletes the user as well.
pub async fn end_membership(
    ctx: &Context,
    acting: Acting<'_>,
    user_id: &UserId,
    delete: bool,
) -> Result<(), MembershipError> {
    let account_id = acting.account_id;
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    let member = lock_and_find(&mut tx, ctx.db.backend, account_id, user_id).await?;
    let superusers = member_store::count_superusers(&mut *tx, account_id).await?;
    let others = member_store::count_other_memberships(&mut *tx, account_id, user_id).await?;
    // Ending the membership first waits for a token being created for this member
    // (it locks the membership row), so the count below sees that token too.
    member_store::remove(&mut *tx, account_id, user_id).await?;
    // Rolled tokens past their overlap are already gone from every list (their rows
    // only wait for the housekeeping): they do not hold the member back.
    token_store::delete_rolled_over_of(&mut *tx, account_id, user_id, now).await?;
    let user_tokens = token_store::count_owned(&mut *tx, account_id, user_id).await?;
    let checked = if delete {
        member_rules::check_deletion(member.standing(), superusers, user_tokens, others)
    } else {
        member_rules::check_removal(member.standing(), superusers, user_tokens)
    };
    checked.map_err(MembershipError::Refused)?;
    if delete {
        user_store::delete(&mut *tx, user_id).await?;
        session_store::delete_for_user(&mut *tx, user_id, None).await?;
    } else {
        // Their sessions working in this account end; those in other accounts go on.
        session_store::delete_for_member(&mut *tx, account_id, user_id).await?;
    }
    let description = if delete {
        format!("Deleted user {}", member.email)
    } else {
        format!("Removed {} from the account", member.email)
    };
    let event = acting
        .event(EventType::UserDestroy, description)
        .metadata(serde_json::json!({
            "user_id": user_id,
            "email": member.email,
            "role": member.role.as_str(),
            "deleted": delete,
        }));
    event_store::record(&mut *tx, &event, now).await?;
    let change = if delete {
        Change::User(user_id.clone())
    } else {
        Change::Member(account_id.clone(), user_id.clone())
    };
    token_cache::commit(ctx, tx, &[change]).await?;
    Ok(())
}

/// Operator tools (`create-superuser`, `demo`, tests) create members directly: a user
/// (with a password hash, or none) and their membership, in one transaction, without
/// an event. None when the email is taken.
pub async fn create_member(
    db: &Db,
    account_id: &AccountId,
    email: &str,
    name: &str,
    password_hash: Option<&str>,
    role: Role,
    now: i64,
) -> Result<Option<UserId>, sqlx::Error> {
    let user_id = UserId::generate();
    let mut tx = db.begin().await?;
    match user_store::create(&mut *tx, &user_id, email, name, password_hash, now).await {
        Err(e) if is_unique_violation(&e) => return Ok(None),
        other => other?,
    }
    member_store::add(&mut *tx, account_id, &user_id, role, now).await?;
    tx.commit().await?;
    Ok(Some(user_id))
}
