//! The first run: while no user exists, a one-time setup secret lets whoever holds it
//! create the first account and its first superuser. Also account creation for the
//! operator tools.

use super::Context;
use crate::db::event_store::{self, NewEvent};
use crate::db::{account_store, member_store, setup_secret_store, user_store, Db};
use crate::domain::event_type::EventType;
use crate::domain::ids::{AccountId, UserId};
use crate::domain::roles::Role;
use crate::domain::{random, secret};

/// While no user exists, makes a one-time setup secret and returns the path that uses
/// it (the secret in the query, which request logs leave out); None once the panel has
/// users.
pub async fn setup_path(ctx: &Context) -> Result<Option<String>, sqlx::Error> {
    if user_store::count(&ctx.db.pool).await? > 0 {
        return Ok(None);
    }
    let secret_value = random::base62(32);
    setup_secret_store::add(
        &ctx.db.pool,
        &secret::digest(&secret_value),
        ctx.clock.unix(),
    )
    .await?;
    Ok(Some(format!("/setup?key={secret_value}")))
}

/// Whether the setup page may be shown: no user exists yet and the secret is current.
pub async fn setup_allowed(ctx: &Context, secret_value: &str) -> Result<bool, sqlx::Error> {
    if user_store::count(&ctx.db.pool).await? > 0 {
        return Ok(false);
    }
    setup_secret_store::exists(&ctx.db.pool, &secret::digest(secret_value)).await
}

/// The first account and its superuser, when the secret still holds and no user exists
/// (two concurrent set-ups race for the secret; one wins). The (account, user) ids, or
/// None when the setup is no longer open.
pub async fn set_up(
    ctx: &Context,
    secret_value: &str,
    account_name: &str,
    name: &str,
    email: &str,
    password_hash: &str,
    ip: &str,
) -> Result<Option<(AccountId, UserId)>, sqlx::Error> {
    let now = ctx.clock.unix();
    let (account_id, user_id) = (AccountId::generate(), UserId::generate());
    let mut tx = ctx.db.begin().await?;
    if !setup_secret_store::consume_all(&mut *tx, &secret::digest(secret_value)).await?
        || user_store::count(&mut *tx).await? > 0
    {
        return Ok(None);
    }
    account_store::create(&mut *tx, &account_id, account_name, now).await?;
    user_store::create(&mut *tx, &user_id, email, name, Some(password_hash), now).await?;
    member_store::add(&mut *tx, &account_id, &user_id, Role::Superuser, now).await?;
    let event = NewEvent::new(
        EventType::UserCreate,
        format!("Created account {account_name:?} and its first superuser"),
    )
    .account(&account_id)
    .actor(Some(&user_id))
    .ip(Some(ip));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(Some((account_id, user_id)))
}

/// The account with this name, created when none has it (operator tools).
pub async fn account_named(db: &Db, name: &str, now: i64) -> Result<AccountId, sqlx::Error> {
    if let Some(existing) = account_store::find_by_name(&db.pool, name).await? {
        return Ok(existing.id);
    }
    create_account(db, name, now).await
}

/// A new account (operator tools and tests).
pub async fn create_account(db: &Db, name: &str, now: i64) -> Result<AccountId, sqlx::Error> {
    let id = AccountId::generate();
    account_store::create(&db.pool, &id, name, now).await?;
    Ok(id)
}
