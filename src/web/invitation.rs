//! The page behind an invitation link (no sign-in needed to open it). The link's secret
//! travels in the query string and in the forms, never in a path (request logs record
//! paths). A link that does not work gets one page whatever the reason, with nothing
//! about the invitee; a signed-in user other than the invitee is refused without being
//! told whose invitation it is.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use super::csrf::{self, AnonymousCsrf};
use super::error::{error_page, WebError};
use super::page::{render, render_with, url_encode, with_retry_after, FieldErrors, Layout};
use super::session::{self, Browser};
use crate::db::user_store::{self, User};
use crate::domain::password::Password;
use crate::domain::validate;
use crate::http::{ClientIp, Form};
use crate::ops::authentication;
use crate::ops::invitations::{self, InvitationError, Opened, Opening};
use crate::state::AppState;

const PATH: &str = "/invitation";

fn link_gone() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "This invitation link does not work: it has expired, was used, replaced or revoked, or was copied wrongly. Ask the person who invited you for a new link.",
    )
}

fn someone_else() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This invitation is not for the user you are signed in as. Sign out, then open the link again.",
    )
}

/// How the page offers acceptance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No user has the email: set a name and password.
    NewUser,
    /// A user has the email: sign in as them first.
    SignIn,
    /// Signed in as the invitee.
    Accept,
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage {
    layout: Layout,
    csrf: String,
    key: String,
    email: String,
    account_name: String,
    role: &'static str,
    mode: Mode,
    sign_in_url: String,
    name: String,
    errors: FieldErrors,
}

impl InvitationPage {
    fn is(&self, mode: &str) -> bool {
        match self.mode {
            Mode::NewUser => mode == "new",
            Mode::SignIn => mode == "sign-in",
            Mode::Accept => mode == "accept",
        }
    }
}

/// The signed-in user of this browser, if any.
async fn signed_in_user(state: &AppState, session: &Session) -> Result<Option<User>, WebError> {
    let Some((user_id, _)) = session::current_ids(session).await? else {
        return Ok(None);
    };
    Ok(user_store::find(&state.db.pool, &user_id).await?)
}

async fn page_for(
    session: &Session,
    anonymous: &AnonymousCsrf,
    key: &str,
    opened: &Opened,
    viewer: Option<&User>,
    name: &str,
    errors: FieldErrors,
) -> Result<InvitationPage, WebError> {
    let mode = match viewer {
        Some(_) => Mode::Accept,
        None if opened.user_exists => Mode::SignIn,
        None => Mode::NewUser,
    };
    let here = format!("{PATH}?key={key}");
    Ok(InvitationPage {
        layout: Layout::anonymous("Invitation"),
        csrf: csrf::form_token(session, anonymous).await?,
        key: key.to_owned(),
        email: opened.invitation.email.clone(),
        account_name: opened.account_name.clone(),
        role: opened.invitation.role.label(),
        mode,
        sign_in_url: format!("/login?next={}", url_encode(&here)),
        name: name.to_owned(),
        errors,
    })
}

/// The link, the invitation it opens (while usable) and the signed-in user; Err with
/// the page to answer when the link does not work or is someone else's.
async fn opened(
    state: &AppState,
    session: &Session,
    key: &str,
    ip: &str,
) -> Result<Result<(Opened, Option<User>), Response>, WebError> {
    let opened = match invitations::open_from(state, key, ip).await? {
        Opening::Opened(opened) => *opened,
        Opening::Gone => return Ok(Err(link_gone())),
        Opening::Throttled(wait) => {
            let page = error_page(
                StatusCode::TOO_MANY_REQUESTS,
                &authentication::throttled_message(wait),
            );
            return Ok(Err(with_retry_after(page, wait)));
        }
    };
    let viewer = signed_in_user(state, session).await?;
    if viewer
        .as_ref()
        .is_some_and(|u| u.email != opened.invitation.email)
    {
        return Ok(Err(someone_else()));
    }
    Ok(Ok((opened, viewer)))
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    anonymous: AnonymousCsrf,
    ClientIp(ip): ClientIp,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let Ok(query) = Form::from_query(raw.as_deref()) else {
        return Ok(link_gone());
    };
    let key = query.text("key");
    let (opened, viewer) = match opened(&state, &session, key, &ip).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let page = page_for(
        &session,
        &anonymous,
        key,
        &opened,
        viewer.as_ref(),
        "",
        FieldErrors::default(),
    )
    .await?;
    render(&page)
}

pub async fn accept(
    State(state): State<AppState>,
    session: Session,
    anonymous: AnonymousCsrf,
    browser: Browser,
    form: Form,
) -> Result<Response, WebError> {
    let key = form.text("key");
    let (opened, viewer) = match opened(&state, &session, key, &browser.ip).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let back = format!("{PATH}?key={key}");
    if let Some(user) = viewer {
        return match invitations::accept_as_user(&state, key, &user, &browser.ip).await {
            Ok(account_id) => {
                session::switch_account(&state, &session, &user.id, &account_id).await?;
                Ok(Redirect::to("/account/tokens").into_response())
            }
            Err(InvitationError::WrongUser) => Ok(someone_else()),
            Err(InvitationError::Database(e)) => Err(e.into()),
            Err(_) => Ok(link_gone()),
        };
    }
    if opened.user_exists {
        // Only the user with this email may accept: they sign in first.
        return Ok(Redirect::to(&back).into_response());
    }
    let mut errors = FieldErrors::default();
    let name = validate::name(form.text("name"), "Your name")
        .map_err(|e| errors.add("name", e))
        .ok();
    let password = form.text("password");
    if let Err(e) = validate::new_password(password, form.text("password_confirmation")) {
        errors.add("password", e);
    }
    let (Some(name), true) = (name, errors.is_empty()) else {
        let page = page_for(
            &session,
            &anonymous,
            key,
            &opened,
            None,
            form.text("name"),
            errors,
        )
        .await?;
        return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let hash = state.passwords.hash(&Password::new(password)).await?;
    match invitations::accept_as_new_user(&state, key, &name, &hash, &browser.ip).await {
        Ok((user_id, account_id)) => {
            session::sign_in(
                &session,
                &user_id,
                &account_id,
                &browser,
                state.clock.unix(),
            )
            .await?;
            authentication::record_sign_in(
                &state,
                &user_id,
                &account_id,
                &browser.ip,
                "Signed in after accepting an invitation",
            )
            .await?;
            Ok(Redirect::to("/account/tokens").into_response())
        }
        // A user with this email appeared meanwhile: the page now asks to sign in.
        Err(InvitationError::EmailTaken) => Ok(Redirect::to(&back).into_response()),
        Err(InvitationError::Database(e)) => Err(e.into()),
        Err(_) => Ok(link_gone()),
    }
}

#[derive(Template)]
#[template(path = "invitation_declined.html")]
struct DeclinedPage {
    layout: Layout,
}

pub async fn decline(
    State(state): State<AppState>,
    session: Session,
    browser: Browser,
    form: Form,
) -> Result<Response, WebError> {
    let key = form.text("key");
    let viewer = match opened(&state, &session, key, &browser.ip).await? {
        Ok((_, viewer)) => viewer,
        Err(page) => return Ok(page),
    };
    match invitations::decline(&state, key, viewer.as_ref().map(|u| &u.id), &browser.ip).await {
        Ok(()) => render(&DeclinedPage {
            layout: Layout::anonymous("Invitation declined"),
        }),
        Err(InvitationError::Database(e)) => Err(e.into()),
        Err(_) => Ok(link_gone()),
    }
}
