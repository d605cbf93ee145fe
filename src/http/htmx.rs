//! htmx requests: a page answers them with the block that changed instead of the whole
//! page (and says `Vary: HX-Request`, see `web::headers`).

use axum::http::HeaderMap;

pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

/// htmx asks for a fragment, except when it restores history after a cache miss.
pub fn wants_fragment(headers: &HeaderMap) -> bool {
    is_htmx(headers) && !headers.contains_key("hx-history-restore-request")
}
