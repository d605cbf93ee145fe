//! `GET /current_user`: the owner of the token, as Fastly shows a user.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::api_error::{ApiError, ApiResult};
use super::caller::Caller;
use super::{json, timestamp};
use crate::db::user_store;
use crate::domain::access::Action;
use crate::domain::ids::{AccountId, UserId};
use crate::state::AppState;

#[derive(Serialize)]
struct UserJson {
    id: UserId,
    login: String,
    name: String,
    customer_id: AccountId,
    role: &'static str,
    two_factor_auth_enabled: bool,
    locked: bool,
    created_at: String,
}

pub async fn show(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Action::ReadAccount)?;
    let user_id = caller.require_user()?;
    let user = user_store::find(&state.db.pool, user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    Ok(json(
        StatusCode::OK,
        &UserJson {
            id: user.id.clone(),
            login: user.email.clone(),
            name: user.name.clone(),
            customer_id: caller.account_id().clone(),
            role: caller.role().as_str(),
            two_factor_auth_enabled: user.has_two_factor(),
            locked: user.is_locked(),
            created_at: timestamp(user.created_at),
        },
    ))
}
