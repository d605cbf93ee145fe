//! The JSON API, compatible with Fastly's public token endpoints. Authenticated by the
//! token in `Fastly-Key` (never a session cookie), authorised by `domain::policy`.

pub mod auth;
pub mod body;
pub mod error;
mod events;
mod services;
mod tokens;
pub mod usage;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

use crate::app::AppState;
use error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/tokens",
            get(tokens::list_own)
                .post(tokens::create)
                .delete(tokens::delete_bulk),
        )
        .route(
            "/tokens/self",
            get(tokens::show_self).delete(tokens::delete_self),
        )
        .route("/tokens/{id}", get(tokens::show).delete(tokens::delete_one))
        .route("/customer/{customer_id}/tokens", get(tokens::list_account))
        .route("/sudo", post(tokens::sudo))
        .route(
            "/automation-tokens",
            get(tokens::list_automation).post(tokens::create_automation),
        )
        .route(
            "/automation-tokens/{id}",
            get(tokens::show_automation).delete(tokens::delete_automation),
        )
        .route("/current_user", get(tokens::current_user))
        .route("/service", get(services::list))
        .route("/service/{id}", get(services::show))
        .route("/service/{id}/purge_all", post(services::purge_all))
        .route("/service/{id}/purge/{key}", post(services::purge_key))
        .route("/service/{id}/purge", post(services::purge_keys))
        .route("/events", get(events::list))
        .method_not_allowed_fallback(method_not_allowed)
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

/// `2024-05-01T12:00:00Z`: the API's timestamp format.
pub fn timestamp(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => String::new(),
    }
}

/// Parses an RFC 3339 time (`2024-05-01T12:00:00Z`, `…+02:00`) to Unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// A JSON response.
pub fn json(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// A JSON response that carries token data: never stored by caches or browsers.
pub fn json_no_store(status: StatusCode, value: &impl Serialize) -> Response {
    let mut response = json(status, value);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn no_content() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(timestamp(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(parse_time("2027-01-15T08:00:00Z"), Some(1_800_000_000));
        assert_eq!(parse_time("2027-01-15T10:00:00+02:00"), Some(1_800_000_000));
        assert_eq!(parse_time("2027-01-15"), None);
        assert_eq!(parse_time("soon"), None);
    }
}
