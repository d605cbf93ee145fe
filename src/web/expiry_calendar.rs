//! The token-expiry calendar: the feed itself (no session: calendar apps fetch it with
//! the key in its link), and making or revoking one's link on Security.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use super::error::WebError;
use super::page::{render, Layout, Section};
use super::session::SignedIn;
use crate::http::{ClientIp, Form, PublicBase};
use crate::ops::expiry_calendar;
use crate::state::AppState;

pub const FEED: &str = "/account/tokens/expiry.ics";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(FEED, get(feed))
        .route("/account/security/calendar", post(create))
        .route("/account/security/calendar/revoke", post(revoke))
}

pub async fn feed(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let key = Form::from_query(raw.as_deref())
        .map(|q| q.text("key").to_owned())
        .unwrap_or_default();
    match expiry_calendar::feed(&state, &key).await {
        Ok(Some(body)) => (
            [
                (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            body,
        )
            .into_response(),
        Ok(None) => super::error_page(
            StatusCode::NOT_FOUND,
            "This calendar link does not work: it was revoked or replaced, or is mistyped.",
        ),
        Err(e) => WebError::from(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "security/calendar_link.html")]
struct LinkPage {
    layout: Layout,
    link: String,
}

pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    base: PublicBase,
) -> Result<Response, WebError> {
    let key =
        expiry_calendar::new_key(&state, signed_in.account_id(), signed_in.user_id(), &ip).await?;
    render(&LinkPage {
        layout: signed_in.layout("Token expiry calendar", Section::Security),
        link: format!("{}{FEED}?key={key}", base.0),
    })
}

pub async fn revoke(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
) -> Result<Response, WebError> {
    expiry_calendar::revoke_key(&state, signed_in.account_id(), signed_in.user_id(), &ip).await?;
    Ok(Redirect::to("/account/security?done=calendar-revoked").into_response())
}
