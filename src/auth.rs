//! Password checks shared by the pages and the API: sign-in and re-authentication
//! (sudo), with throttling and events. Unknown emails, users who cannot sign in and
//! wrong passwords all cost one argon2 verification and give the same answer.

use crate::app::AppState;
use crate::db::events::{self, NewEvent};
use crate::db::{accounts, throttle, users, users::User};
use crate::domain::password::{HashError, Password};
use crate::domain::{secret, totp};

/// Failures allowed per window before further attempts are refused.
pub const EMAIL_FAILURES: i64 = 5;
pub const IP_FAILURES: i64 = 30;
pub const SUDO_FAILURES: i64 = 5;
pub const SECOND_FACTOR_FAILURES: i64 = 5;
pub const WINDOW_SECONDS: i64 = 15 * 60;

#[derive(Debug)]
pub enum AuthError {
    Database(sqlx::Error),
    Hash(HashError),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        AuthError::Database(e)
    }
}

impl From<HashError> for AuthError {
    fn from(e: HashError) -> Self {
        AuthError::Hash(e)
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Database(e) => write!(f, "database: {e}"),
            AuthError::Hash(e) => e.fmt(f),
        }
    }
}

#[derive(Debug)]
pub enum Outcome {
    Accepted(Box<User>),
    Rejected,
    /// Re-authentication only: the password was right but the two-factor code is
    /// missing or wrong (the API answers this with `2fa.verify`).
    WrongCode,
    /// Too many recent failures; try again after this many seconds.
    Throttled(i64),
}

pub fn throttled_message(retry_after: i64) -> String {
    let minutes = (retry_after + 59) / 60;
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!("Too many failed attempts. Try again in {minutes} {unit}.")
}

/// Seconds until `key` may try again, when it is over `limit` in the current window.
async fn retry_after(state: &AppState, key: &str, limit: i64) -> Result<Option<i64>, sqlx::Error> {
    let now = state.clock.unix();
    let row = throttle::failures(&state.db.pool, key, now, WINDOW_SECONDS).await?;
    Ok(row
        .filter(|(failures, _)| *failures >= limit)
        .map(|(_, start)| (start + WINDOW_SECONDS - now).max(1)))
}

fn email_key(email: &str) -> String {
    format!("login:email:{email}")
}

fn ip_key(ip: &str) -> String {
    format!("login:ip:{ip}")
}

/// Checks an email and password for sign-in. `email` must already be normalised.
pub async fn sign_in(
    state: &AppState,
    email: &str,
    password: &Password,
    ip: &str,
) -> Result<Outcome, AuthError> {
    let (email_key, ip_key) = (email_key(email), ip_key(ip));
    let wait = match retry_after(state, &email_key, EMAIL_FAILURES).await? {
        Some(wait) => Some(wait),
        None => retry_after(state, &ip_key, IP_FAILURES).await?,
    };
    if let Some(wait) = wait {
        return Ok(Outcome::Throttled(wait));
    }
    let user = users::find_by_email(&state.db.pool, email).await?;
    let hash = user
        .as_ref()
        .filter(|u| !u.is_locked())
        .and_then(|u| u.password_hash.as_deref());
    let matched = state.passwords.verify(password, hash).await?;
    let now = state.clock.unix();
    match user {
        Some(user) if matched => {
            throttle::clear(&state.db.pool, &email_key).await?;
            Ok(Outcome::Accepted(Box::new(user)))
        }
        user => {
            throttle::record_failure(
                &state.db.pool,
                &email_key,
                now,
                WINDOW_SECONDS,
                EMAIL_FAILURES,
            )
            .await?;
            throttle::record_failure(&state.db.pool, &ip_key, now, WINDOW_SECONDS, IP_FAILURES)
                .await?;
            let account = match &user {
                Some(u) => accounts::memberships_of(&state.db.pool, &u.id)
                    .await?
                    .into_iter()
                    .next(),
                None => None,
            };
            let event = NewEvent {
                account_id: account.as_ref().map(|(id, _)| id.as_str()),
                event_type: "user.login_failure",
                actor_id: user.as_ref().map(|u| u.id.as_str()),
                ip: Some(ip),
                description: "Sign-in failed: wrong email or password".to_owned(),
                ..NewEvent::default()
            };
            events::record(&state.db.pool, &event, now).await?;
            Ok(Outcome::Rejected)
        }
    }
}

fn sudo_key(user_id: &str) -> String {
    format!("sudo:user:{user_id}")
}

/// Re-authentication of a signed-in user before a sensitive action: the password, and
/// a two-factor code when the user has two-factor authentication.
pub async fn reauthenticate(
    state: &AppState,
    user: &User,
    account_id: &str,
    password: &Password,
    code: Option<&str>,
    ip: &str,
) -> Result<Outcome, AuthError> {
    let key = sudo_key(&user.id);
    if let Some(wait) = retry_after(state, &key, SUDO_FAILURES).await? {
        return Ok(Outcome::Throttled(wait));
    }
    let password_ok = state
        .passwords
        .verify(password, user.password_hash.as_deref())
        .await?;
    // The code is only checked (and spent) after a right password.
    let code_ok = match (password_ok, user.has_two_factor(), code) {
        (false, _, _) | (true, false, _) => true,
        (true, true, Some(code)) => check_second_factor(state, user, code).await?,
        (true, true, None) => false,
    };
    let matched = password_ok && code_ok;
    let now = state.clock.unix();
    let (event_type, description) = if matched {
        throttle::clear(&state.db.pool, &key).await?;
        ("user.sudo", "Entered sudo mode")
    } else {
        throttle::record_failure(&state.db.pool, &key, now, WINDOW_SECONDS, SUDO_FAILURES).await?;
        ("user.sudo_failure", "Re-authentication failed")
    };
    let event = NewEvent {
        account_id: Some(account_id),
        event_type,
        actor_id: Some(&user.id),
        ip: Some(ip),
        description: description.to_owned(),
        ..NewEvent::default()
    };
    events::record(&state.db.pool, &event, now).await?;
    Ok(match (password_ok, code_ok) {
        (true, true) => Outcome::Accepted(Box::new(user.clone())),
        (true, false) => Outcome::WrongCode,
        (false, _) => Outcome::Rejected,
    })
}

fn second_factor_key(user_id: &str) -> String {
    format!("2fa:user:{user_id}")
}

/// Seconds left of a second-step lockout after too many wrong codes, if any.
pub async fn second_factor_locked(
    state: &AppState,
    user_id: &str,
) -> Result<Option<i64>, AuthError> {
    Ok(retry_after(state, &second_factor_key(user_id), SECOND_FACTOR_FAILURES).await?)
}

/// Checks a two-factor code for `user` and spends it: a TOTP code of the previous,
/// current or next step that is newer than the last one accepted, or an unused recovery
/// code. Wrong codes count towards a lockout; while locked out every code is refused.
pub async fn check_second_factor(
    state: &AppState,
    user: &User,
    code: &str,
) -> Result<bool, AuthError> {
    let key = second_factor_key(&user.id);
    if retry_after(state, &key, SECOND_FACTOR_FAILURES)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let accepted = verify_second_factor(state, user, code).await?;
    if accepted {
        throttle::clear(&state.db.pool, &key).await?;
    } else {
        let now = state.clock.unix();
        throttle::record_failure(
            &state.db.pool,
            &key,
            now,
            WINDOW_SECONDS,
            SECOND_FACTOR_FAILURES,
        )
        .await?;
    }
    Ok(accepted)
}

async fn verify_second_factor(
    state: &AppState,
    user: &User,
    code: &str,
) -> Result<bool, AuthError> {
    let Some(sealed) = user.totp_secret.as_deref() else {
        return Ok(false);
    };
    let now = state.clock.unix();
    let code = code.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        let Some(secret) = open_totp_secret(state, &user.id, sealed) else {
            tracing::warn!(user_id = %user.id, "a two-factor secret does not decrypt with this server key");
            return Ok(false);
        };
        return Ok(match totp::matching_step(&secret, code, now) {
            Some(step) => users::accept_totp_step(&state.db.pool, &user.id, step).await?,
            None => false,
        });
    }
    let normalised = totp::normalise_recovery_code(code);
    if normalised.len() != 12 {
        return Ok(false);
    }
    Ok(
        users::use_recovery_code(&state.db.pool, &user.id, &secret::digest(&normalised), now)
            .await?,
    )
}

/// Encrypts a TOTP secret for storage in `users.totp_secret`.
pub fn seal_totp_secret(state: &AppState, user_id: &str, secret: &str) -> String {
    state
        .secret_key
        .encrypt(secret.as_bytes(), &format!("totp:{user_id}"))
}

/// The base32 TOTP secret from its stored form; None when the key does not fit.
pub fn open_totp_secret(state: &AppState, user_id: &str, sealed: &str) -> Option<String> {
    let bytes = state
        .secret_key
        .decrypt(sealed, &format!("totp:{user_id}"))
        .ok()?;
    String::from_utf8(bytes).ok()
}
