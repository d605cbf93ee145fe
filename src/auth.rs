//! Password checks shared by the pages and the API: sign-in and re-authentication
//! (sudo), with throttling and events. Unknown emails, users who cannot sign in and
//! wrong passwords all cost one argon2 verification and give the same answer.

use crate::app::AppState;
use crate::db::events::{self, NewEvent};
use crate::db::{accounts, throttle, users, users::User};
use crate::domain::password::{HashError, Password};

/// Failures allowed per window before further attempts are refused.
pub const EMAIL_FAILURES: i64 = 5;
pub const IP_FAILURES: i64 = 30;
pub const SUDO_FAILURES: i64 = 5;
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
            throttle::record_failure(&state.db.pool, &email_key, now, WINDOW_SECONDS).await?;
            throttle::record_failure(&state.db.pool, &ip_key, now, WINDOW_SECONDS).await?;
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

/// Re-authentication of a signed-in user before a sensitive action.
pub async fn reauthenticate(
    state: &AppState,
    user: &User,
    account_id: &str,
    password: &Password,
    ip: &str,
) -> Result<Outcome, AuthError> {
    let key = sudo_key(&user.id);
    if let Some(wait) = retry_after(state, &key, SUDO_FAILURES).await? {
        return Ok(Outcome::Throttled(wait));
    }
    let matched = state
        .passwords
        .verify(password, user.password_hash.as_deref())
        .await?;
    let now = state.clock.unix();
    let (event_type, description) = if matched {
        throttle::clear(&state.db.pool, &key).await?;
        ("user.sudo", "Entered sudo mode")
    } else {
        throttle::record_failure(&state.db.pool, &key, now, WINDOW_SECONDS).await?;
        (
            "user.sudo_failure",
            "Re-authentication failed: wrong password",
        )
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
    Ok(if matched {
        Outcome::Accepted(Box::new(user.clone()))
    } else {
        Outcome::Rejected
    })
}
