//! Issuing and revoking tokens: the one place a token is stored and its event written,
//! for the pages, the API and the command line alike.

use super::Context;
use crate::db::event_store::{self, NewEvent};
use crate::db::token_store::{self as store, Created, NewToken};
use crate::db::{member_store, token_policy_store, user_store};
use crate::domain::cidr::Cidr;
use crate::domain::event_type::EventType;
use crate::domain::ids::{AccountId, ServiceId, TokenId, UserId};
use crate::domain::roles::{Role, ScopeSet};
use crate::domain::secret::{TokenKind, TokenSecret};
use crate::domain::token_policy::{self, PolicyRequest, PolicyViolation};

/// A checked request for a new token (see `domain::grant` for the checks).
#[derive(Debug)]
pub struct TokenRequest<'a> {
    pub kind: TokenKind,
    pub account_id: &'a AccountId,
    /// The acting user: the owner of a user token, the creator of an automation token.
    pub actor_id: &'a UserId,
    pub name: &'a str,
    pub scopes: &'a ScopeSet,
    /// Empty: all services.
    pub services: &'a [ServiceId],
    pub role: Option<Role>,
    pub tls_access: bool,
    pub expires_at: Option<i64>,
    /// The addresses the token may be used from (empty: anywhere). Only the account's
    /// token policy looks at it so far ("automation tokens need an IP allowlist").
    pub allowed_cidrs: &'a [Cidr],
    pub ip: Option<&'a str>,
}

#[derive(Debug)]
pub struct Issued {
    pub id: TokenId,
    pub secret: TokenSecret,
}

#[derive(Debug)]
pub enum IssueError {
    LimitReached(i64),
    /// The owner was removed from the account while the token was being created.
    NotMember,
    /// A chosen service was deleted while the token was being created.
    ServiceGone,
    /// The account's token policy refuses the token (`domain::token_policy`).
    Policy(PolicyViolation),
    Database(sqlx::Error),
}

impl From<sqlx::Error> for IssueError {
    fn from(e: sqlx::Error) -> Self {
        IssueError::Database(e)
    }
}

impl IssueError {
    pub const NOT_MEMBER: &'static str = "You are no longer a member of this account.";
    pub const SERVICE_GONE: &'static str =
        "A service chosen for this token has just been deleted. Choose the services again.";

    pub fn limit_message(limit: i64) -> String {
        format!("You already have {limit} active tokens, the most a user may hold. Delete a token you no longer use, then try again.")
    }
}

/// Issues a new token: the account's token policy first (every page, API call and
/// command that makes a token comes through here), then `issue_with_secret`.
pub async fn issue(ctx: &Context, request: &TokenRequest<'_>) -> Result<Issued, IssueError> {
    let policy = token_policy_store::find(&ctx.db.pool, request.account_id).await?;
    token_policy::check(
        &policy,
        &PolicyRequest {
            kind: request.kind,
            scopes: request.scopes,
            expires_at: request.expires_at,
            allowed_cidrs: request.allowed_cidrs,
        },
        ctx.clock.unix(),
    )
    .map_err(IssueError::Policy)?;
    issue_with_secret(ctx, request, TokenSecret::generate(request.kind)).await
}

/// Stores a token whose secret the caller supplies: imported legacy API keys (an
/// operator's act, outside the account's token policy).
pub async fn issue_with_secret(
    ctx: &Context,
    request: &TokenRequest<'_>,
    secret: TokenSecret,
) -> Result<Issued, IssueError> {
    let id = TokenId::generate();
    let now = ctx.clock.unix();
    let owner = (request.kind == TokenKind::User).then_some(request.actor_id);
    let token = NewToken {
        id: &id,
        account_id: request.account_id,
        kind: request.kind,
        user_id: owner,
        created_by: request.actor_id,
        name: request.name,
        scope: request.scopes,
        role: request.role,
        tls_access: request.tls_access,
        digest: &secret.digest(),
        created_at: now,
        expires_at: request.expires_at,
        service_ids: request.services,
    };
    let limit = ctx.settings.token_limit;
    let mut tx = ctx.db.pool.begin().await?;
    // The handlers checked the services, but one can be deleted in between: its lock
    // (service_store::lock) makes this insert wait, then fail on the foreign key.
    let created = match store::create(&mut tx, ctx.db.backend, &token, limit).await {
        Err(e) if crate::db::is_foreign_key_violation(&e) => {
            tx.rollback().await?;
            return Err(IssueError::ServiceGone);
        }
        created => created?,
    };
    match created {
        Created::Yes => {}
        Created::LimitReached => {
            tx.rollback().await?;
            return Err(IssueError::LimitReached(limit));
        }
        Created::NotMember => {
            tx.rollback().await?;
            return Err(IssueError::NotMember);
        }
    }
    let scope = request.scopes.to_string();
    let event = NewEvent::new(
        EventType::TokenCreate,
        format!(
            "Created {} token {:?} with scope {scope}",
            request.kind, request.name
        ),
    )
    .account(request.account_id)
    .actor(Some(request.actor_id))
    .token(&id)
    .ip(request.ip)
    .metadata(serde_json::json!({
        "kind": request.kind.as_str(),
        "name": request.name,
        "scope": scope,
        "services": request.services,
        "expires_at": request.expires_at,
        "role": request.role.map(Role::as_str),
        "tls_access": request.tls_access,
    }));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(Issued { id, secret })
}

/// Deletes one of the actor's own user tokens; false when they have no such token.
pub async fn delete_own(
    ctx: &Context,
    account_id: &AccountId,
    user_id: &UserId,
    token_id: &TokenId,
    ip: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let now = ctx.clock.unix();
    let mut tx = ctx.db.pool.begin().await?;
    let Some(name) = store::delete_owned(&mut *tx, account_id, user_id, token_id).await? else {
        return Ok(false);
    };
    let event = NewEvent::new(EventType::TokenDestroy, format!("Deleted token {name:?}"))
        .account(account_id)
        .actor(Some(user_id))
        .token(token_id)
        .ip(ip)
        .metadata(serde_json::json!({ "reason": "owner", "name": name }));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// The moment before which a token's last use (or creation, if never used) makes it
/// "unused for two years": the same date two calendar years earlier (29 February
/// becomes 1 March).
pub fn unused_cutoff(now: time::OffsetDateTime) -> i64 {
    let date = now.date();
    let earlier = date
        .replace_year(date.year() - 2)
        .or_else(|_| time::Date::from_calendar_date(date.year() - 2, time::Month::March, 1))
        .unwrap_or(date);
    earlier.with_time(now.time()).assume_utc().unix_timestamp()
}

/// Deletes every token unused for its account's inactivity window (the token policy's,
/// or by default two calendar years), even those set never to expire, each with its
/// `token.destroy` event. Safe to run on several nodes at once: a row is deleted (and
/// its event written) by exactly one of them.
pub async fn sweep_unused(ctx: &Context) -> Result<u64, sqlx::Error> {
    let now = ctx.clock.now();
    let mut swept = 0;
    // Accounts with a shorter window first, one transaction each.
    for (account_id, days) in token_policy_store::inactivity_windows(&ctx.db.pool).await? {
        let cutoff = now.unix_timestamp() - days * token_policy::DAY;
        let mut tx = ctx.db.pool.begin().await?;
        let deleted = store::delete_unused_in_account_before(&mut *tx, &account_id, cutoff).await?;
        let reason = format!("unused for {days} days");
        record_swept(&mut tx, &deleted, &reason, now.unix_timestamp()).await?;
        tx.commit().await?;
        swept += deleted.len() as u64;
    }
    let mut tx = ctx.db.pool.begin().await?;
    let deleted = store::delete_unused_before(&mut *tx, unused_cutoff(now)).await?;
    record_swept(
        &mut tx,
        &deleted,
        "unused for two years",
        now.unix_timestamp(),
    )
    .await?;
    tx.commit().await?;
    Ok(swept + deleted.len() as u64)
}

async fn record_swept(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    deleted: &[store::Swept],
    reason: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    for token in deleted {
        let event = NewEvent::new(
            EventType::TokenDestroy,
            format!("Deleted token {:?}: {reason}", token.name),
        )
        .account(&token.account_id)
        .token(&token.id)
        .metadata(serde_json::json!({
            "reason": reason,
            "name": token.name,
            "owner": token.user_id,
            "last_used_at": token.last_used_at,
        }));
        event_store::record(&mut **tx, &event, now).await?;
    }
    Ok(())
}

pub const LEGACY_USER_NAME: &str = "Global API Token";

#[derive(Debug)]
pub enum ImportError {
    Malformed,
    UnknownAccount,
    AlreadyImported,
    /// The account's legacy-key user holds as many active tokens as any user may.
    LimitReached(i64),
    Database(sqlx::Error),
}

impl From<sqlx::Error> for ImportError {
    fn from(e: sqlx::Error) -> Self {
        ImportError::Database(e)
    }
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::Malformed => {
                f.write_str("a legacy API key is 16 to 128 characters of A-Z, a-z, 0-9, _ and -")
            }
            ImportError::UnknownAccount => f.write_str("there is no account with that id"),
            ImportError::AlreadyImported => f.write_str("this key has already been imported"),
            ImportError::LimitReached(limit) => write!(
                f,
                "the account already holds {limit} imported keys, the most its \"{LEGACY_USER_NAME}\" user may hold; delete one on Account tokens first"
            ),
            ImportError::Database(e) => write!(f, "database: {e}"),
        }
    }
}

/// Imports a legacy account API key as a `global`, all-services, never-expiring token
/// owned by the account's synthetic "Global API Token" user (made once; it has no
/// password, so it cannot sign in). Only the key's digest is stored.
pub async fn import_legacy_key(
    ctx: &Context,
    account_id: &AccountId,
    key: &str,
) -> Result<TokenId, ImportError> {
    let secret = TokenSecret::from_legacy_key(key.trim()).ok_or(ImportError::Malformed)?;
    if crate::db::account_store::find(&ctx.db.pool, account_id)
        .await?
        .is_none()
    {
        return Err(ImportError::UnknownAccount);
    }
    if store::digest_exists(&ctx.db.pool, &secret.digest()).await? {
        return Err(ImportError::AlreadyImported);
    }
    let user_id = legacy_user(ctx, account_id).await?;
    let scopes = ScopeSet::parse("global").map_err(|_| ImportError::Malformed)?;
    let request = TokenRequest {
        kind: TokenKind::User,
        account_id,
        actor_id: &user_id,
        name: "Legacy API key",
        scopes: &scopes,
        services: &[],
        role: None,
        tls_access: false,
        expires_at: None,
        allowed_cidrs: &[],
        ip: None,
    };
    match issue_with_secret(ctx, &request, secret).await {
        Ok(issued) => Ok(issued.id),
        Err(IssueError::Database(e)) if crate::db::is_unique_violation(&e) => {
            Err(ImportError::AlreadyImported)
        }
        Err(IssueError::Database(e)) => Err(e.into()),
        Err(IssueError::LimitReached(limit)) => Err(ImportError::LimitReached(limit)),
        // The account (and with it the synthetic user's membership) went away meanwhile.
        Err(IssueError::NotMember | IssueError::ServiceGone) => Err(ImportError::UnknownAccount),
        // issue_with_secret does not apply the policy.
        Err(IssueError::Policy(v)) => {
            Err(ImportError::Database(sqlx::Error::Protocol(v.message())))
        }
    }
}

/// The account's synthetic legacy-key user, created on first use.
async fn legacy_user(ctx: &Context, account_id: &AccountId) -> Result<UserId, sqlx::Error> {
    let email = format!(
        "global-api-token@{}.legacy.invalid",
        account_id.as_str().to_lowercase()
    );
    if let Some(user) = user_store::find_by_email(&ctx.db.pool, &email).await? {
        return Ok(user.id);
    }
    let id = UserId::generate();
    let now = ctx.clock.unix();
    let mut tx = ctx.db.pool.begin().await?;
    user_store::create_synthetic(&mut *tx, &id, &email, LEGACY_USER_NAME, now).await?;
    // Legacy keys had the whole account's powers.
    member_store::add(&mut *tx, account_id, &id, Role::Superuser, now).await?;
    let event = NewEvent::new(
        EventType::UserCreate,
        format!("Created the synthetic user {LEGACY_USER_NAME:?} for imported legacy API keys"),
    )
    .account(account_id);
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(id)
}

/// A deletion through the API: how far it may reach and who asks.
#[derive(Debug, Clone, Copy)]
pub struct Revocation<'a> {
    pub scope: store::DeleteScope<'a>,
    /// The person acting (None for an automation token).
    pub actor_id: Option<&'a UserId>,
    /// The token the request came with.
    pub via_token: Option<&'a TokenId>,
    /// Why, for the event: "owner", "superuser" or "self".
    pub reason: &'a str,
    pub ip: Option<&'a str>,
}

#[derive(Debug)]
pub enum RevokeError {
    /// This id is not a token the actor may delete; nothing was deleted.
    NotFound(TokenId),
    Database(sqlx::Error),
}

impl From<sqlx::Error> for RevokeError {
    fn from(e: sqlx::Error) -> Self {
        RevokeError::Database(e)
    }
}

/// Deletes every token in `ids` or none of them, each with its event, in one
/// transaction. Revocation is seen at once by every node: nothing caches tokens.
pub async fn revoke(
    ctx: &Context,
    ids: &[TokenId],
    revocation: &Revocation<'_>,
) -> Result<(), RevokeError> {
    // The same id twice is one deletion, not a missing token.
    let mut unique: Vec<&TokenId> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    let now = ctx.clock.unix();
    let mut tx = ctx.db.pool.begin().await?;
    for id in unique {
        let Some(deleted) = store::delete_scoped(&mut *tx, &revocation.scope, id).await? else {
            tx.rollback().await?;
            return Err(RevokeError::NotFound(id.clone()));
        };
        let event = NewEvent::new(
            EventType::TokenDestroy,
            format!("Deleted {} token {:?}", deleted.kind, deleted.name),
        )
        .account(revocation.scope.account_id)
        .actor(revocation.actor_id)
        .token(id)
        .ip(revocation.ip)
        .metadata(serde_json::json!({
            "reason": revocation.reason,
            "name": deleted.name,
            "kind": deleted.kind.as_str(),
            "owner": deleted.user_id,
            "via_token": revocation.via_token,
        }));
        event_store::record(&mut *tx, &event, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Puts an API token in sudo mode until `until` (after its owner re-authenticated).
pub async fn elevate(
    ctx: &Context,
    account_id: &AccountId,
    actor_id: &UserId,
    token_id: &TokenId,
    until: i64,
    ip: Option<&str>,
) -> Result<(), sqlx::Error> {
    let now = ctx.clock.unix();
    let mut tx = ctx.db.pool.begin().await?;
    store::set_sudo(&mut *tx, token_id, until).await?;
    let event = NewEvent::new(EventType::TokenSudo, "Put an API token in sudo mode")
        .account(account_id)
        .actor(Some(actor_id))
        .token(token_id)
        .ip(ip)
        .metadata(serde_json::json!({ "until": until }));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn two_calendar_years_back() {
        let cutoff = unused_cutoff(datetime!(2026-11-28 10:00 UTC));
        assert_eq!(cutoff, datetime!(2024-11-28 10:00 UTC).unix_timestamp());
        let leap = unused_cutoff(datetime!(2028-02-29 00:00 UTC));
        assert_eq!(leap, datetime!(2026-03-01 00:00 UTC).unix_timestamp());
    }
}
