//! Users (superusers): the members of the current account. Add a new user (with an
//! initial password or a one-time set-password link), add an existing user as a member,
//! change a member's role and service limits, remove a member, delete a user. Also the
//! page behind a set-password link.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use tower_sessions::Session;

use super::error::WebError;
use super::page::{date, render, render_with, FieldErrors, Layout, Section};
use super::session::SignedIn;
use crate::db::member_store::{self, MemberSummary};
use crate::db::service_store::{self, Service};
use crate::db::user_store;
use crate::domain::access::{Action, ServiceAccess};
use crate::domain::ids::{ServiceId, UserId};
use crate::domain::member_rules::MemberError;
use crate::domain::password::Password;
use crate::domain::roles::{Role, ServicePermission};
use crate::domain::validate;
use crate::http::{ClientIp, Form};
use crate::ops::membership::{self, Acting, MembershipError, NewUser, PASSWORD_LINK_DAYS};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/users", get(list).post(create))
        .route("/account/users/new", get(new_form))
        .route(
            "/account/users/existing",
            get(existing_form).post(add_existing),
        )
        .route("/account/users/{id}", get(edit))
        .route("/account/users/{id}/role", axum::routing::post(change_role))
        .route(
            "/account/users/{id}/services",
            axum::routing::post(set_services),
        )
        .route(
            "/account/users/{id}/remove",
            get(confirm_remove).post(remove),
        )
        .route(
            "/account/users/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route("/set-password", get(set_password_page).post(set_password))
}

/// Who acts in a member change: the signed-in superuser, from this address.
fn acting<'a>(signed_in: &'a SignedIn, ip: &'a str) -> Acting<'a> {
    Acting {
        account_id: signed_in.account_id(),
        actor: signed_in.user_id(),
        ip,
    }
}

/// A member change refused, or failed, with no form to show it on.
fn membership_failure(e: MembershipError) -> WebError {
    match e {
        MembershipError::Database(e) => e.into(),
        MembershipError::NotFound
        | MembershipError::EmailTaken
        | MembershipError::AlreadyMember
        | MembershipError::Refused(_) => WebError::NotFound,
    }
}

/// A member as the pages show them.
pub struct MemberRow {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub is_engineer: bool,
    pub services: String,
    pub user_tokens: i64,
    pub joined: String,
    pub has_password: bool,
    pub is_you: bool,
}

/// A member's row. `names` are the account's services and `limits` the member's
/// service permission rows (both fetched once for a whole list).
fn member_row(
    member: &MemberSummary,
    you: &UserId,
    names: &[Service],
    limits: Vec<(ServiceId, ServicePermission)>,
) -> MemberRow {
    let services = match ServiceAccess::of(member.role, limits) {
        ServiceAccess::All => "All services".to_owned(),
        ServiceAccess::Limited(list) => list
            .iter()
            .filter_map(|(id, p)| {
                let service = names.iter().find(|s| &s.id == id)?;
                Some(format!("{} ({})", service.name, p.label()))
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    MemberRow {
        id: member.user_id.clone(),
        name: member.name.clone(),
        email: member.email.clone(),
        role: member.role.label(),
        is_engineer: member.role == Role::Engineer,
        services,
        user_tokens: member.user_tokens,
        joined: date(member.joined_at),
        has_password: member.has_password.get(),
        is_you: member.user_id == *you,
    }
}

/// One member's row, with their service limits.
async fn one_member_row(
    state: &AppState,
    signed_in: &SignedIn,
    member: &MemberSummary,
) -> Result<MemberRow, WebError> {
    let account_id = signed_in.account_id();
    let names = service_store::list(&state.db.pool, account_id).await?;
    let limits =
        member_store::service_permissions(&state.db.pool, account_id, &member.user_id).await?;
    Ok(member_row(member, signed_in.user_id(), &names, limits))
}

#[derive(Template)]
#[template(path = "users/list.html")]
struct ListPage {
    layout: Layout,
    members: Vec<MemberRow>,
    notice: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, WebError> {
    signed_in.require(Action::ViewUsers)?;
    let account_id = signed_in.account_id();
    let names = service_store::list(&state.db.pool, account_id).await?;
    let mut limits =
        member_store::service_permissions_in_account(&state.db.pool, account_id).await?;
    let rows = member_store::summaries(&state.db.pool, account_id)
        .await?
        .iter()
        .map(|m| {
            let theirs = limits.remove(&m.user_id).unwrap_or_default();
            member_row(m, signed_in.user_id(), &names, theirs)
        })
        .collect();
    let notice = Form::from_query(raw.as_deref())
        .ok()
        .and_then(|f| match f.text("done") {
            "removed" => Some("The member was removed from this account.".to_owned()),
            "deleted" => Some("The user was deleted.".to_owned()),
            "added" => Some("The user was added to this account.".to_owned()),
            _ => None,
        });
    render(&ListPage {
        layout: signed_in.layout("Users", Section::Users),
        members: rows,
        notice,
    })
}

pub struct RoleChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

fn role_choices(current: &str) -> Vec<RoleChoice> {
    Role::ALL
        .into_iter()
        .map(|r| RoleChoice {
            value: r.as_str(),
            label: r.label(),
            selected: r.as_str() == current,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "users/new.html")]
struct NewUserPage {
    layout: Layout,
    email: String,
    name: String,
    roles: Vec<RoleChoice>,
    /// "password" or "link".
    method: String,
    errors: FieldErrors,
}

pub async fn new_form(signed_in: SignedIn) -> Result<Response, WebError> {
    signed_in.require(Action::ManageUsers)?;
    render(&NewUserPage {
        layout: signed_in.layout("Add user", Section::Users),
        email: String::new(),
        name: String::new(),
        roles: role_choices(Role::User.as_str()),
        method: "link".into(),
        errors: FieldErrors::default(),
    })
}

#[derive(Template)]
#[template(path = "users/added.html")]
struct AddedPage {
    layout: Layout,
    name: String,
    email: String,
    /// The one-time set-password link, shown on this response only.
    link: Option<String>,
    link_days: i64,
}

fn user_exists_message() -> String {
    "A user with this email address already exists. Add them with \u{201c}Add existing user\u{201d}.".into()
}

pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    headers: axum::http::HeaderMap,
    form: Form,
) -> Result<Response, WebError> {
    signed_in.require(Action::ManageUsers)?;
    let mut errors = FieldErrors::default();
    let email = validate::email(form.text("email"))
        .map_err(|e| errors.add("email", e))
        .ok();
    let name = validate::name(form.text("name"), "Name")
        .map_err(|e| errors.add("name", e))
        .ok();
    let role = form
        .text("role")
        .parse::<Role>()
        .map_err(|_| errors.add("role", "Choose a role."))
        .ok();
    let method = form.text("method");
    let password = form.text("password");
    match method {
        "password" => {
            if let Err(e) = validate::new_password(password, form.text("password_confirmation")) {
                errors.add("password", e);
            }
        }
        "link" => {}
        _ => errors.add("method", "Choose how the user gets their password."),
    }
    if let Some(email) = &email {
        if user_store::find_by_email(&state.db.pool, email)
            .await?
            .is_some()
        {
            errors.add("email", user_exists_message());
        }
    }
    let fail = |errors: FieldErrors| {
        render_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &NewUserPage {
                layout: signed_in.layout("Add user", Section::Users),
                email: form.text("email").to_owned(),
                name: form.text("name").to_owned(),
                roles: role_choices(form.text("role")),
                method: if method == "password" {
                    "password"
                } else {
                    "link"
                }
                .into(),
                errors,
            },
        )
    };
    let (Some(email), Some(name), Some(role), true) = (email, name, role, errors.is_empty()) else {
        return fail(errors);
    };
    let hash = if method == "password" {
        Some(state.passwords.hash(&Password::new(password)).await?)
    } else {
        None
    };
    let new_user = NewUser {
        email: &email,
        name: &name,
        role,
        password_hash: hash.as_deref(),
    };
    let link_secret =
        match membership::add_new_user(&state, acting(&signed_in, &ip), &new_user).await {
            Ok(link) => link,
            Err(MembershipError::EmailTaken) => {
                return fail(FieldErrors::one("email", user_exists_message()))
            }
            Err(e) => return Err(membership_failure(e)),
        };
    let link = link_secret.map(|s| {
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
        // In the query, not the path: request logs record paths.
        format!("{scheme}://{host}/set-password?key={s}")
    });
    render(&AddedPage {
        layout: signed_in.layout("User added", Section::Users),
        name,
        email,
        link,
        link_days: PASSWORD_LINK_DAYS,
    })
}

#[derive(Template)]
#[template(path = "users/existing.html")]
struct ExistingPage {
    layout: Layout,
    email: String,
    roles: Vec<RoleChoice>,
    errors: FieldErrors,
}

pub async fn existing_form(signed_in: SignedIn) -> Result<Response, WebError> {
    signed_in.require(Action::ManageUsers)?;
    render(&ExistingPage {
        layout: signed_in.layout("Add existing user", Section::Users),
        email: String::new(),
        roles: role_choices(Role::User.as_str()),
        errors: FieldErrors::default(),
    })
}

pub async fn add_existing(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    signed_in.require(Action::ManageUsers)?;
    let account_id = signed_in.account_id();
    let mut errors = FieldErrors::default();
    let role = form
        .text("role")
        .parse::<Role>()
        .map_err(|_| errors.add("role", "Choose a role."))
        .ok();
    let user = match validate::email(form.text("email")) {
        Ok(email) => match user_store::find_by_email(&state.db.pool, &email).await? {
            Some(user) => Some(user),
            None => {
                errors.add(
                    "email",
                    "No user has this email address. Add them as a new user instead.",
                );
                None
            }
        },
        Err(e) => {
            errors.add("email", e);
            None
        }
    };
    if let Some(user) = &user {
        if member_store::role_of(&state.db.pool, account_id, &user.id)
            .await?
            .is_some()
        {
            errors.add("email", "This user is already a member of this account.");
        }
    }
    let fail = |errors| {
        render_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ExistingPage {
                layout: signed_in.layout("Add existing user", Section::Users),
                email: form.text("email").to_owned(),
                roles: role_choices(form.text("role")),
                errors,
            },
        )
    };
    let (Some(user), Some(role), true) = (user, role, errors.is_empty()) else {
        return fail(errors);
    };
    match membership::add_existing_user(&state, acting(&signed_in, &ip), &user, role).await {
        Ok(()) => {}
        Err(MembershipError::AlreadyMember) => {
            return fail(FieldErrors::one(
                "email",
                "This user is already a member of this account.",
            ))
        }
        Err(e) => return Err(membership_failure(e)),
    }
    Ok(Redirect::to("/account/users?done=added").into_response())
}

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
}

fn tokens_link(user_id: &UserId) -> String {
    format!("/account/account-tokens?type=user&owner={user_id}")
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
            ServiceLimit {
                id: s.id,
                name: s.name,
                choices,
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
    })
}

pub async fn edit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, WebError> {
    signed_in.require(Action::ViewUsers)?;
    let id = UserId::from_raw(id);
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
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    signed_in.require(Action::ManageUsers)?;
    let id = UserId::from_raw(id);
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
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    signed_in.require(Action::ManageUsers)?;
    let id = UserId::from_raw(id);
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

#[derive(Template)]
#[template(path = "users/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    member: MemberRow,
    /// "remove" or "delete".
    action: &'static str,
    refusal: Option<String>,
    tokens_link: Option<String>,
}

async fn confirm(
    state: &AppState,
    signed_in: &SignedIn,
    id: &UserId,
    action: &'static str,
    refused: Option<MemberError>,
) -> Result<ConfirmPage, WebError> {
    let account_id = signed_in.account_id();
    let member = member_store::summary(&state.db.pool, account_id, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let refused = match refused {
        Some(r) => Some(r),
        None => membership::refusal(state, account_id, &member, action == "delete").await?,
    };
    let tokens_link = matches!(refused, Some(MemberError::HasTokens(_))).then(|| tokens_link(id));
    let row = one_member_row(state, signed_in, &member).await?;
    Ok(ConfirmPage {
        layout: signed_in.layout(
            if action == "delete" {
                "Delete user"
            } else {
                "Remove from account"
            },
            Section::Users,
        ),
        member: row,
        action,
        refusal: refused.map(|r| r.message()),
        tokens_link,
    })
}

pub async fn confirm_remove(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    signed_in.require(Action::ManageUsers)?;
    let id = UserId::from_raw(id);
    render(&confirm(&state, &signed_in, &id, "remove", None).await?)
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    signed_in.require(Action::ManageUsers)?;
    let id = UserId::from_raw(id);
    render(&confirm(&state, &signed_in, &id, "delete", None).await?)
}

/// Removes the member from the account and, when `delete`, deletes the user as well.
async fn end_membership(
    state: &AppState,
    signed_in: &SignedIn,
    ip: &str,
    id: String,
    delete: bool,
) -> Result<Response, WebError> {
    signed_in.require(Action::ManageUsers)?;
    let id = UserId::from_raw(id);
    match membership::end_membership(state, acting(signed_in, ip), &id, delete).await {
        Ok(()) => {
            let done = if delete { "deleted" } else { "removed" };
            Ok(Redirect::to(&format!("/account/users?done={done}")).into_response())
        }
        Err(MembershipError::Refused(refused)) => {
            let action = if delete { "delete" } else { "remove" };
            let page = confirm(state, signed_in, &id, action, Some(refused)).await?;
            render_with(StatusCode::CONFLICT, &page)
        }
        Err(e) => Err(membership_failure(e)),
    }
}

pub async fn remove(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, WebError> {
    end_membership(&state, &signed_in, &ip, id, false).await
}

pub async fn delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, WebError> {
    end_membership(&state, &signed_in, &ip, id, true).await
}

#[derive(Template)]
#[template(path = "users/set_password.html")]
struct SetPasswordPage {
    layout: Layout,
    csrf: String,
    /// The link's secret, posted back with the form.
    key: String,
    email: String,
    error: Option<String>,
}

fn link_gone() -> WebError {
    WebError::NotFound
}

pub async fn set_password_page(
    State(state): State<AppState>,
    session: Session,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, WebError> {
    let query = Form::from_query(raw.as_deref()).map_err(|_| link_gone())?;
    let link = query.text("key").to_owned();
    let user = membership::password_link_user(&state, &link)
        .await?
        .ok_or_else(link_gone)?;
    render(&SetPasswordPage {
        layout: Layout::anonymous("Set your password"),
        csrf: super::csrf::token(&session).await?,
        key: link,
        email: user.email,
        error: None,
    })
}

pub async fn set_password(
    State(state): State<AppState>,
    session: Session,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    let link = form.text("key").to_owned();
    let user = membership::password_link_user(&state, &link)
        .await?
        .ok_or_else(link_gone)?;
    let password = form.text("password");
    if let Err(e) = validate::new_password(password, form.text("password_confirmation")) {
        return render_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &SetPasswordPage {
                layout: Layout::anonymous("Set your password"),
                csrf: super::csrf::token(&session).await?,
                key: link,
                email: user.email,
                error: Some(e),
            },
        );
    }
    let hash = state.passwords.hash(&Password::new(password)).await?;
    if !membership::set_password_with_link(&state, &link, &user, &hash, &ip).await? {
        return Err(link_gone());
    }
    Ok(Redirect::to("/login").into_response())
}
