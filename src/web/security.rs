//! Account > Security: two-factor enrolment and removal, and (for superusers) the
//! account's security settings.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use super::error::WebError;
use super::form::Form;
use super::page::{render, render_with, Layout, Section};
use super::session::{ClientIp, SignedIn};
use super::sudo::{self, Reauth, Sudo};
use crate::app::AppState;
use crate::auth;
use crate::db::events::{self, NewEvent};
use crate::db::{accounts, users};
use crate::domain::{secret, totp};

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
        recovery_left: users::unused_recovery_codes(&state.db.pool, &user.id).await?,
        in_sudo: sudo::status(state, signed_in).await? == Sudo::Active,
        is_superuser: signed_in.member.role.is_superuser(),
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
    let user_id = signed_in.user_id();
    let codes = totp::recovery_codes();
    let digests: Vec<String> = codes
        .iter()
        .map(|c| secret::digest(&totp::normalise_recovery_code(c)))
        .collect();
    let mut tx = state.db.pool.begin().await?;
    users::enable_totp(
        &mut *tx,
        user_id,
        &auth::seal_totp_secret(&state, user_id, &secret),
        step,
    )
    .await?;
    users::replace_recovery_codes(&mut tx, user_id, &digests, now).await?;
    let event = NewEvent {
        account_id: Some(signed_in.account_id()),
        event_type: "two_factor_auth.enable",
        actor_id: Some(user_id),
        ip: Some(&ip),
        description: "Turned on two-factor authentication".into(),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    signed_in.session.remove::<String>(PENDING_SECRET).await?;
    render(&RecoveryCodesPage {
        layout: signed_in.layout("Recovery codes", Section::Security),
        codes,
    })
}

pub async fn disable(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    if !signed_in.member.user.has_two_factor() {
        return Ok(Redirect::to("/account/security").into_response());
    }
    if signed_in.member.account.forces_2fa() {
        let message =
            "This account requires two-factor authentication, so it cannot be turned off."
                .to_owned();
        let page = security_page(&state, &signed_in, None, Some(message)).await?;
        return render_with(StatusCode::FORBIDDEN, &page);
    }
    if sudo::status(&state, &signed_in).await? == Sudo::Required {
        let outcome = sudo::reauthenticate(
            &state,
            &signed_in,
            form.text("password"),
            form.text("code"),
            &ip,
        )
        .await?;
        if let Reauth::Failed(message) = outcome {
            let page = security_page(&state, &signed_in, None, Some(message)).await?;
            return render_with(StatusCode::UNAUTHORIZED, &page);
        }
    }
    let user_id = signed_in.user_id();
    let now = state.clock.unix();
    let mut tx = state.db.pool.begin().await?;
    users::disable_totp(&mut *tx, user_id).await?;
    users::replace_recovery_codes(&mut tx, user_id, &[], now).await?;
    let event = NewEvent {
        account_id: Some(signed_in.account_id()),
        event_type: "two_factor_auth.disable",
        actor_id: Some(user_id),
        ip: Some(&ip),
        description: "Turned off two-factor authentication".into(),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(Redirect::to("/account/security").into_response())
}

pub async fn save_settings(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    if !signed_in.member.role.is_superuser() {
        return Err(WebError::Forbidden(
            "Only superusers can change the account's settings.".into(),
        ));
    }
    let (force_2fa, force_sso) = (form.has("force_2fa"), form.has("force_sso"));
    let account = &signed_in.member.account;
    let now = state.clock.unix();
    let mut tx = state.db.pool.begin().await?;
    accounts::update_settings(&mut *tx, &account.id, force_2fa, force_sso).await?;
    let event = NewEvent {
        account_id: Some(&account.id),
        event_type: "account.update",
        actor_id: Some(signed_in.user_id()),
        ip: Some(&ip),
        description: format!(
            "Account settings: require two-factor authentication {}, require single sign-on {}",
            if force_2fa { "on" } else { "off" },
            if force_sso { "on" } else { "off" }
        ),
        metadata: Some(serde_json::json!({
            "force_2fa": {"from": account.forces_2fa(), "to": force_2fa},
            "force_sso": {"from": account.forces_sso(), "to": force_sso},
        })),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(Redirect::to("/account/security").into_response())
}
