//! The event log. Events carry ids, names and descriptions, never a secret or password.

use sqlx::FromRow;

use super::Exec;
use crate::domain::random;

#[derive(Debug, Default, Clone)]
pub struct NewEvent<'a> {
    pub account_id: Option<&'a str>,
    pub event_type: &'a str,
    pub actor_id: Option<&'a str>,
    pub token_id: Option<&'a str>,
    pub service_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub description: String,
    pub metadata: Option<serde_json::Value>,
}

pub async fn record<'e>(ex: impl Exec<'e>, event: &NewEvent<'_>, now: i64) -> sqlx::Result<()> {
    let metadata = event
        .metadata
        .clone()
        .unwrap_or_else(|| serde_json::json!({}))
        .to_string();
    sqlx::query(
        "INSERT INTO events (id, account_id, event_type, actor_id, token_id, service_id, ip, description, metadata, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(random::id())
    .bind(event.account_id)
    .bind(event.event_type)
    .bind(event.actor_id)
    .bind(event.token_id)
    .bind(event.service_id)
    .bind(event.ip)
    .bind(&event.description)
    .bind(metadata)
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

#[derive(Debug, Clone, FromRow)]
pub struct Event {
    pub id: String,
    pub account_id: Option<String>,
    pub event_type: String,
    pub actor_id: Option<String>,
    pub token_id: Option<String>,
    pub service_id: Option<String>,
    pub ip: Option<String>,
    pub description: String,
    pub metadata: String,
    pub created_at: i64,
}

/// Newest events first; used by tests and, later, the event log.
pub async fn recent<'e>(ex: impl Exec<'e>, limit: i64) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as(
        "SELECT id, account_id, event_type, actor_id, token_id, service_id, ip, description, metadata, created_at \
         FROM events ORDER BY created_at DESC, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(ex)
    .await
}
