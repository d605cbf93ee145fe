//! Password checks shared by the pages and the API: sign-in and re-authentication
//! (sudo), with throttling and events. Unknown emails, users who cannot sign in and
//! wrong passwords all cost one argon2 verification and give the same answer.

use super::Context;
use crate::db::event_store::{self, NewEvent};
use crate::db::user_store::{self, User};
use crate::db::{member_store, throttle_store};
use crate::domain::event_type::EventType;
use crate::domain::ids::{AccountId, UserId};
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

impl std::error::Error for AuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthError::Database(e) => Some(e),
            AuthError::Hash(e) => Some(e),
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Database(_) => f.write_str("database"),
            AuthError::Hash(_) => f.write_str("password check"),
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
async fn retry_after(ctx: &Context, key: &str, limit: i64) -> Result<Option<i64>, sqlx::Error> {
    let now = ctx.clock.unix();
    let row = throttle_store::failures(&ctx.db.pool, key, now, WINDOW_SECONDS).await?;
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

/// A password checked under the sign-in throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Matched,
    Wrong,
    /// Too many recent failures for this email or address: not checked. Seconds to wait.
    Throttled(i64),
}

/// One password check under the sign-in throttle (failures per email and per address),
/// for everything that asks a person for their password as sign-in does: sign-in
/// itself and the current password of a password change. `hash` is None for an unknown
/// email or a user who cannot sign in: the check then costs the same and fails. A
/// failure counts against the email and the address; a match clears the email's count.
pub async fn check_password(
    ctx: &Context,
    email: &str,
    hash: Option<&str>,
    password: &Password,
    ip: &str,
) -> Result<PasswordCheck, AuthError> {
    let (email_key, ip_key) = (email_key(email), ip_key(ip));
    let wait = match retry_after(ctx, &email_key, EMAIL_FAILURES).await? {
        Some(wait) => Some(wait),
        None => retry_after(ctx, &ip_key, IP_FAILURES).await?,
    };
    if let Some(wait) = wait {
        return Ok(PasswordCheck::Throttled(wait));
    }
    let matched = ctx.passwords.verify(password, hash).await?;
    if matched {
        throttle_store::clear(&ctx.db.pool, &email_key).await?;
        return Ok(PasswordCheck::Matched);
    }
    let now = ctx.clock.unix();
    throttle_store::record_failure(
        &ctx.db.pool,
        &email_key,
        now,
        WINDOW_SECONDS,
        EMAIL_FAILURES,
    )
    .await?;
    throttle_store::record_failure(&ctx.db.pool, &ip_key, now, WINDOW_SECONDS, IP_FAILURES).await?;
    Ok(PasswordCheck::Wrong)
}

/// Checks an email and password for sign-in. `email` must already be normalised.
pub async fn sign_in(
    ctx: &Context,
    email: &str,
    password: &Password,
    ip: &str,
) -> Result<Outcome, AuthError> {
    let user = user_store::find_by_email(&ctx.db.pool, email).await?;
    let hash = user
        .as_ref()
        .filter(|u| !u.is_locked())
        .and_then(|u| u.password_hash.as_deref());
    let checked = check_password(ctx, email, hash, password, ip).await?;
    match (user, checked) {
        (_, PasswordCheck::Throttled(wait)) => Ok(Outcome::Throttled(wait)),
        (Some(user), PasswordCheck::Matched) => Ok(Outcome::Accepted(Box::new(user))),
        (user, _) => {
            let now = ctx.clock.unix();
            let account = match &user {
                Some(u) => default_account(ctx, &u.id).await?,
                None => None,
            };
            let mut event = NewEvent::new(
                EventType::UserLoginFailure,
                "Sign-in failed: wrong email or password",
            )
            .actor(user.as_ref().map(|u| &u.id))
            .ip(Some(ip));
            if let Some(account) = &account {
                event = event.account(account);
            }
            event_store::record(&ctx.db.pool, &event, now).await?;
            Ok(Outcome::Rejected)
        }
    }
}

fn sudo_key(user_id: &UserId) -> String {
    format!("sudo:user:{user_id}")
}

/// Re-authentication of a signed-in user before a sensitive action: the password, and
/// a two-factor code when the user has two-factor authentication.
pub async fn reauthenticate(
    ctx: &Context,
    user: &User,
    account_id: &AccountId,
    password: &Password,
    code: Option<&str>,
    ip: &str,
) -> Result<Outcome, AuthError> {
    let key = sudo_key(&user.id);
    if let Some(wait) = retry_after(ctx, &key, SUDO_FAILURES).await? {
        return Ok(Outcome::Throttled(wait));
    }
    let password_ok = ctx
        .passwords
        .verify(password, user.password_hash.as_deref())
        .await?;
    // The code is only checked (and spent) after a right password.
    let code_ok = match (password_ok, user.has_two_factor(), code) {
        (false, _, _) | (true, false, _) => true,
        (true, true, Some(code)) => check_second_factor(ctx, user, code).await?,
        (true, true, None) => false,
    };
    let matched = password_ok && code_ok;
    let now = ctx.clock.unix();
    let (event_type, description) = if matched {
        throttle_store::clear(&ctx.db.pool, &key).await?;
        (EventType::UserSudo, "Entered sudo mode")
    } else {
        throttle_store::record_failure(&ctx.db.pool, &key, now, WINDOW_SECONDS, SUDO_FAILURES)
            .await?;
        (EventType::UserSudoFailure, "Re-authentication failed")
    };
    let event = NewEvent::new(event_type, description)
        .account(account_id)
        .actor(Some(&user.id))
        .ip(Some(ip));
    event_store::record(&ctx.db.pool, &event, now).await?;
    Ok(match (password_ok, code_ok) {
        (true, true) => Outcome::Accepted(Box::new(user.clone())),
        (true, false) => Outcome::WrongCode,
        (false, _) => Outcome::Rejected,
    })
}

fn second_factor_key(user_id: &UserId) -> String {
    format!("2fa:user:{user_id}")
}

/// Seconds left of a second-step lockout after too many wrong codes, if any.
pub async fn second_factor_locked(
    ctx: &Context,
    user_id: &UserId,
) -> Result<Option<i64>, AuthError> {
    Ok(retry_after(ctx, &second_factor_key(user_id), SECOND_FACTOR_FAILURES).await?)
}

/// Checks a two-factor code for `user` and spends it: a TOTP code of the previous,
/// current or next step that is newer than the last one accepted, or an unused recovery
/// code. Wrong codes count towards a lockout; while locked out every code is refused.
pub async fn check_second_factor(
    ctx: &Context,
    user: &User,
    code: &str,
) -> Result<bool, AuthError> {
    let key = second_factor_key(&user.id);
    if retry_after(ctx, &key, SECOND_FACTOR_FAILURES)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let accepted = verify_second_factor(ctx, user, code).await?;
    if accepted {
        throttle_store::clear(&ctx.db.pool, &key).await?;
    } else {
        let now = ctx.clock.unix();
        throttle_store::record_failure(
            &ctx.db.pool,
            &key,
            now,
            WINDOW_SECONDS,
            SECOND_FACTOR_FAILURES,
        )
        .await?;
    }
    Ok(accepted)
}

async fn verify_second_factor(ctx: &Context, user: &User, code: &str) -> Result<bool, AuthError> {
    let Some(sealed) = user.totp_secret.as_deref() else {
        return Ok(false);
    };
    let now = ctx.clock.unix();
    let code = code.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        let Some(secret) = open_totp_secret(ctx, &user.id, sealed) else {
            tracing::warn!(user_id = %user.id, "a two-factor secret does not decrypt with this server key");
            return Ok(false);
        };
        return Ok(match totp::matching_step(&secret, code, now) {
            Some(step) => user_store::accept_totp_step(&ctx.db.pool, &user.id, step).await?,
            None => false,
        });
    }
    let normalised = totp::normalise_recovery_code(code);
    if normalised.len() != 12 {
        return Ok(false);
    }
    Ok(
        user_store::use_recovery_code(&ctx.db.pool, &user.id, &secret::digest(&normalised), now)
            .await?,
    )
}

/// Encrypts a TOTP secret for storage in `users.totp_secret`.
pub fn seal_totp_secret(ctx: &Context, user_id: &UserId, secret: &str) -> String {
    ctx.secret_key
        .encrypt(secret.as_bytes(), &format!("totp:{user_id}"))
}

/// The base32 TOTP secret from its stored form; None when the key does not fit.
pub fn open_totp_secret(ctx: &Context, user_id: &UserId, sealed: &str) -> Option<String> {
    let bytes = ctx
        .secret_key
        .decrypt(sealed, &format!("totp:{user_id}"))
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The account a user lands in after sign-in: their oldest membership.
pub async fn default_account(
    ctx: &Context,
    user_id: &UserId,
) -> Result<Option<AccountId>, sqlx::Error> {
    Ok(member_store::accounts_of(&ctx.db.pool, user_id)
        .await?
        .into_iter()
        .next()
        .map(|(id, _)| id))
}

/// Records a completed sign-in (after the second step, when there is one).
pub async fn record_sign_in(
    ctx: &Context,
    user_id: &UserId,
    account_id: &AccountId,
    ip: &str,
    description: &str,
) -> Result<(), sqlx::Error> {
    let event = NewEvent::new(EventType::UserLogin, description)
        .account(account_id)
        .actor(Some(user_id))
        .ip(Some(ip));
    event_store::record(&ctx.db.pool, &event, ctx.clock.unix()).await
}

/// Records a wrong code at the second sign-in step.
pub async fn record_wrong_code(
    ctx: &Context,
    user_id: &UserId,
    account_id: &AccountId,
    ip: &str,
) -> Result<(), sqlx::Error> {
    let event = NewEvent::new(
        EventType::UserLoginFailure,
        "Sign-in failed: wrong two-factor code",
    )
    .account(account_id)
    .actor(Some(user_id))
    .ip(Some(ip));
    event_store::record(&ctx.db.pool, &event, ctx.clock.unix()).await
}

/// Records a sign-out.
pub async fn record_sign_out(
    ctx: &Context,
    user_id: &UserId,
    account_id: &AccountId,
    ip: &str,
) -> Result<(), sqlx::Error> {
    let event = NewEvent::new(EventType::UserLogout, "Signed out")
        .account(account_id)
        .actor(Some(user_id))
        .ip(Some(ip));
    event_store::record(&ctx.db.pool, &event, ctx.clock.unix()).await
}
