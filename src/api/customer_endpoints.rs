//! `GET /customer/{id}`: the token's own account, as Fastly shows a customer. Every
//! member may read it (it is what the panel's header shows them); unset fields are
//! left out.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::api_error::ApiResult;
use super::caller::{self, Caller};
use super::user_endpoints::own_customer;
use super::{json, timestamp};
use crate::domain::access::Action;
use crate::domain::ids::AccountId;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CustomerJson {
    id: AccountId,
    name: String,
    force_2fa: bool,
    force_sso: bool,
    created_at: String,
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer_id): Path<String>,
) -> ApiResult<Response> {
    caller.require(Action::ReadAccount)?;
    own_customer(&caller, &customer_id)?;
    let account = caller::account(&state, caller.account_id()).await?;
    Ok(json(
        StatusCode::OK,
        &CustomerJson {
            id: account.id.clone(),
            name: account.name.clone(),
            force_2fa: account.forces_2fa(),
            force_sso: account.forces_sso(),
            created_at: timestamp(account.created_at),
        },
    ))
}
