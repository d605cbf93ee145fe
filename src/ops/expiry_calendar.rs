//! Each user's token-expiry calendar (`/account/tokens/expiry.ics?key=…`): a link that
//! works without a session, so calendar apps can subscribe. Its key is random, shown
//! once, kept as a SHA-256 digest; making a new one replaces the old, revoking deletes it.

use super::Context;
use crate::db::calendar_store;
use crate::db::event_store::{self, NewEvent};
use crate::domain::event_type::EventType;
use crate::domain::icalendar::{self, ExpiryEvent};
use crate::domain::ids::{AccountId, UserId};
use crate::domain::secret::TokenKind;
use crate::domain::{random, secret};

const KEY_LEN: usize = 40;
/// The feed lists at most this many tokens (a user holds at most 100 of their own).
const FEED_LIMIT: i64 = 1_000;

/// Makes the user a new calendar key (the old link stops working); the key in clear,
/// for the one page that shows the link.
pub async fn new_key(
    ctx: &Context,
    account_id: &AccountId,
    user_id: &UserId,
    ip: &str,
) -> Result<String, sqlx::Error> {
    let key = random::base62(KEY_LEN);
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    calendar_store::put(&mut *tx, user_id, &secret::digest(&key), now).await?;
    let event = NewEvent::new(
        EventType::UserUpdate,
        "Made a new token-expiry calendar link",
    )
    .account(account_id)
    .actor(Some(user_id))
    .ip(Some(ip))
    .metadata(serde_json::json!({ "calendar": "created" }));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(key)
}

/// Revokes the user's calendar link; whether there was one.
pub async fn revoke_key(
    ctx: &Context,
    account_id: &AccountId,
    user_id: &UserId,
    ip: &str,
) -> Result<bool, sqlx::Error> {
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    if !calendar_store::delete(&mut *tx, user_id).await? {
        return Ok(false);
    }
    let event = NewEvent::new(
        EventType::UserUpdate,
        "Revoked the token-expiry calendar link",
    )
    .account(account_id)
    .actor(Some(user_id))
    .ip(Some(ip))
    .metadata(serde_json::json!({ "calendar": "revoked" }));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// The calendar behind a key, or None for a key that is not (or no longer) one.
pub async fn feed(ctx: &Context, key: &str) -> Result<Option<String>, sqlx::Error> {
    if key.len() != KEY_LEN || !random::is_base62(key) {
        return Ok(None);
    }
    let Some(user_id) = calendar_store::owner(&ctx.db.pool, &secret::digest(key)).await? else {
        return Ok(None);
    };
    let now = ctx.clock.unix();
    let tokens = calendar_store::feed(&ctx.db.pool, &user_id, now, FEED_LIMIT).await?;
    let texts: Vec<(String, String, String)> = tokens
        .iter()
        .map(|t| {
            let what = match t.kind {
                TokenKind::User => "API token",
                TokenKind::Automation => "Automation token",
            };
            (
                t.id.to_string(),
                format!("{what} \u{201c}{}\u{201d} expires", t.name),
                format!(
                    "{what} \u{201c}{}\u{201d} of the account {} ({}) expires. Make a new token and update what uses this one before then.",
                    t.name, t.account_name, t.account_id
                ),
            )
        })
        .collect();
    let events: Vec<ExpiryEvent> = tokens
        .iter()
        .zip(&texts)
        .map(|(t, (uid, summary, description))| ExpiryEvent {
            uid,
            summary,
            description,
            at: t.expires_at,
        })
        .collect();
    Ok(Some(icalendar::calendar(
        "Token expiry (tokenpanel)",
        &events,
        now,
    )))
}

/// When the user's calendar link was made, if they have one.
pub async fn created_at(ctx: &Context, user_id: &UserId) -> Result<Option<i64>, sqlx::Error> {
    calendar_store::created_at(&ctx.db.pool, user_id).await
}
