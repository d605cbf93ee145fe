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
//! the line is formatted only when it is written.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::response::Response;
use tower::{Layer, Service};
use tracing::Instrument;

use super::metrics::{method_label, Metrics};
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
            if status >= 500 || observe.access_log {
                let who = notes.lock();
                let user_id = who.user_id.as_ref().map(|id| id.as_str());
                let token_id = who.token_id.as_ref().map(|id| id.as_str());
                let request_id = request_id
                    .as_ref()
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                let latency_ms = elapsed.as_secs_f64() * 1000.0;
                let route = route.as_str();
                macro_rules! line {
                    ($level:ident) => {
                        tracing::$level!(
                            request_id = %request_id,
                            method = %method,
                            route = %route,
                            status,
                            latency_ms,
                            client = %client,
                            user_id,
                            token_id,
                            "request"
                        )
                    };
                }
                if status >= 500 {
                    line!(error);
                } else {
                    line!(info);
                }
            }
            Ok(response)
        })
    }
}
