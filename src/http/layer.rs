//! What the shared stack's own tower layers (`telemetry::access_log`, `api::answer`)
//! have in common: the answer future they hand back, and how they call the service
//! they wrap.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use axum::response::Response;

/// The future of a layer that works on the answer after the inner service gave it.
pub type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// The service that was polled ready, to call now; a fresh clone stays in its place and
/// waits for the next `poll_ready` (tower's rule: only a service that said it is ready
/// may be called).
pub fn take_ready<S: Clone>(service: &mut S) -> S {
    let clone = service.clone();
    std::mem::replace(service, clone)
}
