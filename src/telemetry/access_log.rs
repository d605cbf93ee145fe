//! The outermost per-request layer: the request's notes (`http::RequestNotes`) and
//! client address for the extractors, a `request` span (request id, method, route
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
use std::io::Write;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::HeaderValue;
use axum::response::Response;
use tower::{Layer, Service};
use tracing::Instrument;

use super::logging;
use super::metrics::{method_label, Metrics, RouteName};
use crate::domain::ids::{TokenId, UserId};
use crate::http::{take_ready, Answer, ClientIp, ProxyTrust, RequestNotes};

/// What the layer needs, shared by every request.
#[derive(Clone)]
pub struct Observe {
    /// One info line per request (`ACCESS_LOG`); failures (5xx) are logged either way.
    pub access_log: bool,
    pub trust: ProxyTrust,
    pub metrics: Arc<Metrics>,
}

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
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Answer {
        let started = Instant::now();
        let observe = self.observe.clone();
        let route = observe.metrics.route(
            request
                .extensions()
                .get::<MatchedPath>()
                .map_or(UNMATCHED, |p| p.as_str()),
        );
        let method = method_label(request.method());
        let request_id = request.headers().get("x-request-id").cloned();
        let peer = request
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let client = observe.trust.client_ip(peer, request.headers());
        let notes = RequestNotes::default();
        request.extensions_mut().insert(notes.clone());
        request.extensions_mut().insert(ClientIp(client.clone()));
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
        let answered = take_ready(&mut self.inner).call(request).instrument(span);
        Box::pin(async move {
            let response = answered.await?;
            let elapsed = started.elapsed();
            let status = response.status().as_u16();
            observe.metrics.request(method, &route, status, elapsed);
            let failed = status >= 500;
            if (failed || observe.access_log) && enabled(failed) {
                let (user_id, token_id) = {
                    let mut who = notes.lock();
                    (who.user_id.take(), who.token_id.take())
                };
                logging::access(AccessLine {
                    at: SystemTime::now(),
                    failed,
                    request_id,
                    method,
                    route,
                    status,
                    latency_ms: elapsed.as_secs_f64() * 1000.0,
                    client,
                    user_id,
                    token_id,
                });
            }
            Ok(response)
        })
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
    pub latency_ms: f64,
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

    /// `LOG_FORMAT=text`: `2026-01-02T03:04:05.678901Z  INFO request request_id=…
    /// method=GET route=/tokens/self status=200 latency_ms=1.2 client=… user_id="…"
    /// token_id="…"`, as the subscriber's text lines; `colour` as it colours them.
    pub fn write_text(&self, out: &mut impl Write, colour: bool) -> std::io::Result<()> {
        let (dim, italic, reset) = if colour {
            ("\x1b[2m", "\x1b[3m", "\x1b[0m")
        } else {
            ("", "", "")
        };
        let level = match (colour, self.failed) {
            (false, _) => format!("{:>5}", self.level()),
            (true, false) => "\x1b[32m INFO\x1b[0m".to_owned(),
            (true, true) => "\x1b[31mERROR\x1b[0m".to_owned(),
        };
        write!(out, "{dim}")?;
        write_timestamp(out, self.at)?;
        write!(out, "{reset} {level} request")?;
        let mut field = |name: &str, value: &dyn std::fmt::Display| {
            write!(out, " {italic}{name}{reset}{dim}={reset}{value}")
        };
        field("request_id", &self.request_id())?;
        field("method", &self.method)?;
        field("route", &self.route.as_str())?;
        field("status", &self.status)?;
        field("latency_ms", &self.latency_ms)?;
        field("client", &self.client)?;
        if let Some(user) = &self.user_id {
            field("user_id", &format_args!("{:?}", user.as_str()))?;
        }
        if let Some(token) = &self.token_id {
            field("token_id", &format_args!("{:?}", token.as_str()))?;
        }
        writeln!(out)
    }

    /// `LOG_FORMAT=json`: one object with `timestamp`, `level`, `message` and the fields,
    /// as the subscriber's JSON lines.
    pub fn write_json(&self, out: &mut impl Write) -> std::io::Result<()> {
        let string = |out: &mut dyn Write, s: &str| {
            serde_json::to_writer(out, s).map_err(std::io::Error::other)
        };
        out.write_all(b"{\"timestamp\":\"")?;
        write_timestamp(out, self.at)?;
        write!(
            out,
            "\",\"level\":\"{}\",\"message\":\"request\",\"request_id\":",
            self.level()
        )?;
        string(out, self.request_id())?;
        write!(out, ",\"method\":\"{}\",\"route\":", self.method)?;
        string(out, self.route.as_str())?;
        write!(out, ",\"status\":{},\"latency_ms\":", self.status)?;
        // Finite by construction (a duration); JSON has no NaN.
        if self.latency_ms.is_finite() {
            write!(out, "{}", self.latency_ms)?;
        } else {
            out.write_all(b"null")?;
        }
        out.write_all(b",\"client\":")?;
        string(out, &self.client)?;
        if let Some(user) = &self.user_id {
            out.write_all(b",\"user_id\":")?;
            string(out, user.as_str())?;
        }
        if let Some(token) = &self.token_id {
            out.write_all(b",\"token_id\":")?;
            string(out, token.as_str())?;
        }
        out.write_all(b"}\n")
    }

    /// The line through the subscriber: for a process that did not install ours (the
    /// test kit's in-process servers).
    pub fn emit(&self) {
        let request_id = self.request_id();
        let user_id = self.user_id.as_ref().map(|id| id.as_str());
        let token_id = self.token_id.as_ref().map(|id| id.as_str());
        let route = self.route.as_str();
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    request_id = %request_id,
                    method = %self.method,
                    route = %route,
                    status = self.status,
                    latency_ms = self.latency_ms,
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

/// RFC 3339 in UTC with microseconds, as the subscriber writes its timestamps.
fn write_timestamp(out: &mut (impl Write + ?Sized), at: SystemTime) -> std::io::Result<()> {
    let at = time::OffsetDateTime::from(at);
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
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
            latency_ms: 1.5,
            client: "203.0.113.9".to_owned(),
            user_id: Some(UserId::from_raw("u1")),
            token_id: None,
        }
    }

    #[test]
    fn text_lines_read_as_the_subscriber_writes_them() {
        let mut out = Vec::new();
        line(false).write_text(&mut out, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-01-02T03:04:05.000678Z  INFO request request_id=abc-7 method=GET \
             route=/tokens/{id} status=200 latency_ms=1.5 client=203.0.113.9 user_id=\"u1\"\n"
        );
        let mut out = Vec::new();
        line(true).write_text(&mut out, false).unwrap();
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
        access.write_json(&mut out).unwrap();
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
