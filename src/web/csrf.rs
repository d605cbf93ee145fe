//! CSRF protection for every state-changing request to the pages: the request must
//! come from this site (Origin / Sec-Fetch-Site) and carry a CSRF token in the
//! `csrf_token` form field or the `X-CSRF-Token` header (htmx sends the header).
//! Signed in, the token is the session's. Before sign-in it is a random value signed
//! with the server key, kept in a cookie of its own (double submit): an anonymous visitor
//! costs no session row. The form body is parsed here once and handed to the handler as
//! a `Form`.

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::error::{error_page, WebError};
use crate::domain::crypto::{from_hex, to_hex, SecretKey};
use crate::domain::random;
use crate::http::Form;
use crate::state::AppState;

const SESSION_KEY: &str = "csrf";
pub const FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
/// Forms are small; anything larger is refused before it is read.
pub const FORM_LIMIT: usize = 64 * 1024;
/// The cookie that carries an anonymous visitor's signed CSRF token.
pub const COOKIE: &str = "tokenpanel_csrf";
const SIGNED_FOR: &str = "csrf-cookie";

/// The CSRF token of a visitor who is not signed in: `nonce.signature`.
#[derive(Debug, Clone)]
pub struct AnonymousCsrf(String);

impl AnonymousCsrf {
    fn fresh(key: &SecretKey) -> AnonymousCsrf {
        let nonce = random::base62(24);
        let signature = to_hex(&key.sign(SIGNED_FOR, nonce.as_bytes()));
        AnonymousCsrf(format!("{nonce}.{signature}"))
    }

    /// The token, when `value` is one this server signed.
    fn verified(key: &SecretKey, value: &str) -> Option<AnonymousCsrf> {
        let (nonce, signature) = value.split_once('.')?;
        let expected = key.sign(SIGNED_FOR, nonce.as_bytes());
        let given = from_hex(signature)?;
        bool::from(given.as_slice().ct_eq(&expected)).then(|| AnonymousCsrf(value.to_owned()))
    }

    fn from_cookies(key: &SecretKey, headers: &HeaderMap) -> Option<AnonymousCsrf> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .find_map(|value| AnonymousCsrf::verified(key, value))
    }
}

/// The anonymous token of this request (from its cookie, or made for it).
impl<S: Send + Sync> FromRequestParts<S> for AnonymousCsrf {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AnonymousCsrf>()
            .cloned()
            .ok_or_else(|| WebError::internal("no CSRF token on a page request"))
    }
}

/// The token a page's forms carry: the session's once signed in, else the anonymous one.
/// Reading it writes nothing.
pub async fn form_token(session: &Session, anonymous: &AnonymousCsrf) -> Result<String, WebError> {
    Ok(session
        .get::<String>(SESSION_KEY)
        .await?
        .unwrap_or_else(|| anonymous.0.clone()))
}

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

pub async fn protect(
    State(state): State<AppState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    let key = &state.secret_key;
    let cookie = AnonymousCsrf::from_cookies(key, request.headers());
    let new_cookie = cookie.is_none();
    let anonymous = cookie.unwrap_or_else(|| AnonymousCsrf::fresh(key));
    request.extensions_mut().insert(anonymous.clone());
    let mut response = check_and_run(session, request, next, &anonymous).await;
    if new_cookie {
        let secure = if state.settings.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax{secure}",
            anonymous.0
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

async fn check_and_run(
    session: Session,
    request: Request,
    next: Next,
    anonymous: &AnonymousCsrf,
) -> Response {
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
    // Signed in, only the session's token will do; before, the signed cookie's.
    let expected = match session.get::<String>(SESSION_KEY).await {
        Ok(value) => value.unwrap_or_else(|| anonymous.0.clone()),
        Err(e) => return WebError::from(e).into_response(),
    };
    let valid = presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.as_bytes())));
    if !valid {
        return forbidden();
    }
    parts.extensions.insert(form);
    next.run(Request::from_parts(parts, Body::empty())).await
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn anonymous_tokens_are_signed_by_this_server() {
        let key = SecretKey::generate();
        let token = AnonymousCsrf::fresh(&key);
        assert!(AnonymousCsrf::verified(&key, &token.0).is_some());
        assert!(
            AnonymousCsrf::verified(&SecretKey::generate(), &token.0).is_none(),
            "another key"
        );
        let (nonce, _) = token.0.split_once('.').unwrap();
        assert!(AnonymousCsrf::verified(&key, &format!("{nonce}.00")).is_none());
        assert!(AnonymousCsrf::verified(&key, nonce).is_none());
        let mut cookies = HeaderMap::new();
        cookies.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={}; c=d", token.0)).unwrap(),
        );
        assert_eq!(
            AnonymousCsrf::from_cookies(&key, &cookies).map(|t| t.0),
            Some(token.0)
        );
    }
}
