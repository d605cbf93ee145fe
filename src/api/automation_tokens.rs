//! Automation tokens (superusers): create (in sudo mode, not while the account forces
//! SSO or two-factor authentication), list, show, delete.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::api_error::{ApiError, ApiResult};
use super::caller::{self, Caller};
use super::fields::Fields;
use super::json_no_store;
use super::paging::Paging;
use super::token_creation::{check_grant, created, issue_error, wanted};
use super::token_reads::{one_token, token_list, NOT_FOUND};
use super::token_revocation::revoke_within_reach;
use crate::db::token_store;
use crate::domain::access::Action;
use crate::domain::ids::TokenId;
use crate::domain::roles::Role;
use crate::domain::secret::TokenKind;
use crate::http::PublicBase;
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
        description: wanted.description.as_deref(),
        allowed_cidrs: wanted.allowed_cidrs.as_ref(),
        rolled: None,
        ip: Some(&caller.ip),
    };
    let issued = token_lifecycle::issue(&state, &request)
        .await
        .map_err(issue_error)?;
    created(&state, &issued.id, issued.secret.expose()).await
}

/// Automation tokens come a page of at most this many at a time when paged.
const PER_PAGE: usize = 100;

/// Whether the request names `application/json` in `Accept`.
fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            m.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        })
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AutomationPageMeta)]
pub(super) struct PageMeta {
    current_page: usize,
    per_page: usize,
    record_count: usize,
    total_pages: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Paged<T> {
    data: Vec<T>,
    meta: PageMeta,
}

/// The account's automation tokens. Two shapes, because Fastly's clients disagree:
/// the Python and JavaScript clients decode a bare JSON array (and send
/// `Accept: application/json`), while the Go client's paginator always asks
/// `?page=1&per_page=100` without `Accept` and decodes `{"data": [...], "meta": {...}}`
/// (a bare array would silently read as no tokens). So a request that pages without
/// asking for `application/json` gets the paged document with `Link` headers; every
/// other request the array (one page of it when it pages).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    base: PublicBase,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    caller.require(Action::ViewAccountTokens)?;
    let paging = Paging::from_query(raw.as_deref(), PER_PAGE, PER_PAGE)?;
    let tokens = token_store::in_account(
        &state.db.pool,
        caller.account_id(),
        Some(TokenKind::Automation),
        state.clock.unix(),
    )
    .await?;
    let mut list = token_list(&state, caller.account_id(), &tokens).await?;
    let Some(paging) = paging else {
        return Ok(json_no_store(StatusCode::OK, &list));
    };
    let record_count = list.len();
    let data: Vec<_> = list
        .drain(..)
        .skip(paging.offset())
        .take(paging.per_page)
        .collect();
    let mut response = if accepts_json(&headers) {
        json_no_store(StatusCode::OK, &data)
    } else {
        json_no_store(
            StatusCode::OK,
            &Paged {
                data,
                meta: PageMeta {
                    current_page: paging.page,
                    per_page: paging.per_page,
                    record_count,
                    total_pages: paging.total_pages(record_count),
                },
            },
        )
    };
    if let Some(links) = paging.links(&base, "/automation-tokens", record_count) {
        response.headers_mut().insert(header::LINK, links);
    }
    Ok(response)
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TokenId>,
) -> ApiResult<Response> {
    caller.require(Action::ViewAccountTokens)?;
    let token =
        token_store::find_in_account(&state.db.pool, caller.account_id(), &id, state.clock.unix())
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_is_asked_for_by_name() {
        let mut headers = HeaderMap::new();
        assert!(!accepts_json(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!accepts_json(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, Application/JSON;q=0.9"),
        );
        assert!(accepts_json(&headers));
    }
}
