//! Sudo mode: re-authentication before a sensitive action, valid for a few minutes.
//! The deadline lives in the server-side session; the session id changes on elevation.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::WebError;
use super::form::Form;
use super::page::{render, render_with, safe_next, Layout, Section};
use super::session::{ClientIp, SignedIn};
use crate::app::AppState;
use crate::auth::{self, Outcome};
use crate::domain::password::Password;

/// Whether an action may go ahead. Handlers must act on it.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sudo {
    Active,
    Required,
}

pub async fn status(state: &AppState, signed_in: &SignedIn) -> Result<Sudo, WebError> {
    Ok(match signed_in.sudo_remaining(state.clock.unix()).await? {
        Some(_) => Sudo::Active,
        None => Sudo::Required,
    })
}

/// Sends the person to re-authenticate, then back to `next`.
pub fn prompt(next: &str) -> Response {
    Redirect::to(&format!(
        "/account/sudo?next={}",
        super::page::url_encode(next)
    ))
    .into_response()
}

/// Result of a password (and code) typed to re-authenticate.
pub enum Reauth {
    Elevated,
    Failed(String),
}

/// Checks the password typed into a re-authentication field and, when right, enters
/// sudo mode. Used by the sudo page and by forms that re-authenticate inline.
pub async fn reauthenticate(
    state: &AppState,
    signed_in: &SignedIn,
    password: &str,
    code: &str,
    ip: &str,
) -> Result<Reauth, WebError> {
    if password.is_empty() {
        return Ok(Reauth::Failed("Enter your password.".into()));
    }
    let user = &signed_in.member.user;
    if user.has_two_factor() && code.trim().is_empty() {
        return Ok(Reauth::Failed(
            "Enter the code from your authenticator app.".into(),
        ));
    }
    let code = user.has_two_factor().then_some(code);
    let outcome = auth::reauthenticate(
        state,
        user,
        signed_in.account_id(),
        &Password::new(password),
        code,
        ip,
    )
    .await
    .map_err(WebError::internal)?;
    match outcome {
        Outcome::Accepted(_) => {
            signed_in
                .elevate(state.clock.unix() + state.settings.sudo_seconds)
                .await?;
            Ok(Reauth::Elevated)
        }
        Outcome::Rejected | Outcome::WrongCode if user.has_two_factor() => Ok(Reauth::Failed(
            "Incorrect password or authentication code.".into(),
        )),
        Outcome::Rejected | Outcome::WrongCode => Ok(Reauth::Failed("Incorrect password.".into())),
        Outcome::Throttled(wait) => Ok(Reauth::Failed(auth::throttled_message(wait))),
    }
}

#[derive(Template)]
#[template(path = "sudo.html")]
struct SudoPage {
    layout: Layout,
    next: String,
    needs_code: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn next_or_default(next: Option<&str>) -> String {
    next.and_then(safe_next)
        .unwrap_or("/account/tokens")
        .to_owned()
}

pub async fn page(
    signed_in: SignedIn,
    Query(query): Query<NextQuery>,
) -> Result<Response, WebError> {
    let page = SudoPage {
        layout: signed_in.layout("Re-authenticate", Section::PersonalTokens),
        needs_code: signed_in.member.user.has_two_factor(),
        next: next_or_default(query.next.as_deref()),
        error: None,
    };
    render(&page)
}

pub async fn submit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    let next = next_or_default(form.get("next"));
    match reauthenticate(
        &state,
        &signed_in,
        form.text("password"),
        form.text("code"),
        &ip,
    )
    .await?
    {
        Reauth::Elevated => Ok(Redirect::to(&next).into_response()),
        Reauth::Failed(message) => {
            let page = SudoPage {
                layout: signed_in.layout("Re-authenticate", Section::PersonalTokens),
                needs_code: signed_in.member.user.has_two_factor(),
                next,
                error: Some(message),
            };
            render_with(StatusCode::UNAUTHORIZED, &page)
        }
    }
}
