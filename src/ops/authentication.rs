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
use crate::telemetry::metrics::SignInOutcome;

/// Attempts per window before further ones are refused: per (email or user, client
/// address), so guessing from one place locks only that place out of that account.
pub const PAIR_ATTEMPTS: i64 = 5;
/// Attempts per client address per window, whatever the email.
pub const IP_ATTEMPTS: i64 = 30;
/// Attempts per user per window, from every address together, before each further one
/// is slowed (never refused, so no one can lock an owner out from elsewhere).
pub const USER_ATTEMPTS_BEFORE_DELAY: i64 = 20;
/// The longest such delay.
pub const MAX_DELAY_MS: u64 = 8_000;
/// Wrong second-factor codes per user per window before the second step locks.
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

/// The counters an attempt is reserved under: the (identity, address) pair that locks,
/// the address's own (sign-in only), and the identity's across addresses, which slows.
struct Keys {
    pair: String,
    address: Option<String>,
    identity: String,
}

impl Keys {
    fn sign_in(email: &str, ip: &str) -> Keys {
        Keys {
            pair: format!("login:pair:{email}:{ip}"),
            address: Some(format!("login:ip:{ip}")),
            identity: format!("login:user:{email}"),
        }
    }

    fn sudo(user: &UserId, ip: &str) -> Keys {
        Keys {
            pair: format!("sudo:pair:{user}:{ip}"),
            address: None,
            identity: format!("sudo:user:{user}"),
        }
    }
}

/// An attempt counted under every key before the password is checked: concurrent
/// guesses each take a place, and only the allowed number reach argon2.
struct Reservation(Keys);

/// What reserving an attempt gave: a place, or how long to wait.
enum Reserved {
    Go(Reservation),
    Wait(i64),
}

/// The delay before checking a password once the identity has had `attempts` attempts
/// in the window: none up to the threshold, then doubling from a quarter second.
fn delay_ms(attempts: i64) -> u64 {
    let over = attempts - USER_ATTEMPTS_BEFORE_DELAY;
    if over <= 0 {
        return 0;
    }
    let shift = u32::try_from(over - 1).unwrap_or(u32::MAX).min(16);
    (250u64 << shift).min(MAX_DELAY_MS)
}

async fn reserve(ctx: &Context, keys: Keys) -> Result<Reserved, sqlx::Error> {
    let (pool, now) = (&ctx.db.pool, ctx.clock.unix());
    let limited = [
        (Some(&keys.pair), PAIR_ATTEMPTS),
        (keys.address.as_ref(), IP_ATTEMPTS),
    ];
    for (key, limit) in limited {
        let Some(key) = key else { continue };
        let (attempts, start) =
            throttle_store::reserve(pool, key, now, WINDOW_SECONDS, limit).await?;
        if attempts > limit {
            return Ok(Reserved::Wait((start + WINDOW_SECONDS - now).max(1)));
        }
    }
    let (attempts, _) =
        throttle_store::reserve(pool, &keys.identity, now, WINDOW_SECONDS, i64::MAX).await?;
    let delay = delay_ms(attempts);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    Ok(Reserved::Go(Reservation(keys)))
}

impl Reservation {
    /// The attempt succeeded: the pair's count is forgotten, and the shared counters
    /// (address, identity) get their place back.
    async fn succeeded(self, ctx: &Context) -> Result<(), sqlx::Error> {
        let pool = &ctx.db.pool;
        throttle_store::clear(pool, &self.0.pair).await?;
        if let Some(address) = &self.0.address {
            throttle_store::release(pool, address).await?;
        }
        throttle_store::release(pool, &self.0.identity).await
    }
}

/// Forgets counters whose window has closed (run hourly).
pub async fn sweep_throttle(ctx: &Context) -> Result<u64, sqlx::Error> {
    throttle_store::sweep(&ctx.db.pool, ctx.clock.unix() - WINDOW_SECONDS).await
}

/// A password checked under the sign-in throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Matched,
    Wrong,
    /// Too many recent attempts: not checked. Seconds to wait.
    Throttled(i64),
}

/// One password check under the sign-in throttle, for everything that asks a person
/// for their password as sign-in does: sign-in itself, and the current password of a
/// password change. The attempt is reserved under the sign-in counters of `email` and
/// the address before argon2 runs, so a wrong current password counts as a failed
/// sign-in. `hash` is None for an unknown email or a user who cannot sign in: the
/// check then costs the same and fails.
pub async fn check_password(
    ctx: &Context,
    email: &str,
    hash: Option<&str>,
    password: &Password,
    ip: &str,
) -> Result<PasswordCheck, AuthError> {
    let reservation = match reserve(ctx, Keys::sign_in(email, ip)).await? {
        Reserved::Go(reservation) => reservation,
        Reserved::Wait(wait) => return Ok(PasswordCheck::Throttled(wait)),
    };
    if ctx.passwords.verify(password, hash).await? {
        reservation.succeeded(ctx).await?;
        Ok(PasswordCheck::Matched)
    } else {
        Ok(PasswordCheck::Wrong)
    }
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
    let now = ctx.clock.unix();
    match (user, checked) {
        (_, PasswordCheck::Throttled(wait)) => {
            ctx.metrics.sign_in(SignInOutcome::Throttled);
            Ok(Outcome::Throttled(wait))
        }
        (Some(user), PasswordCheck::Matched) => {
            ctx.metrics.sign_in(SignInOutcome::Accepted);
            Ok(Outcome::Accepted(Box::new(user)))
        }
        (user, _) => {
            ctx.metrics.sign_in(SignInOutcome::Rejected);
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
    let reservation = match reserve(ctx, Keys::sudo(&user.id, ip)).await? {
        Reserved::Go(reservation) => reservation,
        Reserved::Wait(wait) => return Ok(Outcome::Throttled(wait)),
    };
    let password_ok = ctx
        .passwords
        .verify(password, user.password_hash.as_deref())
        .await?;
    // The code is only checked (and spent) after a right password.
    let code_ok = match (password_ok, user.has_two_factor(), code) {
        (false, _, _) | (true, false, _) => true,
        (true, true, Some(code)) => match check_second_factor(ctx, user, code).await? {
            CodeCheck::Accepted => true,
            CodeCheck::Wrong => false,
            CodeCheck::Locked(wait) => return Ok(Outcome::Throttled(wait)),
        },
        (true, true, None) => false,
    };
    let matched = password_ok && code_ok;
    let now = ctx.clock.unix();
    let (event_type, description) = if matched {
        reservation.succeeded(ctx).await?;
        (EventType::UserSudo, "Entered sudo mode")
    } else {
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
    let now = ctx.clock.unix();
    let key = second_factor_key(user_id);
    let row = throttle_store::attempts(&ctx.db.pool, &key, now, WINDOW_SECONDS).await?;
    Ok(row
        .filter(|(attempts, _)| *attempts >= SECOND_FACTOR_FAILURES)
        .map(|(_, start)| (start + WINDOW_SECONDS - now).max(1)))
}

/// What a two-factor code was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Accepted,
    Wrong,
    /// Too many wrong codes: not even checked; try again after this many seconds.
    Locked(i64),
}

/// Checks a two-factor code for `user` and spends it: a TOTP code of the previous,
/// current or next step that is newer than the last one accepted, or an unused recovery
/// code. Wrong codes count towards a lockout; while locked out no code is checked.
pub async fn check_second_factor(
    ctx: &Context,
    user: &User,
    code: &str,
) -> Result<CodeCheck, AuthError> {
    // Each code is counted before it is checked, so concurrent guesses cannot pass the
    // lockout; a right code forgets the count.
    let key = second_factor_key(&user.id);
    let now = ctx.clock.unix();
    let (attempts, start) = throttle_store::reserve(
        &ctx.db.pool,
        &key,
        now,
        WINDOW_SECONDS,
        SECOND_FACTOR_FAILURES,
    )
    .await?;
    if attempts > SECOND_FACTOR_FAILURES {
        return Ok(CodeCheck::Locked((start + WINDOW_SECONDS - now).max(1)));
    }
    if verify_second_factor(ctx, user, code).await? {
        throttle_store::clear(&ctx.db.pool, &key).await?;
        Ok(CodeCheck::Accepted)
    } else {
        Ok(CodeCheck::Wrong)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_after_the_threshold_and_stop_growing() {
        assert_eq!(delay_ms(1), 0);
        assert_eq!(delay_ms(USER_ATTEMPTS_BEFORE_DELAY), 0);
        assert_eq!(delay_ms(USER_ATTEMPTS_BEFORE_DELAY + 1), 250);
        assert_eq!(delay_ms(USER_ATTEMPTS_BEFORE_DELAY + 2), 500);
        assert_eq!(delay_ms(USER_ATTEMPTS_BEFORE_DELAY + 6), MAX_DELAY_MS);
        assert_eq!(delay_ms(i64::MAX), MAX_DELAY_MS);
    }
}
