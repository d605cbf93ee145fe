//! The outermost per-request middleware: a `request` span (request id, method, route
//! template) around the handler, the request metrics, and one access-log line per
//! request. The line names the route template (`/tokens/{id}`), never the path or the
//! query, which may carry secrets (`/setup?key=`); it names the user and token ids the
//! handler authenticated (`note_identity`), never a token string, password or cookie.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Extensions;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::metrics::Metrics;
use crate::http::ProxyTrust;

/// What the middleware needs, cloned into the router's layers.
#[derive(Clone)]
pub struct Observe {
    /// One info line per request (`ACCESS_LOG`); failures (5xx) are logged either way.
    pub access_log: bool,
    pub trust: ProxyTrust,
    pub metrics: Arc<Metrics>,
}

/// Who a request turned out to be, filled in by the extractors that authenticate.
#[derive(Clone, Default)]
struct Identity(Arc<Mutex<Who>>);

#[derive(Default)]
struct Who {
    user_id: Option<String>,
    token_id: Option<String>,
}

/// Records the user and token a request authenticated as, for its access-log line.
pub fn note_identity(extensions: &Extensions, user_id: Option<&str>, token_id: Option<&str>) {
    if let Some(Identity(who)) = extensions.get::<Identity>() {
        let mut who = who.lock().unwrap_or_else(|e| e.into_inner());
        who.user_id = user_id.map(str::to_owned);
        who.token_id = token_id.map(str::to_owned);
    }
}

/// Requests that matched no route share one label: the path itself would let anyone
/// grow the metrics without bound, and may carry a secret.
pub const UNMATCHED: &str = "unmatched";

pub async fn observe(State(observe): State<Observe>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, |p| p.as_str())
        .to_owned();
    let method = request.method().as_str().to_owned();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let peer = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let client = observe.trust.client_ip(peer, request.headers());
    let identity = Identity::default();
    request.extensions_mut().insert(identity.clone());
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, route = %route);
    let response = next.run(request).instrument(span).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    observe.metrics.request(&method, &route, status, elapsed);
    let (user_id, token_id) = {
        let who = identity.0.lock().unwrap_or_else(|e| e.into_inner());
        (who.user_id.clone(), who.token_id.clone())
    };
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                request_id = %request_id,
                method = %method,
                route = %route,
                status,
                latency_ms,
                client = %client,
                user_id = user_id.as_deref(),
                token_id = token_id.as_deref(),
                "request"
            )
        };
    }
    if status >= 500 {
        line!(error);
    } else if observe.access_log {
        line!(info);
    }
    response
}
