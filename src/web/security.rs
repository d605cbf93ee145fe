//! Account > Security: two-factor enrolment, removal and new recovery codes, the
//! password, the signed-in sessions, and (for superusers) the account's security
//! settings. Every change but signing sessions out needs sudo mode: the forms of this
//! page ask for the password inline while it is off; enrolment and the password page
//! send the person to re-authenticate first.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use super::error::WebError;
use super::page::{date_time, render, render_with, FieldErrors, Layout, Section, When};
use super::session::SignedIn;
use super::sudo::{Elevated, Refused, Sudo};
use crate::db::{session_store, user_store};
use crate::domain::access::Action;
use crate::domain::password::Password;
use crate::domain::{totp, user_agent, validate};
use crate::http::{ClientIp, Form};
use crate::ops::account_security::{self, PasswordChange};
use crate::ops::authentication;
use crate::state::AppState;

const PENDING_SECRET: &str = "totp_pending_secret";
const ISSUER: &str = "tokenpanel";
const PAGE: &str = "/account/security";
const PASSWORD_PAGE: &str = "/account/security/password";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PAGE, get(page))
        .route("/account/security/two-factor", get(enrol_page).post(enrol))
        .route("/account/security/two-factor/disable", post(disable))
        .route("/account/security/recovery-codes", post(regenerate_codes))
        .route("/account/security/settings", post(save_settings))
        .route(PASSWORD_PAGE, get(password_page).post(change_password))
        .route(
            "/account/security/sessions/sign-out",
            post(sign_out_session),
        )
        .route(
            "/account/security/sessions/sign-out-others",
            post(sign_out_others),
        )
}

/// One signed-in browser of the user.
pub struct SessionView {
    /// The digest the session is stored under: what the Sign out button names.
    pub id: String,
    pub browser: String,
    pub ip: String,
    pub signed_in: Option<When>,
    pub last_active: Option<When>,
    pub current: bool,
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
    /// The account's token policy in one line (superusers).
    token_policy: String,
    /// When the user's token-expiry calendar link was made, if they have one.
    calendar_since: Option<String>,
    sessions: Vec<SessionView>,
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
    let current = signed_in.session_digest();
    let now = state.clock.unix();
    let sessions = session_store::list_for_user(&state.db.pool, &user.id)
        .await?
        .into_iter()
        .map(|s| SessionView {
            current: current.as_deref() == Some(s.id_digest.as_str()),
            browser: user_agent::describe(s.user_agent.as_deref().unwrap_or("")),
            ip: s.ip.unwrap_or_else(|| "unknown".to_owned()),
            signed_in: s.signed_in_at.map(|at| When::new(at, now)),
            last_active: s.last_active_at.map(|at| When::new(at, now)),
            id: s.id_digest,
        })
        .collect();
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
        token_policy: if signed_in.may(Action::ManageTokenPolicy) {
            crate::db::token_policy_store::find(&state.db.pool, signed_in.account_id())
                .await?
                .summary()
        } else {
            String::new()
        },
        calendar_since: crate::ops::expiry_calendar::created_at(state, &user.id)
            .await?
            .map(date_time),
        sessions,
        notice,
        error,
    })
}

fn notice_of(raw: Option<&str>) -> Option<String> {
    let form = Form::from_query(raw).ok()?;
    Some(
        match form.text("done") {
            "password" => "Your password was changed. Your other sessions were signed out.",
            "two-factor-off" => {
                "Two-factor authentication is off. Your other sessions were signed out."
            }
            "signed-out" => "The session was signed out.",
            "signed-out-others" => "Your other sessions were signed out.",
            "settings" => "The account settings were saved.",
            "token-policy" => "The token policy was saved.",
            "calendar-revoked" => "The calendar link was revoked: it no longer works.",
            _ => return None,
        }
        .to_owned(),
    )
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, WebError> {
    let notice = notice_of(raw.as_deref());
    render(&security_page(&state, &signed_in, notice, None).await?)
}

/// The Security page with a re-authentication that failed.
async fn refused(state: &AppState, refused: Refused) -> Result<Response, WebError> {
    let page = security_page(state, &refused.signed_in, None, Some(refused.message)).await?;
    render_with(StatusCode::UNAUTHORIZED, &page)
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

pub async fn enrol_page(State(state): State<AppState>, sudo: Sudo) -> Result<Response, WebError> {
    if sudo.signed_in().member.user.has_two_factor() {
        return Ok(Redirect::to(PAGE).into_response());
    }
    let elevated = sudo.elevated(super::session::ENROLMENT_PATH)?;
    render(&enrol_view(&state, &elevated, None).await?)
}

#[derive(Template)]
#[template(path = "security/recovery_codes.html")]
struct RecoveryCodesPage {
    layout: Layout,
    codes: Vec<String>,
    /// "enabled" (two-factor just turned on) or "regenerated".
    what: &'static str,
}

pub async fn enrol(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    if sudo.signed_in().member.user.has_two_factor() {
        return Ok(Redirect::to(PAGE).into_response());
    }
    let signed_in = sudo.elevated(super::session::ENROLMENT_PATH)?;
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
    let keep = signed_in.session_digest();
    let codes = account_security::enable_two_factor(
        &state,
        signed_in.account_id(),
        signed_in.user_id(),
        &secret,
        step,
        keep.as_deref(),
        &ip,
    )
    .await?;
    signed_in.session.remove::<String>(PENDING_SECRET).await?;
    render(&RecoveryCodesPage {
        layout: signed_in.layout("Recovery codes", Section::Security),
        codes,
        what: "enabled",
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
        return Ok(Redirect::to(PAGE).into_response());
    }
    if signed_in.member.account.forces_2fa() {
        let message =
            "This account requires two-factor authentication, so it cannot be turned off."
                .to_owned();
        let page = security_page(&state, signed_in, None, Some(message)).await?;
        return render_with(StatusCode::FORBIDDEN, &page);
    }
    // The form asks for the password (and code) when sudo mode is off.
    let elevated = match sudo.inline(&state, &form, &ip).await? {
        Ok(elevated) => elevated,
        Err(r) => return refused(&state, r).await,
    };
    let keep = elevated.session_digest();
    account_security::disable_two_factor(
        &state,
        elevated.account_id(),
        elevated.user_id(),
        keep.as_deref(),
        &ip,
    )
    .await?;
    Ok(Redirect::to("/account/security?done=two-factor-off").into_response())
}

pub async fn regenerate_codes(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    if !sudo.signed_in().member.user.has_two_factor() {
        return Ok(Redirect::to(PAGE).into_response());
    }
    let elevated = match sudo.inline(&state, &form, &ip).await? {
        Ok(elevated) => elevated,
        Err(r) => return refused(&state, r).await,
    };
    let codes = account_security::regenerate_recovery_codes(
        &state,
        elevated.account_id(),
        elevated.user_id(),
        &ip,
    )
    .await?;
    render(&RecoveryCodesPage {
        layout: elevated.layout("Recovery codes", Section::Security),
        codes,
        what: "regenerated",
    })
}

pub async fn save_settings(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    sudo.signed_in().require(Action::ManageAccountSettings)?;
    let elevated = match sudo.inline(&state, &form, &ip).await? {
        Ok(elevated) => elevated,
        Err(r) => return refused(&state, r).await,
    };
    account_security::update_settings(
        &state,
        &elevated.member.account,
        elevated.user_id(),
        form.has("force_2fa"),
        form.has("force_sso"),
        &ip,
    )
    .await?;
    Ok(Redirect::to("/account/security?done=settings").into_response())
}

#[derive(Template)]
#[template(path = "security/password.html")]
struct PasswordPage {
    layout: Layout,
    errors: FieldErrors,
}

fn password_form(signed_in: &Elevated, errors: FieldErrors) -> PasswordPage {
    PasswordPage {
        layout: signed_in.layout("Change password", Section::Security),
        errors,
    }
}

pub async fn password_page(sudo: Sudo) -> Result<Response, WebError> {
    let elevated = sudo.elevated(PASSWORD_PAGE)?;
    render(&password_form(&elevated, FieldErrors::default()))
}

pub async fn change_password(
    State(state): State<AppState>,
    sudo: Sudo,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    let elevated = sudo.elevated(PASSWORD_PAGE)?;
    let current = Password::new(form.text("current_password"));
    let new = form.text("password");
    let mut errors = FieldErrors::default();
    if current.expose().is_empty() {
        errors.add("current_password", "Enter your current password.");
    }
    if let Err(e) = validate::new_password(new, form.text("password_confirmation")) {
        errors.add("password", e);
    }
    if !errors.is_empty() {
        return render_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &password_form(&elevated, errors),
        );
    }
    let keep = elevated.session_digest();
    let outcome = account_security::change_password(
        &state,
        &elevated.member.user,
        elevated.account_id(),
        &current,
        &Password::new(new),
        keep.as_deref(),
        &ip,
    )
    .await?;
    let (status, field, message) = match outcome {
        PasswordChange::Changed => {
            return Ok(Redirect::to("/account/security?done=password").into_response())
        }
        PasswordChange::WrongCurrent => (
            StatusCode::UNAUTHORIZED,
            "current_password",
            "That is not your current password.".to_owned(),
        ),
        PasswordChange::Throttled(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            "current_password",
            authentication::throttled_message(wait),
        ),
        PasswordChange::SameAsCurrent => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "password",
            "Choose a password other than your current one.".to_owned(),
        ),
    };
    render_with(
        status,
        &password_form(&elevated, FieldErrors::one(field, message)),
    )
}

pub async fn sign_out_session(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    form: Form,
) -> Result<Response, WebError> {
    let id = form.text("session");
    if signed_in.session_digest().as_deref() == Some(id) {
        // This browser: the same as the header's Sign out.
        authentication::record_sign_out(&state, signed_in.user_id(), signed_in.account_id(), &ip)
            .await?;
        super::session::sign_out(&signed_in.session).await?;
        return Ok(Redirect::to("/login").into_response());
    }
    if !account_security::end_session(&state, signed_in.account_id(), signed_in.user_id(), id, &ip)
        .await?
    {
        return Err(WebError::NotFound);
    }
    Ok(Redirect::to("/account/security?done=signed-out").into_response())
}

pub async fn sign_out_others(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    _form: Form,
) -> Result<Response, WebError> {
    let keep = signed_in.session_digest();
    account_security::end_other_sessions(
        &state,
        signed_in.account_id(),
        signed_in.user_id(),
        keep.as_deref(),
        &ip,
    )
    .await?;
    Ok(Redirect::to("/account/security?done=signed-out-others").into_response())
}
