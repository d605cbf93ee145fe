//! `Token-Expires-At` (RFC 3339) on every API answer made with a token that expires, so
//! the logs of a CI job show when its token runs out. The token is only known once the
//! `Caller` extractor has checked it: the middleware hands each request an empty slot,
//! the extractor fills it (`note`), and the middleware writes the header on whatever
//! answer follows — the same hand-over as `write_limit`.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

pub const HEADER: &str = "token-expires-at";

#[derive(Clone, Default)]
struct ExpirySlot(Arc<Mutex<Option<i64>>>);

/// Around the API's routes.
pub async fn headers(mut request: Request, next: Next) -> Response {
    let slot = ExpirySlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    let expires_at = slot.0.lock().ok().and_then(|at| *at);
    if let Some(at) = expires_at {
        if let Ok(value) = HeaderValue::from_str(&super::timestamp(at)) {
            response.headers_mut().insert(HEADER, value);
        }
    }
    response
}

/// Called by the `Caller` extractor once the token is accepted.
pub fn note(parts: &Parts, expires_at: Option<i64>) {
    if let (Some(slot), Some(at)) = (parts.extensions.get::<ExpirySlot>(), expires_at) {
        if let Ok(mut held) = slot.0.lock() {
            *held = Some(at);
        }
    }
}
