//! Security headers on every response, and `no-store` on every page.

use axum::http::{header, HeaderValue};
use axum::response::Response;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Browsers that reached the panel over HTTPS keep to it for a year.
const HSTS: &str = "max-age=31536000";

pub fn security_headers(hsts: bool, response: &mut Response) {
    let headers = response.headers_mut();
    // Room for all of them at once: the map would otherwise grow (and rehash) midway.
    headers.reserve(8);
    // Secure cookies mean the panel is served over HTTPS (COOKIE_SECURE).
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // Answers that say how they may be cached (the static files, `public`) keep it;
    // everything else is a page or an answer about someone's tokens: never stored, and
    // told apart from its htmx fragment.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.append(header::VARY, HeaderValue::from_static("HX-Request"));
    }
}
