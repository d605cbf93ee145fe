//! Sudo mode: re-authentication before a sensitive action, valid for a few minutes.
//! The deadline lives in the server-side session; the session id changes on elevation.
//!
//! A handler behind sudo takes `Elevated` (which sends the person to re-authenticate
//! when sudo mode is off) or `Sudo` (when its form may carry the password inline): it
//! cannot reach its action without an `Elevated` in hand.

use std::ops::Deref;

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::WebError;
use super::page::{render, render_with, safe_next, Layout, Section};
use super::session::SignedIn;
use crate::domain::access::Action;
use crate::domain::password::Password;
use crate::http::{ClientIp, Form};
use crate::ops::authentication::{self, Outcome};
use crate::state::AppState;

/// A signed-in member in sudo mode.
pub struct Elevated(SignedIn);

impl Deref for Elevated {
    type Target = SignedIn;

    fn deref(&self) -> &SignedIn {
        &self.0
    }
}

impl FromRequestParts<AppState> for Elevated {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        match Sudo::from_request_parts(parts, state).await? {
            Sudo::Active(elevated) => Ok(elevated),
            Sudo::Required(_) => Err(WebError::SudoRequired {
                next: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/")
                    .to_owned(),
            }),
        }
    }
}

/// Whether this request is in sudo mode, for handlers that can re-authenticate inline.
#[must_use]
pub enum Sudo {
    Active(Elevated),
    Required(NeedsSudo),
}

impl FromRequestParts<AppState> for Sudo {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        Ok(match signed_in.sudo_remaining(state.clock.unix()).await? {
            Some(_) => Sudo::Active(Elevated(signed_in)),
            None => Sudo::Required(NeedsSudo(signed_in)),
        })
    }
}

impl Elevated {
    pub fn into_signed_in(self) -> SignedIn {
        self.0
    }
}

impl Sudo {
    pub fn into_signed_in(self) -> SignedIn {
        match self {
            Sudo::Active(elevated) => elevated.0,
            Sudo::Required(needs) => needs.0,
        }
    }

    pub fn signed_in(&self) -> &SignedIn {
        match self {
            Sudo::Active(elevated) => elevated,
            Sudo::Required(needs) => &needs.0,
        }
    }

    /// A sensitive action: refused (403) to whoever may not take it, whether or not in
    /// sudo mode; otherwise it needs sudo mode, and without it the person is sent to
    /// re-authenticate and then to `back`, a page (a posted form cannot be replayed
    /// after a redirect, so `back` is the page the form is on).
    pub fn require(self, action: Action<'_>, back: &str) -> Result<Elevated, WebError> {
        self.signed_in().require(action)?;
        self.elevated(back)
    }

    /// Sudo mode, for a change every member may make to their own user (password, two-
    /// factor authentication); without it, as `require`.
    pub fn elevated(self, back: &str) -> Result<Elevated, WebError> {
        match self {
            Sudo::Active(elevated) => Ok(elevated),
            Sudo::Required(_) => Err(WebError::SudoRequired {
                next: back.to_owned(),
            }),
        }
    }

    /// Sudo mode, or re-authentication with the `password` (and `code`) fields of the
    /// form, for a form that asks for them inline while sudo mode is off.
    pub async fn inline(
        self,
        state: &AppState,
        form: &Form,
        ip: &str,
    ) -> Result<Result<Elevated, Refused>, WebError> {
        match self {
            Sudo::Active(elevated) => Ok(Ok(elevated)),
            Sudo::Required(needs) => {
                needs
                    .reauthenticate(state, form.text("password"), form.text("code"), ip)
                    .await
            }
        }
    }
}

/// A signed-in member not in sudo mode.
pub struct NeedsSudo(SignedIn);

/// A re-authentication that failed: the member, and what to tell them.
pub struct Refused {
    pub signed_in: SignedIn,
    pub message: String,
}

impl NeedsSudo {
    pub fn into_signed_in(self) -> SignedIn {
        self.0
    }

    /// Re-authenticates with the password (and code) the form carried.
    pub async fn reauthenticate(
        self,
        state: &AppState,
        password: &str,
        code: &str,
        ip: &str,
    ) -> Result<Result<Elevated, Refused>, WebError> {
        Ok(
            match reauthenticate(state, &self.0, password, code, ip).await? {
                Reauth::Elevated => Ok(Elevated(self.0)),
                Reauth::Failed(message) => Err(Refused {
                    signed_in: self.0,
                    message,
                }),
            },
        )
    }
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
enum Reauth {
    Elevated,
    Failed(String),
}

/// Checks the password typed into a re-authentication field and, when right, enters
/// sudo mode. Used by the sudo page and by forms that re-authenticate inline.
async fn reauthenticate(
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
    let outcome = authentication::reauthenticate(
        state,
        user,
        signed_in.account_id(),
        &Password::new(password),
        code,
        ip,
    )
    .await?;
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
        Outcome::Throttled(wait) => Ok(Reauth::Failed(authentication::throttled_message(wait))),
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

/// Leaves sudo mode, and goes back to the page the button was on (this site's pages
/// only; the Personal tokens page otherwise).
pub async fn end(
    signed_in: SignedIn,
    headers: axum::http::HeaderMap,
    _form: Form,
) -> Result<Response, WebError> {
    signed_in.end_sudo().await?;
    let back = headers
        .get(axum::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|referer| {
            let host = headers.get(axum::http::header::HOST)?.to_str().ok()?;
            let rest = referer
                .strip_prefix("https://")
                .or_else(|| referer.strip_prefix("http://"))?;
            let path = rest.strip_prefix(host)?;
            safe_next(path).map(str::to_owned)
        })
        .unwrap_or_else(|| "/account/tokens".to_owned());
    Ok(Redirect::to(&back).into_response())
}
