//! Users as Fastly shows them: `GET /current_user` (the token's owner), `GET /user/{id}`
//! (oneself, or any member for a superuser) and `GET /customer/{id}/users` (superusers),
//! one shape for all three. Unset fields are left out, never `null`.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::api_error::{ApiError, ApiResult};
use super::caller::{self, Caller};
use super::{json, timestamp};
use crate::db::account_store::Account;
use crate::db::member_store;
use crate::db::user_store::User;
use crate::domain::access::{Action, ServiceAccess};
use crate::domain::ids::{AccountId, ServiceId, UserId};
use crate::domain::roles::{Role, ServicePermission};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserJson {
    id: UserId,
    login: String,
    name: String,
    customer_id: AccountId,
    role: &'static str,
    two_factor_auth_enabled: bool,
    /// The account requires two-factor authentication and this user has none yet.
    two_factor_setup_required: bool,
    /// An engineer working on some services only.
    limit_services: bool,
    locked: bool,
    created_at: String,
}

fn user_json(
    account: &Account,
    user: &User,
    role: Role,
    limits: &[(ServiceId, ServicePermission)],
) -> UserJson {
    UserJson {
        id: user.id.clone(),
        login: user.email.clone(),
        name: user.name.clone(),
        customer_id: account.id.clone(),
        role: role.as_str(),
        two_factor_auth_enabled: user.has_two_factor(),
        two_factor_setup_required: account.forces_2fa() && !user.has_two_factor(),
        limit_services: ServiceAccess::of(role, limits.to_vec()).is_limited(),
        locked: user.is_locked(),
        created_at: timestamp(user.created_at),
    }
}

/// One member of the caller's account, when the caller may see them.
async fn member_json(state: &AppState, caller: &Caller, id: &UserId) -> ApiResult<UserJson> {
    let not_found = || ApiError::not_found("Record not found").with_detail(id.to_string());
    // Someone the caller may not see is not found, as someone of another account is.
    if !caller.principal.may(Action::ReadUser(id)) {
        return Err(not_found());
    }
    let member = member_store::find(&state.db.pool, caller.account_id(), id)
        .await?
        .ok_or_else(not_found)?;
    let limits = match member.role {
        Role::Engineer => {
            member_store::service_permissions(&state.db.pool, caller.account_id(), id).await?
        }
        _ => Vec::new(),
    };
    Ok(user_json(
        &member.account,
        &member.user,
        member.role,
        &limits,
    ))
}

pub async fn current(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Action::ReadAccount)?;
    let user_id = caller.require_user()?.clone();
    let user = member_json(&state, &caller, &user_id)
        .await
        // The owner of a valid token is a member; gone since, the token is worth nothing.
        .map_err(|e| match e.status {
            StatusCode::NOT_FOUND => ApiError::unauthorized(),
            _ => e,
        })?;
    Ok(json(StatusCode::OK, &user))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
) -> ApiResult<Response> {
    // The scope decides first: a purge-only token is told so, not "not found".
    caller.require(Action::ReadAccount)?;
    Ok(json(
        StatusCode::OK,
        &member_json(&state, &caller, &id).await?,
    ))
}

/// The customer in the path must be the token's own.
pub fn own_customer(caller: &Caller, customer_id: &str) -> ApiResult<()> {
    if *caller.account_id() != *customer_id {
        return Err(
            ApiError::forbidden("A token only reaches its own customer.")
                .with_detail(customer_id.to_owned()),
        );
    }
    Ok(())
}

pub async fn list_in_customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer_id): Path<String>,
) -> ApiResult<Response> {
    caller.require(Action::ViewUsers)?;
    own_customer(&caller, &customer_id)?;
    let account = caller::account(&state, caller.account_id()).await?;
    let members = member_store::users_with_roles(&state.db.pool, &account.id).await?;
    let mut limits: HashMap<UserId, Vec<(ServiceId, ServicePermission)>> =
        member_store::service_permissions_in_account(&state.db.pool, &account.id).await?;
    let list: Vec<UserJson> = members
        .iter()
        .map(|(user, role)| {
            let limits = limits.remove(&user.id).unwrap_or_default();
            user_json(&account, user, *role, &limits)
        })
        .collect();
    Ok(json(StatusCode::OK, &list))
}
