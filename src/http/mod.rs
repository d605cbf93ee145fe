//! What the pages and the API share about HTTP: the client's address, the server's
//! public address, strict form parsing, whether htmx asked for a fragment, and the
//! notes a request's handlers leave for the layers around them. Neither
//! `web` nor `api` imports the other; both import this.

mod client_ip;
mod form;
mod htmx;
mod layer;
mod public_url;
mod request_notes;

pub use client_ip::{ClientIp, ProxyTrust};
pub use form::Form;
pub use htmx::{is_htmx, wants_fragment};
pub use layer::take_ready;
pub use public_url::{PublicBase, PublicOrigin};
pub use request_notes::{Notes, RequestNotes, WriteBudget};

/// An error and its sources on one line, for the single log line of a failed request.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
