//! Account tokens > Tokens that break the policy: the tokens made before the account's
//! token policy was tightened, with the rules each breaks, and a bulk revoke through
//! the list's own confirmation (`revoke.rs`, `ops::token_lifecycle::revoke`).

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{row, AccountTokenRow, MAX_SELECTED};
use crate::db::account_token_list as list;
use crate::db::{token_policy_store, token_store};
use crate::domain::access::Action;
use crate::domain::ids::TokenId;
use crate::domain::token_policy::{self, ExistingToken};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{render, Layout, Section};
use crate::web::session::SignedIn;

pub const PATH: &str = "/account/account-tokens/policy";

pub struct BreachRow {
    pub row: AccountTokenRow,
    /// The rules the token breaks, in words.
    pub reasons: String,
}

#[derive(Template)]
#[template(path = "account_tokens/policy.html")]
struct BreachPage {
    layout: Layout,
    summary: String,
    rows: Vec<BreachRow>,
    /// More tokens break the policy than one page shows.
    more: bool,
    notice: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, WebError> {
    signed_in.require(Action::ViewAccountTokens)?;
    let pool = &state.db.pool;
    let account_id = signed_in.account_id();
    let policy = token_policy_store::find(pool, account_id).await?;
    // One more than a page, to tell whether there are more.
    let candidates =
        token_store::policy_candidates(pool, account_id, &policy, MAX_SELECTED as i64 + 1).await?;
    let mut breaking: Vec<(TokenId, String)> = candidates
        .iter()
        .filter_map(|t| {
            let found = token_policy::violations(
                &policy,
                &ExistingToken {
                    kind: t.kind,
                    scopes: &t.scope,
                    created_at: t.created_at,
                    expires_at: t.expires_at,
                    has_allowlist: t.allowed_cidrs.is_some(),
                },
            );
            (!found.is_empty()).then(|| {
                let words: Vec<&str> = found.iter().map(|v| v.label()).collect();
                (t.id.clone(), words.join("; "))
            })
        })
        .collect();
    let more = breaking.len() > MAX_SELECTED;
    breaking.truncate(MAX_SELECTED);
    let ids: Vec<TokenId> = breaking.iter().map(|(id, _)| id.clone()).collect();
    let listed = list::rows(pool, account_id, &ids).await?;
    let services = list::services_of(pool, &ids).await?;
    let now = state.clock.unix();
    let rows = breaking
        .into_iter()
        .filter_map(|(id, reasons)| {
            let listed = listed.iter().find(|r| r.token.id == id)?;
            Some(BreachRow {
                row: row(listed, services.get(&id), now),
                reasons,
            })
        })
        .collect();
    let notice = crate::http::Form::from_query(raw.as_deref())
        .ok()
        .and_then(|q| q.text("deleted").parse::<usize>().ok())
        .map(|n| {
            if n == 1 {
                "1 token was deleted.".to_owned()
            } else {
                format!("{n} tokens were deleted.")
            }
        });
    render(&BreachPage {
        layout: signed_in.layout("Tokens that break the policy", Section::AccountTokens),
        summary: policy.summary(),
        rows,
        more,
        notice,
    })
}
