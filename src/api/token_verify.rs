//! `GET /verify` (the CLI's `whoami`): the customer, the user, the services the token
//! reaches (an object of id → name) and the token itself. Every leaf is a string, as
//! the CLI decodes them; unset fields are left out.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::api_error::{ApiError, ApiResult};
use super::caller::{self, Caller};
use super::{json_no_store, timestamp};
use crate::db::{service_store, user_store};
use crate::domain::access::Action;
use crate::domain::ids::{AccountId, ServiceId, TokenId, UserId};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = VerifiedCustomer)]
pub(super) struct CustomerPart {
    id: AccountId,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = VerifiedUser)]
pub(super) struct UserPart {
    id: UserId,
    name: String,
    login: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = VerifiedToken)]
pub(super) struct TokenPart {
    id: TokenId,
    name: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    scope: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Verified {
    customer: CustomerPart,
    /// None for an automation token, which belongs to no one.
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<UserPart>,
    services: BTreeMap<ServiceId, String>,
    token: TokenPart,
}

pub async fn verify(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Action::ReadAccount)?;
    let account = caller::account(&state, caller.account_id()).await?;
    let user = match caller.user_id() {
        Some(id) => {
            let user = user_store::find(&state.db.pool, id)
                .await?
                .ok_or_else(ApiError::unauthorized)?;
            Some(UserPart {
                id: user.id,
                name: user.name,
                login: user.email,
            })
        }
        None => None,
    };
    let services = service_store::list(&state.db.pool, &account.id)
        .await?
        .into_iter()
        .filter(|s| caller.principal.may(Action::ReadService(&s.id)))
        .map(|s| (s.id, s.name))
        .collect();
    let token = caller.token();
    Ok(json_no_store(
        StatusCode::OK,
        &Verified {
            customer: CustomerPart {
                id: account.id,
                name: account.name,
            },
            user,
            services,
            token: TokenPart {
                id: token.id.clone(),
                name: token.name.clone(),
                created_at: timestamp(token.created_at),
                expires_at: token.expires_at.map(timestamp),
                scope: token.scope.to_string(),
            },
        },
    ))
}
