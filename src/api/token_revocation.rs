//! Revoking tokens: one, the token itself, or many at once (all or nothing).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::api_error::{ApiError, ApiResult};
use super::caller::Caller;
use super::fields;
use super::no_content;
use super::token_reads::NOT_FOUND;
use crate::db::token_store::DeleteScope;
use crate::domain::access::Action;
use crate::domain::ids::TokenId;
use crate::domain::secret::TokenKind;
use crate::ops::token_lifecycle::{self, Revocation, RevokeError};
use crate::ops::Context;
use crate::state::AppState;

/// Tokens one bulk deletion may name.
const MAX_BULK: usize = 1000;

/// Revokes `ids` within the caller's reach: any token of the account (of `kind`, when
/// given) for those who may revoke account tokens, else the caller's own user tokens.
pub async fn revoke_within_reach(
    ctx: &Context,
    caller: &Caller,
    ids: &[TokenId],
    kind: Option<TokenKind>,
) -> ApiResult<Response> {
    let superuser = caller.principal.may(Action::RevokeAccountTokens);
    let scope = DeleteScope {
        account_id: caller.account_id(),
        // An automation token owns no user tokens: it can delete nothing but itself.
        owner: if superuser { None } else { caller.user_id() },
        kind,
    };
    let reason = if superuser { "superuser" } else { "owner" };
    if scope.owner.is_none() && !superuser {
        // No person, no user tokens: none of these ids is within reach.
        let first = ids.first().map(TokenId::to_string).unwrap_or_default();
        return Err(ApiError::not_found(NOT_FOUND).with_detail(first));
    }
    revoke(ctx, caller, ids, scope, reason).await
}

async fn revoke(
    ctx: &Context,
    caller: &Caller,
    ids: &[TokenId],
    scope: DeleteScope<'_>,
    reason: &str,
) -> ApiResult<Response> {
    let revocation = Revocation {
        scope,
        actor_id: caller.user_id(),
        via_token: Some(&caller.token_id),
        reason,
        ip: Some(&caller.ip),
    };
    match token_lifecycle::revoke(ctx, ids, &revocation).await {
        Ok(()) => Ok(no_content()),
        Err(RevokeError::NotFound(id)) => {
            Err(ApiError::not_found(NOT_FOUND).with_detail(id.to_string()))
        }
        Err(RevokeError::Database(e)) => Err(e.into()),
    }
}

/// A token may always revoke itself, whatever its scope: nothing is gained by it, and a
/// leaked read-only or purge token must be easy to kill.
pub async fn delete_self(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let scope = DeleteScope {
        account_id: caller.account_id(),
        owner: None,
        kind: None,
    };
    let ids = [caller.token_id.clone()];
    revoke(&state, &caller, &ids, scope, "self").await
}

pub async fn delete_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TokenId>,
) -> ApiResult<Response> {
    caller.require(Action::ManageOwnTokens)?;
    revoke_within_reach(&state, &caller, &[id], None).await
}

#[derive(Deserialize)]
struct BulkBody {
    data: Vec<BulkItem>,
}

#[derive(Deserialize)]
struct BulkItem {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

/// `DELETE /tokens` with `{"data":[{"type":"token","id":"…"}]}`: all or nothing.
pub async fn delete_bulk(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> ApiResult<Response> {
    caller.require(Action::ManageOwnTokens)?;
    if !fields::media_type(&headers).is_some_and(|m| fields::is_json(&m)) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the tokens as application/vnd.api+json; ext=bulk.",
        ));
    }
    let parsed: BulkBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request("Invalid JSON:API body").with_detail(e.to_string()))?;
    if parsed.data.is_empty() {
        return Err(ApiError::bad_request("Name at least one token in data."));
    }
    if parsed.data.len() > MAX_BULK {
        return Err(ApiError::bad_request(format!(
            "At most {MAX_BULK} tokens may be deleted at once."
        )));
    }
    if let Some(item) = parsed.data.iter().find(|i| i.kind != "token") {
        return Err(
            ApiError::bad_request("Every item must have type \"token\".")
                .with_detail(item.kind.clone()),
        );
    }
    let mut ids: Vec<TokenId> = parsed
        .data
        .into_iter()
        .map(|i| TokenId::from_raw(i.id))
        .collect();
    ids.sort();
    ids.dedup();
    revoke_within_reach(&state, &caller, &ids, None).await
}
