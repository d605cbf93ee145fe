//! What the handlers of one request learn that the layers around them report: who the
//! request authenticated as (for the access log), and for an API request when its
//! token expires and what is left of its write budget (for the response headers).
//! It also carries the client's address, which the outermost layer works out once
//! (`ClientIp` reads it from here).
//!
//! The outermost layer (`telemetry::access_log`) puts one in every request; the
//! extractors that authenticate fill it in; the layers read it as the answer passes
//! back out. One small allocation and one request extension per request, shared by
//! all of them.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::Extensions;

use crate::domain::ids::{TokenId, UserId};

#[derive(Clone, Default)]
pub struct RequestNotes(Arc<Mutex<Notes>>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes {
    /// The client's address as text (`ProxyTrust::client_ip`).
    pub client: String,
    /// The person the request acted as (a session's user, or a user token's owner).
    pub user_id: Option<UserId>,
    /// The API token the request authenticated with.
    pub token_id: Option<TokenId>,
    /// When that token expires, if it does (`Token-Expires-At`).
    pub token_expires_at: Option<i64>,
    /// The write budget a write request was charged to (the rate-limit headers).
    pub write_budget: Option<WriteBudget>,
}

/// What the rate-limit headers of a charged write request say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteBudget {
    pub remaining: i64,
    pub reset_at: i64,
}

impl RequestNotes {
    /// The notes of a request from `client`.
    pub fn new(client: String) -> RequestNotes {
        RequestNotes(Arc::new(Mutex::new(Notes {
            client,
            ..Notes::default()
        })))
    }

    /// The notes of the request these extensions belong to, when a layer put them there.
    pub fn of(extensions: &Extensions) -> Option<&RequestNotes> {
        extensions.get::<RequestNotes>()
    }

    /// Writes to the notes of a request, when it has them (a request served without
    /// the shared layers, as in some unit tests, has none and notes nothing).
    pub fn update(extensions: &Extensions, write: impl FnOnce(&mut Notes)) {
        if let Some(notes) = Self::of(extensions) {
            write(&mut notes.lock());
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Notes> {
        // A panic while holding the lock leaves plain data that is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_written_through_the_extensions_are_read_by_the_layer_that_put_them() {
        let notes = RequestNotes::new("192.0.2.1".to_owned());
        let mut extensions = Extensions::new();
        RequestNotes::update(&extensions, |n| n.token_expires_at = Some(1));
        extensions.insert(notes.clone());
        RequestNotes::update(&extensions, |n| {
            n.token_expires_at = Some(7);
            n.write_budget = Some(WriteBudget {
                remaining: 3,
                reset_at: 9,
            });
        });
        let seen = notes.lock().clone();
        assert_eq!(seen.token_expires_at, Some(7));
        assert_eq!(
            seen.write_budget,
            Some(WriteBudget {
                remaining: 3,
                reset_at: 9
            })
        );
        assert_eq!(seen.user_id, None);
        assert_eq!(seen.client, "192.0.2.1");
    }
}
