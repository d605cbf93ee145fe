//! A member's page: role and service limits.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::{
    acting, elevated_for_member, member_row, membership_failure, role_choices, MemberRow,
    RoleChoice,
};
use crate::db::member_store;
use crate::db::service_store;
use crate::domain::access::Action;
use crate::domain::ids::{ServiceId, UserId};
use crate::domain::roles::{Role, ServicePermission};
use crate::http::{ClientIp, Form};
use crate::ops::membership::{self, MembershipError};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{render, render_with, FieldErrors, Layout, Section};
use crate::web::session::SignedIn;
use crate::web::sudo::Sudo;

pub struct PermissionChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub struct ServiceLimit {
    pub id: ServiceId,
    pub name: String,
    pub choices: Vec<PermissionChoice>,
}

#[derive(Template)]
#[template(path = "users/edit.html")]
struct EditPage {
    layout: Layout,
    member: MemberRow,
    roles: Vec<RoleChoice>,
    limited: bool,
    services: Vec<ServiceLimit>,
    /// About the "role" or the "services" form.
    errors: FieldErrors,
    notice: Option<String>,
    /// Sudo mode is on: changes go through without asking for the password first.
    in_sudo: bool,
}

/// A service's permission choices, `chosen` (a permission's name, or "") selected.
pub fn permission_choices(chosen: &str) -> Vec<PermissionChoice> {
    let mut choices = vec![PermissionChoice {
        value: "",
        label: "No access",
        selected: chosen.is_empty(),
    }];
    choices.extend(
        ServicePermission::ALL
            .into_iter()
            .map(|p| PermissionChoice {
                value: p.as_str(),
                label: p.label(),
                selected: chosen == p.as_str(),
            }),
    );
    choices
}

/// The edit page of a member, optionally with the typed service limits kept.
async fn edit_page(
    state: &AppState,
    signed_in: &SignedIn,
    user_id: &UserId,
    typed_limits: Option<(bool, Vec<(ServiceId, String)>)>,
    error: Option<(&'static str, String)>,
    notice: Option<String>,
) -> Result<EditPage, WebError> {
    let account_id = signed_in.account_id();
    let member = member_store::summary(&state.db.pool, account_id, user_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let names = service_store::list(&state.db.pool, account_id).await?;
    let stored = member_store::service_permissions(&state.db.pool, account_id, user_id).await?;
    let (limited, current): (bool, Vec<(ServiceId, String)>) = match typed_limits {
        Some(typed) => typed,
        None => (
            !stored.is_empty(),
            stored
                .iter()
                .map(|(id, p)| (id.clone(), p.as_str().to_owned()))
                .collect(),
        ),
    };
    let row = member_row(&member, signed_in.user_id(), &names, stored);
    let services = names
        .into_iter()
        .map(|s| {
            let chosen = current
                .iter()
                .find(|(id, _)| *id == s.id)
                .map(|(_, p)| p.as_str())
                .unwrap_or("");
            ServiceLimit {
                id: s.id,
                name: s.name,
                choices: permission_choices(chosen),
            }
        })
        .collect();
    Ok(EditPage {
        layout: signed_in.layout(format!("User {}", row.name), Section::Users),
        roles: role_choices(member.role.as_str()),
        member: row,
        limited,
        services,
        errors: error.into_iter().collect(),
        notice,
        in_sudo: signed_in.sudo_left.is_some(),
    })
}

pub async fn edit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<UserId>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, WebError> {
    signed_in.require(Action::ViewUsers)?;
    let notice = Form::from_query(raw.as_deref())
        .ok()
        .and_then(|f| match f.text("done") {
            "role" => Some("The role was changed.".to_owned()),
            "services" => Some("The service access was saved.".to_owned()),
            _ => None,
        });
    let page = edit_page(&state, &signed_in, &id, None, None, notice).await?;
    render(&page)
}

pub async fn change_role(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    Path(id): Path<UserId>,
    form: Form,
) -> Result<Response, WebError> {
    let signed_in = elevated_for_member(&state, sudo, &id, &format!("/account/users/{id}")).await?;
    let Ok(to) = form.text("role").parse::<Role>() else {
        let page = edit_page(
            &state,
            &signed_in,
            &id,
            None,
            Some(("role", "Choose a role.".into())),
            None,
        )
        .await?;
        return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    match membership::change_role(&state, acting(&signed_in, &ip), &id, to).await {
        Ok(()) => {}
        Err(MembershipError::Refused(e)) => {
            let page = edit_page(
                &state,
                &signed_in,
                &id,
                None,
                Some(("role", e.message())),
                None,
            )
            .await?;
            return render_with(StatusCode::CONFLICT, &page);
        }
        Err(e) => return Err(membership_failure(e)),
    }
    if id == *signed_in.user_id() && to != Role::Superuser {
        // They may no longer see the Users page.
        return Ok(Redirect::to("/account/tokens").into_response());
    }
    Ok(Redirect::to(&format!("/account/users/{id}?done=role")).into_response())
}

pub async fn set_services(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    Path(id): Path<UserId>,
    form: Form,
) -> Result<Response, WebError> {
    let signed_in = elevated_for_member(&state, sudo, &id, &format!("/account/users/{id}")).await?;
    let account_id = signed_in.account_id();
    let member = member_store::summary(&state.db.pool, account_id, &id)
        .await?
        .ok_or(WebError::NotFound)?;
    let limited = form.text("limit") == "some";
    let services = service_store::list(&state.db.pool, account_id).await?;
    let mut typed: Vec<(ServiceId, String)> = Vec::new();
    let mut chosen: Vec<(ServiceId, ServicePermission)> = Vec::new();
    let mut error = None;
    for service in &services {
        let value = form.text(&format!("perm-{}", service.id));
        if value.is_empty() {
            continue;
        }
        typed.push((service.id.clone(), value.to_owned()));
        match value.parse::<ServicePermission>() {
            Ok(p) => chosen.push((service.id.clone(), p)),
            Err(_) => error = Some("Choose a permission from the list.".to_owned()),
        }
    }
    if member.role != Role::Engineer {
        error = Some("Only engineers can be limited to some services.".into());
    } else if limited && chosen.is_empty() && error.is_none() {
        error = Some("Choose at least one service and its permission, or All services.".into());
    }
    if let Some(message) = error {
        let page = edit_page(
            &state,
            &signed_in,
            &id,
            Some((limited, typed)),
            Some(("services", message)),
            None,
        )
        .await?;
        return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    if !limited {
        chosen.clear();
    }
    membership::set_service_access(&state, acting(&signed_in, &ip), &id, &chosen)
        .await
        .map_err(membership_failure)?;
    Ok(Redirect::to(&format!("/account/users/{id}?done=services")).into_response())
}
