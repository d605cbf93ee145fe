//! Sign-in, sign-out and first-run setup.

use askama::Template;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::csrf::{self, AnonymousCsrf};
use super::error::WebError;
use super::page::{render, render_with, safe_next, with_retry_after, FieldErrors, Layout};
use super::session::{self, Browser};
use crate::db::user_store;
use crate::domain::ids::{AccountId, UserId};
use crate::domain::password::Password;
use crate::domain::validate;
use crate::http::{ClientIp, Form};
use crate::ops::authentication::{self, CodeCheck, Outcome};
use crate::ops::first_run;
use crate::state::AppState;

const AFTER_SIGN_IN: &str = "/account/tokens";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    csrf: String,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_page(
    State(_state): State<AppState>,
    session: Session,
    anonymous: AnonymousCsrf,
    Query(query): Query<NextQuery>,
) -> Result<Response, WebError> {
    if session::current_ids(&session).await?.is_some() {
        return Ok(Redirect::to(AFTER_SIGN_IN).into_response());
    }
    let next = query
        .next
        .as_deref()
        .and_then(safe_next)
        .unwrap_or("")
        .to_owned();
    let page = LoginPage {
        layout: Layout::anonymous("Sign in"),
        csrf: csrf::form_token(&session, &anonymous).await?,
        email: String::new(),
        next,
        error: None,
    };
    render(&page)
}

pub async fn login(
    State(state): State<AppState>,
    session: Session,
    anonymous: AnonymousCsrf,
    browser: Browser,
    form: Form,
) -> Result<Response, WebError> {
    let ip = browser.ip.clone();
    let next = safe_next(form.text("next")).unwrap_or("").to_owned();
    let typed_email = form.text("email").trim().to_owned();
    let password = Password::new(form.text("password"));
    let fail = |status: StatusCode, message: String, csrf: String| {
        let page = LoginPage {
            layout: Layout::anonymous("Sign in"),
            csrf,
            email: typed_email.clone(),
            next: next.clone(),
            error: Some(message),
        };
        render_with(status, &page)
    };
    let csrf = csrf::form_token(&session, &anonymous).await?;
    if typed_email.is_empty() || password.expose().is_empty() {
        return fail(
            StatusCode::BAD_REQUEST,
            "Enter your email and your password.".into(),
            csrf,
        );
    }
    let email = typed_email.to_lowercase();
    let user = match authentication::sign_in(&state, &email, &password, &ip).await? {
        Outcome::Accepted(user) => user,
        Outcome::Rejected | Outcome::WrongCode => {
            return fail(
                StatusCode::UNAUTHORIZED,
                "Incorrect email or password.".into(),
                csrf,
            )
        }
        Outcome::Throttled(wait) => {
            return fail(
                StatusCode::TOO_MANY_REQUESTS,
                authentication::throttled_message(wait),
                csrf,
            )
            .map(|page| with_retry_after(page, wait))
        }
    };
    let Some(account_id) = authentication::default_account(&state, &user.id).await? else {
        return fail(
            StatusCode::FORBIDDEN,
            "Your user does not belong to any account.".into(),
            csrf,
        );
    };
    if user.has_two_factor() {
        let until = state.clock.unix() + session::PENDING_SECONDS;
        session::begin_second_step(&session, &user.id, until, &next).await?;
        return Ok(Redirect::to("/login/two-factor").into_response());
    }
    finish_sign_in(
        &state,
        &session,
        &user.id,
        &account_id,
        &browser,
        &next,
        "Signed in",
    )
    .await
}

async fn finish_sign_in(
    state: &AppState,
    session: &Session,
    user_id: &UserId,
    account_id: &AccountId,
    browser: &Browser,
    next: &str,
    description: &str,
) -> Result<Response, WebError> {
    session::sign_in(session, user_id, account_id, browser, state.clock.unix()).await?;
    authentication::record_sign_in(state, user_id, account_id, &browser.ip, description).await?;
    let to = safe_next(next).unwrap_or(AFTER_SIGN_IN);
    Ok(Redirect::to(to).into_response())
}

#[derive(Template)]
#[template(path = "two_factor_step.html")]
struct SecondStepPage {
    layout: Layout,
    csrf: String,
    error: Option<String>,
}

pub async fn second_step_page(
    State(state): State<AppState>,
    session: Session,
    anonymous: AnonymousCsrf,
) -> Result<Response, WebError> {
    if session::pending_second_step(&session, state.clock.unix())
        .await?
        .is_none()
    {
        return Ok(Redirect::to("/login").into_response());
    }
    let page = SecondStepPage {
        layout: Layout::anonymous("Two-factor authentication"),
        csrf: csrf::form_token(&session, &anonymous).await?,
        error: None,
    };
    render(&page)
}

pub async fn second_step(
    State(state): State<AppState>,
    session: Session,
    anonymous: AnonymousCsrf,
    browser: Browser,
    form: Form,
) -> Result<Response, WebError> {
    let ip = browser.ip.clone();
    let Some((user_id, next)) = session::pending_second_step(&session, state.clock.unix()).await?
    else {
        session::clear_pending(&session).await?;
        return Ok(Redirect::to("/login").into_response());
    };
    let csrf = csrf::form_token(&session, &anonymous).await?;
    let fail = |status: StatusCode, message: String| {
        let page = SecondStepPage {
            layout: Layout::anonymous("Two-factor authentication"),
            csrf: csrf.clone(),
            error: Some(message),
        };
        render_with(status, &page)
    };
    let code = form.text("code");
    if code.trim().is_empty() {
        return fail(
            StatusCode::BAD_REQUEST,
            "Enter the code from your authenticator app or a recovery code.".into(),
        );
    }
    if let Some(wait) = authentication::second_factor_locked(&state, &user_id).await? {
        return fail(StatusCode::TOO_MANY_REQUESTS, locked_message(wait))
            .map(|page| with_retry_after(page, wait));
    }
    let (Some(user), Some(account_id)) = (
        user_store::find(&state.db.pool, &user_id).await?,
        authentication::default_account(&state, &user_id).await?,
    ) else {
        session::clear_pending(&session).await?;
        return Ok(Redirect::to("/login").into_response());
    };
    match authentication::check_second_factor(&state, &user, code).await? {
        CodeCheck::Accepted => {
            return finish_sign_in(
                &state,
                &session,
                &user.id,
                &account_id,
                &browser,
                &next,
                "Signed in with two-factor authentication",
            )
            .await
        }
        CodeCheck::Locked(wait) => {
            return fail(StatusCode::TOO_MANY_REQUESTS, locked_message(wait))
                .map(|page| with_retry_after(page, wait))
        }
        CodeCheck::Wrong => {}
    }
    authentication::record_wrong_code(&state, &user.id, &account_id, &ip).await?;
    match authentication::second_factor_locked(&state, &user_id).await? {
        Some(wait) => fail(StatusCode::TOO_MANY_REQUESTS, locked_message(wait))
            .map(|page| with_retry_after(page, wait)),
        None => fail(StatusCode::UNAUTHORIZED, "Incorrect code.".into()),
    }
}

fn locked_message(wait: i64) -> String {
    let minutes = (wait + 59) / 60;
    format!("Too many wrong codes. Two-factor sign-in is locked for this user; try again in {minutes} minutes.")
}

pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    ClientIp(ip): ClientIp,
) -> Result<Response, WebError> {
    if let Some((user_id, account_id)) = session::current_ids(&session).await? {
        authentication::record_sign_out(&state, &user_id, &account_id, &ip).await?;
    }
    session::sign_out(&session).await?;
    Ok(Redirect::to("/login").into_response())
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    layout: Layout,
    csrf: String,
    account_name: String,
    name: String,
    email: String,
    errors: FieldErrors,
}

/// The setup secret, from the query string: not the path, which request logs record.
fn setup_secret(raw: Option<&str>) -> String {
    Form::from_query(raw)
        .map(|q| q.text("key").to_owned())
        .unwrap_or_default()
}

pub async fn setup_page(
    State(state): State<AppState>,
    session: Session,
    anonymous: AnonymousCsrf,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let secret_value = setup_secret(raw.as_deref());
    if !first_run::setup_allowed(&state, &secret_value).await? {
        return Err(WebError::NotFound);
    }
    let page = SetupPage {
        layout: Layout::anonymous("Set up tokenpanel"),
        csrf: csrf::form_token(&session, &anonymous).await?,
        account_name: String::new(),
        name: String::new(),
        email: String::new(),
        errors: FieldErrors::default(),
    };
    render(&page)
}

pub async fn setup(
    State(state): State<AppState>,
    session: Session,
    anonymous: AnonymousCsrf,
    browser: Browser,
    RawQuery(raw): RawQuery,
    form: Form,
) -> Result<Response, WebError> {
    let secret_value = setup_secret(raw.as_deref());
    if !first_run::setup_allowed(&state, &secret_value).await? {
        return Err(WebError::NotFound);
    }
    let mut errors = FieldErrors::default();
    let account_name = validate::name(form.text("account_name"), "Account name")
        .map_err(|e| errors.add("account_name", e));
    let name = validate::name(form.text("name"), "Your name").map_err(|e| errors.add("name", e));
    let email = validate::email(form.text("email")).map_err(|e| errors.add("email", e));
    let password = form.text("password");
    if let Err(e) = validate::new_password(password, form.text("password_confirmation")) {
        errors.add("password", e);
    }
    let (Ok(account_name), Ok(name), Ok(email), true) =
        (account_name, name, email, errors.is_empty())
    else {
        let page = SetupPage {
            layout: Layout::anonymous("Set up tokenpanel"),
            csrf: csrf::form_token(&session, &anonymous).await?,
            account_name: form.text("account_name").to_owned(),
            name: form.text("name").to_owned(),
            email: form.text("email").to_owned(),
            errors,
        };
        return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let hash = state.passwords.hash(&Password::new(password)).await?;
    let Some((account_id, user_id)) = first_run::set_up(
        &state,
        &secret_value,
        &account_name,
        &name,
        &email,
        &hash,
        &browser.ip,
    )
    .await?
    else {
        return Err(WebError::NotFound);
    };
    session::sign_in(
        &session,
        &user_id,
        &account_id,
        &browser,
        state.clock.unix(),
    )
    .await?;
    Ok(Redirect::to(AFTER_SIGN_IN).into_response())
}
