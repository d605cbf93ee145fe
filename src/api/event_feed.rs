//! `GET /events`: the event log as JSON:API (`data`, `links`, `meta`), filtered and
//! paged, showing each caller what their role lets them see (`domain::policy`).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::api_error::{ApiError, ApiResult};
use super::caller::Caller;
use super::{json, parse_time, timestamp};
use crate::db::event_store::{self, Event, EventFilter};
use crate::domain::access::Action;
use crate::domain::ids::{AccountId, ServiceId, TokenId, UserId};
use crate::http::PublicBase;
use crate::state::AppState;

pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const MAX_PAGE_SIZE: i64 = 100;
/// The deepest a page may reach (page[number] × page[size]): past it the database would
/// walk and drop more rows than any page is worth. Filters narrow a longer log.
pub const MAX_WINDOW: i64 = 10_000;

/// The query of a `GET /events` request.
#[derive(Debug, Clone)]
struct EventQuery {
    filter: EventFilter,
    page: i64,
    size: i64,
    oldest_first: bool,
    /// The filter and sort parameters as given, to repeat in the page links.
    kept: Vec<(String, String)>,
}

fn parse_query(raw: Option<&str>) -> ApiResult<EventQuery> {
    let mut query = EventQuery {
        filter: EventFilter::default(),
        page: 1,
        size: DEFAULT_PAGE_SIZE,
        oldest_first: false,
        kept: Vec::new(),
    };
    let pairs = form_urlencoded::parse(raw.unwrap_or("").as_bytes());
    for (name, value) in pairs {
        let (name, value) = (name.into_owned(), value.into_owned());
        let bad = |what: &str| {
            ApiError::bad_request(format!("Invalid {name}")).with_detail(what.to_owned())
        };
        let time = |value: &str| parse_time(value).ok_or_else(|| bad("expected an RFC 3339 time"));
        let number = |value: &str| {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| bad("expected a number"))
        };
        let mut keep = true;
        match name.as_str() {
            "filter[event_type]" => query.filter.event_type = Some(value.clone()),
            "filter[user_id]" => query.filter.user_id = Some(value.clone()),
            "filter[token_id]" => query.filter.token_id = Some(value.clone()),
            "filter[service_id]" => query.filter.service_id = Some(value.clone()),
            "filter[created_at][gte]" | "filter[created_at]" => {
                query.filter.created_gte = Some(time(&value)?)
            }
            "filter[created_at][gt]" => query.filter.created_gt = Some(time(&value)?),
            "filter[created_at][lte]" => query.filter.created_lte = Some(time(&value)?),
            "filter[created_at][lt]" => query.filter.created_lt = Some(time(&value)?),
            "sort" => match value.as_str() {
                "created_at" => query.oldest_first = true,
                "-created_at" => query.oldest_first = false,
                _ => return Err(bad("sort by created_at or -created_at")),
            },
            "page[number]" => {
                keep = false;
                query.page = number(&value)?;
                if query.page < 1 {
                    return Err(bad("pages start at 1"));
                }
            }
            "page[size]" => {
                keep = false;
                query.size = number(&value)?;
                if !(1..=MAX_PAGE_SIZE).contains(&query.size) {
                    return Err(bad(&format!("from 1 to {MAX_PAGE_SIZE}")));
                }
            }
            // Unknown parameters are ignored, as Fastly does.
            _ => keep = false,
        }
        if keep {
            query.kept.push((name, value));
        }
    }
    if query.page.saturating_mul(query.size) > MAX_WINDOW {
        return Err(ApiError::bad_request(format!(
            "page[number] × page[size] may not pass {MAX_WINDOW}: narrow the events with filters."
        ))
        .with_detail(format!("page {} of size {}", query.page, query.size)));
    }
    Ok(query)
}

/// The URL of one page: absolute, because Fastly's Go client follows `links.next` as it
/// is.
fn page_link(base: &PublicBase, query: &EventQuery, page: i64) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in &query.kept {
        out.append_pair(name, value);
    }
    out.append_pair("page[number]", &page.to_string());
    out.append_pair("page[size]", &query.size.to_string());
    base.url(&format!("/events?{}", out.finish()))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EventAttributes)]
pub(super) struct Attributes {
    admin: bool,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<AccountId>,
    description: String,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    metadata: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_id: Option<ServiceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_id: Option<TokenId>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Event)]
pub(super) struct Resource {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    attributes: Attributes,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EventLinks)]
pub(super) struct Links {
    #[serde(rename = "self")]
    this: String,
    first: String,
    last: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    prev: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EventMeta)]
pub(super) struct Meta {
    current_page: i64,
    per_page: i64,
    record_count: i64,
    total_pages: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EventPage)]
pub(super) struct Document {
    data: Vec<Resource>,
    links: Links,
    meta: Meta,
}

/// Drops null members of objects, at any depth: the API leaves unset fields out.
fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(without_nulls).collect())
        }
        other => other,
    }
}

fn resource(event: Event) -> Resource {
    let metadata = serde_json::from_str(&event.metadata)
        .map(without_nulls)
        .unwrap_or_else(|_| serde_json::json!({}));
    Resource {
        id: event.id,
        kind: "event",
        attributes: Attributes {
            admin: false,
            created_at: timestamp(event.created_at),
            customer_id: event.account_id,
            description: event.description,
            event_type: event.event_type.as_str(),
            ip: event.ip,
            metadata,
            service_id: event.service_id,
            user_id: event.actor_id,
            token_id: event.token_id,
        },
    }
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    base: PublicBase,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    caller.require(Action::ReadAccount)?;
    let query = parse_query(raw.as_deref())?;
    let scope = caller.principal.event_scope();
    let account = caller.account_id();
    let total = event_store::count_visible(&state.db.pool, account, &scope, &query.filter).await?;
    let offset = (query.page - 1).saturating_mul(query.size);
    let rows = event_store::visible(
        &state.db.pool,
        account,
        &scope,
        &query.filter,
        query.oldest_first,
        query.size,
        offset,
    )
    .await?;
    let pages = ((total + query.size - 1) / query.size).max(1);
    // Links lead only to pages that may be asked for (see MAX_WINDOW).
    let reachable = pages.min((MAX_WINDOW / query.size).max(1));
    let document = Document {
        data: rows.into_iter().map(resource).collect(),
        links: Links {
            this: page_link(&base, &query, query.page),
            first: page_link(&base, &query, 1),
            last: page_link(&base, &query, reachable),
            prev: (query.page > 1)
                .then(|| page_link(&base, &query, (query.page - 1).min(reachable))),
            next: (query.page < reachable).then(|| page_link(&base, &query, query.page + 1)),
        },
        meta: Meta {
            current_page: query.page,
            per_page: query.size,
            record_count: total,
            total_pages: pages,
        },
    };
    Ok(json(StatusCode::OK, &document))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_pages_are_read() {
        let q = parse_query(Some(
            "filter%5Bevent_type%5D=token.create&filter[created_at][gte]=2027-01-15T08:00:00Z&page[number]=2&page[size]=5&sort=created_at&x=1",
        ))
        .unwrap();
        assert_eq!(q.filter.event_type.as_deref(), Some("token.create"));
        assert_eq!(q.filter.created_gte, Some(1_800_000_000));
        assert_eq!((q.page, q.size, q.oldest_first), (2, 5, true));
        let base = PublicBase("http://127.0.0.1:3000".into());
        assert_eq!(
            page_link(&base, &q, 3),
            "http://127.0.0.1:3000/events?filter%5Bevent_type%5D=token.create&filter%5Bcreated_at%5D%5Bgte%5D=2027-01-15T08%3A00%3A00Z&sort=created_at&page%5Bnumber%5D=3&page%5Bsize%5D=5"
        );
        let defaults = parse_query(None).unwrap();
        assert_eq!(
            (defaults.page, defaults.size, defaults.oldest_first),
            (1, 20, false)
        );
    }

    #[test]
    fn metadata_loses_its_nulls() {
        let value = serde_json::json!({"a": null, "b": {"c": null, "d": 1}, "e": [{"f": null}]});
        assert_eq!(
            without_nulls(value),
            serde_json::json!({"b": {"d": 1}, "e": [{}]})
        );
    }

    #[test]
    fn bad_parameters_are_400() {
        for bad in [
            "page[number]=0",
            "page[number]=x",
            "page[size]=101",
            "page[size]=0",
            "page[number]=101&page[size]=100",
            "page[number]=10001",
            "filter[created_at][lt]=yesterday",
            "sort=name",
        ] {
            let err = parse_query(Some(bad)).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
