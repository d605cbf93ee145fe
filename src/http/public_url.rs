//! The address clients reach the server at, for the absolute links the API hands out
//! (Fastly's Go client follows `links.next` of `GET /events` as it is, so a path alone
//! will not do).
//!
//! `PUBLIC_URL` when set: the only answer that holds behind any proxy. Otherwise the
//! request's own `Host` (what the client just used to reach us), with the scheme from
//! `X-Forwarded-Proto` when proxies are trusted (`TRUST_FORWARDED_FOR`), else `http`.
//! A `Host` that is not a plain host name or address is not echoed: the link stays a
//! path.

use std::convert::Infallible;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

/// What decides the public address: the configured one, and whether forwarded headers
/// are to be believed.
#[derive(Debug, Clone, Default)]
pub struct PublicOrigin {
    pub configured: Option<String>,
    pub trust_forwarded: bool,
}

/// `https://host[:port]` without a trailing slash, or "" when nothing usable is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicBase(pub String);

impl PublicBase {
    pub fn resolve(origin: &PublicOrigin, headers: &HeaderMap) -> PublicBase {
        if let Some(configured) = &origin.configured {
            return PublicBase(configured.clone());
        }
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            });
        let Some(host) = host else {
            return PublicBase(String::new());
        };
        let forwarded = origin
            .trust_forwarded
            .then(|| headers.get("x-forwarded-proto"))
            .flatten()
            .and_then(|v| v.to_str().ok())
            // The proxy nearest the client appends last; the first entry is theirs.
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_ascii_lowercase());
        let scheme = match forwarded.as_deref() {
            Some("https") => "https",
            _ => "http",
        };
        PublicBase(format!("{scheme}://{host}"))
    }

    /// `path` (starting with `/`) as an absolute URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl<S> FromRequestParts<S> for PublicBase
where
    S: Send + Sync,
    PublicOrigin: FromRef<S>,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(PublicBase::resolve(
            &PublicOrigin::from_ref(state),
            &parts.headers,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn configured_address_wins_then_the_host_header() {
        let configured = PublicOrigin {
            configured: Some("https://tokens.example.com".into()),
            trust_forwarded: false,
        };
        let request = headers(&[("host", "10.0.0.7:3000")]);
        assert_eq!(
            PublicBase::resolve(&configured, &request).url("/events?x=1"),
            "https://tokens.example.com/events?x=1"
        );
        let plain = PublicOrigin::default();
        assert_eq!(
            PublicBase::resolve(&plain, &request).url("/events"),
            "http://10.0.0.7:3000/events"
        );
        assert_eq!(
            PublicBase::resolve(&plain, &headers(&[("host", "[::1]:3000")])).0,
            "http://[::1]:3000"
        );
    }

    #[test]
    fn forwarded_proto_only_from_trusted_proxies() {
        let request = headers(&[
            ("host", "tokens.example.com"),
            ("x-forwarded-proto", "https, http"),
        ]);
        let trusted = PublicOrigin {
            configured: None,
            trust_forwarded: true,
        };
        assert_eq!(
            PublicBase::resolve(&trusted, &request).0,
            "https://tokens.example.com"
        );
        assert_eq!(
            PublicBase::resolve(&PublicOrigin::default(), &request).0,
            "http://tokens.example.com"
        );
    }

    #[test]
    fn odd_hosts_are_not_echoed() {
        for host in ["", "evil.example/path", "a b", "x\"y"] {
            let base = PublicBase::resolve(&PublicOrigin::default(), &headers(&[("host", host)]));
            assert_eq!(base.url("/events"), "/events", "{host:?}");
        }
        assert_eq!(
            PublicBase::resolve(&PublicOrigin::default(), &HeaderMap::new()).url("/events"),
            "/events"
        );
    }
}
