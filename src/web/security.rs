//! Account > Security: two-factor enrolment and removal, and (for superusers) the
//! account's security settings.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use super::error::WebError;
use super::page::{render, render_with, Layout, Section};
use super::session::SignedIn;
use super::sudo::Sudo;
use crate::db::user_store;
use crate::domain::access::Action;
use crate::domain::totp;
use crate::http::{ClientIp, Form};
use crate::ops::account_security;
use crate::state::AppState;

const PENDING_SECRET: &str = "totp_pending_secret";
const ISSUER: &str = "tokenpanel";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/security", get(page))
        .route("/account/security/two-factor", get(enrol_page).post(enrol))
        .route("/account/security/two-factor/disable", post(disable))
        .route("/account/security/settings", post(save_settings))
}

#[derive(Template)]
#[template(path = "security/index.html")]
struct SecurityPage {
    layout: Layout,
    enabled: bool,
    recovery_left: i64,
    in_sudo: bool,
    is_superuser: bool,
    force_2fa: bool,
    force_sso: bool,
    notice: Option<String>,
    error: Option<String>,
}

async fn security_page(
    state: &AppState,
    signed_in: &SignedIn,
    notice: Option<String>,
    error: Option<String>,
) -> Result<SecurityPage, WebError> {
    let user = &signed_in.member.user;
    Ok(SecurityPage {
        layout: signed_in.layout("Security", Section::Security),
        enabled: user.has_two_factor(),
        recovery_left: user_store::unused_recovery_codes(&state.db.pool, &user.id).await?,
        in_sudo: signed_in
            .sudo_remaining(state.clock.unix())
            .await?
            .is_some(),
        is_superuser: signed_in.may(Action::ManageAccountSettings),
        force_2fa: signed_in.member.account.forces_2fa(),
        force_sso: signed_in.member.account.forces_sso(),
        notice,
        error,
    })
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    render(&security_page(&state, &signed_in, None, None).await?)
}

#[derive(Template)]
#[template(path = "security/enrol.html")]
struct EnrolPage {
    layout: Layout,
    secret: String,
    uri: String,
    qr_svg: String,
    forced: bool,
    error: Option<String>,
}

/// The secret being enrolled, kept (encrypted) in the session until a code confirms it.
async fn pending_secret(state: &AppState, signed_in: &SignedIn) -> Result<String, WebError> {
    let context = format!("pending:{}", signed_in.user_id());
    if let Some(sealed) = signed_in.session.get::<String>(PENDING_SECRET).await? {
        if let Ok(bytes) = state.secret_key.decrypt(&sealed, &context) {
            if let Ok(secret) = String::from_utf8(bytes) {
                return Ok(secret);
            }
        }
    }
    let secret = totp::generate_secret();
    let sealed = state.secret_key.encrypt(secret.as_bytes(), &context);
    signed_in.session.insert(PENDING_SECRET, sealed).await?;
    Ok(secret)
}

async fn enrol_view(
    state: &AppState,
    signed_in: &SignedIn,
    error: Option<String>,
) -> Result<EnrolPage, WebError> {
    let secret = pending_secret(state, signed_in).await?;
    let uri = totp::otpauth_uri(&secret, ISSUER, &signed_in.member.user.email);
    let qr_svg =
        totp::qr_svg(&uri).ok_or_else(|| WebError::internal("the QR code could not be drawn"))?;
    Ok(EnrolPage {
        layout: signed_in.layout("Set up two-factor authentication", Section::Security),
        secret,
        uri,
        qr_svg,
        forced: signed_in.member.account.forces_2fa(),
        error,
    })
}

pub async fn enrol_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    if signed_in.member.user.has_two_factor() {
        return Ok(Redirect::to("/account/security").into_response());
    }
    render(&enrol_view(&state, &signed_in, None).await?)
}

#[derive(Template)]
#[template(path = "security/recovery_codes.html")]
struct RecoveryCodesPage {
    layout: Layout,
    codes: Vec<String>,
}

pub async fn enrol(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    if signed_in.member.user.has_two_factor() {
        return Ok(Redirect::to("/account/security").into_response());
    }
    let secret = pending_secret(&state, &signed_in).await?;
    let now = state.clock.unix();
    let Some(step) = totp::matching_step(&secret, form.text("code"), now) else {
        let page = enrol_view(
            &state,
            &signed_in,
            Some("That code is not right. Enter the current 6-digit code from your app.".into()),
        )
        .await?;
        return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let codes = account_security::enable_two_factor(
        &state,
        signed_in.account_id(),
        signed_in.user_id(),
        &secret,
        step,
        &ip,
    )
    .await?;
    signed_in.session.remove::<String>(PENDING_SECRET).await?;
    render(&RecoveryCodesPage {
        layout: signed_in.layout("Recovery codes", Section::Security),
        codes,
    })
}

pub async fn disable(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    let signed_in = sudo.signed_in();
    if !signed_in.member.user.has_two_factor() {
        return Ok(Redirect::to("/account/security").into_response());
    }
    if signed_in.member.account.forces_2fa() {
        let message =
            "This account requires two-factor authentication, so it cannot be turned off."
                .to_owned();
        let page = security_page(&state, signed_in, None, Some(message)).await?;
        return render_with(StatusCode::FORBIDDEN, &page);
    }
    // The form asks for the password (and code) when sudo mode is off.
    let elevated = match sudo {
        Sudo::Active(elevated) => elevated,
        Sudo::Required(needs) => {
            let outcome = needs
                .reauthenticate(&state, form.text("password"), form.text("code"), &ip)
                .await?;
            match outcome {
                Ok(elevated) => elevated,
                Err(refused) => {
                    let page =
                        security_page(&state, &refused.signed_in, None, Some(refused.message))
                            .await?;
                    return render_with(StatusCode::UNAUTHORIZED, &page);
                }
            }
        }
    };
    account_security::disable_two_factor(&state, elevated.account_id(), elevated.user_id(), &ip)
        .await?;
    Ok(Redirect::to("/account/security").into_response())
}

pub async fn save_settings(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    signed_in.require(Action::ManageAccountSettings)?;
    account_security::update_settings(
        &state,
        &signed_in.member.account,
        signed_in.user_id(),
        form.has("force_2fa"),
        form.has("force_sso"),
        &ip,
    )
    .await?;
    Ok(Redirect::to("/account/security").into_response())
}
