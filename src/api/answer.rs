//! What every answer to an API client gets on its way out, in one layer of the shared
//! stack (`app.rs`):
//!
//! - Errors as JSON, wherever they arise: the router's fallback (404), a page route
//!   asked with another method (405, with `Allow`), the body limit (413), the timeout
//!   (408), a panic (500), or an HTML page's own error. A request that carries
//!   `Fastly-Key` or prefers `application/json` to HTML gets `{"msg", "detail"}` with
//!   the status unchanged and its headers kept; browsers keep the HTML pages.
//! - `Token-Expires-At` (`expiry_header`) and the rate-limit headers of a charged write
//!   (`write_limit`), from what the `Caller` extractor noted in the request's
//!   `RequestNotes`: who pays and when the token runs out are only known once it has
//!   checked the token, and the headers belong on whatever answer follows, errors too.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::api_error::ApiError;
use super::caller::KEY_HEADER_NAME;
use super::{expiry_header, write_limit};
use crate::http::{take_ready, RequestNotes};

/// Whether the client is an API client: it sends a token (even an empty one, as
/// Fastly's Python client does with a password), or ranks JSON above HTML.
pub fn wants_json(headers: &HeaderMap) -> bool {
    if headers.contains_key(KEY_HEADER_NAME) {
        return true;
    }
    let (mut json, mut html) = (0.0_f32, 0.0_f32);
    for range in headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if media == "application/json"
            || (media.starts_with("application/") && media.ends_with("+json"))
        {
            json = json.max(q);
        } else if media == "text/html" {
            html = html.max(q);
        }
    }
    json > 0.0 && json > html
}

fn is_json_response(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim();
            m == "application/json" || m.ends_with("+json")
        })
}

/// The error an API client is told for a status that reached it without a JSON body.
fn error_for(status: StatusCode, method: &str, path: &str) -> ApiError {
    let error = ApiError::new(
        status,
        match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
            StatusCode::REQUEST_TIMEOUT => "Request timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "Request body too large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported media type",
            StatusCode::INTERNAL_SERVER_ERROR => "Internal server error",
            other => other.canonical_reason().unwrap_or("Error"),
        },
    );
    match status {
        StatusCode::NOT_FOUND => error.with_detail(format!("Nothing is served at {method} {path}")),
        // The router adds `Allow` to the answer after this layer has run.
        StatusCode::METHOD_NOT_ALLOWED => error.with_detail(format!(
            "{path} does not allow {method}; the Allow header lists what it does"
        )),
        StatusCode::REQUEST_TIMEOUT => {
            error.with_detail("The request was not answered in time; try again.")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            error.with_detail("The request body is larger than the server accepts.")
        }
        _ => error,
    }
}

#[derive(Clone, Copy, Default)]
pub struct ApiAnswerLayer;

impl<S> Layer<S> for ApiAnswerLayer {
    type Service = ApiAnswer<S>;

    fn layer(&self, inner: S) -> ApiAnswer<S> {
        ApiAnswer { inner }
    }
}

#[derive(Clone)]
pub struct ApiAnswer<S> {
    inner: S,
}

impl<S> Service<Request> for ApiAnswer<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answering<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Answering<S::Future> {
        let mut inner = take_ready(&mut self.inner);
        if !wants_json(request.headers()) {
            return Answering::Passed {
                answered: inner.call(request),
            };
        }
        // Cheap copies (a standard method is no allocation, a URI shares its bytes), read
        // only when an error needs them.
        let asked = Asked {
            method: request.method().clone(),
            uri: request.uri().clone(),
            notes: RequestNotes::of(request.extensions()).cloned(),
        };
        Answering::ForApiClient {
            answered: inner.call(request),
            asked: Some(asked),
        }
    }
}

/// What an API client's answer needs from its request.
pub struct Asked {
    method: Method,
    uri: Uri,
    notes: Option<RequestNotes>,
}

pin_project! {
    /// The answer on its way out: a browser's as the inner service gave it, an API
    /// client's finished (`finish`). A named future rather than a boxed one: every
    /// request passes here.
    #[project = AnsweringProjection]
    pub enum Answering<F> {
        Passed { #[pin] answered: F },
        ForApiClient { #[pin] answered: F, asked: Option<Asked> },
    }
}

impl<F> Future for Answering<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AnsweringProjection::Passed { answered } => answered.poll(cx),
            AnsweringProjection::ForApiClient { answered, asked } => {
                let response = ready!(answered.poll(cx))?;
                Poll::Ready(Ok(match asked.take() {
                    Some(asked) => finish(response, asked),
                    None => response,
                }))
            }
        }
    }
}

/// The headers from the request's notes, and a JSON body for an error without one.
fn finish(mut response: Response, asked: Asked) -> Response {
    if let Some(notes) = asked.notes {
        let notes = notes.lock();
        expiry_header::write(&notes, response.headers_mut());
        write_limit::write(&notes, response.headers_mut());
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json_response(&response) {
        return response;
    }
    as_json_error(response, asked.method.as_str(), asked.uri.path())
}

/// An error answer without a JSON body, with one.
fn as_json_error(response: Response, method: &str, path: &str) -> Response {
    let status = response.status();
    let (mut parts, _) = response.into_parts();
    let (json_parts, body) = error_for(status, method, path).into_response().into_parts();
    // The original headers stay (Allow, Retry-After, the request id, the security
    // headers); only what describes the body changes.
    for name in [
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::TRANSFER_ENCODING,
    ] {
        parts.headers.remove(name);
    }
    parts.headers.insert(
        header::CONTENT_TYPE,
        json_parts
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("application/json")),
    );
    Response::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn api_clients_are_told_apart_from_browsers() {
        let mut keyed = HeaderMap::new();
        keyed.insert(KEY_HEADER_NAME, HeaderValue::from_static(""));
        assert!(wants_json(&keyed));
        assert!(wants_json(&accept("application/json")));
        assert!(wants_json(&accept("application/vnd.api+json; ext=bulk")));
        assert!(wants_json(&accept("text/html;q=0.5, application/json")));
        assert!(!wants_json(&HeaderMap::new()));
        assert!(!wants_json(&accept("*/*")));
        assert!(!wants_json(&accept(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!wants_json(&accept("text/html, application/json")));
        assert!(!wants_json(&accept("application/json;q=0")));
    }

    #[test]
    fn each_status_has_its_words() {
        let e = error_for(StatusCode::METHOD_NOT_ALLOWED, "PUT", "/tokens");
        assert_eq!(
            (e.msg.as_str(), e.detail.as_deref()),
            (
                "Method not allowed",
                Some("/tokens does not allow PUT; the Allow header lists what it does")
            )
        );
        let e = error_for(StatusCode::NOT_FOUND, "GET", "/nope");
        assert_eq!(e.detail.as_deref(), Some("Nothing is served at GET /nope"));
        assert_eq!(
            error_for(StatusCode::FORBIDDEN, "POST", "/login").msg,
            "Forbidden"
        );
    }
}
