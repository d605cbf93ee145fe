//! The JSON API, compatible with Fastly's public token endpoints. Authenticated by the
//! token in `Fastly-Key` (never a session cookie), authorised by `domain::access`.

pub mod answer;
mod api_error;
mod automation_tokens;
pub mod caller;
mod customer_endpoints;
mod event_feed;
pub mod expiry_header;
pub mod fields;
mod invitations;
mod openapi;
mod paging;
mod revoke_leaked;
mod service_endpoints;
mod token_creation;
mod token_json;
mod token_reads;
mod token_revocation;
mod token_rotation;
mod token_sudo;
mod token_verify;
mod user_endpoints;
pub mod write_limit;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

use crate::state::AppState;
use api_error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/tokens",
            get(token_reads::list_own)
                .post(token_creation::create)
                .delete(token_revocation::delete_bulk),
        )
        .route(
            "/tokens/self",
            get(token_reads::show_self).delete(token_revocation::delete_self),
        )
        .route("/tokens/revoke-leaked", post(revoke_leaked::report))
        .route(
            "/tokens/{id}",
            get(token_reads::show).delete(token_revocation::delete_one),
        )
        .route("/tokens/self/rotate", post(token_rotation::rotate_self))
        .route("/tokens/{id}/rotate", post(token_rotation::rotate))
        .route(
            "/customer/{customer_id}/tokens",
            get(token_reads::list_account),
        )
        .route("/sudo", post(token_sudo::sudo))
        .route(
            "/automation-tokens",
            get(automation_tokens::list).post(automation_tokens::create),
        )
        .route(
            "/automation-tokens/{id}",
            get(automation_tokens::show).delete(automation_tokens::delete),
        )
        .route("/verify", get(token_verify::verify))
        .route("/current_user", get(user_endpoints::current))
        .route("/user/{id}", get(user_endpoints::show))
        .route("/customer/{customer_id}", get(customer_endpoints::show))
        .route(
            "/customer/{customer_id}/users",
            get(user_endpoints::list_in_customer),
        )
        .route("/service", get(service_endpoints::list))
        .route("/service/{id}", get(service_endpoints::show))
        .route("/service/{id}/details", get(service_endpoints::details))
        .route(
            "/service/{id}/purge_all",
            post(service_endpoints::purge_all),
        )
        .route(
            "/service/{id}/purge/{key}",
            post(service_endpoints::purge_key),
        )
        .route("/service/{id}/purge", post(service_endpoints::purge_keys))
        .route("/events", get(event_feed::list))
        .route(
            "/invitations",
            get(invitations::list).post(invitations::create),
        )
        .route(
            "/invitations/{invitation_id}",
            axum::routing::delete(invitations::delete),
        )
        .route("/openapi.json", get(openapi::serve))
        .method_not_allowed_fallback(method_not_allowed)
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

/// `2024-05-01T12:00:00Z`: the API's timestamp format.
pub fn timestamp(unix: i64) -> String {
    if let Some(text) = crate::telemetry::text::rfc3339_seconds(unix) {
        // Digits and separators only: always UTF-8.
        return String::from_utf8_lossy(&text).into_owned();
    }
    // Before 1970 or after 9999: rare enough for the general formatter.
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
    // Room for one token's answer, so that it is written without growing the buffer
    // (serde_json starts at 128 bytes and doubles).
    let mut body = Vec::with_capacity(512);
    if let Err(e) = serde_json::to_writer(&mut body, value) {
        return ApiError::internal(e).into_response();
    }
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    // Room for what the layers add on the way out (request id, token expiry, the
    // security headers), so that the map is allocated once rather than grown.
    headers.reserve(12);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
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

    #[test]
    fn any_time_text_parses_or_not_and_valid_ones_round_trip() {
        let mut inputs = crate::domain::fuzz::Inputs::new(17);
        let mut parsed = 0;
        for i in 0..20_000 {
            let text = if i % 2 == 0 {
                inputs.time_text()
            } else {
                inputs.text(12)
            };
            let Some(at) = parse_time(&text) else {
                continue;
            };
            parsed += 1;
            if crate::domain::validate::expiry(at, i64::MIN).is_ok() {
                assert_eq!(parse_time(&timestamp(at)), Some(at), "{text:?}");
            }
        }
        assert!(
            parsed > 1_000,
            "the test reached the parser's accepting side"
        );
        // The far future that used to be stored and shown blank is refused.
        let far = parse_time("9999-12-31T23:59:59-23:59").unwrap();
        assert!(crate::domain::validate::expiry(far, 0).is_err());
        assert_eq!(timestamp(far), "");
    }
}
