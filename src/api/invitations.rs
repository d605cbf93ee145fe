//! `/invitations`, as Fastly's resource (JSON:API): create, list, delete. Superusers
//! only, and only with a `global` token, even to list (`Action::ManageInvitations`).
//! The creation answer is the one place the link's secret appears, as `accept_url` in
//! the `meta` of the answer (Fastly emails it; tokenpanel sends no email).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::api_error::{ApiError, ApiResult};
use super::caller::Caller;
use super::fields::Fields;
use super::{json, no_content, timestamp};
use crate::db::invitation_store::{self, Invitation};
use crate::domain::access::Action;
use crate::domain::ids::{AccountId, InvitationId};
use crate::domain::roles::Role;
use crate::domain::validate;
use crate::ops::invitations::{self, InvitationError, NewInvitation};
use crate::ops::membership::Acting;
use crate::state::AppState;

const MEDIA_TYPE: &str = "application/vnd.api+json";

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = InvitationAttributes)]
pub(super) struct Attributes {
    email: String,
    role: &'static str,
    limit_services: bool,
    /// Fastly's: 1 while the invitation can be accepted, 0 once expired.
    status_code: i64,
    created_at: String,
    updated_at: String,
    expires_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CustomerRef {
    id: AccountId,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CustomerRelationship)]
pub(super) struct One<T> {
    data: T,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = InvitationRelationships)]
pub(super) struct Relationships {
    customer: One<CustomerRef>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Invitation)]
pub(super) struct InvitationJson {
    id: InvitationId,
    #[serde(rename = "type")]
    kind: &'static str,
    attributes: Attributes,
    relationships: Relationships,
}

fn invitation_json(invitation: Invitation, limited: bool, now: i64) -> InvitationJson {
    InvitationJson {
        kind: "invitation",
        attributes: Attributes {
            email: invitation.email,
            role: invitation.role.as_str(),
            limit_services: limited,
            status_code: i64::from(invitation.expires_at > now),
            created_at: timestamp(invitation.created_at),
            updated_at: timestamp(invitation.created_at),
            expires_at: timestamp(invitation.expires_at),
        },
        relationships: Relationships {
            customer: One {
                data: CustomerRef {
                    id: invitation.account_id,
                    kind: "customer",
                },
            },
        },
        id: invitation.id,
    }
}

fn json_api(status: StatusCode, value: &impl Serialize, no_store: bool) -> Response {
    let mut response = json(status, value);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    if no_store {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = InvitationCreatedMeta)]
pub(super) struct CreatedMeta {
    /// The one-time link to hand to the invitee; shown in this answer only.
    accept_url: String,
    expires_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = InvitationCreated)]
pub(super) struct Created {
    data: InvitationJson,
    meta: CreatedMeta,
}

/// The server as the client reached it, for the link.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("localhost");
    let scheme = if state.settings.secure_cookies {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

fn acting<'a>(caller: &'a Caller, user: &'a crate::domain::ids::UserId) -> Acting<'a> {
    Acting {
        account_id: caller.account_id(),
        actor: user,
        ip: &caller.ip,
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    fields: Fields,
) -> ApiResult<Response> {
    caller.require(Action::ManageInvitations)?;
    let user = caller.require_user()?.clone();
    let email = validate::email(fields.text("email").unwrap_or(""))
        .map_err(|e| ApiError::unprocessable(e).with_detail("email"))?;
    let role = match fields.text("role").map(str::trim) {
        None | Some("") => Role::User,
        Some(r) => r.parse::<Role>().map_err(|_| {
            ApiError::unprocessable("role must be one of user, billing, engineer, superuser")
        })?,
    };
    let new = NewInvitation {
        email: &email,
        role,
        services: &[],
    };
    let issued = match invitations::invite(&state, acting(&caller, &user), &new).await {
        Ok(issued) => issued,
        Err(InvitationError::AlreadyMember) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "This person is already a member of this account.",
            ))
        }
        Err(InvitationError::AlreadyInvited) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "This email has a pending invitation already.",
            ))
        }
        Err(InvitationError::Database(e)) => return Err(e.into()),
        Err(_) => return Err(ApiError::not_found("Record not found")),
    };
    let meta = CreatedMeta {
        accept_url: format!(
            "{}/invitation?key={}",
            base_url(&state, &headers),
            issued.secret
        ),
        expires_at: timestamp(issued.invitation.expires_at),
    };
    let now = state.clock.unix();
    Ok(json_api(
        StatusCode::CREATED,
        &Created {
            data: invitation_json(issued.invitation, false, now),
            meta,
        },
        true,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = InvitationListMeta)]
pub(super) struct ListMeta {
    current_page: i64,
    per_page: i64,
    record_count: i64,
    total_pages: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = InvitationList)]
pub(super) struct Listed {
    data: Vec<InvitationJson>,
    links: serde_json::Value,
    meta: ListMeta,
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Action::ManageInvitations)?;
    let now = state.clock.unix();
    let mut data = Vec::new();
    for invitation in invitation_store::list(&state.db.pool, caller.account_id()).await? {
        let limited = !invitation_store::services(&state.db.pool, &invitation.id)
            .await?
            .is_empty();
        data.push(invitation_json(invitation, limited, now));
    }
    let count = data.len() as i64;
    Ok(json_api(
        StatusCode::OK,
        &Listed {
            data,
            links: serde_json::json!({}),
            meta: ListMeta {
                current_page: 1,
                per_page: count.max(1),
                record_count: count,
                total_pages: 1,
            },
        },
        false,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InvitationId>,
) -> ApiResult<Response> {
    caller.require(Action::ManageInvitations)?;
    let user = caller.require_user()?.clone();
    match invitations::revoke(&state, acting(&caller, &user), &id).await {
        Ok(()) => Ok(no_content()),
        Err(InvitationError::Database(e)) => Err(e.into()),
        Err(_) => Err(ApiError::not_found("Record not found")),
    }
}
