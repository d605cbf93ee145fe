//! The reference of `bench/api.sh`: a bare axum handler answering "ok", on the same
//! axum, hyper and tokio (multi-threaded runtime, one worker per core) as tokenpanel,
//! with no middleware and no state. What the API is measured against.
//!
//! With `LAYERS` (comma-separated, innermost first) it adds layers of the kinds
//! tokenpanel's shared stack uses (`app.rs`), to price each one: `headers` (a `from_fn`
//! setting the security headers), `panic` (catch panic), `timeout` (30 s), `limit`
//! (body limit), `json` (a pass-through `from_fn`, as the JSON error layer on success),
//! `propagate` (request id copied to the response), `trace` (a span per request, at
//! debug level), `uuid` or `counter` (request ids).
//!
//! Usage: [LAYERS=…] bare_axum [ADDRESS] (default 127.0.0.1:3901)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{from_fn, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        HeaderValue::try_from(format!("bench-{n}"))
            .ok()
            .map(RequestId::new)
    }
}

async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn pass(request: Request, next: Next) -> Response {
    let (_method, _uri) = (request.method().clone(), request.uri().clone());
    next.run(request).await
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3901".to_owned());
    let mut app = Router::new().route("/", get(|| async { "ok" }));
    let layers = std::env::var("LAYERS").unwrap_or_default();
    for layer in layers.split(',').filter(|l| !l.is_empty()) {
        app = match layer {
            "headers" => app.layer(from_fn(headers)),
            "panic" => app.layer(CatchPanicLayer::new()),
            "timeout" => app.layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(30),
            )),
            "limit" => app.layer(RequestBodyLimitLayer::new(1024 * 1024)),
            "json" => app.layer(from_fn(pass)),
            "propagate" => app.layer(PropagateRequestIdLayer::new(REQUEST_ID)),
            "trace" => app.layer(TraceLayer::new_for_http().make_span_with(
                |request: &Request<_>| tracing::debug_span!("request", path = %request.uri().path()),
            )),
            "uuid" => app.layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid)),
            "counter" => app.layer(SetRequestIdLayer::new(REQUEST_ID, Counter::default())),
            other => {
                eprintln!("unknown layer {other:?}");
                std::process::exit(2);
            }
        };
    }
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{addr} with layers [{layers}]");
    axum::serve(listener, app).await
}
