//! What a user does on the Security page: two-factor authentication on and off, new
//! recovery codes, their password, their sessions; the account's security settings;
//! and an operator's password reset.

use super::authentication::{check_password, seal_totp_secret, AuthError, PasswordCheck};
use super::token_cache::{self, Change};
use super::Context;
use crate::db::account_store::{self, Account};
use crate::db::event_store::{self, NewEvent};
use crate::db::session_store;
use crate::db::token_policy_store;
use crate::db::user_store::{self, User};
use crate::domain::event_type::EventType;
use crate::domain::ids::{AccountId, UserId};
use crate::domain::password::Password;
use crate::domain::token_policy::TokenPolicy;
use crate::domain::{secret, totp};

/// Turns two-factor authentication on with a secret a code has just confirmed (`step`
/// is that code's step, so it cannot be replayed), and makes fresh recovery codes:
/// returned in clear for the one page that shows them, stored as digests. Every other
/// session of the user (all but `keep`) ends.
pub async fn enable_two_factor(
    ctx: &Context,
    account_id: &AccountId,
    user_id: &UserId,
    totp_secret: &str,
    step: i64,
    keep: Option<&str>,
    ip: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let now = ctx.clock.unix();
    let codes = totp::recovery_codes();
    let digests = recovery_digests(&codes);
    let mut tx = ctx.db.begin().await?;
    let sealed = seal_totp_secret(ctx, user_id, totp_secret);
    user_store::enable_totp(&mut *tx, user_id, &sealed, step).await?;
    user_store::replace_recovery_codes(&mut tx, user_id, &digests, now).await?;
    session_store::delete_for_user(&mut *tx, user_id, keep).await?;
    let event = NewEvent::new(
        EventType::TwoFactorEnable,
        "Turned on two-factor authentication",
    )
    .account(account_id)
    .actor(Some(user_id))
    .ip(Some(ip));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(codes)
}

/// Turns two-factor authentication off and forgets the recovery codes. Every other
/// session of the user (all but `keep`) ends.
pub async fn disable_two_factor(
    ctx: &Context,
    account_id: &AccountId,
    user_id: &UserId,
    keep: Option<&str>,
    ip: &str,
) -> Result<(), sqlx::Error> {
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    user_store::disable_totp(&mut *tx, user_id).await?;
    user_store::replace_recovery_codes(&mut tx, user_id, &[], now).await?;
    session_store::delete_for_user(&mut *tx, user_id, keep).await?;
    let event = NewEvent::new(
        EventType::TwoFactorDisable,
        "Turned off two-factor authentication",
    )
    .account(account_id)
    .actor(Some(user_id))
    .ip(Some(ip));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await
}

/// Changes whether the account requires two-factor authentication and single sign-on.
pub async fn update_settings(
    ctx: &Context,
    account: &Account,
    actor: &UserId,
    force_2fa: bool,
    force_sso: bool,
    ip: &str,
) -> Result<(), sqlx::Error> {
    let now = ctx.clock.unix();
    let on_off = |on: bool| if on { "on" } else { "off" };
    let mut tx = ctx.db.begin().await?;
    account_store::update_settings(&mut *tx, &account.id, force_2fa, force_sso).await?;
    let event = NewEvent::new(
        EventType::AccountUpdate,
        format!(
            "Account settings: require two-factor authentication {}, require single sign-on {}",
            on_off(force_2fa),
            on_off(force_sso)
        ),
    )
    .account(&account.id)
    .actor(Some(actor))
    .ip(Some(ip))
    .metadata(serde_json::json!({
        "force_2fa": {"from": account.forces_2fa(), "to": force_2fa},
        "force_sso": {"from": account.forces_sso(), "to": force_sso},
    }));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await
}

/// Saves the account's token policy (Security > Token policy), with an
/// `account.token_policy_update` event naming the old and new rules.
pub async fn update_token_policy(
    ctx: &Context,
    account_id: &AccountId,
    actor: &UserId,
    policy: &TokenPolicy,
    ip: &str,
) -> Result<(), sqlx::Error> {
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    let before = token_policy_store::find(&mut *tx, account_id).await?;
    token_policy_store::save(&mut *tx, account_id, policy, now).await?;
    let rules = |p: &TokenPolicy| {
        serde_json::json!({
            "max_lifetime_days": p.max_lifetime_days,
            "require_expiry": p.require_expiry,
            "no_global_user_tokens": p.no_global_user_tokens,
            "automation_needs_allowlist": p.automation_needs_allowlist,
            "inactivity_days": p.inactivity_days,
        })
    };
    let event = NewEvent::new(
        EventType::AccountTokenPolicyUpdate,
        format!("Token policy: {}", policy.summary()),
    )
    .account(account_id)
    .actor(Some(actor))
    .ip(Some(ip))
    .metadata(serde_json::json!({ "from": rules(&before), "to": rules(policy) }));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await
}

/// Makes fresh recovery codes in place of the old ones (which stop working): returned
/// in clear for the one page that shows them, stored as digests.
pub async fn regenerate_recovery_codes(
    ctx: &Context,
    account_id: &AccountId,
    user_id: &UserId,
    ip: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let now = ctx.clock.unix();
    let codes = totp::recovery_codes();
    let mut tx = ctx.db.begin().await?;
    user_store::replace_recovery_codes(&mut tx, user_id, &recovery_digests(&codes), now).await?;
    let event = NewEvent::new(
        EventType::TwoFactorRecoveryCodes,
        "Made new recovery codes; the old ones stopped working",
    )
    .account(account_id)
    .actor(Some(user_id))
    .ip(Some(ip));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(codes)
}

fn recovery_digests(codes: &[String]) -> Vec<String> {
    codes
        .iter()
        .map(|c| secret::digest(&totp::normalise_recovery_code(c)))
        .collect()
}

/// What became of a password change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordChange {
    Changed,
    /// The current password typed was wrong (counted by the sign-in throttle).
    WrongCurrent,
    /// The new password is the current one.
    SameAsCurrent,
    /// Too many wrong passwords lately; seconds to wait.
    Throttled(i64),
}

/// A user changes their own password: the current one must be right (checked, and a
/// failure counted, by the sign-in throttle) and the new one (already checked against
/// the strength rules) must differ from it. Every session of the user but `keep` (the
/// digest of the session asking, when it has one) ends.
pub async fn change_password(
    ctx: &Context,
    user: &User,
    account_id: &AccountId,
    current: &Password,
    new: &Password,
    keep: Option<&str>,
    ip: &str,
) -> Result<PasswordChange, AuthError> {
    let checked =
        check_password(ctx, &user.email, user.password_hash.as_deref(), current, ip).await?;
    match checked {
        PasswordCheck::Throttled(wait) => return Ok(PasswordChange::Throttled(wait)),
        PasswordCheck::Wrong => return Ok(PasswordChange::WrongCurrent),
        PasswordCheck::Matched => {}
    }
    // The current password was just verified, so comparing the typed strings is exact.
    if current.expose() == new.expose() {
        return Ok(PasswordChange::SameAsCurrent);
    }
    let hash = ctx.passwords.hash(new).await?;
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    user_store::set_password(&mut *tx, &user.id, &hash).await?;
    let ended = session_store::delete_for_user(&mut *tx, &user.id, keep).await?;
    let event = NewEvent::new(EventType::UserPasswordUpdate, "Changed their password")
        .account(account_id)
        .actor(Some(&user.id))
        .ip(Some(ip))
        .metadata(serde_json::json!({ "sessions_ended": ended }));
    event_store::record(&mut *tx, &event, now).await?;
    token_cache::commit(ctx, tx, &[Change::User(user.id.clone())]).await?;
    Ok(PasswordChange::Changed)
}

/// An operator sets the password of the user with this email (`tokenpanel
/// reset-password`): every session of theirs ends. False when no user has the email.
pub async fn reset_password(ctx: &Context, email: &str, hash: &str) -> Result<bool, sqlx::Error> {
    let now = ctx.clock.unix();
    let Some(user) = user_store::find_by_email(&ctx.db.pool, email).await? else {
        return Ok(false);
    };
    let account = super::authentication::default_account(ctx, &user.id).await?;
    let mut tx = ctx.db.begin().await?;
    user_store::set_password(&mut *tx, &user.id, hash).await?;
    let ended = session_store::delete_for_user(&mut *tx, &user.id, None).await?;
    let mut event = NewEvent::new(
        EventType::UserPasswordUpdate,
        "An operator reset the password",
    )
    .actor(Some(&user.id))
    .metadata(serde_json::json!({ "reset_by_operator": true, "sessions_ended": ended }));
    if let Some(account) = &account {
        event = event.account(account);
    }
    event_store::record(&mut *tx, &event, now).await?;
    token_cache::commit(ctx, tx, &[Change::User(user.id.clone())]).await?;
    Ok(true)
}

/// Signs out one session of the user (not necessarily this browser's); false when the
/// user has no such session.
pub async fn end_session(
    ctx: &Context,
    account_id: &AccountId,
    user_id: &UserId,
    id_digest: &str,
    ip: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = ctx.db.begin().await?;
    if !session_store::delete_one(&mut *tx, user_id, id_digest).await? {
        return Ok(false);
    }
    let event = NewEvent::new(EventType::UserLogout, "Signed out a session")
        .account(account_id)
        .actor(Some(user_id))
        .ip(Some(ip));
    event_store::record(&mut *tx, &event, ctx.clock.unix()).await?;
    tx.commit().await?;
    Ok(true)
}

/// Signs out every session of the user but `keep`; how many ended.
pub async fn end_other_sessions(
    ctx: &Context,
    account_id: &AccountId,
    user_id: &UserId,
    keep: Option<&str>,
    ip: &str,
) -> Result<u64, sqlx::Error> {
    let mut tx = ctx.db.begin().await?;
    let ended = session_store::delete_for_user(&mut *tx, user_id, keep).await?;
    let event = NewEvent::new(EventType::UserLogout, "Signed out all other sessions")
        .account(account_id)
        .actor(Some(user_id))
        .ip(Some(ip))
        .metadata(serde_json::json!({ "sessions_ended": ended }));
    event_store::record(&mut *tx, &event, ctx.clock.unix()).await?;
    tx.commit().await?;
    Ok(ended)
}
