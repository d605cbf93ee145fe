//! The client's address, for events, throttling and last-used records.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::RequestNotes;
use crate::domain::cidr::Cidr;

/// Whether the deployment sits behind proxies that set `X-Forwarded-For`, and which.
#[derive(Debug, Clone, Default)]
pub struct ProxyTrust {
    pub forwarded_for: bool,
    pub proxies: Arc<[Cidr]>,
}

impl ProxyTrust {
    /// The client's address as text ("unknown" when the connection has none): the
    /// peer, or behind trusted proxies the entry `X-Forwarded-For` gives.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> String {
        let ip = self.forwarded_client(peer, headers).or(peer);
        let text = ip.map(crate::telemetry::text::address);
        text.as_ref().map_or("unknown", |t| t.as_str()).to_owned()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|range| range.contains(ip))
    }

    /// The client address `X-Forwarded-For` gives when the request came through trusted
    /// proxies: every header line together, read from the right (the entries the proxies
    /// appended), past the trusted ones, to the first that is not trusted. What a client
    /// wrote on the left is never taken while a proxy's entry stands to its right.
    fn forwarded_client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        if !self.forwarded_for || !peer.is_some_and(|ip| self.trusts(ip)) {
            return None;
        }
        let mut nearest = None;
        let lines = headers.get_all("x-forwarded-for").iter();
        let entries: Vec<&str> = lines
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for entry in entries.iter().rev() {
            // Garbage at this point was written by the client, not by a proxy: the proxy
            // that passed it on is the nearest address known.
            let Ok(ip) = entry.parse::<IpAddr>() else {
                return nearest;
            };
            if !self.trusts(ip) {
                return Some(ip);
            }
            nearest = Some(ip);
        }
        nearest
    }
}

/// The client's address as text ("unknown" when the connection has none). The outermost
/// layer (`telemetry::access_log`) works it out once and leaves it in the request's
/// notes (`RequestNotes`).
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    ProxyTrust: FromRef<S>,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(notes) = RequestNotes::of(&parts.extensions) {
            return Ok(ClientIp(notes.lock().client.clone()));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientIp(
            ProxyTrust::from_ref(state).client_ip(peer, &parts.headers),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn trust(on: bool) -> ProxyTrust {
        ProxyTrust {
            forwarded_for: on,
            proxies: crate::domain::cidr::parse_list("127.0.0.0/8, 10.0.0.0/8")
                .unwrap()
                .into(),
        }
    }

    fn headers(lines: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append("x-forwarded-for", HeaderValue::from_static(line));
        }
        h
    }

    fn client(trust: &ProxyTrust, peer: &str, lines: &[&'static str]) -> Option<String> {
        trust
            .forwarded_client(Some(peer.parse().unwrap()), &headers(lines))
            .map(|ip| ip.to_string())
    }

    #[test]
    fn the_right_most_untrusted_entry_is_the_client() {
        let t = trust(true);
        // A client spoofing an address on the left gets its own address taken.
        assert_eq!(
            client(&t, "127.0.0.1", &["1.2.3.4, 203.0.113.9"]).as_deref(),
            Some("203.0.113.9")
        );
        // Several header lines count as one list; trusted hops are skipped.
        assert_eq!(
            client(&t, "127.0.0.1", &["6.6.6.6", "198.51.100.2, 10.0.0.5"]).as_deref(),
            Some("198.51.100.2")
        );
        // Garbage a client wrote stops the walk at the proxy that passed it on.
        assert_eq!(
            client(&t, "127.0.0.1", &["not-an-ip, 10.0.0.5"]).as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(client(&t, "127.0.0.1", &[]), None);
    }

    #[test]
    fn forwarded_for_is_ignored_unless_trusted() {
        assert_eq!(client(&trust(false), "127.0.0.1", &["203.0.113.9"]), None);
        // A peer that is not a trusted proxy cannot speak for anyone else.
        assert_eq!(client(&trust(true), "198.51.100.7", &["203.0.113.9"]), None);
    }
}
