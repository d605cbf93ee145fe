//! Account > API tokens > Account tokens (superusers): every token of the current
//! account, filtered, searched and sorted, a page of 50 at a time; revoking one or
//! several after a confirmation.
//!
//! The filter form is a plain GET form; with htmx it swaps the results block only
//! (the same template block, so page and fragment cannot drift).

mod policy_breaches;
mod revoke;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::error::WebError;
use super::page::{render, url_encode};
use super::page::{Layout, Section};
use super::session::SignedIn;
use super::token_rows::TokenRow;
use crate::db::account_token_list::{self as list, Filter, Position, Sort, Status};
use crate::db::member_store;
use crate::domain::access::Action;
use crate::domain::ids::{ServiceId, TokenId, UserId};
use crate::domain::random;
use crate::domain::roles::{Role, Scope};
use crate::domain::secret::TokenKind;
use crate::http::{wants_fragment, Form};
use crate::state::AppState;

pub const PAGE_SIZE: i64 = 50;
/// Up to this many members the Owner filter is a list; beyond, an email field (a list of
/// thousands helps nobody, and costs more than the page of tokens).
const OWNER_LIST_MAX: i64 = 100;
/// More ids than this in one request is not something the page can send.
const MAX_SELECTED: usize = 200;
const PATH: &str = "/account/account-tokens";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(page))
        .route(policy_breaches::PATH, get(policy_breaches::page))
        .route(
            "/account/account-tokens/revoke",
            get(revoke::confirm_revoke).post(revoke::revoke),
        )
}

/// The filters, sort and position of a list request, as typed in the query string.
/// Values the page does not offer are dropped rather than refused: a hand-edited URL
/// shows the unfiltered list, never an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub kind: String,
    pub owner: String,
    /// The Owner filter typed as an email (large accounts); resolved into `owner`.
    pub owner_email: String,
    pub scope: String,
    pub status: String,
    pub q: String,
    pub sort: String,
    pub dir: String,
    pub position: Option<(bool, i64, String)>,
}

fn parse_cursor(raw: &str) -> Option<(i64, String)> {
    let (key, id) = raw.split_once('.')?;
    let key: i64 = key.parse().ok()?;
    (!id.is_empty() && id.len() <= 64 && random::is_base62(id)).then(|| (key, id.to_owned()))
}

impl Query {
    pub fn parse(raw: &str) -> Query {
        let form = Form::parse(raw.as_bytes()).unwrap_or_default();
        let pick = |name: &str, allowed: &[&str]| -> String {
            let value = form.text(name);
            if allowed.contains(&value) {
                value.to_owned()
            } else {
                String::new()
            }
        };
        let owner = form.text("owner");
        let position = match (form.get("after"), form.get("before")) {
            (Some(after), _) => parse_cursor(after).map(|(k, id)| (true, k, id)),
            (None, Some(before)) => parse_cursor(before).map(|(k, id)| (false, k, id)),
            _ => None,
        };
        Query {
            kind: pick("type", &["user", "automation"]),
            owner: if !owner.is_empty() && owner.len() <= 64 && random::is_base62(owner) {
                owner.to_owned()
            } else {
                String::new()
            },
            owner_email: form.text("owner_email").trim().chars().take(254).collect(),
            scope: pick("scope", &Scope::ALL.map(Scope::as_str)),
            status: pick("status", &["active", "expired"]),
            q: form.text("q").trim().chars().take(255).collect(),
            sort: pick("sort", &["created", "last_used", "expires"]),
            dir: pick("dir", &["asc", "desc"]),
            position,
        }
    }

    fn sort(&self) -> Sort {
        match self.sort.as_str() {
            "last_used" => Sort::LastUsed,
            "expires" => Sort::Expires,
            _ => Sort::Created,
        }
    }

    /// Newest first by default; soonest first for expiry.
    fn descending(&self) -> bool {
        match self.dir.as_str() {
            "asc" => false,
            "desc" => true,
            _ => self.sort() != Sort::Expires,
        }
    }

    /// The filter of this query; `owner` is `self.owner` as an id.
    fn filter<'a>(&'a self, owner: Option<&'a UserId>) -> Filter<'a> {
        Filter {
            kind: self.kind.parse().ok(),
            owner,
            scope: self.scope.parse().ok(),
            status: match self.status.as_str() {
                "active" => Some(Status::Active),
                "expired" => Some(Status::Expired),
                _ => None,
            },
            name_contains: (!self.q.is_empty()).then_some(self.q.as_str()),
        }
    }

    /// The list's URL with these filters and sort, and an optional position.
    fn url(&self, position: Option<(&str, i64, &str)>) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (name, value) in [
            ("type", &self.kind),
            ("owner", &self.owner),
            ("scope", &self.scope),
            ("status", &self.status),
            ("q", &self.q),
            ("sort", &self.sort),
            ("dir", &self.dir),
        ] {
            if !value.is_empty() {
                pairs.push((name, value.clone()));
            }
        }
        if let Some((name, key, id)) = position {
            pairs.push((name, format!("{key}.{id}")));
        }
        if pairs.is_empty() {
            return PATH.to_owned();
        }
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect();
        format!("{PATH}?{}", query.join("&"))
    }
}

/// One row of the Account tokens table, ready to print.
pub struct AccountTokenRow {
    /// What every token list shows (the template reads its fields through `Deref`).
    pub token: TokenRow,
    pub owner: String,
    pub owner_email: Option<String>,
    pub kind: &'static str,
    pub role: String,
    pub tls: bool,
}

impl std::ops::Deref for AccountTokenRow {
    type Target = TokenRow;

    fn deref(&self) -> &TokenRow {
        &self.token
    }
}

fn kind_label(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Automation => "Automation token",
        TokenKind::User => "User token",
    }
}

fn row(
    listed: &list::Row,
    services: Option<&Vec<(ServiceId, String)>>,
    now: i64,
) -> AccountTokenRow {
    let token = &listed.token;
    let automation = token.kind == TokenKind::Automation;
    AccountTokenRow {
        token: TokenRow::new(token, services, now),
        owner: if automation {
            "Automation".to_owned()
        } else {
            listed
                .owner_name
                .clone()
                .unwrap_or_else(|| "(deleted user)".to_owned())
        },
        owner_email: listed.owner_email.clone().filter(|_| !automation),
        kind: kind_label(token.kind),
        role: token
            .role
            .filter(|_| automation)
            .map(|r| Role::label(r).to_owned())
            .unwrap_or_default(),
        tls: token.tls_access.get(),
    }
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choices(current: &str, options: &[(&str, &str)]) -> Vec<Choice> {
    options
        .iter()
        .map(|(value, label)| Choice {
            value: (*value).to_owned(),
            label: (*label).to_owned(),
            selected: *value == current,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "account_tokens/list.html")]
struct ListPage {
    layout: Layout,
    query: Query,
    types: Vec<Choice>,
    /// The Owner filter as a list of members, or (large accounts) as an email field
    /// with this value.
    owners: Vec<Choice>,
    owner_field: Option<String>,
    owner_error: Option<String>,
    scopes: Vec<Choice>,
    statuses: Vec<Choice>,
    sorts: Vec<Choice>,
    dirs: Vec<Choice>,
    rows: Vec<AccountTokenRow>,
    first_url: Option<String>,
    previous_url: Option<String>,
    next_url: Option<String>,
    /// This page's own URL: where a revocation returns to.
    here: String,
    here_param: String,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "account_tokens/list.html", block = "results")]
struct ListResults<'a> {
    rows: &'a [AccountTokenRow],
    first_url: &'a Option<String>,
    previous_url: &'a Option<String>,
    next_url: &'a Option<String>,
    here: &'a str,
    here_param: &'a str,
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    signed_in.require(Action::ViewAccountTokens)?;
    let raw = raw.unwrap_or_default();
    let mut query = Query::parse(&raw);
    let mut owner_error = None;
    if !query.owner_email.is_empty() {
        // Only members of this account are found: the filter says nothing about users
        // elsewhere.
        match member_store::find_by_email(
            &state.db.pool,
            signed_in.account_id(),
            &query.owner_email.to_lowercase(),
        )
        .await?
        {
            Some((user_id, _)) => query.owner = user_id.to_string(),
            None => {
                owner_error = Some("No member of this account has this email address.".to_owned())
            }
        }
    }
    let owner = (!query.owner.is_empty()).then(|| UserId::from_raw(query.owner.clone()));
    let deleted = Form::parse(raw.as_bytes())
        .ok()
        .and_then(|f| f.get("deleted").and_then(|n| n.parse::<u32>().ok()));
    let now = state.clock.unix();
    let sort = query.sort();
    let position = match &query.position {
        None => Position::First,
        Some((true, key, id)) => Position::After(*key, TokenId::from_raw(id.clone())),
        Some((false, key, id)) => Position::Before(*key, TokenId::from_raw(id.clone())),
    };
    let (ids, more) = if owner_error.is_some() {
        (Vec::new(), false)
    } else {
        list::page_ids(
            &state.db.pool,
            state.db.backend,
            signed_in.account_id(),
            &query.filter(owner.as_ref()),
            sort,
            query.descending(),
            &position,
            PAGE_SIZE,
            now,
        )
        .await?
    };
    let found = list::rows(&state.db.pool, signed_in.account_id(), &ids).await?;
    let services = list::services_of(&state.db.pool, &ids).await?;
    let edge = |t: Option<&list::Row>| t.map(|t| (sort.key_of(t), t.token.id.clone()));
    let (first, last) = (edge(found.first()), edge(found.last()));
    // "more" speaks of the direction the page was read in.
    let (has_previous, has_next) = match position {
        Position::First => (false, more),
        Position::After(..) => (true, more),
        Position::Before(..) => (more, true),
    };
    let next_url = last
        .filter(|_| has_next)
        .map(|(k, id)| query.url(Some(("after", k, id.as_str()))));
    let previous_url = first
        .filter(|_| has_previous)
        .map(|(k, id)| query.url(Some(("before", k, id.as_str()))));
    let first_url = (position != Position::First).then(|| query.url(None));
    let here = match &query.position {
        None => query.url(None),
        Some((after, key, id)) => {
            query.url(Some((if *after { "after" } else { "before" }, *key, id)))
        }
    };
    let rows: Vec<AccountTokenRow> = found
        .iter()
        .map(|t| {
            let mut row = row(t, services.get(&t.token.id), now);
            row.token.rollable = t.token.replaced_by.is_none()
                && !t.token.is_expired(now)
                && signed_in.may(Action::RollToken(t.token.facts()));
            row
        })
        .collect();
    if wants_fragment(&headers) {
        return render(&ListResults {
            rows: &rows,
            first_url: &first_url,
            previous_url: &previous_url,
            next_url: &next_url,
            here: &here,
            here_param: &url_encode(&here),
        });
    }
    let mut owners = Vec::new();
    let owner_field = if member_store::count(&state.db.pool, signed_in.account_id()).await?
        > OWNER_LIST_MAX
    {
        Some(if !query.owner_email.is_empty() {
            query.owner_email.clone()
        } else if query.owner.is_empty() {
            String::new()
        } else {
            member_store::email_of(
                &state.db.pool,
                signed_in.account_id(),
                &UserId::from_raw(query.owner.clone()),
            )
            .await?
            .unwrap_or_default()
        })
    } else {
        owners.push(Choice {
            value: String::new(),
            label: "Any owner".into(),
            selected: query.owner.is_empty(),
        });
        let mut owner_listed = query.owner.is_empty();
        for (id, name, email) in member_store::names(&state.db.pool, signed_in.account_id()).await?
        {
            owner_listed |= id == *query.owner;
            owners.push(Choice {
                selected: id == *query.owner,
                value: id.to_string(),
                label: format!("{name} ({email})"),
            });
        }
        if !owner_listed {
            // Someone no longer a member can still be filtered on (from a link).
            owners.push(Choice {
                value: query.owner.clone(),
                label: "A former member".into(),
                selected: true,
            });
        }
        None
    };
    let mut scope_options = vec![("", "Any scope")];
    scope_options.extend(Scope::ALL.map(|s| (s.as_str(), s.label())));
    let page = ListPage {
        layout: signed_in.layout("Account tokens", Section::AccountTokens),
        types: choices(
            &query.kind,
            &[
                ("", "Any type"),
                ("user", "User token"),
                ("automation", "Automation token"),
            ],
        ),
        owners,
        owner_field,
        owner_error,
        scopes: choices(&query.scope, &scope_options),
        statuses: choices(
            &query.status,
            &[
                ("", "Any status"),
                ("active", "Active"),
                ("expired", "Expired"),
            ],
        ),
        sorts: choices(
            if query.sort.is_empty() {
                "created"
            } else {
                &query.sort
            },
            &[
                ("created", "Created"),
                ("last_used", "Last used"),
                ("expires", "Expires"),
            ],
        ),
        dirs: choices(
            if query.descending() { "desc" } else { "asc" },
            &[("desc", "Newest first"), ("asc", "Oldest first")],
        ),
        query,
        rows,
        first_url,
        previous_url,
        next_url,
        here_param: url_encode(&here),
        here,
        notice: deleted.map(|n| match n {
            1 => "Deleted 1 token.".to_owned(),
            n => format!("Deleted {n} tokens."),
        }),
    };
    render(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_only_offered_values() {
        let q = Query::parse("type=automation&owner=abc&scope=purge_all&status=expired&q=+ci+&sort=expires&dir=desc&after=12.abcDEF");
        assert_eq!(q.kind, "automation");
        assert_eq!(q.owner, "abc");
        assert_eq!(q.scope, "purge_all");
        assert_eq!(q.status, "expired");
        assert_eq!(q.q, "ci");
        assert_eq!(q.sort(), Sort::Expires);
        assert!(q.descending());
        assert_eq!(q.position, Some((true, 12, "abcDEF".to_owned())));
        let bad = Query::parse(
            "type=admin&owner=..%2F&scope=all&status=x&sort=name&dir=up&before=x.y&after=1.%27",
        );
        assert_eq!(bad, Query::default());
        assert!(Query::default().descending(), "newest first by default");
        let expires = Query::parse("sort=expires");
        assert!(!expires.descending(), "soonest expiry first by default");
    }

    #[test]
    fn urls_round_trip() {
        let q = Query::parse("type=user&q=a%26b&sort=last_used");
        let url = q.url(Some(("after", 5, "xyz")));
        assert_eq!(
            url,
            "/account/account-tokens?type=user&q=a%26b&sort=last%5Fused&after=5%2Exyz"
        );
        let again = Query::parse(url.split_once('?').unwrap().1);
        assert_eq!(again.q, "a&b");
        assert_eq!(again.sort, "last_used");
        assert_eq!(again.position, Some((true, 5, "xyz".to_owned())));
        assert_eq!(Query::default().url(None), PATH);
    }
}
