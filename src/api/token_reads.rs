//! Reading tokens: one's own list, the token itself, one token, the account's tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::api_error::{ApiError, ApiResult};
use super::caller::Caller;
use super::json_no_store;
use super::token_json::TokenJson;
use crate::db::token_store::{self, Token};
use crate::domain::access::Action;
use crate::domain::ids::{AccountId, TokenId};
use crate::ops::Context;
use crate::state::AppState;

pub const NOT_FOUND: &str = "Token not found";

/// Tokens with their services, as a JSON list.
pub async fn token_list(
    ctx: &Context,
    account_id: &AccountId,
    tokens: Vec<Token>,
) -> ApiResult<Vec<TokenJson>> {
    let mut services = token_store::services_in_account(&ctx.db.pool, account_id).await?;
    Ok(tokens
        .iter()
        .map(|t| TokenJson::new(t, services.remove(&t.id).unwrap_or_default()))
        .collect())
}

/// One token with its services.
pub async fn one_token(ctx: &Context, token: &Token) -> ApiResult<TokenJson> {
    let services = token_store::services_of(&ctx.db.pool, &token.id).await?;
    Ok(TokenJson::new(token, services))
}

pub async fn list_own(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Action::ReadAccount)?;
    let user_id = caller.require_user()?;
    let owned = token_store::owned_by(&state.db.pool, caller.account_id(), user_id).await?;
    let services =
        token_store::services_of_owned(&state.db.pool, caller.account_id(), user_id).await?;
    let list: Vec<TokenJson> = owned
        .iter()
        .map(|t| {
            let ids = services
                .get(&t.id)
                .map(|l| l.iter().map(|(id, _)| id.clone()).collect())
                .unwrap_or_default();
            TokenJson::new(t, ids)
        })
        .collect();
    Ok(json_no_store(StatusCode::OK, &list))
}

/// Any valid token may look at itself, whatever its scope.
pub async fn show_self(caller: Caller) -> ApiResult<Response> {
    let services = caller
        .principal
        .token
        .as_ref()
        .map(|t| t.services.clone())
        .unwrap_or_default();
    Ok(json_no_store(
        StatusCode::OK,
        &TokenJson::new(&caller.token, services),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TokenId>,
) -> ApiResult<Response> {
    caller.require(Action::ReadAccount)?;
    // A token the caller may not reach is not found, as one of another account is.
    let token = token_store::find_in_account(&state.db.pool, caller.account_id(), &id)
        .await?
        .filter(|t| caller.principal.may(Action::ReadToken(t.facts())))
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(json_no_store(
        StatusCode::OK,
        &one_token(&state, &token).await?,
    ))
}

pub async fn list_account(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer_id): Path<String>,
) -> ApiResult<Response> {
    caller.require(Action::ViewAccountTokens)?;
    if *caller.account_id() != *customer_id {
        return Err(ApiError::forbidden(
            "Only superusers of this customer may list its tokens.",
        ));
    }
    let tokens = token_store::in_account(&state.db.pool, caller.account_id(), None).await?;
    let list = token_list(&state, caller.account_id(), tokens).await?;
    Ok(json_no_store(StatusCode::OK, &list))
}
