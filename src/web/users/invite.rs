//! Inviting users (superusers, in sudo mode): the form, the page that shows the one-time
//! link once, re-issuing a link and revoking an invitation. Nothing here looks at users
//! outside the account, so nothing shown depends on whether the email exists elsewhere.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::edit::{permission_choices, ServiceLimit};
use super::{acting, role_choices, RoleChoice};
use crate::db::service_store;
use crate::domain::access::Action;
use crate::domain::ids::{InvitationId, ServiceId};
use crate::domain::roles::{Role, ServicePermission};
use crate::domain::validate;
use crate::http::{ClientIp, Form};
use crate::ops::invitations::{self, InvitationError, Issued, NewInvitation, LINK_DAYS};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{date_time, render, render_with, FieldErrors, Layout, Section};
use crate::web::session::SignedIn;
use crate::web::sudo::Sudo;

const FORM_PATH: &str = "/account/users/new";

#[derive(Template)]
#[template(path = "users/invite.html")]
struct InvitePage {
    layout: Layout,
    email: String,
    roles: Vec<RoleChoice>,
    limited: bool,
    services: Vec<ServiceLimit>,
    link_days: i64,
    errors: FieldErrors,
}

/// The form, with what was typed: (email, role, limited, (service, permission) typed).
async fn invite_page(
    state: &AppState,
    signed_in: &SignedIn,
    typed: (&str, &str, bool, &[(ServiceId, String)]),
    errors: FieldErrors,
) -> Result<InvitePage, WebError> {
    let (email, role, limited, chosen) = typed;
    let services = service_store::list(&state.db.pool, signed_in.account_id())
        .await?
        .into_iter()
        .map(|s| {
            let current = chosen
                .iter()
                .find(|(id, _)| *id == s.id)
                .map(|(_, p)| p.as_str())
                .unwrap_or("");
            ServiceLimit {
                choices: permission_choices(current),
                id: s.id,
                name: s.name,
            }
        })
        .collect();
    Ok(InvitePage {
        layout: signed_in.layout("Invite user", Section::Users),
        email: email.to_owned(),
        roles: role_choices(role),
        limited,
        services,
        link_days: LINK_DAYS,
        errors,
    })
}

pub async fn new_form(State(state): State<AppState>, sudo: Sudo) -> Result<Response, WebError> {
    let elevated = sudo.require(Action::ManageInvitations, FORM_PATH)?;
    let page = invite_page(
        &state,
        &elevated,
        ("", Role::User.as_str(), false, &[]),
        FieldErrors::default(),
    )
    .await?;
    render(&page)
}

#[derive(Template)]
#[template(path = "users/invited.html")]
struct InvitedPage {
    layout: Layout,
    email: String,
    role: &'static str,
    /// The one-time link, shown on this response only.
    link: String,
    expires: String,
    /// "created" or "reissued".
    what: &'static str,
}

/// Where links point: this server as the browser reached it.
fn link_to(state: &AppState, headers: &HeaderMap, secret: &str) -> String {
    let host = headers
        .get(axum::http::header::HOST)
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
    // In the query, never the path: request logs record paths.
    format!("{scheme}://{host}/invitation?key={secret}")
}

fn shown_once(
    state: &AppState,
    signed_in: &SignedIn,
    headers: &HeaderMap,
    issued: &Issued,
    what: &'static str,
) -> Result<Response, WebError> {
    let title = if what == "reissued" {
        "Invitation link re-issued"
    } else {
        "User invited"
    };
    render(&InvitedPage {
        layout: signed_in.layout(title, Section::Users),
        email: issued.invitation.email.clone(),
        role: issued.invitation.role.label(),
        link: link_to(state, headers, &issued.secret),
        expires: date_time(issued.invitation.expires_at),
        what,
    })
}

pub async fn create(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, WebError> {
    let signed_in = sudo.require(Action::ManageInvitations, FORM_PATH)?;
    let mut errors = FieldErrors::default();
    let email = validate::email(form.text("email"))
        .map_err(|e| errors.add("email", e))
        .ok();
    let role = form
        .text("role")
        .parse::<Role>()
        .map_err(|_| errors.add("role", "Choose a role."))
        .ok();
    let limited = form.text("limit") == "some";
    let account_services = service_store::list(&state.db.pool, signed_in.account_id()).await?;
    let mut typed: Vec<(ServiceId, String)> = Vec::new();
    let mut chosen: Vec<(ServiceId, ServicePermission)> = Vec::new();
    for service in &account_services {
        let value = form.text(&format!("perm-{}", service.id));
        if value.is_empty() {
            continue;
        }
        typed.push((service.id.clone(), value.to_owned()));
        match value.parse::<ServicePermission>() {
            Ok(p) => chosen.push((service.id.clone(), p)),
            Err(_) => errors.add("services", "Choose a permission from the list."),
        }
    }
    if role == Some(Role::Engineer)
        && limited
        && chosen.is_empty()
        && errors.get("services").is_none()
    {
        errors.add(
            "services",
            "Choose at least one service and its permission, or All services.",
        );
    }
    if !limited || role != Some(Role::Engineer) {
        chosen.clear();
    }
    let typed_form = (
        form.text("email"),
        form.text("role"),
        limited,
        typed.as_slice(),
    );
    let (Some(email), Some(role), true) = (email, role, errors.is_empty()) else {
        let page = invite_page(&state, &signed_in, typed_form, errors).await?;
        return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let new = NewInvitation {
        email: &email,
        role,
        services: &chosen,
    };
    let refusal = match invitations::invite(&state, acting(&signed_in, &ip), &new).await {
        Ok(issued) => return shown_once(&state, &signed_in, &headers, &issued, "created"),
        Err(InvitationError::AlreadyMember) => "This person is already a member of this account.",
        Err(InvitationError::AlreadyInvited) => {
            "This email has a pending invitation already. Re-issue its link from the Users page."
        }
        Err(InvitationError::Database(e)) => return Err(e.into()),
        Err(_) => return Err(WebError::NotFound),
    };
    let page = invite_page(
        &state,
        &signed_in,
        typed_form,
        FieldErrors::one("email", refusal),
    )
    .await?;
    render_with(StatusCode::CONFLICT, &page)
}

pub async fn reissue(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<InvitationId>,
    form: Form,
) -> Result<Response, WebError> {
    let signed_in = sudo.require(Action::ManageInvitations, "/account/users")?;
    let issued = form.text("issued").parse::<i64>().unwrap_or(0);
    match invitations::reissue(&state, acting(&signed_in, &ip), &id, issued).await {
        Ok(issued) => shown_once(&state, &signed_in, &headers, &issued, "reissued"),
        // A reload re-posting a spent form, or an invitation gone meanwhile: no link.
        Err(InvitationError::Database(e)) => Err(e.into()),
        Err(_) => Ok(Redirect::to("/account/users").into_response()),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Path(id): Path<InvitationId>,
    _form: Form,
) -> Result<Response, WebError> {
    signed_in.require(Action::ManageInvitations)?;
    match invitations::revoke(&state, acting(&signed_in, &ip), &id).await {
        Ok(()) => Ok(Redirect::to("/account/users?done=revoked").into_response()),
        Err(InvitationError::Database(e)) => Err(e.into()),
        Err(_) => Err(WebError::NotFound),
    }
}
