//! Rolling tokens: `POST /tokens/{id}/rotate` (the owner in sudo mode, or a superuser
//! for automation tokens) and `POST /tokens/self/rotate` (a token rolling itself). The
//! answer is the new token, with its secret this once, as for a creation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::api_error::{ApiError, ApiResult};
use super::caller::{self, Caller};
use super::fields::Fields;
use super::token_creation::{created, issue_error};
use super::token_reads::NOT_FOUND;
use crate::db::{token_store, user_store};
use crate::domain::access::{self, Action};
use crate::domain::ids::TokenId;
use crate::domain::secret::TokenKind;
use crate::ops::token_lifecycle::{self, RollExpiry, RollRequest, MAX_OVERLAP_SECONDS};
use crate::state::AppState;

/// `overlap_seconds`: 0 (the default: the old secret stops at once) to 604,800 (7 days).
fn overlap_seconds(fields: &Fields) -> ApiResult<i64> {
    let Some(raw) = fields.text("overlap_seconds").map(str::trim) else {
        return Ok(0);
    };
    raw.parse::<i64>()
        .ok()
        .filter(|s| (0..=MAX_OVERLAP_SECONDS).contains(s))
        .ok_or_else(|| {
            ApiError::unprocessable(format!(
                "overlap_seconds must be a whole number from 0 to {MAX_OVERLAP_SECONDS} (7 days)"
            ))
            .with_detail(raw.to_owned())
        })
}

fn roll_error(e: token_lifecycle::IssueError) -> ApiError {
    match e {
        token_lifecycle::IssueError::NotRollable => ApiError::new(
            StatusCode::CONFLICT,
            token_lifecycle::IssueError::NOT_ROLLABLE,
        ),
        other => issue_error(other),
    }
}

pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TokenId>,
    fields: Fields,
) -> ApiResult<Response> {
    let overlap = overlap_seconds(&fields)?;
    // A token the caller may not read is not found; one they may read but not roll
    // (another user's, for a superuser) is refused.
    let token =
        token_store::find_in_account(&state.db.pool, caller.account_id(), &id, state.clock.unix())
            .await?
            .filter(|t| caller.principal.may(Action::ReadToken(t.facts())))
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    caller.require(Action::RollToken(token.facts()))?;
    let user_id = caller.require_user()?;
    let user = user_store::find(&state.db.pool, user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let account = caller::account(&state, caller.account_id()).await?;
    caller::two_factor_required(&account, &user)?;
    if token.kind == TokenKind::Automation && (account.forces_sso() || account.forces_2fa()) {
        return Err(ApiError::forbidden(
            "Automation tokens cannot be rolled through the API while the account forces SSO or two-factor authentication.",
        ));
    }
    if !caller.in_sudo(state.clock.unix()) {
        return Err(ApiError::sudo_required());
    }
    // A token never makes one beyond itself, as for creations.
    if let Some(grant) = caller.principal.token.as_ref() {
        let services = token_store::services_of(&state.db.pool, &token.id).await?;
        if !access::scopes_within(&grant.scopes, &token.scope)
            || !access::services_within(&grant.services, &services)
        {
            return Err(ApiError::forbidden(
                "A token cannot roll a token with scopes or services beyond its own.",
            ));
        }
    }
    let issued = token_lifecycle::roll(
        &state,
        &RollRequest {
            account_id: caller.account_id(),
            token_id: &token.id,
            by: Some(user_id),
            via_token: Some(&caller.token_id),
            overlap_seconds: overlap,
            expiry: RollExpiry::SameLifetime,
            ip: Some(&caller.ip),
        },
    )
    .await
    .map_err(roll_error)?;
    created(&state, &issued.id, issued.secret.expose()).await
}

/// A token rolls itself: same settings, the same expiry date (a token cannot extend
/// its own life), no sudo mode (it gains nothing it did not have).
pub async fn rotate_self(
    State(state): State<AppState>,
    caller: Caller,
    fields: Fields,
) -> ApiResult<Response> {
    caller.require(Action::RollSelf)?;
    let overlap = overlap_seconds(&fields)?;
    let issued = token_lifecycle::roll(
        &state,
        &RollRequest {
            account_id: caller.account_id(),
            token_id: &caller.token_id,
            by: caller.user_id(),
            via_token: Some(&caller.token_id),
            overlap_seconds: overlap,
            expiry: RollExpiry::SameDate,
            ip: Some(&caller.ip),
        },
    )
    .await
    .map_err(roll_error)?;
    created(&state, &issued.id, issued.secret.expose()).await
}
