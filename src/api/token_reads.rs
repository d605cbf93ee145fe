//! Reading tokens: one's own list, the token itself, one token, the account's tokens.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::Response;

use super::api_error::{ApiError, ApiResult};
use super::caller::Caller;
use super::json_no_store;
use super::paging::Paging;
use super::token_json::TokenJson;
use crate::db::token_store::{self, Token};
use crate::domain::access::Action;
use crate::domain::ids::{AccountId, TokenId};
use crate::http::PublicBase;
use crate::ops::Context;
use crate::state::AppState;

pub const NOT_FOUND: &str = "Token not found";

/// Tokens with their services, as a JSON list.
pub async fn token_list<'a>(
    ctx: &Context,
    account_id: &AccountId,
    tokens: &'a [Token],
) -> ApiResult<Vec<TokenJson<'a>>> {
    let mut services = token_store::services_in_account(&ctx.db.pool, account_id).await?;
    Ok(tokens
        .iter()
        .map(|t| TokenJson::new(t, services.remove(&t.id).unwrap_or_default()))
        .collect())
}

/// One token with its services.
pub async fn one_token<'a>(ctx: &Context, token: &'a Token) -> ApiResult<TokenJson<'a>> {
    let services = token_store::services_of(&ctx.db.pool, &token.id).await?;
    Ok(TokenJson::new(token, services))
}

pub async fn list_own(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Action::ReadAccount)?;
    let user_id = caller.require_user()?;
    let now = state.clock.unix();
    let owned = token_store::owned_by(&state.db.pool, caller.account_id(), user_id, now).await?;
    let services =
        token_store::services_of_owned(&state.db.pool, caller.account_id(), user_id).await?;
    let list: Vec<TokenJson> = owned
        .iter()
        .map(|t| {
            let ids: Vec<_> = services
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
    Ok(json_no_store(StatusCode::OK, &caller.token_json()))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TokenId>,
) -> ApiResult<Response> {
    caller.require(Action::ReadAccount)?;
    // A token the caller may not reach is not found, as one of another account is.
    let token =
        token_store::find_in_account(&state.db.pool, caller.account_id(), &id, state.clock.unix())
            .await?
            .filter(|t| caller.principal.may(Action::ReadToken(t.facts())))
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(json_no_store(
        StatusCode::OK,
        &one_token(&state, &token).await?,
    ))
}

/// Customer tokens come a page at a time: this many unless `per_page` says otherwise,
/// and never more than `MAX_PER_PAGE`.
pub const DEFAULT_PER_PAGE: usize = 100;
pub const MAX_PER_PAGE: usize = 1000;

/// `GET /customer/{id}/tokens`: one page of every token of the account, newest first,
/// with `Link` headers to the other pages.
pub async fn list_account(
    State(state): State<AppState>,
    caller: Caller,
    base: PublicBase,
    Path(customer_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    caller.require(Action::ViewAccountTokens)?;
    if *caller.account_id() != *customer_id {
        return Err(ApiError::forbidden(
            "Only superusers of this customer may list its tokens.",
        ));
    }
    let paging =
        Paging::from_query(raw.as_deref(), DEFAULT_PER_PAGE, MAX_PER_PAGE)?.unwrap_or(Paging {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        });
    let mut conn = state.db.pool.acquire().await?;
    let (tokens, total) = token_store::page_in_account(
        &mut conn,
        caller.account_id(),
        i64::try_from(paging.per_page).unwrap_or(i64::MAX),
        i64::try_from(paging.offset()).unwrap_or(i64::MAX),
        state.clock.unix(),
    )
    .await?;
    let ids: Vec<TokenId> = tokens.iter().map(|t| t.id.clone()).collect();
    let mut services = token_store::services_of_tokens(&mut *conn, &ids).await?;
    let list: Vec<TokenJson> = tokens
        .iter()
        .map(|t| TokenJson::new(t, services.remove(&t.id).unwrap_or_default()))
        .collect();
    let mut response = json_no_store(StatusCode::OK, &list);
    let path = format!("/customer/{}/tokens", caller.account_id());
    let records = usize::try_from(total).unwrap_or(usize::MAX);
    if let Some(links) = paging.links(&base, &path, records) {
        response.headers_mut().insert(header::LINK, links);
    }
    Ok(response)
}
