//! Exposed tokens: those revoked after a leak report (`POST /tokens/revoke-leaked`),
//! with where they were found; the notices that announce them, and dismissing one.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use super::error::WebError;
use super::page::{render, safe_next, Layout, Section, When};
use super::session::SignedIn;
use crate::db::exposure_store;
use crate::domain::access::Action;
use crate::domain::secret::TokenKind;
use crate::http::Form;
use crate::ops::leaked_tokens::EXPOSED_PAGE;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(EXPOSED_PAGE, get(page))
        .route("/account/notices/dismiss", post(dismiss))
}

pub struct ExposedRow {
    pub name: String,
    pub kind: &'static str,
    pub owner: String,
    pub source: String,
    pub reported: When,
}

#[derive(Template)]
#[template(path = "tokens/exposed.html")]
struct ExposedPage {
    layout: Layout,
    rows: Vec<ExposedRow>,
    whole_account: bool,
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    // Superusers see the account's; everyone else their own user tokens.
    let whole_account = signed_in.may(Action::ViewAccountTokens);
    let owner = (!whole_account).then(|| signed_in.user_id());
    let now = state.clock.unix();
    let rows = exposure_store::list(&state.db.pool, signed_in.account_id(), owner, 500)
        .await?
        .into_iter()
        .map(|e| ExposedRow {
            kind: match e.kind {
                TokenKind::User => "User token",
                TokenKind::Automation => "Automation token",
            },
            owner: match e.kind {
                TokenKind::Automation => "Automation".to_owned(),
                TokenKind::User => e.owner_name.unwrap_or_else(|| "(deleted user)".to_owned()),
            },
            source: e.source_url.unwrap_or_else(|| "not given".to_owned()),
            reported: When::new(e.reported_at, now),
            name: e.name,
        })
        .collect();
    render(&ExposedPage {
        layout: signed_in.layout("Exposed tokens", Section::PersonalTokens),
        rows,
        whole_account,
    })
}

pub async fn dismiss(
    State(state): State<AppState>,
    signed_in: SignedIn,
    form: Form,
) -> Result<Response, WebError> {
    exposure_store::dismiss(
        &state.db.pool,
        signed_in.account_id(),
        signed_in.user_id(),
        form.text("notice"),
    )
    .await?;
    let back = safe_next(form.text("back")).unwrap_or("/account/tokens");
    Ok(Redirect::to(back).into_response())
}
