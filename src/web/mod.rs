//! The HTML pages: routes, middleware and the handlers for each part of the panel.

mod assets;
mod auth;
pub mod csrf;
pub mod error;
mod events;
pub mod form;
mod headers;
pub mod page;
mod security;
pub mod session;
mod sudo;
mod tokens;

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderName, Request, StatusCode};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::app::AppState;
use crate::db::sessions::DbSessionStore;
use error::error_page;

pub const SESSION_COOKIE: &str = "tokenpanel_session";
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Nothing the panel accepts is larger than this; forms have a smaller limit of their own.
const BODY_LIMIT: usize = 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let store = DbSessionStore::new(state.db.clone());
    let idle =
        time::Duration::try_from(state.settings.session_idle).unwrap_or(time::Duration::hours(12));
    let sessions = SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_secure(state.settings.secure_cookies)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(idle));

    let pages = Router::new()
        .route("/", get(home))
        .route("/login", get(auth::login_page).post(auth::login))
        .route(
            "/login/two-factor",
            get(auth::second_step_page).post(auth::second_step),
        )
        .route("/logout", post(auth::logout))
        .route("/setup/{secret}", get(auth::setup_page).post(auth::setup))
        .merge(tokens::routes())
        .merge(security::routes())
        .merge(events::routes())
        .layer(from_fn(csrf::protect))
        .layer(sessions);

    Router::new()
        .merge(pages)
        // The JSON API sits outside the session and CSRF layers: it never reads cookies.
        .merge(crate::api::router())
        .route("/healthz", get(healthz))
        .route("/static/{*file}", get(assets::serve))
        .fallback(not_found)
        .layer(from_fn(headers::security_headers))
        .layer(CatchPanicLayer::custom(|_| {
            error_page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side. Please try again.")
        }))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

async fn home(session: tower_sessions::Session) -> Result<Redirect, error::WebError> {
    let signed_in = session::current_ids(&session).await?.is_some();
    Ok(Redirect::to(if signed_in {
        "/account/tokens"
    } else {
        "/login"
    }))
}

async fn healthz(State(state): State<AppState>) -> Response {
    if state.db.ping().await {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "There is nothing at this address.")
}
