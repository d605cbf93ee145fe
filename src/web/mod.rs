//! The HTML pages: routes, middleware and the handlers for each part of the panel.

mod account_tokens;
mod assets;
mod csrf;
mod error;
mod event_log;
mod expiry_calendar;
mod exposed_tokens;
mod headers;
mod invitation;
pub(crate) mod page;
mod personal_tokens;
mod security;
mod service_pages;
mod session;
mod sign_in;
mod sudo;
mod switch;
mod token_policy;
mod token_rows;
mod users;

use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::db::session_store::DbSessionStore;
use crate::state::AppState;
pub use error::error_page;
pub use headers::security_headers;

pub const SESSION_COOKIE: &str = "tokenpanel_session";

/// The pages, behind sessions and the CSRF check, and the static files (neither).
pub fn router(state: &AppState) -> Router<AppState> {
    let store = DbSessionStore::new(state.db.clone(), state.settings.session_max_seconds);
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
        .route("/login", get(sign_in::login_page).post(sign_in::login))
        .route(
            "/login/two-factor",
            get(sign_in::second_step_page).post(sign_in::second_step),
        )
        .route("/logout", post(sign_in::logout))
        .route("/setup", get(sign_in::setup_page).post(sign_in::setup))
        .route("/invitation", get(invitation::page))
        .route("/invitation/accept", post(invitation::accept))
        .route("/invitation/decline", post(invitation::decline))
        .merge(personal_tokens::routes())
        .merge(account_tokens::routes())
        .merge(users::routes())
        .merge(switch::routes())
        .merge(service_pages::routes())
        .merge(security::routes())
        .merge(token_policy::routes())
        .merge(expiry_calendar::routes())
        .merge(exposed_tokens::routes())
        .merge(event_log::routes())
        // One layer for both (sessions outside, CSRF inside): each `Router::layer` call
        // boxes every route again, and requests clone those boxes.
        .layer(tower::ServiceBuilder::new().layer(sessions).layer(
            axum::middleware::from_fn_with_state(state.clone(), csrf::protect),
        ));

    Router::new()
        .merge(pages)
        .route("/static/{*file}", get(assets::serve))
}

async fn home(session: tower_sessions::Session) -> Result<Redirect, error::WebError> {
    let signed_in = session::current_ids(&session).await?.is_some();
    Ok(Redirect::to(if signed_in {
        "/account/tokens"
    } else {
        "/login"
    }))
}

/// The answer to an address nothing serves.
pub async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "There is nothing at this address.")
}

/// The answer when a handler panicked.
pub fn panic_page() -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side. Please try again.",
    )
}
