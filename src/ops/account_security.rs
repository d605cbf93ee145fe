//! Two-factor authentication on and off, and the account's security settings.

use super::authentication::seal_totp_secret;
use super::Context;
use crate::db::account_store::{self, Account};
use crate::db::event_store::{self, NewEvent};
use crate::db::user_store;
use crate::domain::event_type::EventType;
use crate::domain::ids::{AccountId, UserId};
use crate::domain::{secret, totp};

/// Turns two-factor authentication on with a secret a code has just confirmed (`step`
/// is that code's step, so it cannot be replayed), and makes fresh recovery codes:
/// returned in clear for the one page that shows them, stored as digests.
pub async fn enable_two_factor(
    ctx: &Context,
    account_id: &AccountId,
    user_id: &UserId,
    totp_secret: &str,
    step: i64,
    ip: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let now = ctx.clock.unix();
    let codes = totp::recovery_codes();
    let digests: Vec<String> = codes
        .iter()
        .map(|c| secret::digest(&totp::normalise_recovery_code(c)))
        .collect();
    let mut tx = ctx.db.pool.begin().await?;
    let sealed = seal_totp_secret(ctx, user_id, totp_secret);
    user_store::enable_totp(&mut *tx, user_id, &sealed, step).await?;
    user_store::replace_recovery_codes(&mut tx, user_id, &digests, now).await?;
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

/// Turns two-factor authentication off and forgets the recovery codes.
pub async fn disable_two_factor(
    ctx: &Context,
    account_id: &AccountId,
    user_id: &UserId,
    ip: &str,
) -> Result<(), sqlx::Error> {
    let now = ctx.clock.unix();
    let mut tx = ctx.db.pool.begin().await?;
    user_store::disable_totp(&mut *tx, user_id).await?;
    user_store::replace_recovery_codes(&mut tx, user_id, &[], now).await?;
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
    let mut tx = ctx.db.pool.begin().await?;
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
