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
use super::form::Form;
use super::page::{date, render, render_with, FieldErrors, Layout, Section};
use super::session::{ClientIp, SignedIn};
use crate::app::AppState;
use crate::db::events::{self, NewEvent};
use crate::db::{accounts, members, password_links, tokens as token_store, users};
use crate::domain::admin::{self, Action, MemberError, ServiceAccess};
use crate::domain::password::Password;
use crate::domain::roles::{Role, ServicePermission};
use crate::domain::{random, secret, validate};

/// How long a set-password link stays usable.
pub const PASSWORD_LINK_DAYS: i64 = 7;

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

fn forbid(signed_in: &SignedIn, action: Action) -> Result<(), WebError> {
    signed_in
        .actor
        .check(action)
        .map_err(|d| WebError::Forbidden(d.message()))
}

fn permission_label(p: ServicePermission) -> &'static str {
    match p {
        ServicePermission::Full => "Full access",
        ServicePermission::ReadOnly => "Read only",
        ServicePermission::PurgeSelect => "Purge select content",
        ServicePermission::PurgeAll => "Purge full cache",
    }
}

fn role_of(member: &members::Member) -> Role {
    // The schema only ever holds known roles; an unknown one is treated as the least.
    member.role.parse().unwrap_or(Role::User)
}

/// A member as the pages show them.
pub struct MemberRow {
    pub id: String,
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

/// `names` are the account's services (fetched once for a whole list).
async fn member_row(
    state: &AppState,
    account_id: &str,
    member: &members::Member,
    you: &str,
    names: &[accounts::Service],
) -> Result<MemberRow, WebError> {
    let role = role_of(member);
    let services = if role == Role::Engineer {
        let rows =
            accounts::service_permissions(&state.db.pool, account_id, &member.user_id).await?;
        match ServiceAccess::of(role, &rows) {
            ServiceAccess::All => "All services".to_owned(),
            ServiceAccess::Limited(list) => list
                .iter()
                .filter_map(|(id, p)| {
                    let service = names.iter().find(|s| &s.id == id)?;
                    Some(format!("{} ({})", service.name, permission_label(*p)))
                })
                .collect::<Vec<_>>()
                .join(", "),
        }
    } else {
        "All services".to_owned()
    };
    Ok(MemberRow {
        id: member.user_id.clone(),
        name: member.name.clone(),
        email: member.email.clone(),
        role: role.label(),
        is_engineer: role == Role::Engineer,
        services,
        user_tokens: member.user_tokens,
        joined: date(member.joined_at),
        has_password: member.has_password != 0,
        is_you: member.user_id == you,
    })
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
    forbid(&signed_in, Action::ViewUsers)?;
    let account_id = signed_in.account_id();
    let names = accounts::services(&state.db.pool, account_id).await?;
    let mut rows = Vec::new();
    for member in members::list(&state.db.pool, account_id).await? {
        rows.push(member_row(&state, account_id, &member, signed_in.user_id(), &names).await?);
    }
    let notice = Form::parse(raw.unwrap_or_default().as_bytes())
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
    forbid(&signed_in, Action::ManageUsers)?;
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
    forbid(&signed_in, Action::ManageUsers)?;
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
        if users::find_by_email(&state.db.pool, email).await?.is_some() {
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
    let link_secret = (method == "link").then(|| random::base62(32));
    let now = state.clock.unix();
    let user_id = random::id();
    let account_id = signed_in.account_id();
    let mut tx = state.db.pool.begin().await?;
    if let Err(e) = users::create(&mut *tx, &user_id, &email, &name, hash.as_deref(), now).await {
        if crate::db::is_unique_violation(&e) {
            tx.rollback().await?;
            return fail(FieldErrors::one("email", user_exists_message()));
        }
        return Err(e.into());
    }
    accounts::add_member(&mut *tx, account_id, &user_id, role, now).await?;
    if let Some(link) = &link_secret {
        password_links::add(
            &mut *tx,
            &secret::digest(link),
            &user_id,
            now,
            now + PASSWORD_LINK_DAYS * 86_400,
        )
        .await?;
    }
    let event = NewEvent {
        account_id: Some(account_id),
        event_type: "user.create",
        actor_id: Some(signed_in.user_id()),
        ip: Some(&ip),
        description: format!("Added user {email} as {}", role.label()),
        metadata: Some(serde_json::json!({
            "user_id": user_id,
            "email": email,
            "role": role.as_str(),
            "password": if link_secret.is_some() { "link" } else { "set" },
        })),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
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
    forbid(&signed_in, Action::ManageUsers)?;
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
    forbid(&signed_in, Action::ManageUsers)?;
    let account_id = signed_in.account_id();
    let mut errors = FieldErrors::default();
    let role = form
        .text("role")
        .parse::<Role>()
        .map_err(|_| errors.add("role", "Choose a role."))
        .ok();
    let user = match validate::email(form.text("email")) {
        Ok(email) => match users::find_by_email(&state.db.pool, &email).await? {
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
        if members::find(&state.db.pool, account_id, &user.id)
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
    let now = state.clock.unix();
    let mut tx = state.db.pool.begin().await?;
    if let Err(e) = accounts::add_member(&mut *tx, account_id, &user.id, role, now).await {
        if crate::db::is_unique_violation(&e) {
            tx.rollback().await?;
            return fail(FieldErrors::one(
                "email",
                "This user is already a member of this account.",
            ));
        }
        return Err(e.into());
    }
    let event = NewEvent {
        account_id: Some(account_id),
        event_type: "user.create",
        actor_id: Some(signed_in.user_id()),
        ip: Some(&ip),
        description: format!("Added existing user {} as {}", user.email, role.label()),
        metadata: Some(serde_json::json!({
            "user_id": user.id,
            "email": user.email,
            "role": role.as_str(),
            "existing_user": true,
        })),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(Redirect::to("/account/users?done=added").into_response())
}

pub struct PermissionChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub struct ServiceLimit {
    pub id: String,
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

fn tokens_link(user_id: &str) -> String {
    format!("/account/account-tokens?type=user&owner={user_id}")
}

/// The edit page of a member, optionally with the typed service limits kept.
async fn edit_page(
    state: &AppState,
    signed_in: &SignedIn,
    user_id: &str,
    typed_limits: Option<(bool, Vec<(String, String)>)>,
    error: Option<(&'static str, String)>,
    notice: Option<String>,
) -> Result<EditPage, WebError> {
    let account_id = signed_in.account_id();
    let member = members::find(&state.db.pool, account_id, user_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let names = accounts::services(&state.db.pool, account_id).await?;
    let row = member_row(state, account_id, &member, signed_in.user_id(), &names).await?;
    let (limited, current) = match typed_limits {
        Some(typed) => typed,
        None => {
            let rows = accounts::service_permissions(&state.db.pool, account_id, user_id).await?;
            (!rows.is_empty(), rows)
        }
    };
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
                        label: permission_label(p),
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
        roles: role_choices(&member.role),
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
    forbid(&signed_in, Action::ViewUsers)?;
    let notice = Form::parse(raw.unwrap_or_default().as_bytes())
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
    forbid(&signed_in, Action::ManageUsers)?;
    let account_id = signed_in.account_id();
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
    let now = state.clock.unix();
    let mut tx = state.db.pool.begin().await?;
    members::lock_account(&mut tx, state.db.backend, account_id).await?;
    let Some(member) = members::find(&mut *tx, account_id, &id).await? else {
        return Err(WebError::NotFound);
    };
    let from = role_of(&member);
    let superusers = members::count_superusers(&mut *tx, account_id).await?;
    if let Err(e) = admin::check_role_change(from, to, superusers) {
        tx.rollback().await?;
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
    if from != to {
        members::set_role(&mut *tx, account_id, &id, to).await?;
        if to != Role::Engineer {
            // Service limits apply to engineers only; a later promotion starts afresh.
            members::clear_service_permissions(&mut *tx, account_id, &id).await?;
        }
        let event = NewEvent {
            account_id: Some(account_id),
            event_type: "user.update",
            actor_id: Some(signed_in.user_id()),
            ip: Some(&ip),
            description: format!(
                "Changed the role of {} from {} to {}",
                member.email,
                from.label(),
                to.label()
            ),
            metadata: Some(serde_json::json!({
                "user_id": id,
                "role": { "from": from.as_str(), "to": to.as_str() },
            })),
            ..NewEvent::default()
        };
        events::record(&mut *tx, &event, now).await?;
    }
    tx.commit().await?;
    if id == signed_in.user_id() && to != Role::Superuser {
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
    forbid(&signed_in, Action::ManageUsers)?;
    let account_id = signed_in.account_id();
    let member = members::find(&state.db.pool, account_id, &id)
        .await?
        .ok_or(WebError::NotFound)?;
    let limited = form.text("limit") == "some";
    let services = accounts::services(&state.db.pool, account_id).await?;
    let mut typed: Vec<(String, String)> = Vec::new();
    let mut chosen: Vec<(String, ServicePermission)> = Vec::new();
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
    if role_of(&member) != Role::Engineer {
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
    let now = state.clock.unix();
    let mut tx = state.db.pool.begin().await?;
    members::lock_account(&mut tx, state.db.backend, account_id).await?;
    // Still an engineer of this account now that the account is locked?
    let still = members::find(&mut *tx, account_id, &id).await?;
    if still.as_ref().map(role_of) != Some(Role::Engineer) {
        return Err(WebError::NotFound);
    }
    members::clear_service_permissions(&mut *tx, account_id, &id).await?;
    for (service_id, permission) in &chosen {
        accounts::set_service_permission(
            &mut *tx,
            account_id,
            &id,
            service_id,
            permission.as_str(),
        )
        .await?;
    }
    let summary: Vec<serde_json::Value> = chosen
        .iter()
        .map(|(s, p)| serde_json::json!({ "service_id": s, "permission": p.as_str() }))
        .collect();
    let event = NewEvent {
        account_id: Some(account_id),
        event_type: "user.update",
        actor_id: Some(signed_in.user_id()),
        ip: Some(&ip),
        description: if chosen.is_empty() {
            format!("Gave {} access to all services", member.email)
        } else {
            format!("Limited {} to {} services", member.email, chosen.len())
        },
        metadata: Some(serde_json::json!({ "user_id": id, "services": summary })),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
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

/// Whether removing or deleting the member would be refused, as far as can be told
/// before trying (the action checks again under the account lock).
async fn refusal(
    state: &AppState,
    account_id: &str,
    member: &members::Member,
    delete: bool,
) -> Result<Option<MemberError>, WebError> {
    let superusers = members::count_superusers(&state.db.pool, account_id).await?;
    let role = role_of(member);
    let outcome = if delete {
        let others =
            members::count_other_memberships(&state.db.pool, &member.user_id, account_id).await?;
        admin::check_deletion(role, superusers, member.user_tokens, others)
    } else {
        admin::check_removal(role, superusers, member.user_tokens)
    };
    Ok(outcome.err())
}

async fn confirm(
    state: &AppState,
    signed_in: &SignedIn,
    id: &str,
    action: &'static str,
    refused: Option<MemberError>,
) -> Result<ConfirmPage, WebError> {
    let account_id = signed_in.account_id();
    let member = members::find(&state.db.pool, account_id, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let refused = match refused {
        Some(r) => Some(r),
        None => refusal(state, account_id, &member, action == "delete").await?,
    };
    let tokens_link = matches!(refused, Some(MemberError::HasTokens(_))).then(|| tokens_link(id));
    let names = accounts::services(&state.db.pool, account_id).await?;
    let row = member_row(state, account_id, &member, signed_in.user_id(), &names).await?;
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
    forbid(&signed_in, Action::ManageUsers)?;
    render(&confirm(&state, &signed_in, &id, "remove", None).await?)
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    forbid(&signed_in, Action::ManageUsers)?;
    render(&confirm(&state, &signed_in, &id, "delete", None).await?)
}

/// Removes the member from the account and, when `delete`, deletes the user as well.
async fn end_membership(
    state: &AppState,
    signed_in: &SignedIn,
    ip: &str,
    id: &str,
    delete: bool,
) -> Result<Response, WebError> {
    let account_id = signed_in.account_id();
    let now = state.clock.unix();
    let mut tx = state.db.pool.begin().await?;
    members::lock_account(&mut tx, state.db.backend, account_id).await?;
    let Some(member) = members::find(&mut *tx, account_id, id).await? else {
        return Err(WebError::NotFound);
    };
    let role = role_of(&member);
    let superusers = members::count_superusers(&mut *tx, account_id).await?;
    let others = members::count_other_memberships(&mut *tx, id, account_id).await?;
    // Ending the membership first waits for a token being created for this member
    // (it locks the membership row), so the count below sees that token too.
    members::remove(&mut *tx, account_id, id).await?;
    let user_tokens = token_store::count_owned(&mut *tx, account_id, id).await?;
    let checked = if delete {
        admin::check_deletion(role, superusers, user_tokens, others)
    } else {
        admin::check_removal(role, superusers, user_tokens)
    };
    if let Err(refused) = checked {
        tx.rollback().await?;
        let action = if delete { "delete" } else { "remove" };
        let page = confirm(state, signed_in, id, action, Some(refused)).await?;
        return render_with(StatusCode::CONFLICT, &page);
    }
    if delete {
        members::delete_user(&mut *tx, id).await?;
    }
    let event = NewEvent {
        account_id: Some(account_id),
        event_type: "user.destroy",
        actor_id: Some(signed_in.user_id()),
        ip: Some(ip),
        description: if delete {
            format!("Deleted user {}", member.email)
        } else {
            format!("Removed {} from the account", member.email)
        },
        metadata: Some(serde_json::json!({
            "user_id": id,
            "email": member.email,
            "role": role.as_str(),
            "deleted": delete,
        })),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    let done = if delete { "deleted" } else { "removed" };
    Ok(Redirect::to(&format!("/account/users?done={done}")).into_response())
}

pub async fn remove(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, WebError> {
    forbid(&signed_in, Action::ManageUsers)?;
    end_membership(&state, &signed_in, &ip, &id, false).await
}

pub async fn delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, WebError> {
    forbid(&signed_in, Action::ManageUsers)?;
    end_membership(&state, &signed_in, &ip, &id, true).await
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
    let query = Form::parse(raw.unwrap_or_default().as_bytes()).map_err(|_| link_gone())?;
    let link = query.text("key").to_owned();
    let user_id =
        password_links::user_of(&state.db.pool, &secret::digest(&link), state.clock.unix())
            .await?
            .ok_or_else(link_gone)?;
    let user = users::find(&state.db.pool, &user_id)
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
    let digest = secret::digest(&link);
    let now = state.clock.unix();
    let user_id = password_links::user_of(&state.db.pool, &digest, now)
        .await?
        .ok_or_else(link_gone)?;
    let user = users::find(&state.db.pool, &user_id)
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
    let mut tx = state.db.pool.begin().await?;
    // Spending the link first makes two concurrent uses race for one row.
    if password_links::consume(&mut *tx, &digest, now)
        .await?
        .as_deref()
        != Some(&user.id)
    {
        return Err(link_gone());
    }
    password_links::delete_for_user(&mut *tx, &user.id).await?;
    users::set_password(&mut *tx, &user.id, &hash).await?;
    let account = accounts::memberships_of(&mut *tx, &user.id)
        .await?
        .into_iter()
        .next()
        .map(|(id, _)| id);
    let event = NewEvent {
        account_id: account.as_deref(),
        event_type: "user.password_update",
        actor_id: Some(&user.id),
        ip: Some(&ip),
        description: "Set the password with a one-time link".into(),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(Redirect::to("/login").into_response())
}
