//! Automation tokens (superusers): create (in sudo mode, not while the account forces
//! SSO or two-factor authentication), list, show, delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::api_error::{ApiError, ApiResult};
use super::caller::{self, Caller};
use super::fields::Fields;
use super::json_no_store;
use super::token_creation::{check_grant, created, issue_error, wanted};
use super::token_reads::{one_token, token_list, NOT_FOUND};
use super::token_revocation::revoke_within_reach;
use crate::db::token_store;
use crate::domain::access::Action;
use crate::domain::ids::TokenId;
use crate::domain::roles::Role;
use crate::domain::secret::TokenKind;
use crate::ops::token_lifecycle::{self, TokenRequest};
use crate::state::AppState;

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    fields: Fields,
) -> ApiResult<Response> {
    let user_id = caller.require_user()?.clone();
    caller.require(Action::CreateAutomationTokens)?;
    let account = caller::account(&state, caller.account_id()).await?;
    if account.forces_sso() || account.forces_2fa() {
        return Err(ApiError::forbidden(
            "Automation tokens cannot be created through the API while the account forces SSO or two-factor authentication.",
        ));
    }
    let now = state.clock.unix();
    if !caller.in_sudo(now) {
        return Err(ApiError::sudo_required());
    }
    let role = fields
        .text("role")
        .map(str::trim)
        .and_then(|r| Role::for_automation(r).ok())
        .ok_or_else(|| ApiError::unprocessable("role must be one of user, billing, engineer"))?;
    let tls_access = match fields.text("tls_access").map(str::trim) {
        None | Some("false" | "0" | "") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::unprocessable("tls_access must be true or false")
                .with_detail(other.to_owned()))
        }
    };
    let wanted = wanted(&fields, now)?;
    // Automation tokens belong to no person, so no person's service list limits them;
    // the creating token's own limits still do.
    check_grant(&state, &account.id, role, None, &wanted, Some(&caller)).await?;
    let request = TokenRequest {
        kind: TokenKind::Automation,
        account_id: &account.id,
        actor_id: &user_id,
        name: &wanted.name,
        scopes: &wanted.scopes,
        services: &wanted.services,
        role: Some(role),
        tls_access,
        expires_at: wanted.expires_at,
        ip: Some(&caller.ip),
    };
    let issued = token_lifecycle::issue(&state, &request)
        .await
        .map_err(issue_error)?;
    created(&state, &issued.id, issued.secret.expose()).await
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Action::ViewAccountTokens)?;
    let tokens = token_store::in_account(
        &state.db.pool,
        caller.account_id(),
        Some(TokenKind::Automation),
    )
    .await?;
    let list = token_list(&state, caller.account_id(), tokens).await?;
    Ok(json_no_store(StatusCode::OK, &list))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TokenId>,
) -> ApiResult<Response> {
    caller.require(Action::ViewAccountTokens)?;
    let token = token_store::find_in_account(&state.db.pool, caller.account_id(), &id)
        .await?
        .filter(|t| t.kind == TokenKind::Automation)
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(json_no_store(
        StatusCode::OK,
        &one_token(&state, &token).await?,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TokenId>,
) -> ApiResult<Response> {
    caller.require(Action::RevokeAccountTokens)?;
    revoke_within_reach(&state, &caller, &[id], Some(TokenKind::Automation)).await
}
