//! `POST /sudo`: re-authenticates the owner of the `Fastly-Key` (password, and
//! `Fastly-OTP` with two-factor authentication; `username` optional) and puts that
//! token in sudo mode for a few minutes (or until an earlier `expiry_time`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::api_error::{ApiError, ApiResult};
use super::caller::{self, Caller};
use super::fields::Fields;
use super::token_creation::same_login;
use super::{json, parse_time, timestamp};
use crate::db::user_store;
use crate::domain::access::Action;
use crate::ops::token_lifecycle;
use crate::state::AppState;

const WRONG_CREDENTIALS: &str = "The supplied username/password combination is not correct.";

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct SudoJson {
    expiry_time: String,
}

pub async fn sudo(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    fields: Fields,
) -> ApiResult<Response> {
    let user_id = caller.require_user()?;
    caller.require(Action::ManageOwnTokens)?;
    // Fastly's Go client and CLI send the form of the token they are about to create
    // (name, scope, services[], expires_at, role…) with the password and no username:
    // the owner is the token's. A username, when sent, must be theirs.
    let Some(password) = fields.text("password").filter(|p| !p.is_empty()) else {
        return Err(ApiError::bad_request(
            "Send the password of the token's owner.",
        ));
    };
    let user = user_store::find(&state.db.pool, user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if fields
        .text("username")
        .is_some_and(|u| !u.trim().is_empty() && !same_login(u, &user))
    {
        return Err(ApiError::forbidden(WRONG_CREDENTIALS));
    }
    caller::two_factor_required(&caller::account(&state, caller.account_id()).await?, &user)?;
    caller::reauthenticate(
        &state,
        &caller,
        &user,
        password,
        caller::otp(&headers),
        || ApiError::forbidden(WRONG_CREDENTIALS),
    )
    .await?;
    let now = state.clock.unix();
    let longest = now + state.settings.sudo_seconds;
    let until = match fields.text("expiry_time").filter(|t| !t.trim().is_empty()) {
        None => longest,
        Some(raw) => {
            let at = parse_time(raw).filter(|at| *at > now).ok_or_else(|| {
                ApiError::unprocessable("expiry_time must be a future RFC 3339 time")
            })?;
            at.min(longest)
        }
    };
    token_lifecycle::elevate(
        &state,
        caller.account_id(),
        user_id,
        &caller.token_id,
        until,
        Some(&caller.ip),
    )
    .await?;
    let expiry_time = timestamp(until).replace('Z', "+00:00");
    Ok(json(StatusCode::OK, &SudoJson { expiry_time }))
}
