//! Issuing and revoking tokens: the one place a token is stored and its event written,
//! for the pages, the API and the command line alike.

use crate::app::AppState;
use crate::db::events::{self, NewEvent};
use crate::db::tokens::{self as store, Created, NewToken};
use crate::domain::random;
use crate::domain::roles::{Role, ScopeSet};
use crate::domain::secret::{TokenKind, TokenSecret};

/// A checked request for a new token (see `domain::grant` for the checks).
#[derive(Debug)]
pub struct TokenRequest<'a> {
    pub kind: TokenKind,
    pub account_id: &'a str,
    /// The acting user: the owner of a user token, the creator of an automation token.
    pub actor_id: &'a str,
    pub name: &'a str,
    pub scopes: &'a ScopeSet,
    /// Empty: all services.
    pub services: &'a [String],
    pub role: Option<Role>,
    pub tls_access: bool,
    pub expires_at: Option<i64>,
    pub ip: Option<&'a str>,
}

#[derive(Debug)]
pub struct Issued {
    pub id: String,
    pub secret: TokenSecret,
    pub created_at: i64,
}

#[derive(Debug)]
pub enum IssueError {
    LimitReached(i64),
    Database(sqlx::Error),
}

impl From<sqlx::Error> for IssueError {
    fn from(e: sqlx::Error) -> Self {
        IssueError::Database(e)
    }
}

impl IssueError {
    pub fn limit_message(limit: i64) -> String {
        format!("You already have {limit} active tokens, the most a user may hold. Delete a token you no longer use, then try again.")
    }
}

pub async fn issue(state: &AppState, request: &TokenRequest<'_>) -> Result<Issued, IssueError> {
    let secret = TokenSecret::generate(request.kind);
    let id = random::id();
    let now = state.clock.unix();
    let scope = request.scopes.to_string();
    let owner = (request.kind == TokenKind::User).then_some(request.actor_id);
    let token = NewToken {
        id: &id,
        account_id: request.account_id,
        kind: request.kind.as_str(),
        user_id: owner,
        created_by: request.actor_id,
        name: request.name,
        scope: &scope,
        role: request.role.map(Role::as_str),
        tls_access: request.tls_access,
        digest: &secret.digest(),
        created_at: now,
        expires_at: request.expires_at,
        service_ids: request.services,
    };
    let limit = state.settings.token_limit;
    let mut tx = state.db.pool.begin().await?;
    if store::create(&mut tx, state.db.backend, &token, limit).await? == Created::LimitReached {
        tx.rollback().await?;
        return Err(IssueError::LimitReached(limit));
    }
    let event = NewEvent {
        account_id: Some(request.account_id),
        event_type: "token.create",
        actor_id: Some(request.actor_id),
        token_id: Some(&id),
        ip: request.ip,
        description: format!(
            "Created {} token {:?} with scope {scope}",
            request.kind.as_str(),
            request.name
        ),
        metadata: Some(serde_json::json!({
            "kind": request.kind.as_str(),
            "name": request.name,
            "scope": scope,
            "services": request.services,
            "expires_at": request.expires_at,
            "role": request.role.map(Role::as_str),
            "tls_access": request.tls_access,
        })),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(Issued {
        id,
        secret,
        created_at: now,
    })
}

/// Deletes one of the actor's own user tokens; false when they have no such token.
pub async fn delete_own(
    state: &AppState,
    account_id: &str,
    user_id: &str,
    token_id: &str,
    ip: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let now = state.clock.unix();
    let mut tx = state.db.pool.begin().await?;
    let Some(name) = store::delete_owned(&mut *tx, token_id, account_id, user_id).await? else {
        return Ok(false);
    };
    let event = NewEvent {
        account_id: Some(account_id),
        event_type: "token.destroy",
        actor_id: Some(user_id),
        token_id: Some(token_id),
        ip,
        description: format!("Deleted token {name:?}"),
        metadata: Some(serde_json::json!({ "reason": "owner", "name": name })),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Why a token was revoked by someone other than its owner, kept in the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// One token, from Account tokens.
    Superuser,
    /// Several tokens selected together.
    Bulk,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Superuser => "superuser",
            RevokeReason::Bulk => "bulk",
        }
    }
}

#[derive(Debug)]
pub enum RevokeError {
    /// This id is not a token of the account (any more): nothing was deleted.
    NotFound(String),
    Database(sqlx::Error),
}

impl From<sqlx::Error> for RevokeError {
    fn from(e: sqlx::Error) -> Self {
        RevokeError::Database(e)
    }
}

/// Deletes tokens of an account whoever holds them, all or none: when one id is not a
/// token of the account, nothing is deleted. Each deletion records `token.destroy` with
/// the actor, in the same transaction. The caller has checked that the actor may revoke
/// the account's tokens (`domain::admin::Action::RevokeAccountTokens`). Returns how many
/// tokens were deleted.
pub async fn revoke(
    state: &AppState,
    account_id: &str,
    actor_id: &str,
    ids: &[String],
    reason: RevokeReason,
    ip: Option<&str>,
) -> Result<usize, RevokeError> {
    let mut unique: Vec<&String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    let now = state.clock.unix();
    let mut tx = state.db.pool.begin().await?;
    for id in &unique {
        let Some((name, kind, owner)) = store::delete_in_account(&mut *tx, id, account_id).await?
        else {
            tx.rollback().await?;
            return Err(RevokeError::NotFound((*id).clone()));
        };
        let event = NewEvent {
            account_id: Some(account_id),
            event_type: "token.destroy",
            actor_id: Some(actor_id),
            token_id: Some(id),
            ip,
            description: format!("Revoked {kind} token {name:?}"),
            metadata: Some(serde_json::json!({
                "reason": reason.as_str(),
                "name": name,
                "kind": kind,
                "owner": owner,
            })),
            ..NewEvent::default()
        };
        events::record(&mut *tx, &event, now).await?;
    }
    tx.commit().await?;
    Ok(unique.len())
}
