//! Adding users: a new user (with an initial password or a one-time set-password
//! link), or an existing user as a member.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::{acting, membership_failure, role_choices, RoleChoice};
use crate::db::member_store;
use crate::db::user_store;
use crate::domain::access::Action;
use crate::domain::password::Password;
use crate::domain::roles::Role;
use crate::domain::validate;
use crate::http::{ClientIp, Form};
use crate::ops::membership::{self, MembershipError, NewUser, PASSWORD_LINK_DAYS};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{render, render_with, FieldErrors, Layout, Section};
use crate::web::session::SignedIn;

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
