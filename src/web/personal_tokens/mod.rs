//! Account > API tokens > Personal tokens: list, create (after sudo), show once, delete.

mod create;
mod roll;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use super::error::WebError;
use super::page::{render, Layout, Section};
use super::session::SignedIn;
use super::sudo::{self};
use super::token_rows::TokenRow;
use crate::db::token_store;
use crate::domain::ids::TokenId;
use crate::http::{is_htmx, ClientIp, Form};
use crate::ops::token_lifecycle::{self};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/tokens", get(list).post(create::create))
        .route("/account/tokens/new", get(create::new_form))
        .route("/account/tokens/services", get(create::service_options))
        .route(
            "/account/tokens/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route(
            "/account/tokens/{id}/roll",
            get(roll::form).post(roll::roll),
        )
        .route("/account/sudo", get(sudo::page).post(sudo::submit))
        .route("/account/sudo/end", post(sudo::end))
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
    let owned = token_store::listed_owned(
        &state.db.pool,
        signed_in.account_id(),
        signed_in.user_id(),
        now,
    )
    .await?;
    let rows: Vec<TokenRow> = owned
        .into_iter()
        .map(|t| TokenRow {
            rollable: t.replaced_by.is_none() && !t.is_expired(now),
            ..TokenRow::listed(t, now)
        })
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
    Path(id): Path<TokenId>,
) -> Result<Response, WebError> {
    let token = token_store::find_owned(
        &state.db.pool,
        signed_in.account_id(),
        signed_in.user_id(),
        &id,
        state.clock.unix(),
    )
    .await?
    .ok_or(WebError::NotFound)?;
    let token = TokenRow::new(&token, None, state.clock.unix());
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
    Path(id): Path<TokenId>,
    _form: Form,
) -> Result<Response, WebError> {
    let deleted = token_lifecycle::delete_own(
        &state,
        signed_in.account_id(),
        signed_in.user_id(),
        &id,
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
