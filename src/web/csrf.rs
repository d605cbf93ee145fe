//! CSRF protection for every state-changing request to the pages: the request must
//! come from this site (Origin / Sec-Fetch-Site) and carry the session's CSRF token,
//! in the `csrf_token` form field or the `X-CSRF-Token` header (htmx sends the header).
//! The form body is parsed here once and handed to the handler as a `Form`.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::error::{error_page, WebError};
use crate::domain::random;
use crate::http::Form;

const SESSION_KEY: &str = "csrf";
pub const FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
/// Forms are small; anything larger is refused before it is read.
pub const FORM_LIMIT: usize = 64 * 1024;

/// The session's CSRF token, made on first use.
pub async fn token(session: &Session) -> Result<String, WebError> {
    if let Some(existing) = session.get::<String>(SESSION_KEY).await? {
        return Ok(existing);
    }
    let fresh = random::base62(32);
    session.insert(SESSION_KEY, &fresh).await?;
    Ok(fresh)
}

/// A new token, when the session changes hands (sign-in).
pub async fn rotate(session: &Session) -> Result<String, WebError> {
    let fresh = random::base62(32);
    session.insert(SESSION_KEY, &fresh).await?;
    Ok(fresh)
}

fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        if site != "same-origin" && site != "none" {
            return false;
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin_host = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        if origin_host != Some(host) {
            return false;
        }
    }
    true
}

fn forbidden() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form has expired or did not come from this site. Go back, reload the page and try again.",
    )
}

pub async fn protect(session: Session, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    if !same_origin(request.headers()) {
        return forbidden();
    }
    let (mut parts, body) = request.into_parts();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let declared_too_large = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|len| len > FORM_LIMIT);
    if declared_too_large {
        return error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    }
    let bytes = match to_bytes(body, FORM_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => return error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."),
    };
    let form = if is_form {
        match Form::parse(&bytes) {
            Ok(form) => form,
            Err(msg) => return error_page(StatusCode::BAD_REQUEST, &msg),
        }
    } else if bytes.is_empty() {
        Form::default()
    } else {
        return error_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Forms must be sent as application/x-www-form-urlencoded.",
        );
    };
    let presented = parts
        .headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| form.get(FIELD).map(str::to_owned));
    let expected = match session.get::<String>(SESSION_KEY).await {
        Ok(value) => value,
        Err(e) => return WebError::from(e).into_response(),
    };
    let valid = match (presented, expected) {
        (Some(p), Some(e)) => bool::from(p.as_bytes().ct_eq(e.as_bytes())),
        _ => false,
    };
    if !valid {
        return forbidden();
    }
    parts.extensions.insert(form);
    next.run(Request::from_parts(parts, Body::empty())).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origin_rules() {
        assert!(same_origin(&headers(&[("host", "a.test")])));
        assert!(same_origin(&headers(&[
            ("host", "a.test"),
            ("origin", "https://a.test")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a.test"),
            ("origin", "https://b.test")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a.test"),
            ("origin", "null")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "a.test"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a.test"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a.test"),
            ("sec-fetch-site", "same-site")
        ])));
    }
}
