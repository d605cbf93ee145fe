//! The outermost per-request layer: the request's notes (`http::RequestNotes`, with the
//! client address) for the extractors, a `request` span (request id, method, route
//! template) around the handler at debug level, the request metrics, and one
//! access-log line per request. The line names the route template (`/tokens/{id}`),
//! never the path or the query, which may carry secrets (`/setup?key=`); it names the
//! user and token ids the handler authenticated, never a token string, password or
//! cookie.
//!
//! Every request passes here, so it allocates as little as it can: the route and method
//! labels are interned, the span costs nothing unless `LOG_LEVEL` asks for debug, and
//! the line is not formatted by the request at all: its fields go to the log's output
//! thread as an [`AccessLine`], which writes them in the configured format
//! (`logging::access`), off the request's path.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::instrument::Instrumented;
use tracing::Instrument;

use super::metrics::{method_label, Metrics, RouteName};
use super::{logging, text};
use crate::domain::ids::{TokenId, UserId};
use crate::http::{take_ready, ProxyTrust, RequestNotes};

/// What the layer needs, shared by every request.
#[derive(Clone)]
pub struct Observe {
    /// One info line per request (`ACCESS_LOG`); failures (5xx) are logged either way.
    pub access_log: bool,
    pub trust: ProxyTrust,
    pub metrics: Arc<Metrics>,
}

/// Set by the request id layer, outside this one (`app.rs`).
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Requests that matched no route share one label: the path itself would let anyone
/// grow the metrics without bound, and may carry a secret.
pub const UNMATCHED: &str = "unmatched";

#[derive(Clone)]
pub struct ObserveLayer(Arc<Observe>);

impl ObserveLayer {
    pub fn new(observe: Observe) -> ObserveLayer {
        ObserveLayer(Arc::new(observe))
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Observed<S> {
        Observed {
            inner,
            observe: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Observed<S> {
    inner: S,
    observe: Arc<Observe>,
}

impl<S> Service<Request> for Observed<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Observing<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Observing<S::Future> {
        let started = Instant::now();
        let observe = self.observe.clone();
        let route = observe.metrics.route(
            request
                .extensions()
                .get::<MatchedPath>()
                .map_or(UNMATCHED, |p| p.as_str()),
        );
        let method = method_label(request.method());
        let request_id = request.headers().get(REQUEST_ID).cloned();
        let peer = request
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let notes = RequestNotes::new(observe.trust.client_ip(peer, request.headers()));
        request.extensions_mut().insert(notes.clone());
        let request_id_text = request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        let span = tracing::debug_span!(
            "request",
            request_id = request_id_text,
            method,
            route = route.as_str()
        );
        Observing {
            answered: take_ready(&mut self.inner).call(request).instrument(span),
            request: Some(Observation {
                started,
                observe,
                method,
                route,
                request_id,
                notes,
            }),
        }
    }
}

pin_project! {
    /// The answer of an observed request, recorded once it is given. A named future
    /// rather than a boxed one: every request passes here.
    pub struct Observing<F> {
        #[pin]
        answered: Instrumented<F>,
        request: Option<Observation>,
    }
}

impl<F> Future for Observing<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.answered.poll(cx))?;
        if let Some(request) = this.request.take() {
            request.answered(&response);
        }
        Poll::Ready(Ok(response))
    }
}

/// What the layer knows of a request until it is answered.
pub struct Observation {
    started: Instant,
    observe: Arc<Observe>,
    method: &'static str,
    route: RouteName,
    request_id: Option<HeaderValue>,
    notes: RequestNotes,
}

impl Observation {
    /// The metrics and the access-log line of the answered request.
    fn answered(self, response: &Response) {
        let elapsed = self.started.elapsed();
        let status = response.status().as_u16();
        let observe = &self.observe;
        observe
            .metrics
            .request(self.method, &self.route, status, elapsed);
        let failed = status >= 500;
        if (failed || observe.access_log) && enabled(failed) {
            // The handler is done with the notes: the line takes what it shows.
            let (client, user_id, token_id) = {
                let mut who = self.notes.lock();
                (
                    std::mem::take(&mut who.client),
                    who.user_id.take(),
                    who.token_id.take(),
                )
            };
            logging::access(AccessLine {
                at: SystemTime::now(),
                failed,
                request_id: self.request_id,
                method: self.method,
                route: self.route,
                status,
                latency_micros: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                client,
                user_id,
                token_id,
            });
        }
    }
}

/// Whether `LOG_LEVEL` lets an access line of this level through; asked here so that
/// the line's target is this module, as for any event written in it.
fn enabled(failed: bool) -> bool {
    if failed {
        tracing::enabled!(tracing::Level::ERROR)
    } else {
        tracing::enabled!(tracing::Level::INFO)
    }
}

/// One access-log line's fields, as the request left them; written by the log's
/// output thread (`logging`) in the same shape the subscriber writes its own lines:
/// `message` "request", level INFO (ERROR for a 5xx).
#[derive(Debug, Clone)]
pub struct AccessLine {
    pub at: SystemTime,
    /// A 5xx answer: an ERROR line, written even with `ACCESS_LOG=off`.
    pub failed: bool,
    pub request_id: Option<HeaderValue>,
    pub method: &'static str,
    pub route: RouteName,
    pub status: u16,
    /// Time to the response headers, written as milliseconds with three decimals.
    pub latency_micros: u64,
    pub client: String,
    pub user_id: Option<UserId>,
    pub token_id: Option<TokenId>,
}

impl AccessLine {
    fn request_id(&self) -> &str {
        self.request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    }

    fn level(&self) -> &'static str {
        if self.failed {
            "ERROR"
        } else {
            "INFO"
        }
    }

    fn push_timestamp(&self, out: &mut Vec<u8>) {
        let since = self.at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let unix = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
        text::push_rfc3339(out, unix, Some(since.subsec_micros()));
    }

    fn push_latency(&self, out: &mut Vec<u8>) {
        text::push_uint(out, self.latency_micros / 1000, 1);
        out.push(b'.');
        text::push_uint(out, self.latency_micros % 1000, 3);
    }

    /// `LOG_FORMAT=text`: `2026-01-02T03:04:05.678901Z  INFO request request_id=…
    /// method=GET route=/tokens/self status=200 latency_ms=1.200 client=… user_id="…"
    /// token_id="…"`, as the subscriber's text lines; `colour` as it colours them.
    pub fn write_text(&self, out: &mut Vec<u8>, colour: bool) {
        let (dim, italic, reset): (&[u8], &[u8], &[u8]) = if colour {
            (b"\x1b[2m", b"\x1b[3m", b"\x1b[0m")
        } else {
            (b"", b"", b"")
        };
        out.extend_from_slice(dim);
        self.push_timestamp(out);
        out.extend_from_slice(reset);
        out.extend_from_slice(match (colour, self.failed) {
            (false, false) => b"  INFO",
            (false, true) => b" ERROR",
            (true, false) => b" \x1b[32m INFO\x1b[0m",
            (true, true) => b" \x1b[31mERROR\x1b[0m",
        });
        out.extend_from_slice(b" request");
        let name = |out: &mut Vec<u8>, name: &str| {
            out.push(b' ');
            out.extend_from_slice(italic);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(reset);
            out.extend_from_slice(dim);
            out.push(b'=');
            out.extend_from_slice(reset);
        };
        name(out, "request_id");
        out.extend_from_slice(self.request_id().as_bytes());
        name(out, "method");
        out.extend_from_slice(self.method.as_bytes());
        name(out, "route");
        out.extend_from_slice(self.route.as_str().as_bytes());
        name(out, "status");
        text::push_uint(out, u64::from(self.status), 1);
        name(out, "latency_ms");
        self.push_latency(out);
        name(out, "client");
        out.extend_from_slice(self.client.as_bytes());
        // Strings the subscriber quotes (they were recorded as `&str`).
        if let Some(user) = &self.user_id {
            name(out, "user_id");
            text::push_json_str(out, user.as_str());
        }
        if let Some(token) = &self.token_id {
            name(out, "token_id");
            text::push_json_str(out, token.as_str());
        }
        out.push(b'\n');
    }

    /// `LOG_FORMAT=json`: one object with `timestamp`, `level`, `message` and the fields,
    /// as the subscriber's JSON lines.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"timestamp\":\"");
        self.push_timestamp(out);
        out.extend_from_slice(b"\",\"level\":\"");
        out.extend_from_slice(self.level().as_bytes());
        out.extend_from_slice(b"\",\"message\":\"request\",\"request_id\":");
        text::push_json_str(out, self.request_id());
        out.extend_from_slice(b",\"method\":");
        text::push_json_str(out, self.method);
        out.extend_from_slice(b",\"route\":");
        text::push_json_str(out, self.route.as_str());
        out.extend_from_slice(b",\"status\":");
        text::push_uint(out, u64::from(self.status), 1);
        out.extend_from_slice(b",\"latency_ms\":");
        self.push_latency(out);
        out.extend_from_slice(b",\"client\":");
        text::push_json_str(out, &self.client);
        if let Some(user) = &self.user_id {
            out.extend_from_slice(b",\"user_id\":");
            text::push_json_str(out, user.as_str());
        }
        if let Some(token) = &self.token_id {
            out.extend_from_slice(b",\"token_id\":");
            text::push_json_str(out, token.as_str());
        }
        out.extend_from_slice(b"}\n");
    }

    /// The line through the subscriber: for a process that did not install ours (the
    /// test kit's in-process servers).
    pub fn emit(&self) {
        let request_id = self.request_id();
        let user_id = self.user_id.as_ref().map(|id| id.as_str());
        let token_id = self.token_id.as_ref().map(|id| id.as_str());
        let route = self.route.as_str();
        let latency_ms = self.latency_micros as f64 / 1000.0;
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    request_id = %request_id,
                    method = %self.method,
                    route = %route,
                    status = self.status,
                    latency_ms,
                    client = %self.client,
                    user_id,
                    token_id,
                    "request"
                )
            };
        }
        if self.failed {
            line!(error);
        } else {
            line!(info);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(failed: bool) -> AccessLine {
        AccessLine {
            // 2026-01-02T03:04:05.000678Z
            at: SystemTime::UNIX_EPOCH + std::time::Duration::new(1_767_323_045, 678_000),
            failed,
            request_id: Some(HeaderValue::from_static("abc-7")),
            method: "GET",
            route: Metrics::new().route("/tokens/{id}"),
            status: if failed { 500 } else { 200 },
            latency_micros: 1_500,
            client: "203.0.113.9".to_owned(),
            user_id: Some(UserId::from_raw("u1")),
            token_id: None,
        }
    }

    #[test]
    fn text_lines_read_as_the_subscriber_writes_them() {
        let mut out = Vec::new();
        line(false).write_text(&mut out, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-01-02T03:04:05.000678Z  INFO request request_id=abc-7 method=GET \
             route=/tokens/{id} status=200 latency_ms=1.500 client=203.0.113.9 user_id=\"u1\"\n"
        );
        let mut out = Vec::new();
        line(true).write_text(&mut out, false);
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with("2026-01-02T03:04:05.000678Z ERROR request "));
    }

    #[test]
    fn json_lines_parse_with_every_field() {
        let mut out = Vec::new();
        let mut access = line(true);
        access.token_id = Some(TokenId::from_raw("t\"1"));
        access.request_id = None;
        access.write_json(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("}\n") && !text.trim_end().contains('\n'),
            "{text}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "timestamp": "2026-01-02T03:04:05.000678Z",
                "level": "ERROR",
                "request_id": "-",
                "method": "GET",
                "route": "/tokens/{id}",
                "status": 500,
                "latency_ms": 1.5,
                "client": "203.0.113.9",
                "user_id": "u1",
                "token_id": "t\"1",
                "message": "request"
            })
        );
    }
}
