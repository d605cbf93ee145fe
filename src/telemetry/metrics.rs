//! The Prometheus metrics, served on their own listener (`METRICS_BIND`) by
//! `app::Server`. Counters and histograms move where things happen (the access-log
//! middleware, `api::caller`, `ops::authentication`); gauges that describe state (pool,
//! argon2 queue, sessions, tokens, the last-used buffer) are read when scraped.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::Method;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub route: RouteName,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    pub route: RouteName,
}

/// A route template as a label value, interned (`Metrics::route`): labelling a request
/// copies a pointer instead of allocating the template again.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct RouteName(Arc<str>);

impl RouteName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl EncodeLabelValue for RouteName {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// A method as a label value: the standard ones by name, anything else as `OTHER` (a
/// client could otherwise grow the metrics without bound).
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("OTHER", |(_, name)| *name)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// How a presented `Fastly-Key` was judged (`tokenpanel_token_verifications_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOutcome {
    /// Known, unexpired, with an active owner.
    Ok,
    /// Malformed, unknown, revoked, or of an owner who left or was locked.
    Unknown,
    Expired,
    /// Authenticated, but the token's scopes or services do not allow the action.
    WrongScope,
    /// Used from outside the token's IP allowlist.
    AddressRefused,
    /// Answered from the verified-token cache (`ops::token_cache`).
    CacheHit,
    /// Loaded from the database into the cache.
    CacheMiss,
}

impl TokenOutcome {
    fn label(self) -> &'static str {
        match self {
            TokenOutcome::Ok => "ok",
            TokenOutcome::Unknown => "unknown",
            TokenOutcome::Expired => "expired",
            TokenOutcome::WrongScope => "wrong_scope",
            TokenOutcome::AddressRefused => "address_refused",
            TokenOutcome::CacheHit => "cache_hit",
            TokenOutcome::CacheMiss => "cache_miss",
        }
    }
}

/// How a sign-in with a password ended (`tokenpanel_sign_ins_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInOutcome {
    Accepted,
    Rejected,
    Throttled,
}

impl SignInOutcome {
    fn label(self) -> &'static str {
        match self {
            SignInOutcome::Accepted => "accepted",
            SignInOutcome::Rejected => "rejected",
            SignInOutcome::Throttled => "throttled",
        }
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms … about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn wait_histogram() -> Histogram {
    // 100 µs … about 6.5 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

fn flush_size_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 4.0, 8))
}

/// Every metric, and the registry that names them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    throttled: Family<RouteLabels, Counter>,
    token_checks: Family<OutcomeLabels, Counter>,
    sign_ins: Family<OutcomeLabels, Counter>,
    argon2_wait: Histogram,
    usage_flush_size: Histogram,
    /// Read when scraped.
    pub gauges: StateGauges,
    /// The token cache's hit and load totals at the last scrape.
    cache_seen: [std::sync::atomic::AtomicU64; 2],
    /// The route templates seen, as labels (`route`).
    routes: RwLock<HashSet<Arc<str>>>,
}

/// Values read from the running server when `/metrics` is scraped.
#[derive(Default)]
pub struct StateGauges {
    pub argon2_queue_depth: Gauge,
    pub db_pool_size: Gauge,
    pub db_pool_idle: Gauge,
    pub sessions_active: Gauge,
    pub tokens: Family<KindLabels, Gauge>,
    pub usage_pending: Gauge,
    pub usage_flush_lag_seconds: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tokenpanel");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by method, route template and status",
            requests.clone(),
        );
        let latency: HistogramFamily<RouteLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to the response's headers, by method and route template",
            latency.clone(),
        );
        let throttled = Family::<RouteLabels, Counter>::default();
        registry.register(
            "throttled_requests",
            "Requests answered 429 (sign-in and re-authentication throttles, the API write budget, a full password queue)",
            throttled.clone(),
        );
        let token_checks = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "token_verifications",
            "API tokens presented, by outcome: ok, unknown, expired, wrong_scope, address_refused, cache_hit, cache_miss",
            token_checks.clone(),
        );
        let sign_ins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sign_ins",
            "Password sign-ins, by outcome: accepted, rejected, throttled",
            sign_ins.clone(),
        );
        let argon2_wait = wait_histogram();
        registry.register(
            "argon2_wait_seconds",
            "Time a password check waited for an argon2 worker",
            argon2_wait.clone(),
        );
        let usage_flush_size = flush_size_histogram();
        registry.register(
            "token_usage_flush_size",
            "Tokens written per flush of the last-used buffer",
            usage_flush_size.clone(),
        );
        let gauges = StateGauges::default();
        registry.register(
            "argon2_queue_depth",
            "Password checks waiting for an argon2 worker",
            gauges.argon2_queue_depth.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections",
            gauges.db_pool_size.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections",
            gauges.db_pool_idle.clone(),
        );
        registry.register(
            "sessions_active",
            "Browser sessions not yet expired",
            gauges.sessions_active.clone(),
        );
        registry.register(
            "tokens",
            "Unexpired tokens, by kind (user, automation)",
            gauges.tokens.clone(),
        );
        registry.register(
            "token_usage_pending",
            "Tokens with a use not yet written to the database",
            gauges.usage_pending.clone(),
        );
        registry.register(
            "token_usage_flush_lag_seconds",
            "Seconds since the last-used buffer was last written",
            gauges.usage_flush_lag_seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            throttled,
            token_checks,
            sign_ins,
            argon2_wait,
            usage_flush_size,
            gauges,
            cache_seen: Default::default(),
            routes: RwLock::default(),
        }
    }

    /// The label of a route template. Templates are the router's (and `UNMATCHED`), so
    /// the set stays as small as the router.
    pub fn route(&self, template: &str) -> RouteName {
        let known = self.routes.read().unwrap_or_else(|e| e.into_inner());
        if let Some(name) = known.get(template) {
            return RouteName(name.clone());
        }
        drop(known);
        let mut known = self.routes.write().unwrap_or_else(|e| e.into_inner());
        if let Some(name) = known.get(template) {
            return RouteName(name.clone());
        }
        let name: Arc<str> = Arc::from(template);
        known.insert(name.clone());
        RouteName(name)
    }

    /// One answered request. `route` is the route template, never the raw path.
    pub fn request(&self, method: &'static str, route: &RouteName, status: u16, elapsed: Duration) {
        let labels = RouteLabels {
            method,
            route: route.clone(),
        };
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if status == 429 {
            self.throttled.get_or_create(&labels).inc();
        }
        self.requests
            .get_or_create(&RequestLabels {
                method: labels.method,
                route: labels.route,
                status,
            })
            .inc();
    }

    pub fn token_check(&self, outcome: TokenOutcome) {
        self.token_checks
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    pub fn sign_in(&self, outcome: SignInOutcome) {
        self.sign_ins
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    /// Brings the cache outcomes up to the token cache's own totals (read when scraped).
    pub fn token_cache_totals(&self, hits: u64, loads: u64) {
        use std::sync::atomic::Ordering;
        for (i, (total, outcome)) in [
            (hits, TokenOutcome::CacheHit),
            (loads, TokenOutcome::CacheMiss),
        ]
        .into_iter()
        .enumerate()
        {
            let before = self.cache_seen[i].fetch_max(total, Ordering::Relaxed);
            let new = total.saturating_sub(before);
            if new > 0 {
                self.token_checks
                    .get_or_create(&OutcomeLabels {
                        outcome: outcome.label(),
                    })
                    .inc_by(new);
            }
        }
    }

    pub fn argon2_waited(&self, waited: Duration) {
        self.argon2_wait.observe(waited.as_secs_f64());
    }

    pub fn usage_flushed(&self, tokens: usize) {
        self.usage_flush_size.observe(tokens as f64);
    }

    /// The Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.request(
            "GET",
            &metrics.route("/tokens/{id}"),
            200,
            Duration::from_millis(3),
        );
        metrics.request(
            "POST",
            &metrics.route("/login"),
            429,
            Duration::from_millis(3),
        );
        metrics.token_check(TokenOutcome::Expired);
        metrics.sign_in(SignInOutcome::Rejected);
        metrics
            .gauges
            .tokens
            .get_or_create(&KindLabels {
                kind: "user".into(),
            })
            .set(7);
        let text = metrics.encode();
        for line in [
            r#"tokenpanel_http_requests_total{method="GET",route="/tokens/{id}",status="200"} 1"#,
            r#"tokenpanel_throttled_requests_total{method="POST",route="/login"} 1"#,
            r#"tokenpanel_token_verifications_total{outcome="expired"} 1"#,
            r#"tokenpanel_sign_ins_total{outcome="rejected"} 1"#,
            r#"tokenpanel_tokens{kind="user"} 7"#,
            r#"tokenpanel_http_request_duration_seconds_count{method="GET",route="/tokens/{id}"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
