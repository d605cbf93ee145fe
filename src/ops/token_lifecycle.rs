//! Issuing and revoking tokens: the one place a token is stored and its event written,
//! for the pages, the API and the command line alike.

use super::token_cache::{self, Change};
use super::Context;
use crate::db::event_store::{self, NewEvent};
use crate::db::token_store::{self as store, Created, NewToken};
use crate::db::{member_store, token_policy_store, user_store};
use crate::domain::cidr::Allowlist;
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
    /// Checked by `domain::validate::description`.
    pub description: Option<&'a str>,
    /// The addresses the token may be used from (None: any).
    pub allowed_cidrs: Option<&'a Allowlist>,
    /// Set when the new token replaces another (`roll`).
    pub rolled: Option<Rolled<'a>>,
    pub ip: Option<&'a str>,
}

/// What a roll adds to an issue: the token replaced, until when its secret still
/// works, who asked.
#[derive(Debug, Clone, Copy)]
pub struct Rolled<'a> {
    pub from: &'a TokenId,
    /// The old secret stops working at this moment (now: at once).
    pub overlap_ends_at: i64,
    /// The person who rolled it (None: an automation token rolled itself).
    pub by: Option<&'a UserId>,
    /// The token the request came with (API).
    pub via_token: Option<&'a TokenId>,
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
    /// The token to roll is gone, expired or already rolled (perhaps a moment ago by
    /// another request).
    NotRollable,
    Database(sqlx::Error),
}

impl From<sqlx::Error> for IssueError {
    fn from(e: sqlx::Error) -> Self {
        IssueError::Database(e)
    }
}

impl IssueError {
    pub const NOT_MEMBER: &'static str = "You are no longer a member of this account.";
    pub const NOT_ROLLABLE: &'static str =
        "This token cannot be rolled: it has expired or has already been rolled.";
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
            has_allowlist: request.allowed_cidrs.is_some(),
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
        description: request.description,
        allowed_cidrs: request.allowed_cidrs,
        rolled_from: request.rolled.map(|r| r.from),
    };
    let limit = ctx.settings.token_limit;
    let mut tx = ctx.db.begin().await?;
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
    if let Some(rolled) = &request.rolled {
        // Retired after the insert (which must come first in the transaction); a
        // token rolled meanwhile by another request is not rolled twice.
        let Some(retired) = store::retire(
            &mut *tx,
            request.account_id,
            rolled.from,
            &id,
            rolled.overlap_ends_at,
            now,
        )
        .await?
        else {
            tx.rollback().await?;
            return Err(IssueError::NotRollable);
        };
        let retired_at = rolled.overlap_ends_at.max(now);
        if retired_at <= now {
            store::delete_by_id(&mut *tx, rolled.from).await?;
        }
        store::remember_retired(
            &mut *tx,
            &store::RetiredSecret {
                digest: &retired.secret_digest,
                token_id: rolled.from,
                account_id: request.account_id,
                user_id: retired.user_id.as_ref(),
                name: &retired.name,
                replaced_by: &id,
                retired_at,
            },
        )
        .await?;
    }
    let scope = request.scopes.to_string();
    let mut metadata = serde_json::json!({
        "kind": request.kind.as_str(),
        "name": request.name,
        "scope": scope,
        "services": request.services,
        "expires_at": request.expires_at,
        "role": request.role.map(Role::as_str),
        "tls_access": request.tls_access,
        "description": request.description,
        "allowed_cidrs": request.allowed_cidrs.map(Allowlist::strings),
    });
    let (event_type, text, actor) = match &request.rolled {
        None => (
            EventType::TokenCreate,
            format!(
                "Created {} token {:?} with scope {scope}",
                request.kind, request.name
            ),
            Some(request.actor_id),
        ),
        Some(rolled) => {
            metadata["rolled_from"] = serde_json::json!(rolled.from);
            metadata["overlap_ends_at"] = serde_json::json!(rolled.overlap_ends_at.max(now));
            metadata["via_token"] = serde_json::json!(rolled.via_token);
            let overlap = if rolled.overlap_ends_at <= now {
                "the old secret stopped working at once".to_owned()
            } else {
                format!("the old secret works until {}", utc(rolled.overlap_ends_at))
            };
            (
                EventType::TokenRotate,
                format!(
                    "Rolled {} token {:?} (from {}): {overlap}",
                    request.kind, request.name, rolled.from
                ),
                rolled.by,
            )
        }
    };
    let event = NewEvent::new(event_type, text)
        .account(request.account_id)
        .actor(actor)
        .token(&id)
        .ip(request.ip)
        .metadata(metadata);
    event_store::record(&mut *tx, &event, now).await?;
    // A rolled token's old secret now expires (and names its replacement).
    let changes: Vec<Change> = request
        .rolled
        .iter()
        .map(|r| Change::token(r.from))
        .collect();
    token_cache::commit(ctx, tx, &changes).await?;
    Ok(Issued { id, secret })
}

/// `2026-11-28 14:05:00 UTC`, for event descriptions.
fn utc(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => unix.to_string(),
    }
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
    let mut tx = ctx.db.begin().await?;
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
    token_cache::commit(ctx, tx, &[Change::token(token_id)]).await?;
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
        let mut tx = ctx.db.begin().await?;
        let deleted = store::delete_unused_in_account_before(&mut *tx, &account_id, cutoff).await?;
        let reason = format!("unused for {days} days");
        record_swept(&mut tx, &deleted, &reason, now.unix_timestamp()).await?;
        let ids = deleted.iter().map(|t| t.id.clone()).collect();
        token_cache::commit(ctx, tx, &[Change::Tokens(ids)]).await?;
        swept += deleted.len() as u64;
    }
    let mut tx = ctx.db.begin().await?;
    let deleted = store::delete_unused_before(&mut *tx, unused_cutoff(now)).await?;
    record_swept(
        &mut tx,
        &deleted,
        "unused for two years",
        now.unix_timestamp(),
    )
    .await?;
    let ids = deleted.iter().map(|t| t.id.clone()).collect();
    token_cache::commit(ctx, tx, &[Change::Tokens(ids)]).await?;
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
        description: None,
        allowed_cidrs: None,
        rolled: None,
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
        Err(IssueError::NotMember | IssueError::ServiceGone | IssueError::NotRollable) => {
            Err(ImportError::UnknownAccount)
        }
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
    let mut tx = ctx.db.begin().await?;
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
/// transaction. The token cache forgets them here at once, and on every other node
/// when the transaction commits (`token_cache::commit`).
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
    let mut tx = ctx.db.begin().await?;
    for id in unique.iter().copied() {
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
    let ids = unique.into_iter().cloned().collect();
    token_cache::commit(ctx, tx, &[Change::Tokens(ids)]).await?;
    Ok(())
}

/// The longest overlap a roll may give the old secret: 7 days.
pub const MAX_OVERLAP_SECONDS: i64 = 7 * 86_400;

/// How a rolled token's expiry follows the old one's. A never-expiring token's
/// successor never expires either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollExpiry {
    /// As long a lifetime as the old token had, counted from now (a person in sudo
    /// mode renews the token by rolling it).
    SameLifetime,
    /// The old token's expiry date: a token rolling itself cannot outlive it.
    SameDate,
}

impl RollExpiry {
    /// The new token's expiry for an old token made at `created_at`, expiring at
    /// `expires_at`.
    pub fn apply(self, created_at: i64, expires_at: Option<i64>, now: i64) -> Option<i64> {
        let at = expires_at?;
        Some(match self {
            RollExpiry::SameDate => at,
            RollExpiry::SameLifetime => now
                .saturating_add(at.saturating_sub(created_at).max(1))
                .min(crate::domain::validate::LATEST_EXPIRY),
        })
    }
}

/// A checked request to roll one token (the handler decided the actor may).
#[derive(Debug)]
pub struct RollRequest<'a> {
    pub account_id: &'a AccountId,
    pub token_id: &'a TokenId,
    /// The person rolling it (None: an automation token rolling itself).
    pub by: Option<&'a UserId>,
    pub via_token: Option<&'a TokenId>,
    /// 0 ..= `MAX_OVERLAP_SECONDS`: how long the old secret keeps working.
    pub overlap_seconds: i64,
    pub expiry: RollExpiry,
    pub ip: Option<&'a str>,
}

/// Rolls a token: a new token with the same name, kind, role, scopes, services,
/// TLS flag, description and allowlist, and an expiry per `expiry`, issued through
/// `issue` (shown once by the caller); the old one keeps working for the overlap and
/// then expires (and is deleted by the housekeeping), at once when there is none.
pub async fn roll(ctx: &Context, request: &RollRequest<'_>) -> Result<Issued, IssueError> {
    let now = ctx.clock.unix();
    let overlap = request.overlap_seconds.clamp(0, MAX_OVERLAP_SECONDS);
    let Some(old) = store::find_in_account(&ctx.db.pool, request.account_id, request.token_id, now)
        .await?
        .filter(|t| t.replaced_by.is_none() && !t.is_expired(now))
    else {
        return Err(IssueError::NotRollable);
    };
    let services = store::services_of(&ctx.db.pool, &old.id).await?;
    // A user token is issued to its owner; an automation token keeps its creator.
    let creator = match (&old.user_id, request.by) {
        (Some(owner), _) => owner.clone(),
        (None, Some(person)) => person.clone(),
        (None, None) => store::created_by(&ctx.db.pool, &old.id)
            .await?
            .map(UserId::from_raw)
            .ok_or(IssueError::NotRollable)?,
    };
    let issue_request = TokenRequest {
        kind: old.kind,
        account_id: request.account_id,
        actor_id: &creator,
        name: &old.name,
        scopes: &old.scope,
        services: &services,
        role: old.role,
        tls_access: old.tls_access.get(),
        expires_at: request.expiry.apply(old.created_at, old.expires_at, now),
        description: old.description.as_deref(),
        allowed_cidrs: old.allowed_cidrs.as_ref(),
        rolled: Some(Rolled {
            from: &old.id,
            overlap_ends_at: now + overlap,
            by: request.by,
            via_token: request.via_token,
        }),
        ip: request.ip,
    };
    issue(ctx, &issue_request).await
}

/// A call came from outside the token's allowlist: records `token.address_refused`,
/// at most once per token per minute (across nodes: a conditional UPDATE decides).
pub async fn address_refused(
    ctx: &Context,
    token: &store::Token,
    ip: &str,
) -> Result<(), sqlx::Error> {
    let event = NewEvent::new(
        EventType::TokenAddressRefused,
        format!(
            "Refused token {:?}: called from {ip}, outside its allowlist",
            token.name
        ),
    )
    .account(&token.account_id)
    .actor(token.user_id.as_ref())
    .token(&token.id)
    .ip(Some(ip))
    .metadata(serde_json::json!({
        "name": token.name,
        "allowed_cidrs": token.allowed_cidrs.as_ref().map(Allowlist::strings),
    }));
    let now = ctx.clock.unix();
    record_throttled(ctx, Throttle::AddressRefused(&token.id), &event, now).await
}

/// A rolled secret was presented after its overlap ended (an attack signal):
/// records `token.rotated_secret_used`, at most once per secret per minute. Returns
/// the retired secret, for the 401's wording, when the digest is one.
pub async fn rotated_secret_used(
    ctx: &Context,
    digest: &str,
    ip: &str,
) -> Result<Option<store::RetiredUse>, sqlx::Error> {
    let now = ctx.clock.unix();
    let Some(retired) = store::find_retired(&ctx.db.pool, digest, now).await? else {
        return Ok(None);
    };
    let event = NewEvent::new(
        EventType::TokenRotatedSecretUsed,
        format!(
            "The old secret of rolled token {:?} was used after its overlap ended",
            retired.name
        ),
    )
    .account(&retired.account_id)
    .actor(retired.user_id.as_ref())
    .token(&retired.token_id)
    .ip(Some(ip))
    .metadata(serde_json::json!({
        "name": retired.name,
        "replaced_by": retired.replaced_by,
        "overlap_ended_at": retired.retired_at,
    }));
    record_throttled(ctx, Throttle::RetiredSecretUsed(digest), &event, now).await?;
    Ok(Some(retired))
}

/// The stored mark that limits a security event to one a minute for what it is about.
enum Throttle<'a> {
    /// `tokens.address_refused_at` of this token.
    AddressRefused(&'a TokenId),
    /// `retired_secrets.noted_at` of the secret with this digest.
    RetiredSecretUsed(&'a str),
}

/// Records `event` unless one was recorded for the same thing within the last minute.
/// The conditional UPDATE of the mark decides, in the event's transaction, so that
/// nodes racing on the same attempt write one event between them.
async fn record_throttled(
    ctx: &Context,
    throttle: Throttle<'_>,
    event: &NewEvent<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = ctx.db.begin().await?;
    let first_this_minute = match throttle {
        Throttle::AddressRefused(id) => store::note_address_refused(&mut *tx, id, now).await?,
        Throttle::RetiredSecretUsed(digest) => {
            store::note_retired_use(&mut *tx, digest, now).await?
        }
    };
    if first_this_minute {
        event_store::record(&mut *tx, event, now).await?;
    }
    tx.commit().await
}

/// Rolled secrets are recognised this long after their overlap ends.
pub const RETIRED_SECRETS_KEPT: i64 = 90 * 86_400;

/// Deletes rolled tokens whose overlap is over (each with a `token.destroy` event) and
/// forgets rolled secrets retired more than `RETIRED_SECRETS_KEPT` ago. The hourly
/// housekeeping (and `tokenpanel sweep`) runs it; the lists hide such tokens before.
pub async fn sweep_rolled(ctx: &Context) -> Result<u64, sqlx::Error> {
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    let deleted = store::delete_rolled_over(&mut *tx, now).await?;
    for token in &deleted {
        let event = NewEvent::new(
            EventType::TokenDestroy,
            format!(
                "Deleted token {:?}: rolled, and its overlap ended",
                token.name
            ),
        )
        .account(&token.account_id)
        .actor(token.user_id.as_ref())
        .token(&token.id)
        .metadata(serde_json::json!({
            "reason": "rolled",
            "name": token.name,
            "owner": token.user_id,
        }));
        event_store::record(&mut *tx, &event, now).await?;
    }
    store::forget_retired_before(&mut *tx, now - RETIRED_SECRETS_KEPT).await?;
    let ids = deleted.iter().map(|t| t.id.clone()).collect();
    token_cache::commit(ctx, tx, &[Change::Tokens(ids)]).await?;
    Ok(deleted.len() as u64)
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
    let mut tx = ctx.db.begin().await?;
    store::set_sudo(&mut *tx, token_id, until).await?;
    let event = NewEvent::new(EventType::TokenSudo, "Put an API token in sudo mode")
        .account(account_id)
        .actor(Some(actor_id))
        .token(token_id)
        .ip(ip)
        .metadata(serde_json::json!({ "until": until }));
    event_store::record(&mut *tx, &event, now).await?;
    token_cache::commit(ctx, tx, &[Change::token(token_id)]).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn roll_expiry_keeps_the_lifetime_or_the_date() {
        // Made at 1,000 to expire at 91,000 (a 90,000-second lifetime), rolled at 50,000.
        let lifetime = RollExpiry::SameLifetime.apply(1_000, Some(91_000), 50_000);
        assert_eq!(lifetime, Some(140_000));
        assert_eq!(
            RollExpiry::SameDate.apply(1_000, Some(91_000), 50_000),
            Some(91_000)
        );
        assert_eq!(RollExpiry::SameLifetime.apply(1_000, None, 50_000), None);
        assert_eq!(RollExpiry::SameDate.apply(1_000, None, 50_000), None);
        let far =
            RollExpiry::SameLifetime.apply(0, Some(crate::domain::validate::LATEST_EXPIRY), 10);
        assert_eq!(far, Some(crate::domain::validate::LATEST_EXPIRY));
    }

    #[test]
    fn two_calendar_years_back() {
        let cutoff = unused_cutoff(datetime!(2026-11-28 10:00 UTC));
        assert_eq!(cutoff, datetime!(2024-11-28 10:00 UTC).unix_timestamp());
        let leap = unused_cutoff(datetime!(2028-02-29 00:00 UTC));
        assert_eq!(leap, datetime!(2026-03-01 00:00 UTC).unix_timestamp());
    }
}
