//! The server: connect, migrate, bind, and serve the pages and the API on one router.
//! The only module that knows both `web` and `api`.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tower::util::MapResponseLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;

use crate::api::answer::ApiAnswerLayer;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::{self, session_store, session_store::DbSessionStore, token_store, Db};
use crate::domain::crypto::SecretKey;
use crate::http::ProxyTrust;
use crate::state::AppState;
use crate::telemetry::access_log::{Observe, ObserveLayer};
use crate::telemetry::metrics::KindLabels;
use crate::{api, ops, web};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Nothing the panel accepts is larger than this; forms have a smaller limit of their own.
const BODY_LIMIT: usize = 1024 * 1024;

/// Requests not answered by then get 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The whole application: the pages (with sessions and CSRF) and the API (without),
/// behind the shared layers.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(web::router(&state))
        // The JSON API sits outside the session and CSRF layers: it never reads cookies.
        .merge(api::router())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(web::not_found);
    let hsts = state.settings.secure_cookies;
    let observe = Observe {
        access_log: state.settings.access_log,
        trust: ProxyTrust::from_ref(&state),
        metrics: state.metrics.clone(),
    };
    with_shared_layers(routes, REQUEST_TIMEOUT, hsts, observe).with_state(state)
}

/// The metrics listener's router: `/metrics` only.
fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The Prometheus text format, with the state gauges read now.
async fn metrics(State(state): State<AppState>) -> Response {
    let gauges = &state.metrics.gauges;
    gauges.argon2_queue_depth.set(state.passwords.waiting());
    gauges.db_pool_size.set(i64::from(state.db.pool.size()));
    gauges.db_pool_idle.set(state.db.pool.num_idle() as i64);
    gauges.usage_pending.set(state.usage.pending() as i64);
    let cache = state.tokens.stats();
    state.metrics.token_cache_totals(cache.hits, cache.loads);
    gauges
        .usage_flush_lag_seconds
        .set(state.usage.since_written().as_secs() as i64);
    let now = state.clock.unix();
    match session_store::count_active(&state.db.pool, now).await {
        Ok(n) => {
            gauges.sessions_active.set(n);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not count sessions"),
    }
    match token_store::count_by_kind(&state.db.pool, now).await {
        Ok(kinds) => {
            for kind in ["user", "automation"] {
                let n = kinds.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n);
                gauges
                    .tokens
                    .get_or_create(&KindLabels { kind: kind.into() })
                    .set(n);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not count tokens"),
    }
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Request ids: a random prefix per process (so ids of several nodes never collide) and
/// a counter, instead of a UUID from the operating system's random source per request.
#[derive(Clone)]
struct CountedRequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl CountedRequestIds {
    fn new() -> Self {
        CountedRequestIds {
            prefix: crate::domain::random::base62(8).into(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for CountedRequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = Vec::with_capacity(self.prefix.len() + 21);
        id.extend_from_slice(self.prefix.as_bytes());
        id.push(b'-');
        crate::telemetry::text::push_uint(&mut id, n, 1);
        HeaderValue::try_from(id).ok().map(RequestId::new)
    }
}

/// The layers every request passes, outermost first: request id, the request's notes,
/// access log and metrics (`telemetry::access_log`), what API answers get (`api::answer`:
/// JSON errors, token expiry and rate-limit headers), body limit, timeout, panic → 500
/// page, security headers. The API answer layer sits outside the ones that answer on
/// their own (413, 408, 500) and the fallback (404), so an API client never gets an
/// HTML page. `hsts`: the panel is
/// served over HTTPS (its cookies are `Secure`), so browsers are told to keep to it.
fn with_shared_layers<S>(
    routes: Router<S>,
    timeout: Duration,
    hsts: bool,
    observe: Observe,
) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // Plain tower layers rather than `from_fn`, stacked into one layer: `Router::layer`
    // boxes each route's service once per call, and every box is allocated again each
    // time a request clones its route (57 allocations per API request with one call per
    // layer, callgrind).
    routes.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, CountedRequestIds::new()))
            .layer(ObserveLayer::new(observe))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(ApiAnswerLayer)
            // The layers below answer with bodies of their own types; the ones above
            // take axum's.
            .layer(MapResponseLayer::new(IntoResponse::into_response))
            .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                timeout,
            ))
            .layer(CatchPanicLayer::custom(|_| web::panic_page()))
            .layer(MapResponseLayer::new(move |mut response: Response| {
                web::security_headers(hsts, &mut response);
                response
            })),
    )
}

/// Liveness: the process answers requests. Touches nothing else, so a database outage
/// does not get healthy nodes restarted.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers too; a load balancer sends requests only to nodes
/// that say so.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.db.ping().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

/// The configured server key, or for SQLite the one kept beside the database file
/// (generated on first run).
pub fn load_secret_key(config: &Config) -> Result<SecretKey, StartupError> {
    if let Some(hex) = &config.secret_key {
        return SecretKey::from_hex(hex)
            .ok_or_else(|| StartupError("SECRET_KEY must be 64 hexadecimal characters".into()));
    }
    let Some(path) = config.key_file() else {
        return Err(StartupError(
            "SECRET_KEY is required with PostgreSQL, the same on every node (e.g. `openssl rand -hex 32`)".into(),
        ));
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => SecretKey::from_hex(&text).ok_or_else(|| {
            StartupError(format!("the server key file {} is damaged", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let written = options.open(&path).and_then(|mut file| {
                std::io::Write::write_all(&mut file, format!("{}\n", key.to_hex()).as_bytes())
            });
            written.map_err(|e| {
                StartupError(format!(
                    "cannot write the server key file {}: {e}",
                    path.display()
                ))
            })?;
            Ok(key)
        }
        Err(e) => Err(StartupError(format!(
            "cannot read the server key file {}: {e}",
            path.display()
        ))),
    }
}

#[derive(Debug)]
pub struct StartupError(pub String);

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

impl From<db::ConnectError> for StartupError {
    fn from(e: db::ConnectError) -> Self {
        StartupError(e.0)
    }
}

/// Opens the database and applies migrations: what every subcommand starts with.
pub async fn open_database(config: &Config) -> Result<Db, StartupError> {
    let db = db::connect(&config.database_url).await?;
    db.migrate().await?;
    Ok(db)
}

pub struct Server {
    listener: TcpListener,
    /// For the token cache's own LISTEN connection on PostgreSQL.
    database_url: String,
    router: Router,
    /// The `/metrics` listener (`METRICS_BIND`), when configured.
    metrics: Option<TcpListener>,
    pub state: AppState,
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    /// How long requests in flight may take to finish once shutdown starts.
    grace: Duration,
}

impl Server {
    pub async fn build(config: &Config, clock: SharedClock) -> Result<Server, StartupError> {
        let bind = config.bind_addr().map_err(StartupError)?;
        let metrics_bind = config.metrics_addr().map_err(StartupError)?;
        let secret_key = load_secret_key(config)?;
        let db = open_database(config).await?;
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| StartupError(format!("cannot listen on {bind}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartupError(e.to_string()))?;
        let metrics = match metrics_bind {
            Some(bind) => Some(TcpListener::bind(bind).await.map_err(|e| {
                StartupError(format!("cannot listen on {bind} (METRICS_BIND): {e}"))
            })?),
            None => None,
        };
        let metrics_addr = match &metrics {
            Some(listener) => Some(
                listener
                    .local_addr()
                    .map_err(|e| StartupError(e.to_string()))?,
            ),
            None => None,
        };
        let state = AppState::new(config, db, clock, secret_key, config.secure_cookies(addr))
            .map_err(StartupError)?;
        let router = router(state.clone());
        Ok(Server {
            listener,
            database_url: config.database_url.clone(),
            router,
            metrics,
            state,
            addr,
            metrics_addr,
            grace: config.shutdown_grace(),
        })
    }

    /// Serves until `shutdown` completes, with periodic housekeeping, the token-use
    /// flusher and the metrics listener beside it. Then: no new connections; requests in
    /// flight get the grace period to finish; the token uses noted are written; the
    /// pool is closed.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let store = DbSessionStore::new(
            self.state.db.clone(),
            self.state.settings.session_max_seconds,
        );
        let state = self.state.clone();
        let housekeeping = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(3600));
            loop {
                every.tick().await;
                if let Err(e) = store.delete_expired().await {
                    tracing::warn!(error = %e, "could not delete expired sessions");
                }
                if let Err(e) = ops::authentication::sweep_throttle(&state).await {
                    tracing::warn!(error = %e, "could not forget old throttle counters");
                }
                if let Err(e) = ops::write_budget::sweep(&state).await {
                    tracing::warn!(error = %e, "could not delete past API write counters");
                }
                if let Err(e) = ops::token_lifecycle::sweep_rolled(&state).await {
                    tracing::warn!(error = %e, "could not sweep rolled tokens");
                }
                match ops::token_lifecycle::sweep_unused(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "deleted tokens unused for two years"),
                    Err(e) => tracing::warn!(error = %e, "could not sweep unused tokens"),
                }
            }
        });
        let usage = tokio::spawn(
            self.state
                .usage
                .clone()
                .run(self.state.db.clone(), self.state.metrics.clone()),
        );
        let metrics = self.metrics.map(|listener| {
            let router = metrics_router(self.state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::warn!(error = %e, "the metrics listener stopped");
                }
            })
        });
        let cache = self.state.tokens.clone();
        let cache_feed = match self.state.db.backend {
            db::Backend::Postgres => {
                tokio::spawn(ops::token_cache::listen(cache, self.database_url))
            }
            db::Backend::Sqlite => {
                tokio::spawn(ops::token_cache::poll_log(cache, self.state.ctx.clone()))
            }
        };
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing the requests in flight");
            let _ = stopping.send(());
        };
        let serve = axum::serve(self.listener, service)
            .with_graceful_shutdown(signal)
            .into_future();
        let grace = self.grace;
        let deadline = async move {
            if stopped.await.is_err() {
                // The server ended without a shutdown signal: nothing to wait for.
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            result = serve => result,
            () = deadline => {
                tracing::warn!(grace_seconds = grace.as_secs(), "requests still in flight after the grace period; stopping anyway");
                Ok(())
            }
        };
        housekeeping.abort();
        usage.abort();
        if let Some(task) = metrics {
            task.abort();
        }
        cache_feed.abort();
        // Uses noted since the last flush are written before the server goes away.
        match self
            .state
            .usage
            .flush(&self.state.db, &self.state.metrics)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(tokens = n, "recorded the last token uses"),
            Err(e) => tracing::warn!(error = %e, "could not record token use at shutdown"),
        }
        self.state.db.pool.close().await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body, Bytes};
    use axum::http::{header, Request};
    use axum::routing::post;
    use std::sync::Arc;
    use tower::ServiceExt;

    /// The shared layers over routes that panic, stall or take a body, with a short
    /// timeout: what the real server does in those cases, without waiting 30 seconds.
    fn app() -> Router {
        let routes = Router::new()
            .route(
                "/panic",
                get(|| async {
                    if true {
                        panic!("a handler panicked");
                    }
                    "unreachable"
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/echo", post(|body: Bytes| async move { body }))
            .fallback(web::not_found);
        with_shared_layers(routes, Duration::from_millis(100), false, test_observe())
    }

    fn test_observe() -> Observe {
        Observe {
            access_log: true,
            trust: ProxyTrust::default(),
            metrics: Arc::new(crate::telemetry::Metrics::new()),
        }
    }

    async fn call(request: Request<Body>) -> (StatusCode, String, String, String) {
        let response = app().oneshot(request).await.unwrap();
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let (kind, allow) = (header(header::CONTENT_TYPE), header(header::ALLOW));
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (
            status,
            kind,
            allow,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    fn with_key(method: &str, uri: &str, body: Body) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("fastly-key", "k")
            .body(body)
            .unwrap()
    }

    #[tokio::test]
    async fn api_clients_get_json_for_every_error_the_layers_make() {
        let (status, kind, _, body) = call(with_key("GET", "/panic", Body::empty())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(kind, "application/json");
        assert_eq!(body, r#"{"msg":"Internal server error"}"#);

        let (status, kind, _, body) = call(with_key("GET", "/slow", Body::empty())).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(kind, "application/json");
        assert!(
            body.starts_with(r#"{"msg":"Request timeout","detail":"#),
            "{body}"
        );

        let big = vec![b'x'; BODY_LIMIT + 1];
        let (status, kind, _, body) = call(with_key("POST", "/echo", Body::from(big))).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(kind, "application/json");
        assert!(
            body.starts_with(r#"{"msg":"Request body too large""#),
            "{body}"
        );

        let (status, kind, allow, body) = call(with_key("DELETE", "/echo", Body::empty())).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            (kind.as_str(), allow.as_str()),
            ("application/json", "POST")
        );
        assert_eq!(
            body,
            r#"{"msg":"Method not allowed","detail":"/echo does not allow DELETE; the Allow header lists what it does"}"#
        );

        let (status, kind, _, body) = call(with_key("GET", "/nowhere", Body::empty())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(kind, "application/json");
        assert_eq!(
            body,
            r#"{"msg":"Not found","detail":"Nothing is served at GET /nowhere"}"#
        );
    }

    #[tokio::test]
    async fn browsers_keep_the_html_pages() {
        let request = |uri: &str| {
            Request::builder()
                .uri(uri)
                .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
                .body(Body::empty())
                .unwrap()
        };
        let (status, kind, _, body) = call(request("/panic")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(kind.starts_with("text/html"), "{kind}");
        assert!(body.contains("Something went wrong"), "{body}");
        let (status, kind, _, _) = call(request("/nowhere")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(kind.starts_with("text/html"), "{kind}");
    }

    #[tokio::test]
    async fn https_deployments_send_hsts_and_others_do_not() {
        for (hsts, expected) in [(true, Some("max-age=31536000")), (false, None)] {
            let routes = Router::new().route("/", get(|| async { "ok" }));
            let response = with_shared_layers(routes, Duration::from_secs(1), hsts, test_observe())
                .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(
                response
                    .headers()
                    .get(header::STRICT_TRANSPORT_SECURITY)
                    .and_then(|v| v.to_str().ok()),
                expected
            );
        }
    }
}
