//! Creating, renaming and deleting services, each with its event.

use super::token_cache::{self, Change};
use super::Context;
use crate::db::event_store::{self, NewEvent};
use crate::db::service_store::{self, Service};
use crate::db::{invitation_store, is_unique_violation};
use crate::domain::event_type::EventType;
use crate::domain::ids::{AccountId, ServiceId, TokenId, UserId};

#[derive(Debug)]
pub enum CatalogError {
    /// Another service of the account has this name.
    NameTaken,
    /// The service is not (or no longer) the account's.
    NotFound,
    /// Deleting it would widen a grant (see `InUse`).
    InUse(InUse),
    Database(sqlx::Error),
}

impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> Self {
        CatalogError::Database(e)
    }
}

impl CatalogError {
    pub const NAME_TAKEN: &'static str = "A service with this name already exists in this account.";
}

/// Tokens and engineers limited to one service alone. Deleting it would leave them
/// with no service rows, which means "all services": a wider grant than anyone made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InUse {
    pub tokens: i64,
    pub members: i64,
    /// Pending invitations of engineers limited to it alone.
    pub invitations: i64,
}

impl InUse {
    /// Why the deletion is refused, or None when nothing depends on the service alone.
    pub fn refusal(self) -> Option<String> {
        let mut reasons = Vec::new();
        if self.tokens > 0 {
            let what = if self.tokens == 1 {
                "token is"
            } else {
                "tokens are"
            };
            reasons.push(format!(
                "{} {what} limited to this service alone; delete them first (see Account tokens)",
                self.tokens
            ));
        }
        if self.members > 0 {
            let what = if self.members == 1 {
                "engineer is"
            } else {
                "engineers are"
            };
            reasons.push(format!(
                "{} {what} limited to this service alone; change their service access first (see Users)",
                self.members
            ));
        }
        if self.invitations > 0 {
            let what = if self.invitations == 1 {
                "pending invitation is"
            } else {
                "pending invitations are"
            };
            reasons.push(format!(
                "{} {what} limited to this service alone; revoke them first (see Users)",
                self.invitations
            ));
        }
        (!reasons.is_empty())
            .then(|| format!("This service cannot be deleted: {}.", reasons.join("; ")))
    }
}

/// What depends on the service alone, as far as can be told outside the deletion.
pub async fn in_use(ctx: &Context, id: &ServiceId) -> Result<InUse, sqlx::Error> {
    Ok(InUse {
        tokens: service_store::tokens_limited_to_only(&ctx.db.pool, id).await?,
        members: service_store::members_limited_to_only(&ctx.db.pool, id).await?,
        invitations: invitation_store::limited_to_only(&ctx.db.pool, id).await?,
    })
}

pub async fn create(
    ctx: &Context,
    account_id: &AccountId,
    actor: &UserId,
    name: &str,
    ip: &str,
) -> Result<ServiceId, CatalogError> {
    let id = ServiceId::generate();
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    if let Err(e) = service_store::create(&mut *tx, account_id, &id, name, now).await {
        return Err(if is_unique_violation(&e) {
            CatalogError::NameTaken
        } else {
            e.into()
        });
    }
    let event = NewEvent::new(
        EventType::ServiceCreate,
        format!("Created service {name:?}"),
    )
    .account(account_id)
    .actor(Some(actor))
    .service(&id)
    .ip(Some(ip))
    .metadata(serde_json::json!({ "name": name }));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(id)
}

/// A service made by a test: no actor, no event.
#[cfg(any(test, feature = "testkit"))]
pub async fn create_for_operator(
    db: &crate::db::Db,
    account_id: &AccountId,
    name: &str,
    now: i64,
) -> Result<ServiceId, sqlx::Error> {
    let id = ServiceId::generate();
    service_store::create(&db.pool, account_id, &id, name, now).await?;
    Ok(id)
}

pub async fn rename(
    ctx: &Context,
    service: &Service,
    actor: &UserId,
    name: &str,
    ip: &str,
) -> Result<(), CatalogError> {
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    match service_store::rename(&mut *tx, &service.account_id, &service.id, name).await {
        Ok(true) => {}
        Ok(false) => return Err(CatalogError::NotFound),
        Err(e) if is_unique_violation(&e) => return Err(CatalogError::NameTaken),
        Err(e) => return Err(e.into()),
    }
    let event = NewEvent::new(
        EventType::ServiceUpdate,
        format!("Renamed service {:?} to {name:?}", service.name),
    )
    .account(&service.account_id)
    .actor(Some(actor))
    .service(&service.id)
    .ip(Some(ip))
    .metadata(serde_json::json!({ "name": { "from": service.name, "to": name } }));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a service unless a token or an engineer is limited to it alone; the check
/// runs under the service's lock, so a token being created with it waits.
pub async fn delete(
    ctx: &Context,
    service: &Service,
    actor: &UserId,
    ip: &str,
) -> Result<(), CatalogError> {
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    if !service_store::lock(&mut tx, ctx.db.backend, &service.account_id, &service.id).await? {
        return Err(CatalogError::NotFound);
    }
    let in_use = InUse {
        tokens: service_store::tokens_limited_to_only(&mut *tx, &service.id).await?,
        members: service_store::members_limited_to_only(&mut *tx, &service.id).await?,
        invitations: invitation_store::limited_to_only(&mut *tx, &service.id).await?,
    };
    if in_use.refusal().is_some() {
        return Err(CatalogError::InUse(in_use));
    }
    service_store::delete(&mut *tx, &service.account_id, &service.id).await?;
    let event = NewEvent::new(
        EventType::ServiceDelete,
        format!("Deleted service {:?}", service.name),
    )
    .account(&service.account_id)
    .actor(Some(actor))
    .service(&service.id)
    .ip(Some(ip))
    .metadata(serde_json::json!({ "name": service.name }));
    event_store::record(&mut *tx, &event, now).await?;
    // Tokens and engineers limited to it (among others) lose it.
    let change = Change::Account(service.account_id.clone());
    token_cache::commit(ctx, tx, &[change]).await?;
    Ok(())
}

/// A purge through the API. Nothing is cached behind tokenpanel, so a purge is its event.
pub struct Purge<'a> {
    /// `ServicePurgeAll` or `ServicePurge` (by key).
    pub event_type: EventType,
    pub description: String,
    /// What was purged: the keys and their purge ids, and whether softly.
    pub metadata: serde_json::Value,
    /// The owner of the token (none for an automation token) and the token.
    pub actor: Option<&'a UserId>,
    pub token: &'a TokenId,
    pub ip: &'a str,
}

pub async fn record_purge(
    ctx: &Context,
    service: &Service,
    purge: Purge<'_>,
) -> Result<(), sqlx::Error> {
    let event = NewEvent::new(purge.event_type, purge.description)
        .account(&service.account_id)
        .actor(purge.actor)
        .token(purge.token)
        .service(&service.id)
        .ip(Some(purge.ip))
        .metadata(purge.metadata);
    event_store::record(&ctx.db.pool, &event, ctx.clock.unix()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_what_blocks_deletion() {
        let refusal = |tokens, members| {
            InUse {
                tokens,
                members,
                invitations: 0,
            }
            .refusal()
        };
        assert_eq!(refusal(0, 0), None);
        let both = refusal(2, 1).unwrap();
        assert!(both.contains("2 tokens are limited"));
        assert!(both.contains("1 engineer is limited"));
        assert!(refusal(1, 0).unwrap().contains("1 token is limited"));
        let invited = InUse {
            tokens: 0,
            members: 0,
            invitations: 2,
        }
        .refusal()
        .unwrap();
        assert!(invited.contains("2 pending invitations are limited"));
    }
}
