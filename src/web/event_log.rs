//! Account > Event log: the account's events as the viewer's role lets them see them
//! (`domain::policy::event_scope`, the same rule as `GET /events`), filtered, in pages of
//! 50, and as CSV.

use std::collections::HashMap;

use askama::Template;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use time::{Date, Time};

use super::error::WebError;
use super::page::{parse_date, render, url_encode, Layout, Section, When};
use super::session::SignedIn;
use crate::db::event_store::{self, Event, EventFilter};
use crate::db::{service_store, user_store};
use crate::domain::access::{EventRule, EventScope};
use crate::domain::event_type::EventType;
use crate::domain::ids::{AccountId, ServiceId, UserId};
use crate::http::Form;
use crate::state::AppState;

pub const PAGE_SIZE: i64 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/events", get(page))
        .route("/account/events.csv", get(csv))
}

/// The filters as typed (kept to refill the form and to build links).
#[derive(Debug, Default, Clone)]
struct Query {
    event_type: String,
    user: String,
    token: String,
    service: String,
    from: String,
    to: String,
    page: i64,
}

fn start_of(day: Date) -> i64 {
    day.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp()
}

impl Query {
    fn parse(raw: Option<&str>) -> Result<(Query, EventFilter, Vec<String>), WebError> {
        let form = Form::from_query(raw).map_err(WebError::BadRequest)?;
        let text = |name: &str| form.text(name).trim().to_owned();
        let query = Query {
            event_type: text("event_type"),
            user: text("user"),
            token: text("token"),
            service: text("service"),
            from: text("from"),
            to: text("to"),
            page: form
                .text("page")
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|p| *p >= 1)
                .unwrap_or(1),
        };
        let mut errors = Vec::new();
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let mut filter = EventFilter {
            event_type: some(&query.event_type),
            user_id: some(&query.user),
            token_id: some(&query.token),
            service_id: some(&query.service),
            ..EventFilter::default()
        };
        if !query.from.is_empty() {
            match parse_date(&query.from) {
                Some(day) => filter.created_gte = Some(start_of(day)),
                None => errors.push("Enter the From date as YYYY-MM-DD.".to_owned()),
            }
        }
        if !query.to.is_empty() {
            match parse_date(&query.to).and_then(|d| d.next_day()) {
                Some(next) => filter.created_lt = Some(start_of(next)),
                None => errors.push("Enter the To date as YYYY-MM-DD.".to_owned()),
            }
        }
        Ok((query, filter, errors))
    }

    /// The query string of this view, on another page.
    fn link(&self, page: i64) -> String {
        let pairs = [
            ("event_type", &self.event_type),
            ("user", &self.user),
            ("token", &self.token),
            ("service", &self.service),
            ("from", &self.from),
            ("to", &self.to),
        ];
        let mut parts: Vec<String> = pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect();
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        parts.join("&")
    }
}

pub struct Row {
    /// The page prints it relative; the CSV, exact.
    pub when: When,
    pub event_type: String,
    pub actor: String,
    pub token_id: String,
    pub token_name: String,
    /// The token's description, on events that carry it (creation, roll).
    pub token_description: String,
    pub service: String,
    pub ip: String,
    pub description: String,
}

/// Names for the ids that events carry.
struct Names {
    users: HashMap<UserId, String>,
    services: HashMap<ServiceId, String>,
}

impl Names {
    async fn load(state: &AppState, account_id: &AccountId) -> Result<Names, WebError> {
        let users = user_store::names_in_account(&state.db.pool, account_id)
            .await?
            .into_iter()
            .collect();
        let services = service_store::list(&state.db.pool, account_id)
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        Ok(Names { users, services })
    }

    fn row(&self, event: Event, now: i64) -> Row {
        let metadata: serde_json::Value = serde_json::from_str(&event.metadata).unwrap_or_default();
        let token_name = metadata
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_owned();
        let token_description = metadata
            .get("description")
            .and_then(|n| n.as_str())
            .filter(|_| event.token_id.is_some())
            .unwrap_or("")
            .to_owned();
        fn name_or_id<K: std::hash::Hash + Eq + std::fmt::Display>(
            map: &HashMap<K, String>,
            id: &Option<K>,
        ) -> String {
            match id {
                Some(id) => map.get(id).cloned().unwrap_or_else(|| id.to_string()),
                None => String::new(),
            }
        }
        Row {
            when: When::new(event.created_at, now),
            actor: match &event.actor_id {
                Some(_) => name_or_id(&self.users, &event.actor_id),
                None => "System".to_owned(),
            },
            service: name_or_id(&self.services, &event.service_id),
            token_name: if event.token_id.is_some() {
                token_name
            } else {
                String::new()
            },
            token_id: event.token_id.map(|t| t.to_string()).unwrap_or_default(),
            token_description,
            event_type: event.event_type.as_str().to_owned(),
            ip: event.ip.unwrap_or_default(),
            description: event.description,
        }
    }
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventLogPage {
    layout: Layout,
    rows: Vec<Row>,
    event_types: Vec<Choice>,
    users: Vec<Choice>,
    services: Vec<Choice>,
    token: String,
    from: String,
    to: String,
    errors: Vec<String>,
    page: i64,
    previous: Option<String>,
    next: Option<String>,
    csv: String,
    own_only: bool,
}

fn choices(options: Vec<(String, String)>, current: &str) -> Vec<Choice> {
    options
        .into_iter()
        .map(|(value, label)| Choice {
            selected: value == current,
            value,
            label,
        })
        .collect()
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let (query, filter, errors) = Query::parse(raw.as_deref())?;
    let scope = signed_in.principal.event_scope();
    let account_id = signed_in.account_id();
    let mut found = if errors.is_empty() {
        let offset = (query.page - 1).saturating_mul(PAGE_SIZE);
        // One row more than a page tells whether there is a next page without counting.
        event_store::visible(
            &state.db.pool,
            account_id,
            &scope,
            &filter,
            false,
            PAGE_SIZE + 1,
            offset,
        )
        .await?
    } else {
        Vec::new()
    };
    let has_next = found.len() as i64 > PAGE_SIZE;
    found.truncate(PAGE_SIZE as usize);
    let names = Names::load(&state, account_id).await?;
    let own_only = matches!(scope.rule, EventRule::Own(_));
    let mut user_options: Vec<(String, String)> = if own_only {
        vec![(
            signed_in.user_id().to_string(),
            signed_in.member.user.name.clone(),
        )]
    } else {
        names
            .users
            .iter()
            .map(|(id, name)| (id.to_string(), name.clone()))
            .collect()
    };
    user_options.sort_by(|a, b| a.1.cmp(&b.1));
    let mut service_options: Vec<(String, String)> = match &scope.rule {
        EventRule::OwnAndServices(_, Some(ids)) => ids
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    names
                        .services
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| id.to_string()),
                )
            })
            .collect(),
        _ => names
            .services
            .iter()
            .map(|(id, name)| (id.to_string(), name.clone()))
            .collect(),
    };
    service_options.sort_by(|a, b| a.1.cmp(&b.1));
    let now = state.clock.unix();
    let rows = found.into_iter().map(|e| names.row(e, now)).collect();
    let page = EventLogPage {
        layout: signed_in.layout("Event log", Section::EventLog),
        rows,
        event_types: choices(
            EventType::ALL
                .iter()
                .map(|t| (t.to_string(), t.to_string()))
                .collect(),
            &query.event_type,
        ),
        users: choices(user_options, &query.user),
        services: choices(service_options, &query.service),
        token: query.token.clone(),
        from: query.from.clone(),
        to: query.to.clone(),
        errors,
        page: query.page,
        previous: (query.page > 1).then(|| query.link(query.page - 1)),
        next: has_next.then(|| query.link(query.page + 1)),
        csv: query.link(1),
        own_only,
    };
    render(&page)
}

/// A CSV cell: quoted when needed, and never read as a formula by a spreadsheet.
fn cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

pub async fn csv(
    State(state): State<AppState>,
    signed_in: SignedIn,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let (_, filter, errors) = Query::parse(raw.as_deref())?;
    if let Some(error) = errors.into_iter().next() {
        return Err(WebError::BadRequest(error));
    }
    let account_id = signed_in.account_id().clone();
    let names = Names::load(&state, &account_id).await?;
    let export = Export {
        state,
        account_id,
        scope: signed_in.principal.event_scope(),
        filter,
        names,
        after: None,
        done: false,
    };
    // The rows are read and written a chunk at a time, so an export of any length holds
    // one chunk in memory.
    let body = Body::from_stream(futures_util::stream::unfold(export, Export::next_chunk));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"events.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// Rows one chunk of a CSV export reads.
const CSV_CHUNK: i64 = 1_000;
/// The page's columns, the token's description (under its name on the page) in a column
/// of its own; the event's description stays last.
const CSV_HEADER: &str =
    "time,event_type,actor,token_id,token_name,token_description,service,ip,description\n";

/// A CSV export in progress: where it has got to.
struct Export {
    state: AppState,
    account_id: AccountId,
    scope: EventScope,
    filter: EventFilter,
    names: Names,
    /// The (created_at, id) of the last row written; None before the first chunk.
    after: Option<(i64, String)>,
    done: bool,
}

impl Export {
    /// The next piece of the file: the header with the first rows, then the rows after
    /// the last one written, until none are left.
    async fn next_chunk(mut self) -> Option<(Result<String, std::io::Error>, Export)> {
        if self.done {
            return None;
        }
        let found = event_store::visible_after(
            &self.state.db.pool,
            &self.account_id,
            &self.scope,
            &self.filter,
            self.after.as_ref(),
            CSV_CHUNK,
        )
        .await;
        let found = match found {
            Ok(found) => found,
            Err(e) => {
                // The headers went out already: the best left is to cut the download
                // short, which the browser reports as failed.
                tracing::error!(error = %crate::http::error_chain(&e), "CSV export failed");
                self.done = true;
                return Some((Err(std::io::Error::other("the export failed")), self));
            }
        };
        let mut out = String::new();
        if self.after.is_none() {
            out.push_str(CSV_HEADER);
        }
        self.done = (found.len() as i64) < CSV_CHUNK;
        if let Some(last) = found.last() {
            self.after = Some((last.created_at, last.id.clone()));
        }
        let now = self.state.clock.unix();
        for event in found {
            let row = self.names.row(event, now);
            let exact = row.when.exact().to_string();
            let cells = [
                &exact,
                &row.event_type,
                &row.actor,
                &row.token_id,
                &row.token_name,
                &row.token_description,
                &row.service,
                &row.ip,
                &row.description,
            ];
            out.push_str(&cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(","));
            out.push('\n');
        }
        Some((Ok(out), self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(cell("-1,2"), "\"'-1,2\"");
        assert_eq!(cell("one\ntwo"), "\"one\ntwo\"");
    }

    #[test]
    fn dates_filter_whole_days() {
        let (query, filter, errors) = Query::parse(Some(
            "from=2027-01-15&to=2027-01-15&event_type=token.create&page=2",
        ))
        .unwrap();
        assert!(errors.is_empty());
        assert_eq!(filter.created_gte, Some(1_800_000_000 - 8 * 3600));
        assert_eq!(filter.created_lt, Some(1_800_000_000 - 8 * 3600 + 86_400));
        assert_eq!(filter.event_type.as_deref(), Some("token.create"));
        assert_eq!(
            query.link(3),
            "event_type=token%2Ecreate&from=2027%2D01%2D15&to=2027%2D01%2D15&page=3"
        );
        let (_, _, errors) = Query::parse(Some("from=yesterday")).unwrap();
        assert_eq!(
            errors,
            vec!["Enter the From date as YYYY-MM-DD.".to_owned()]
        );
    }
}
