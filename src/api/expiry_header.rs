//! `Token-Expires-At` (RFC 3339) on every API answer made with a token that expires, so
//! the logs of a CI job show when its token runs out. The token is only known once the
//! `Caller` extractor has checked it: the extractor notes the expiry in the request's
//! notes (`note`), and the answer layer (`api::answer`) writes the header on whatever
//! answer follows.

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::http::{Notes, RequestNotes};

pub const HEADER: HeaderName = HeaderName::from_static("token-expires-at");

/// Called by the `Caller` extractor once the token is accepted.
pub fn note(parts: &Parts, expires_at: Option<i64>) {
    if expires_at.is_some() {
        RequestNotes::update(&parts.extensions, |n| n.token_expires_at = expires_at);
    }
}

/// The header, when the request's token expires.
pub fn write(notes: &Notes, headers: &mut HeaderMap) {
    if let Some(at) = notes.token_expires_at {
        if let Ok(value) = HeaderValue::from_str(&super::timestamp(at)) {
            headers.insert(HEADER, value);
        }
    }
}
