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

/// A deletion through the API: how far it may reach and who asks.
#[derive(Debug, Clone, Copy)]
pub struct Revocation<'a> {
    pub scope: store::DeleteScope<'a>,
    /// The person acting (None for an automation token).
    pub actor_id: Option<&'a str>,
    /// The token the request came with.
    pub via_token: Option<&'a str>,
    /// Why, for the event: "owner", "superuser" or "self".
    pub reason: &'a str,
    pub ip: Option<&'a str>,
}

#[derive(Debug)]
pub enum RevokeError {
    /// This id is not a token the actor may delete; nothing was deleted.
    NotFound(String),
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
    state: &AppState,
    ids: &[String],
    revocation: &Revocation<'_>,
) -> Result<(), RevokeError> {
    let now = state.clock.unix();
    let mut tx = state.db.pool.begin().await?;
    for id in ids {
        let Some((name, kind, _owner)) =
            store::delete_scoped(&mut *tx, id, &revocation.scope).await?
        else {
            tx.rollback().await?;
            return Err(RevokeError::NotFound(id.clone()));
        };
        let event = NewEvent {
            account_id: Some(revocation.scope.account_id),
            event_type: "token.destroy",
            actor_id: revocation.actor_id,
            token_id: Some(id),
            ip: revocation.ip,
            description: format!("Deleted {kind} token {name:?}"),
            metadata: Some(serde_json::json!({
                "reason": revocation.reason,
                "name": name,
                "kind": kind,
                "via_token": revocation.via_token,
            })),
            ..NewEvent::default()
        };
        events::record(&mut *tx, &event, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Puts an API token in sudo mode until `until` (after its owner re-authenticated).
pub async fn elevate(
    state: &AppState,
    account_id: &str,
    actor_id: &str,
    token_id: &str,
    until: i64,
    ip: Option<&str>,
) -> Result<(), sqlx::Error> {
    let now = state.clock.unix();
    let mut tx = state.db.pool.begin().await?;
    store::set_sudo(&mut *tx, token_id, until).await?;
    let event = NewEvent {
        account_id: Some(account_id),
        event_type: "token.sudo",
        actor_id: Some(actor_id),
        token_id: Some(token_id),
        ip,
        description: "Put an API token in sudo mode".to_owned(),
        metadata: Some(serde_json::json!({ "until": until })),
        ..NewEvent::default()
    };
    events::record(&mut *tx, &event, now).await?;
    tx.commit().await
}
