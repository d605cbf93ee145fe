//! The event log. Events carry ids, names and descriptions, never a secret or password.

use sqlx::FromRow;

use super::Exec;
use crate::domain::access::{EventRule, EventScope, Viewer};
use crate::domain::event_type::EventType;
use crate::domain::ids::{AccountId, ServiceId, TokenId, UserId};
use crate::domain::random;

/// An event to record, built with `NewEvent::new(type, description)` and the
/// `account`, `actor`, `token`, `service`, `ip` and `metadata` setters.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub account_id: Option<&'a AccountId>,
    pub event_type: EventType,
    pub actor_id: Option<&'a UserId>,
    pub token_id: Option<&'a TokenId>,
    pub service_id: Option<&'a ServiceId>,
    pub ip: Option<&'a str>,
    pub description: String,
    pub metadata: Option<serde_json::Value>,
}

impl<'a> NewEvent<'a> {
    pub fn new(event_type: EventType, description: impl Into<String>) -> Self {
        NewEvent {
            account_id: None,
            event_type,
            actor_id: None,
            token_id: None,
            service_id: None,
            ip: None,
            description: description.into(),
            metadata: None,
        }
    }

    pub fn account(mut self, id: &'a AccountId) -> Self {
        self.account_id = Some(id);
        self
    }

    /// The person acting, when there is one (automation tokens and the system have none).
    pub fn actor(mut self, id: Option<&'a UserId>) -> Self {
        self.actor_id = id;
        self
    }

    pub fn token(mut self, id: &'a TokenId) -> Self {
        self.token_id = Some(id);
        self
    }

    pub fn service(mut self, id: &'a ServiceId) -> Self {
        self.service_id = Some(id);
        self
    }

    pub fn ip(mut self, ip: Option<&'a str>) -> Self {
        self.ip = ip;
        self
    }

    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }
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
    pub account_id: Option<AccountId>,
    pub event_type: EventType,
    pub actor_id: Option<UserId>,
    pub token_id: Option<TokenId>,
    pub service_id: Option<ServiceId>,
    pub ip: Option<String>,
    pub description: String,
    pub metadata: String,
    pub created_at: i64,
}

/// Every event, newest first (tests compare it with the visibility SQL).
#[cfg(any(test, feature = "testkit"))]
pub async fn recent<'e>(ex: impl Exec<'e>, limit: i64) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as(
        "SELECT id, account_id, event_type, actor_id, token_id, service_id, ip, description, metadata, created_at \
         FROM events ORDER BY created_at DESC, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(ex)
    .await
}

/// Filters of the event log (all optional; times are Unix seconds).
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    pub event_type: Option<String>,
    pub user_id: Option<String>,
    pub token_id: Option<String>,
    pub service_id: Option<String>,
    pub created_gte: Option<i64>,
    pub created_gt: Option<i64>,
    pub created_lte: Option<i64>,
    pub created_lt: Option<i64>,
}

enum Bind {
    Text(String),
    Int(i64),
}

/// Adds a bound value and returns its placeholder.
fn mark(binds: &mut Vec<Bind>, value: Bind) -> String {
    binds.push(value);
    format!("${}", binds.len())
}

fn own_clause(binds: &mut Vec<Bind>, viewer: &Viewer) -> String {
    match viewer {
        Viewer::User(id) => format!(
            "actor_id = {}",
            mark(binds, Bind::Text(id.as_str().to_owned()))
        ),
        Viewer::Token(id) => format!(
            "(actor_id IS NULL AND token_id = {})",
            mark(binds, Bind::Text(id.as_str().to_owned()))
        ),
    }
}

/// The WHERE clause for one account's events as `scope` sees them (the SQL form of
/// `domain::access::event_visible`), narrowed by `filter`.
fn visible_where(
    account_id: &AccountId,
    scope: &EventScope,
    filter: &EventFilter,
) -> (String, Vec<Bind>) {
    let mut binds = vec![Bind::Text(account_id.as_str().to_owned())];
    let mut clauses = vec!["account_id = $1".to_owned()];
    let in_services = |binds: &mut Vec<Bind>, list: &[ServiceId]| {
        let marks: Vec<String> = list
            .iter()
            .map(|s| mark(binds, Bind::Text(s.as_str().to_owned())))
            .collect();
        format!("service_id IN ({})", marks.join(", "))
    };
    match &scope.rule {
        EventRule::Account => {}
        EventRule::Own(viewer) => {
            let own = own_clause(&mut binds, viewer);
            clauses.push(own);
        }
        EventRule::OwnAndServices(viewer, services) => {
            let own = own_clause(&mut binds, viewer);
            let services = match services {
                None => "service_id IS NOT NULL".to_owned(),
                Some(list) if list.is_empty() => "1 = 0".to_owned(),
                Some(list) => in_services(&mut binds, list),
            };
            clauses.push(format!("({own} OR {services})"));
        }
    }
    if let Some(list) = scope.token_services.as_deref().filter(|l| !l.is_empty()) {
        let within = in_services(&mut binds, list);
        clauses.push(format!("(service_id IS NULL OR {within})"));
    }
    let texts = [
        ("event_type", &filter.event_type),
        ("actor_id", &filter.user_id),
        ("token_id", &filter.token_id),
        ("service_id", &filter.service_id),
    ];
    for (column, value) in texts {
        if let Some(value) = value {
            let placeholder = mark(&mut binds, Bind::Text(value.clone()));
            clauses.push(format!("{column} = {placeholder}"));
        }
    }
    let times = [
        (">=", filter.created_gte),
        (">", filter.created_gt),
        ("<=", filter.created_lte),
        ("<", filter.created_lt),
    ];
    for (op, value) in times {
        if let Some(value) = value {
            let placeholder = mark(&mut binds, Bind::Int(value));
            clauses.push(format!("created_at {op} {placeholder}"));
        }
    }
    (clauses.join(" AND "), binds)
}

fn bind_all<'q, O>(
    mut query: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    binds: Vec<Bind>,
) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>> {
    for bind in binds {
        query = match bind {
            Bind::Text(s) => query.bind(s),
            Bind::Int(i) => query.bind(i),
        };
    }
    query
}

/// How many events of the account `scope` sees through `filter`.
pub async fn count_visible<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    scope: &EventScope,
    filter: &EventFilter,
) -> sqlx::Result<i64> {
    let (clause, binds) = visible_where(account_id, scope, filter);
    let sql = format!("SELECT COUNT(*) FROM events WHERE {clause}");
    let (count,): (i64,) = bind_all(sqlx::query_as(&sql), binds).fetch_one(ex).await?;
    Ok(count)
}

/// One page of the events `scope` sees through `filter`, newest first unless
/// `oldest_first`.
pub async fn visible<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    scope: &EventScope,
    filter: &EventFilter,
    oldest_first: bool,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Event>> {
    let (clause, mut binds) = visible_where(account_id, scope, filter);
    let order = if oldest_first { "ASC" } else { "DESC" };
    binds.push(Bind::Int(limit));
    let limit_mark = binds.len();
    binds.push(Bind::Int(offset));
    let offset_mark = binds.len();
    let sql = format!(
        "SELECT id, account_id, event_type, actor_id, token_id, service_id, ip, description, metadata, created_at \
         FROM events WHERE {clause} ORDER BY created_at {order}, id {order} LIMIT ${limit_mark} OFFSET ${offset_mark}"
    );
    bind_all(sqlx::query_as(&sql), binds).fetch_all(ex).await
}

/// The next `limit` events `scope` sees through `filter`, newest first, after the event
/// (created_at, id) `after` (from the start when None): a keyset walk, so a long export
/// costs the same per chunk however deep it goes.
pub async fn visible_after<'e>(
    ex: impl Exec<'e>,
    account_id: &AccountId,
    scope: &EventScope,
    filter: &EventFilter,
    after: Option<&(i64, String)>,
    limit: i64,
) -> sqlx::Result<Vec<Event>> {
    let (mut clause, mut binds) = visible_where(account_id, scope, filter);
    if let Some((at, id)) = after {
        let (a, b, c) = (
            mark(&mut binds, Bind::Int(*at)),
            mark(&mut binds, Bind::Int(*at)),
            mark(&mut binds, Bind::Text(id.clone())),
        );
        clause.push_str(&format!(
            " AND created_at <= {a} AND (created_at < {b} OR id < {c})"
        ));
    }
    let limit_mark = mark(&mut binds, Bind::Int(limit));
    let sql = format!(
        "SELECT id, account_id, event_type, actor_id, token_id, service_id, ip, description, metadata, created_at \
         FROM events WHERE {clause} ORDER BY created_at DESC, id DESC LIMIT {limit_mark}"
    );
    bind_all(sqlx::query_as(&sql), binds).fetch_all(ex).await
}
