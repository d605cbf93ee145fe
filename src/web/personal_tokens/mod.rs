//! Account > API tokens > Personal tokens: list, create (after sudo), show once, delete.

mod create;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use super::error::WebError;
use super::page::{access_label, date, date_time, render, Layout, Section};
use super::session::SignedIn;
use super::sudo::{self};
use crate::db::token_store;
use crate::domain::ids::{ServiceId, TokenId};
use crate::http::{is_htmx, ClientIp, Form};
use crate::ops::token_lifecycle::{self};
use crate::state::AppState;

const SOON_DAYS: i64 = 7;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/tokens", get(list).post(create::create))
        .route("/account/tokens/new", get(create::new_form))
        .route("/account/tokens/services", get(create::service_options))
        .route(
            "/account/tokens/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route("/account/sudo", get(sudo::page).post(sudo::submit))
        .route("/account/sudo/end", post(sudo::end))
}

/// One row of the token list, ready to print.
pub struct TokenRow {
    pub id: TokenId,
    pub name: String,
    pub scope: String,
    pub access: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
    pub expired: bool,
    /// "Expires in 3 days" when the token expires within a week.
    pub expires_soon: Option<String>,
}

fn expires_soon(expires_at: Option<i64>, now: i64) -> Option<String> {
    let left = expires_at? - now;
    if left <= 0 || left > SOON_DAYS * 86_400 {
        return None;
    }
    let days = (left + 86_399) / 86_400;
    Some(if days <= 1 {
        "Expires within a day".to_owned()
    } else {
        format!("Expires in {days} days")
    })
}

fn row(
    token: &token_store::Token,
    services: Option<&Vec<(ServiceId, String)>>,
    now: i64,
) -> TokenRow {
    let scope = token.scope.labels();
    let access = access_label(services);
    TokenRow {
        id: token.id.clone(),
        name: token.name.clone(),
        scope,
        access,
        created: date(token.created_at),
        last_used: token
            .last_used_at
            .map(date_time)
            .unwrap_or_else(|| "Never".to_owned()),
        expires: token
            .expires_at
            .map(date)
            .unwrap_or_else(|| "Never".to_owned()),
        expired: token.is_expired(now),
        expires_soon: expires_soon(token.expires_at, now),
    }
}

#[derive(Template)]
#[template(path = "tokens/list.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<TokenRow>,
    active: i64,
    limit: i64,
    dialog_oob: bool,
}

/// After an htmx delete: the row is swapped for nothing, and the list's dialog region,
/// out of band, closes the confirmation.
#[derive(Template)]
#[template(path = "tokens/list.html", block = "dialog")]
struct DialogClosed {
    dialog_oob: bool,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let now = state.clock.unix();
    let (account_id, user_id) = (signed_in.account_id(), signed_in.user_id());
    let owned = token_store::owned_by(&state.db.pool, account_id, user_id).await?;
    let services = token_store::services_of_owned(&state.db.pool, account_id, user_id).await?;
    let rows: Vec<TokenRow> = owned
        .iter()
        .map(|t| row(t, services.get(&t.id), now))
        .collect();
    let active = rows.iter().filter(|r| !r.expired).count() as i64;
    let page = ListPage {
        layout: signed_in.layout("Personal tokens", Section::PersonalTokens),
        rows,
        active,
        limit: state.settings.token_limit,
        dialog_oob: false,
    };
    render(&page)
}

#[derive(Template)]
#[template(path = "tokens/confirm_delete.html")]
struct ConfirmDeletePage {
    layout: Layout,
    token: TokenRow,
    csrf: String,
}

#[derive(Template)]
#[template(path = "tokens/confirm_delete.html", block = "dialog")]
struct ConfirmDeleteFragment {
    token: TokenRow,
    csrf: String,
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let token = token_store::find_owned(
        &state.db.pool,
        signed_in.account_id(),
        signed_in.user_id(),
        &TokenId::from_raw(id),
    )
    .await?
    .ok_or(WebError::NotFound)?;
    let token = row(&token, None, state.clock.unix());
    if is_htmx(&headers) {
        return render(&ConfirmDeleteFragment {
            token,
            csrf: signed_in.csrf.clone(),
        });
    }
    render(&ConfirmDeletePage {
        layout: signed_in.layout("Delete token", Section::PersonalTokens),
        token,
        csrf: signed_in.csrf.clone(),
    })
}

pub async fn delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, WebError> {
    let deleted = token_lifecycle::delete_own(
        &state,
        signed_in.account_id(),
        signed_in.user_id(),
        &TokenId::from_raw(id),
        Some(&ip),
    )
    .await?;
    if !deleted {
        return Err(WebError::NotFound);
    }
    if is_htmx(&headers) {
        return render(&DialogClosed { dialog_oob: true });
    }
    Ok(Redirect::to("/account/tokens").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiring_soon_wording() {
        assert_eq!(
            expires_soon(Some(1000 + 3 * 86_400), 1000).as_deref(),
            Some("Expires in 3 days")
        );
        assert_eq!(
            expires_soon(Some(1000 + 3600), 1000).as_deref(),
            Some("Expires within a day")
        );
        assert_eq!(expires_soon(Some(1000 + 8 * 86_400), 1000), None);
        assert_eq!(expires_soon(Some(999), 1000), None);
        assert_eq!(expires_soon(None, 1000), None);
    }
}
