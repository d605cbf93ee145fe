//! Users (superusers): the members of the current account and its pending invitations.
//! Invite a user, re-issue or revoke an invitation, change a member's role and service
//! limits, remove a member, delete a user; every change in sudo mode. The page behind an
//! invitation link is `web::invitation`.

mod edit;
mod invite;
mod list;
mod removal;

use axum::routing::{get, post};
use axum::Router;

use super::error::WebError;
use super::page::date;
use super::session::SignedIn;
use super::sudo::{Elevated, Sudo};
use crate::db::member_store::{self, MemberSummary};
use crate::db::service_store::{self, Service};
use crate::domain::access::Action;
use crate::domain::access::ServiceAccess;
use crate::domain::ids::{ServiceId, UserId};
use crate::domain::roles::{Role, ServicePermission};
use crate::ops::membership::{Acting, MembershipError};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/users", get(list::list))
        .route("/account/users/new", get(invite::new_form))
        .route("/account/users/invitations", post(invite::create))
        .route(
            "/account/users/invitations/{id}/reissue",
            post(invite::reissue),
        )
        .route(
            "/account/users/invitations/{id}/revoke",
            post(invite::revoke),
        )
        .route("/account/users/{id}", get(edit::edit))
        .route("/account/users/{id}/role", post(edit::change_role))
        .route("/account/users/{id}/services", post(edit::set_services))
        .route(
            "/account/users/{id}/remove",
            get(removal::confirm_remove).post(removal::remove),
        )
        .route(
            "/account/users/{id}/delete",
            get(removal::confirm_delete).post(removal::delete),
        )
}

/// Who acts in a member change or an invitation: the signed-in superuser, from this address.
fn acting<'a>(signed_in: &'a SignedIn, ip: &'a str) -> Acting<'a> {
    Acting {
        account_id: signed_in.account_id(),
        actor: signed_in.user_id(),
        ip,
    }
}

/// A change to member `id`, in sudo mode: refused (403) to who may not manage users,
/// 404 for who is not a member of this account, and only then a question of sudo mode
/// (re-authenticate, then back to `back`).
async fn elevated_for_member(
    state: &AppState,
    sudo: Sudo,
    id: &UserId,
    back: &str,
) -> Result<Elevated, WebError> {
    sudo.signed_in().require(Action::ManageUsers)?;
    member_store::summary(&state.db.pool, sudo.signed_in().account_id(), id)
        .await?
        .ok_or(WebError::NotFound)?;
    sudo.elevated(back)
}

/// A member change refused, or failed, with no form to show it on.
fn membership_failure(e: MembershipError) -> WebError {
    match e {
        MembershipError::Database(e) => e.into(),
        MembershipError::NotFound | MembershipError::Refused(_) => WebError::NotFound,
    }
}

/// A member as the pages show them.
pub struct MemberRow {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub is_engineer: bool,
    pub services: String,
    pub user_tokens: i64,
    pub joined: String,
    pub has_password: bool,
    pub is_you: bool,
}

/// A member's row. `names` are the account's services and `limits` the member's
/// service permission rows (both fetched once for a whole list).
fn member_row(
    member: &MemberSummary,
    you: &UserId,
    names: &[Service],
    limits: Vec<(ServiceId, ServicePermission)>,
) -> MemberRow {
    let services = match ServiceAccess::of(member.role, limits) {
        ServiceAccess::All => "All services".to_owned(),
        ServiceAccess::Limited(list) => list
            .iter()
            .filter_map(|(id, p)| {
                let service = names.iter().find(|s| &s.id == id)?;
                Some(format!("{} ({})", service.name, p.label()))
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    MemberRow {
        id: member.user_id.clone(),
        name: member.name.clone(),
        email: member.email.clone(),
        role: member.role.label(),
        is_engineer: member.role == Role::Engineer,
        services,
        user_tokens: member.user_tokens,
        joined: date(member.joined_at),
        has_password: member.has_password.get(),
        is_you: member.user_id == *you,
    }
}

/// One member's row, with their service limits.
async fn one_member_row(
    state: &AppState,
    signed_in: &SignedIn,
    member: &MemberSummary,
) -> Result<MemberRow, WebError> {
    let account_id = signed_in.account_id();
    let names = service_store::list(&state.db.pool, account_id).await?;
    let limits =
        member_store::service_permissions(&state.db.pool, account_id, &member.user_id).await?;
    Ok(member_row(member, signed_in.user_id(), &names, limits))
}

pub struct RoleChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

fn role_choices(current: &str) -> Vec<RoleChoice> {
    Role::ALL
        .into_iter()
        .map(|r| RoleChoice {
            value: r.as_str(),
            label: r.label(),
            selected: r.as_str() == current,
        })
        .collect()
}

fn tokens_link(user_id: &UserId) -> String {
    format!("/account/account-tokens?type=user&owner={user_id}")
}
